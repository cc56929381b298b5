"""Both storage backends behave alike: a directory under tmp_path, and S3 spoken over real
HTTP to moto's server with a fresh bucket per test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import pytest
from botocore.exceptions import ClientError

from lyceum.config import Settings
from lyceum.kit.storage import (
    LocalStorage,
    S3Storage,
    Storage,
    attachment_disposition,
    create_storage,
)
from tests.support.s3 import (
    ACCESS_KEY_ID,
    REGION,
    SECRET_ACCESS_KEY,
    check_presigned,
    create_bucket,
    s3_client,
    s3_server,
)

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 40
LECTURE = "Bài giảng 1.pdf"
LECTURE_RFC5987 = "UTF-8''B%C3%A0i%20gi%E1%BA%A3ng%201.pdf"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with s3_server() as endpoint:
        yield endpoint


def s3_storage(endpoint: str, bucket: str) -> S3Storage:
    return S3Storage(
        bucket,
        region=REGION,
        endpoint_url=endpoint,
        access_key_id=ACCESS_KEY_ID,
        secret_access_key=SECRET_ACCESS_KEY,
    )


@pytest.fixture
async def s3(s3_endpoint: str) -> AsyncIterator[S3Storage]:
    storage = s3_storage(s3_endpoint, create_bucket(s3_endpoint))
    yield storage
    await storage.close()


@pytest.fixture(params=["local", "s3"])
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    backend: Storage
    if request.param == "local":
        backend = LocalStorage(tmp_path / "files")
    else:
        endpoint = request.getfixturevalue("s3_endpoint")
        backend = s3_storage(endpoint, create_bucket(endpoint))
    yield backend
    await backend.close()


# Both backends -------------------------------------------------------------------------


async def test_put_get_round_trip(storage: Storage) -> None:
    await storage.put("courses/1/files/abc.pdf", PDF, "application/pdf")
    assert await storage.get("courses/1/files/abc.pdf") == PDF
    await storage.put("courses/1/files/abc.pdf", b"", "application/pdf")
    assert await storage.get("courses/1/files/abc.pdf") == b""


async def test_get_missing_is_none(storage: Storage) -> None:
    assert await storage.get("nothing/here.bin") is None


async def test_delete_and_delete_missing(storage: Storage) -> None:
    await storage.put("a/b.txt", b"x", "text/plain")
    await storage.put("a/c.txt", b"y", "text/plain")
    await storage.delete("a/b.txt")
    assert await storage.get("a/b.txt") is None
    assert await storage.get("a/c.txt") == b"y"
    await storage.delete("a/b.txt")
    await storage.delete("never/existed.txt")


async def test_exists(storage: Storage) -> None:
    assert not await storage.exists("a/b.txt")
    await storage.put("a/b.txt", b"x", "text/plain")
    assert await storage.exists("a/b.txt")
    assert not await storage.exists("a")  # a "directory" is not an object
    await storage.delete("a/b.txt")
    assert not await storage.exists("a/b.txt")


INVALID_KEYS = ["../x", "/abs", "a/../../b", "a/\x00b", "", "a//b", "a/./b", "dir/", "a\nb"]


@pytest.mark.parametrize("key", INVALID_KEYS)
async def test_invalid_keys_are_refused(storage: Storage, key: str) -> None:
    with pytest.raises(ValueError, match="invalid storage key"):
        await storage.put(key, b"x", "text/plain")
    with pytest.raises(ValueError, match="invalid storage key"):
        await storage.get(key)
    with pytest.raises(ValueError, match="invalid storage key"):
        await storage.delete(key)
    with pytest.raises(ValueError, match="invalid storage key"):
        await storage.exists(key)
    with pytest.raises(ValueError, match="invalid storage key"):
        await storage.presigned_url(key, expires_in=60, filename="x.txt", content_type="text/plain")


async def test_close_is_idempotent_and_storage_stays_usable(storage: Storage) -> None:
    await storage.close()
    await storage.close()
    await storage.put("k.txt", b"x", "text/plain")
    await storage.close()
    assert await storage.get("k.txt") == b"x"


# Local backend -------------------------------------------------------------------------


async def test_local_has_no_presigned_urls(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    await storage.put("f/lecture.pdf", PDF, "application/pdf")
    url = await storage.presigned_url(
        "f/lecture.pdf", expires_in=60, filename=LECTURE, content_type="application/pdf"
    )
    assert url is None


async def test_local_keeps_objects_under_its_root(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "files")
    await storage.put("a/b.bin", b"x", "application/octet-stream")
    assert (tmp_path / "files" / "a" / "b.bin").read_bytes() == b"x"
    (tmp_path / "outside").mkdir()
    (tmp_path / "files" / "link").symlink_to(tmp_path / "outside")
    with pytest.raises(ValueError, match="invalid storage key"):
        await storage.put("link/escape.bin", b"x", "application/octet-stream")


# S3 backend ----------------------------------------------------------------------------


async def test_s3_put_stores_content_type(s3: S3Storage, s3_endpoint: str) -> None:
    await s3.put("f/lecture.pdf", PDF, "application/pdf")
    head = s3_client(s3_endpoint).head_object(Bucket=s3.bucket, Key="f/lecture.pdf")
    assert head["ContentType"] == "application/pdf"
    assert head["ContentLength"] == len(PDF)


async def test_presigned_url_downloads_the_file_under_its_name(s3: S3Storage) -> None:
    await s3.put("f/0c1d.bin", PDF, "application/octet-stream")
    url = await s3.presigned_url(
        "f/0c1d.bin", expires_in=300, filename=LECTURE, content_type="application/pdf"
    )
    assert url is not None
    async with httpx.AsyncClient() as http:
        response = await http.get(url)
    assert response.status_code == 200
    assert response.content == PDF
    assert response.headers["content-type"] == "application/pdf"
    disposition = response.headers["content-disposition"]
    assert disposition == attachment_disposition(LECTURE)
    assert disposition.startswith("attachment;")
    assert 'filename="Bai giang 1.pdf"' in disposition
    encoded = disposition.split("filename*=", 1)[1]
    assert encoded == LECTURE_RFC5987
    assert unquote(encoded.removeprefix("UTF-8''"), encoding="utf-8") == LECTURE


async def test_presigned_url_signs_its_expiry(s3: S3Storage) -> None:
    """Moto serves presigned URLs without checking signature or expiry, so check the
    URL the way S3 does: the signature covers X-Amz-Date and X-Amz-Expires."""
    await s3.put("f/x.pdf", PDF, "application/pdf")
    before = datetime.now(UTC).replace(microsecond=0)
    url = await s3.presigned_url(
        "f/x.pdf", expires_in=1, filename=LECTURE, content_type="application/pdf"
    )
    assert url is not None
    query = {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}
    assert query["X-Amz-Expires"] == "1"
    issued = datetime.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert before <= issued <= datetime.now(UTC)

    assert check_presigned(url, now=issued) is None
    assert check_presigned(url, now=issued + timedelta(seconds=2)) == "expired"
    assert check_presigned(url.replace("X-Amz-Expires=1", "X-Amz-Expires=3600")) == (
        "signature mismatch"
    )
    assert check_presigned(url, secret_access_key="another", now=issued) == ("signature mismatch")


@pytest.mark.slow
async def test_expired_presigned_url(s3: S3Storage) -> None:
    await s3.put("f/x.pdf", PDF, "application/pdf")
    url = await s3.presigned_url(
        "f/x.pdf", expires_in=1, filename="x.pdf", content_type="application/pdf"
    )
    assert url is not None
    await asyncio.sleep(2.1)
    assert check_presigned(url) == "expired"  # what S3 itself answers with 403
    async with httpx.AsyncClient() as http:
        response = await http.get(url)
    # Moto (5.x) does not enforce presigned expiry (nor signatures) and still serves the
    # object. If this starts failing with 403, moto enforces it: assert 403 here.
    assert response.status_code == 200


async def test_presigned_url_expiry_bounds(s3: S3Storage) -> None:
    for expires_in in (0, -1, 7 * 24 * 3600 + 1):
        with pytest.raises(ValueError, match="expires_in"):
            await s3.presigned_url(
                "f/x.pdf", expires_in=expires_in, filename="x.pdf", content_type="text/plain"
            )


async def test_s3_errors_other_than_missing_key_are_raised(s3_endpoint: str) -> None:
    storage = s3_storage(s3_endpoint, "no-such-bucket-lyceum")
    try:
        with pytest.raises(ClientError, match="NoSuchBucket"):
            await storage.get("a.txt")
        with pytest.raises(ClientError, match="NoSuchBucket"):
            await storage.put("a.txt", b"x", "text/plain")
        with pytest.raises(ClientError, match="NoSuchBucket"):
            await storage.delete("a.txt")
        # HEAD answers carry no error body: a missing bucket is a plain 404 there.
        assert not await storage.exists("a.txt")
    finally:
        await storage.close()


async def test_s3_reuses_one_client_and_reopens_in_another_loop(s3: S3Storage) -> None:
    await s3.put("k.txt", b"x", "text/plain")
    clients = await asyncio.gather(*(s3._s3() for _ in range(5)))
    assert all(client is clients[0] for client in clients)
    await s3.close()

    async def in_other_loop() -> bytes | None:
        try:
            return await s3.get("k.txt")
        finally:
            await s3.close()

    assert await asyncio.to_thread(asyncio.run, in_other_loop()) == b"x"
    assert await s3.get("k.txt") == b"x"


# Content-Disposition ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("report.pdf", "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf"),
        (LECTURE, f'attachment; filename="Bai giang 1.pdf"; filename*={LECTURE_RFC5987}'),
        (
            "Đề thi.docx",
            "attachment; filename=\"De thi.docx\"; filename*=UTF-8''%C4%90%E1%BB%81%20thi.docx",
        ),
        (
            'say "hi"\\.txt',
            "attachment; filename=\"say _hi__.txt\"; filename*=UTF-8''say%20%22hi%22%5C.txt",
        ),
        ("講義.pdf", "attachment; filename=\"__.pdf\"; filename*=UTF-8''%E8%AC%9B%E7%BE%A9.pdf"),
        (
            "a\r\nSet-Cookie: x.txt",
            "attachment; filename=\"aSet-Cookie: x.txt\"; filename*=UTF-8''aSet-Cookie%3A%20x.txt",
        ),
        ("講義", "attachment; filename=\"download\"; filename*=UTF-8''%E8%AC%9B%E7%BE%A9"),
        ("", "attachment; filename=\"download\"; filename*=UTF-8''download"),
    ],
)
def test_attachment_disposition(filename: str, expected: str) -> None:
    assert attachment_disposition(filename) == expected


# create_storage ----------------------------------------------------------------------------


def test_create_storage_local_defaults_under_the_data_dir(tmp_path: Path) -> None:
    storage = create_storage(
        Settings(lyceum_data_dir=tmp_path, storage_backend="local", storage_local_path=None)
    )
    assert isinstance(storage, LocalStorage)
    assert storage.root == (tmp_path / "files").resolve()


async def test_create_storage_builds_s3_from_settings(s3_endpoint: str) -> None:
    bucket = create_bucket(s3_endpoint)
    settings = Settings(
        storage_backend="s3",
        storage_s3_bucket=bucket,
        storage_s3_endpoint_url=s3_endpoint,
        storage_s3_region=REGION,
        storage_s3_access_key_id=ACCESS_KEY_ID,
        storage_s3_secret_access_key=SECRET_ACCESS_KEY,
    )
    storage = create_storage(settings)
    assert isinstance(storage, S3Storage)
    assert storage.bucket == bucket
    try:
        await storage.put("k.txt", b"hello", "text/plain")
        assert await storage.get("k.txt") == b"hello"
        url = await storage.presigned_url(
            "k.txt", expires_in=60, filename="k.txt", content_type="text/plain"
        )
        assert url is not None
        assert url.startswith(f"{s3_endpoint}/{bucket}/k.txt?")
    finally:
        await storage.close()
    assert s3_client(s3_endpoint).get_object(Bucket=bucket, Key="k.txt")["Body"].read() == (
        b"hello"
    )
