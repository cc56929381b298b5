"""Course files on the S3 backend (moto's S3 server over real HTTP), end to end: upload,
ingestion from the bucket, presigned download, delete. And the clamd scan before a file
becomes visible."""

from __future__ import annotations

import asyncio
import struct
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from lyceum.config import Settings, get_settings
from lyceum.kit.runtime import Runtime
from lyceum.kit.storage import S3Storage, create_storage
from lyceum.models.content import CourseFile
from lyceum.models.identity import Role
from tests.conftest import client_for, make_app
from tests.content.helpers import (
    course_with_lesson,
    drain_jobs,
    enroll,
    pdf_pages,
    person,
    upload,
)
from tests.support.clock import FrozenClock
from tests.support.jobs import run_jobs, with_settings
from tests.support.s3 import (
    ACCESS_KEY_ID,
    REGION,
    SECRET_ACCESS_KEY,
    check_presigned,
    create_bucket,
    s3_client,
    s3_server,
)

# The EICAR test string: harmless, and every virus scanner reports it.
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with s3_server() as endpoint:
        yield endpoint


@pytest.fixture
def bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The process's settings switched to S3 (the job reads them too), for one test."""
    name = create_bucket(s3_endpoint)
    for key, value in {
        "STORAGE_BACKEND": "s3",
        "STORAGE_S3_BUCKET": name,
        "STORAGE_S3_ENDPOINT_URL": s3_endpoint,
        "STORAGE_S3_REGION": REGION,
        "STORAGE_S3_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "STORAGE_S3_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
    }.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    yield name
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.fixture
async def s3_live(bucket: str, runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """The app on the session's runtime with its storage swapped for the bucket (a second
    runtime would close the job queue's shared connection pool when it stops)."""
    # What other tests queued (a certificate's PDF, a file to index) runs now, with the
    # session's storage: run later, it would write to or read from this bucket.
    await run_jobs()
    settings = get_settings()
    storage = create_storage(settings)
    assert isinstance(storage, S3Storage)
    previous = runtime.__dict__.get("storage")
    runtime.__dict__["storage"] = storage
    try:
        app = make_app(settings, runtime, None)
        app.state.clock = FrozenClock()
        async with client_for(app) as http:
            yield http
    finally:
        await storage.close()
        if previous is None:
            runtime.__dict__.pop("storage", None)
        else:
            runtime.__dict__["storage"] = previous


def bucket_keys(endpoint: str, bucket: str) -> set[str]:
    listed = s3_client(endpoint).list_objects_v2(Bucket=bucket)
    return {item["Key"] for item in listed.get("Contents", [])}


async def test_files_live_in_the_bucket_from_upload_to_delete(
    s3_live: httpx.AsyncClient, runtime: Runtime, s3_endpoint: str, bucket: str
) -> None:
    teacher = await person(s3_live, runtime, Role.instructor)
    learner = await person(s3_live, runtime)
    course, _ = await course_with_lesson(s3_live, teacher)
    pdf = pdf_pages(["Front matter.", "Ribosomes read messenger RNA three bases at a time."])
    response = await upload(s3_live, course["id"], teacher, "Ribosomes.pdf", pdf)
    assert response.status_code == 201, response.text
    uploaded = response.json()
    keys = bucket_keys(s3_endpoint, bucket)
    assert len(keys) == 1
    (key,) = keys
    assert key.startswith(f"courses/{course['id']}/files/") and "Ribosomes" not in key

    await drain_jobs()  # the worker reads the PDF back from the bucket
    path = f"/api/v1/courses/{course['id']}/files/{uploaded['id']}"
    assert (await s3_live.get(path, headers=teacher.headers)).json()["status"] == "ready"

    await enroll(s3_live, course["id"], learner)
    link = (await s3_live.get(f"{path}/download", headers=learner.headers)).json()
    assert link["url"].startswith(s3_endpoint)
    assert check_presigned(link["url"]) is None
    served = await asyncio.to_thread(httpx.get, link["url"])
    assert served.status_code == 200 and served.content == pdf
    assert served.headers["content-type"] == "application/pdf"
    assert "Ribosomes.pdf" in served.headers["content-disposition"]

    hits = await s3_live.get(
        f"/api/v1/courses/{course['id']}/search",
        params={"q": "how many bases does the ribosome read at once"},
        headers=learner.headers,
    )
    assert hits.json()["items"][0]["source"]["page"] == 2

    assert (await s3_live.delete(path, headers=teacher.headers)).status_code == 204
    assert bucket_keys(s3_endpoint, bucket) == set()


class FakeClamd:
    """clamd's INSTREAM protocol on a loopback port, flagging the EICAR string: a
    stand-in for a real clamd, which needs signature databases this machine cannot
    download."""

    def __init__(self) -> None:
        self.scanned: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        command = await reader.readuntil(b"\0")
        assert command == b"zINSTREAM\0"
        data = b""
        while True:
            (size,) = struct.unpack("!L", await reader.readexactly(4))
            if size == 0:
                break
            data += await reader.readexactly(size)
        self.scanned.append(data)
        verdict = b"stream: Eicar-Test-Signature FOUND\0" if EICAR in data else b"stream: OK\0"
        writer.write(verdict)
        await writer.drain()
        writer.close()

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"tcp://127.0.0.1:{port}"

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


async def test_an_infected_file_never_becomes_visible(
    settings: Settings, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Files other tests uploaded and left unindexed are scanned by nobody here.
    await run_jobs()
    clamd = FakeClamd()
    async with clamd as url:
        monkeypatch.setenv("CLAMD_URL", url)
        get_settings.cache_clear()
        try:
            app = make_app(get_settings(), runtime, None)
            app.state.clock = FrozenClock()
            async with client_for(app) as http:
                teacher = await person(http, runtime, Role.instructor)
                learner = await person(http, runtime)
                course, _ = await course_with_lesson(http, teacher)
                await enroll(http, course["id"], learner)
                bad = await upload(http, course["id"], teacher, "eicar.txt", EICAR)
                good = await upload(http, course["id"], teacher, "fine.txt", b"Just notes.")
                assert bad.status_code == 201 and good.status_code == 201
                await run_jobs(runtime=with_settings(runtime, clamd_url=url))
                files = f"/api/v1/courses/{course['id']}/files"
                infected = (
                    await http.get(f"{files}/{bad.json()['id']}", headers=teacher.headers)
                ).json()
                assert infected["status"] == "failed"
                assert "Eicar-Test-Signature" in infected["failure_reason"]
                visible = (await http.get(files, headers=learner.headers)).json()
                assert [item["name"] for item in visible["items"]] == ["fine.txt"]
                async with runtime.database.sessionmaker() as session:
                    row = await session.get(CourseFile, uuid.UUID(bad.json()["id"]))
                    assert row is not None
                    assert await runtime.storage.exists(row.storage_key) is False
                    clean = await session.get(CourseFile, uuid.UUID(good.json()["id"]))
                    assert clean is not None and await runtime.storage.exists(clean.storage_key)
        finally:
            monkeypatch.undo()
            get_settings.cache_clear()
    assert any(EICAR in scanned for scanned in clamd.scanned)
    assert any(b"Just notes." in scanned for scanned in clamd.scanned)
