"""Course files through the API: uploads (good and bad), the ingestion job end to end,
signed downloads and who may use them, deletion, and course-material search."""

from __future__ import annotations

import io
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from PIL import Image
from sqlalchemy import func, select

from lyceum.config import Settings
from lyceum.kit.runtime import Runtime
from lyceum.models.content import ContentChunk
from lyceum.models.identity import Role
from tests.conftest import client_for, make_app
from tests.content.helpers import (
    Person,
    course_with_lesson,
    drain_jobs,
    enroll,
    pdf_pages,
    person,
    upload,
)
from tests.support.clock import FrozenClock

PAGE_TWO = "Mitochondria convert the energy stored in glucose into ATP for the cell."


@pytest.fixture
def live_clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
async def live(
    settings: Settings, runtime: Runtime, live_clock: FrozenClock
) -> AsyncIterator[httpx.AsyncClient]:
    app = make_app(settings, runtime, None)
    app.state.clock = live_clock
    async with client_for(app) as http:
        yield http


@pytest.fixture
async def teacher(live: httpx.AsyncClient, runtime: Runtime) -> Person:
    return await person(live, runtime, Role.instructor)


@pytest.fixture
async def learner(live: httpx.AsyncClient, runtime: Runtime) -> Person:
    return await person(live, runtime)


def stored_files(settings: Settings) -> set[Path]:
    root = settings.data_dir / "files"
    return {path for path in root.rglob("*") if path.is_file()} if root.exists() else set()


async def chunk_count(runtime: Runtime, **where: str) -> int:
    async with runtime.database.sessionmaker() as session:
        query = select(func.count()).select_from(ContentChunk)
        for column, value in where.items():
            query = query.where(getattr(ContentChunk, column) == value)
        return int((await session.execute(query)).scalar_one())


async def test_a_pdf_is_indexed_and_found_with_a_page_citation(
    live: httpx.AsyncClient, runtime: Runtime, teacher: Person, learner: Person
) -> None:
    course, _ = await course_with_lesson(live, teacher)
    pdf = pdf_pages(
        [
            "Chapter one introduces the microscope and the history of cell theory.",
            PAGE_TWO + " Cells with high energy demands, like muscle cells, have many.",
            "Chapter three covers photosynthesis in the chloroplasts of plant cells.",
        ]
    )
    response = await upload(live, course["id"], teacher, "Cell energy.pdf", pdf)
    assert response.status_code == 201, response.text
    uploaded = response.json()
    assert uploaded["status"] == "pending" and uploaded["duplicate"] is False
    assert uploaded["name"] == "Cell energy.pdf" and uploaded["kind"] == "pdf"
    assert response.headers["location"].endswith(uploaded["id"])

    await drain_jobs()

    path = f"/api/v1/courses/{course['id']}/files/{uploaded['id']}"
    ready = (await live.get(path, headers=teacher.headers)).json()
    assert ready["status"] == "ready", ready
    assert ready["page_count"] == 3 and ready["chunk_count"] >= 3

    await enroll(live, course["id"], learner)
    found = await live.get(
        f"/api/v1/courses/{course['id']}/search",
        params={"q": "How do mitochondria make ATP from glucose?"},
        headers=learner.headers,
    )
    assert found.status_code == 200, found.text
    top = found.json()["items"][0]
    assert PAGE_TWO in top["text"]
    assert top["source"] == {
        "kind": "file",
        "id": uploaded["id"],
        "title": "Cell energy.pdf",
        "page": 2,
        "heading": None,
    }
    assert top["score"] > 0


async def test_lesson_text_is_indexed_and_reindexed_when_edited(
    live: httpx.AsyncClient, runtime: Runtime, teacher: Person, learner: Person
) -> None:
    course, lesson_id = await course_with_lesson(
        live,
        teacher,
        lesson_title="Osmosis",
        content="# Water\n\nOsmosis moves water across a membrane toward the saltier side.",
    )
    await drain_jobs()
    await enroll(live, course["id"], learner)
    search = f"/api/v1/courses/{course['id']}/search"
    first = (await live.get(search, params={"q": "osmosis water"}, headers=learner.headers)).json()
    assert first["items"][0]["source"]["kind"] == "lesson"
    assert first["items"][0]["source"]["title"] == "Osmosis"
    assert first["items"][0]["source"]["heading"] == "Water"
    before = await chunk_count(runtime, lesson_id=lesson_id)
    assert before >= 1

    edited = await live.patch(
        f"/api/v1/lessons/{lesson_id}",
        json={"content": "# Diffusion\n\nDiffusion spreads perfume molecules through a room."},
        headers=teacher.headers,
    )
    assert edited.status_code == 200
    await drain_jobs()
    second = (await live.get(search, params={"q": "perfume"}, headers=learner.headers)).json()
    assert "perfume" in second["items"][0]["text"]
    texts = [hit["text"] for hit in second["items"]]
    assert not any("saltier" in text for text in texts), "the old text is gone from the index"

    # Re-indexing is idempotent: the same chunks, once.
    again = await live.patch(
        f"/api/v1/lessons/{lesson_id}", json={"title": "Diffusion"}, headers=teacher.headers
    )
    assert again.status_code == 200
    count = await chunk_count(runtime, lesson_id=lesson_id)
    await drain_jobs()
    assert await chunk_count(runtime, lesson_id=lesson_id) == count


def docx_bomb() -> bytes:
    """A .docx-shaped zip whose document.xml inflates to 200 MB."""
    output = io.BytesIO()
    with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("word/document.xml", "w", force_zip64=True) as entry:
            block = b"\0" * (1024 * 1024)
            for _ in range(200):
                entry.write(block)
    return output.getvalue()


BAD_UPLOADS = [
    pytest.param("setup.pdf", b"MZ\x90\x00\x03" + b"\0" * 500, 422, id="renamed-exe-as-pdf"),
    pytest.param("notes.txt", b"\x7fELF\x02\x01\x01" + b"\0" * 500, 422, id="elf-as-txt"),
    pytest.param("paper.docx", pdf_pages(["a pdf really"]), 422, id="pdf-named-docx"),
    pytest.param("fake.pdf", b"\x89PNG\r\n\x1a\n" + b"\0" * 64, 422, id="png-bytes-named-pdf"),
    pytest.param("logo.svg", b'<svg xmlns="http://www.w3.org/2000/svg"></svg>', 422, id="svg"),
    pytest.param("../../etc/passwd.txt", b"hello", 422, id="path-traversal-name"),
    pytest.param("bad\x00name.txt", b"hello", 422, id="nul-in-name"),
    pytest.param("bomb.docx", docx_bomb(), 422, id="zip-bomb-docx"),
]


@pytest.mark.parametrize(("name", "data", "status"), BAD_UPLOADS)
async def test_bad_uploads_are_refused_and_nothing_is_stored(
    live: httpx.AsyncClient,
    settings: Settings,
    teacher: Person,
    name: str,
    data: bytes,
    status: int,
) -> None:
    course, _ = await course_with_lesson(live, teacher, publish=False)
    before = stored_files(settings)
    response = await upload(live, course["id"], teacher, name, data)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["field"] == "body.file"
    assert stored_files(settings) == before
    listing = await live.get(f"/api/v1/courses/{course['id']}/files", headers=teacher.headers)
    assert listing.json()["total"] == 0


async def test_an_oversized_upload_is_refused_while_streaming(
    live: httpx.AsyncClient, settings: Settings, teacher: Person
) -> None:
    course, _ = await course_with_lesson(live, teacher, publish=False)
    before = stored_files(settings)
    sent = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.pdf"\r\n\r\n'
        for _ in range(50):  # 50 MB, streamed without a Content-Length
            sent += 1
            yield b"%PDF-" + b"0" * (1024 * 1024 - 5)
        yield b"\r\n--b--\r\n"

    response = await live.post(
        f"/api/v1/courses/{course['id']}/files",
        content=body(),
        headers={**teacher.headers, "Content-Type": "multipart/form-data; boundary=b"},
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert sent < 15, f"read {sent} MB of a refused upload"
    assert stored_files(settings) == before

    exact = settings.max_upload_bytes + 1
    response = await upload(live, course["id"], teacher, "big.txt", b"a" * exact)
    assert response.status_code == 413


async def test_a_corrupt_pdf_ends_failed_with_a_reason(
    live: httpx.AsyncClient, teacher: Person
) -> None:
    course, _ = await course_with_lesson(live, teacher, publish=False)
    response = await upload(
        live, course["id"], teacher, "broken.pdf", b"%PDF-1.7\n" + b"\x13" * 900
    )
    assert response.status_code == 201, response.text
    await drain_jobs()
    failed = await live.get(
        f"/api/v1/courses/{course['id']}/files/{response.json()['id']}", headers=teacher.headers
    )
    body = failed.json()
    assert body["status"] == "failed"
    assert "PDF" in body["failure_reason"] and body["chunk_count"] == 0


async def test_the_same_bytes_are_stored_once_per_course(
    live: httpx.AsyncClient, settings: Settings, teacher: Person
) -> None:
    course, _ = await course_with_lesson(live, teacher, publish=False)
    data = b"# Notes\n\nThe same file, twice."
    first = await upload(live, course["id"], teacher, "notes.md", data)
    before = stored_files(settings)
    second = await upload(live, course["id"], teacher, "copy of notes.md", data)
    assert first.status_code == 201 and second.status_code == 200
    assert second.json()["id"] == first.json()["id"] and second.json()["duplicate"] is True
    assert stored_files(settings) == before
    assert first.json()["sha256"] == __import__("hashlib").sha256(data).hexdigest()


async def test_images_are_reencoded_without_metadata_and_get_a_thumbnail(
    live: httpx.AsyncClient, teacher: Person
) -> None:
    course, _ = await course_with_lesson(live, teacher, publish=False)
    source = io.BytesIO()
    image = Image.new("RGB", (1600, 900), (200, 30, 30))
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    image.save(source, format="JPEG", exif=exif.tobytes())
    response = await upload(live, course["id"], teacher, "diagram.jpg", source.getvalue())
    assert response.status_code == 201, response.text
    uploaded = response.json()
    assert uploaded["has_thumbnail"] is True and uploaded["content_type"] == "image/jpeg"
    base = f"/api/v1/courses/{course['id']}/files/{uploaded['id']}/download"
    original = await live.get(base, headers=teacher.headers)
    served = await live.get(original.json()["url"])
    assert served.status_code == 200
    assert b"SecretCam" not in served.content
    with Image.open(io.BytesIO(served.content)) as clean:
        assert clean.size == (1600, 900) and not clean.getexif()
    thumb_link = await live.get(base, params={"variant": "thumbnail"}, headers=teacher.headers)
    thumb = await live.get(thumb_link.json()["url"])
    assert thumb.headers["content-type"] == "image/webp"
    with Image.open(io.BytesIO(thumb.content)) as small:
        assert max(small.size) == 320


async def test_signed_links_expire_and_only_members_get_them(
    live: httpx.AsyncClient,
    runtime: Runtime,
    live_clock: FrozenClock,
    teacher: Person,
    learner: Person,
) -> None:
    course, _ = await course_with_lesson(live, teacher)
    data = b"Reading list: Alberts, Molecular Biology of the Cell."
    uploaded = (await upload(live, course["id"], teacher, "Reading list.txt", data)).json()
    files = f"/api/v1/courses/{course['id']}/files"
    link_path = f"{files}/{uploaded['id']}/download"

    # Not ready yet: learners do not see it; the instructor does.
    await enroll(live, course["id"], learner)
    assert (await live.get(files, headers=learner.headers)).json()["total"] == 0
    assert (await live.get(link_path, headers=learner.headers)).status_code == 404
    await drain_jobs()
    assert (await live.get(files, headers=learner.headers)).json()["total"] == 1

    link = (await live.get(link_path, headers=learner.headers)).json()
    served = await live.get(link["url"])
    assert served.status_code == 200 and served.content == data
    assert served.headers["content-type"].startswith("text/plain")
    assert "Reading%20list.txt" in served.headers["content-disposition"]

    stranger = await person(live, runtime)
    anonymous: dict[str, str] = {}
    for headers, expected in ((stranger.headers, 403), (anonymous, 401)):
        assert (await live.get(link_path, headers=headers)).status_code == expected
        assert (await live.get(files, headers=headers)).status_code == expected
        search = await live.get(
            f"/api/v1/courses/{course['id']}/search", params={"q": "x"}, headers=headers
        )
        assert search.status_code == expected
    other_teacher = await person(live, runtime, Role.instructor)
    assert (await live.get(link_path, headers=other_teacher.headers)).status_code == 403
    denied = await upload(live, course["id"], learner, "mine.txt", b"hello there")
    assert denied.status_code == 403
    deleted = await live.delete(f"{files}/{uploaded['id']}", headers=learner.headers)
    assert deleted.status_code == 403

    parts = urlsplit(link["url"])
    tampered = f"{parts.path}?{parts.query.replace('variant=original', 'variant=thumbnail')}"
    assert (await live.get(tampered)).status_code == 403
    live_clock.advance(seconds=runtime.settings.download_url_ttl_seconds + 1)
    expired = await live.get(link["url"])
    assert expired.status_code == 403 and expired.json()["type"].endswith("link-expired")


async def test_deleting_a_file_removes_its_object_and_its_index_entries(
    live: httpx.AsyncClient, runtime: Runtime, settings: Settings, teacher: Person
) -> None:
    course, _ = await course_with_lesson(live, teacher, publish=False)
    before = stored_files(settings)
    data = b"# Glossary\n\nAn organelle is a specialised structure inside a cell."
    uploaded = (await upload(live, course["id"], teacher, "glossary.md", data)).json()
    await drain_jobs()
    assert await chunk_count(runtime, file_id=uploaded["id"]) >= 1
    assert len(stored_files(settings) - before) == 1
    path = f"/api/v1/courses/{course['id']}/files/{uploaded['id']}"
    assert (await live.delete(path, headers=teacher.headers)).status_code == 204
    assert await chunk_count(runtime, file_id=uploaded["id"]) == 0
    assert stored_files(settings) == before
    assert (await live.get(path, headers=teacher.headers)).status_code == 404


async def test_a_file_lesson_points_at_a_file_of_its_own_course(
    live: httpx.AsyncClient, teacher: Person
) -> None:
    course, _ = await course_with_lesson(live, teacher, publish=False)
    other, _ = await course_with_lesson(live, teacher, publish=False)
    theirs = (await upload(live, other["id"], teacher, "a.txt", b"another course's file")).json()
    ours = (await upload(live, course["id"], teacher, "b.txt", b"this course's own file")).json()
    modules = (
        await live.get(f"/api/v1/courses/{course['id']}/modules", headers=teacher.headers)
    ).json()
    lessons = f"/api/v1/courses/{course['id']}/modules/{modules[0]['id']}/lessons"
    wrong = await live.post(
        lessons,
        json={"title": "Slides", "kind": "file", "file_id": theirs["id"]},
        headers=teacher.headers,
    )
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "body.file_id"
    right = await live.post(
        lessons,
        json={"title": "Slides", "kind": "file", "file_id": ours["id"]},
        headers=teacher.headers,
    )
    assert right.status_code == 201 and right.json()["file_id"] == ours["id"]


async def test_who_may_do_what_with_course_files(
    live: httpx.AsyncClient, runtime: Runtime, teacher: Person, learner: Person
) -> None:
    course, _ = await course_with_lesson(live, teacher)
    await enroll(live, course["id"], learner)
    callers = {
        "anonymous": None,
        "enrolled": learner,
        "other learner": await person(live, runtime),
        "instructor": teacher,
        "other instructor": await person(live, runtime, Role.instructor),
        "admin": await person(live, runtime, Role.admin),
    }
    files = f"/api/v1/courses/{course['id']}/files"
    target = (await upload(live, course["id"], teacher, "target.txt", b"The target file.")).json()
    await drain_jobs()
    one = f"{files}/{target['id']}"
    reading = {"anonymous": 401, "other learner": 403, "other instructor": 403}
    writing = {"anonymous": 401, "enrolled": 403, "other learner": 403, "other instructor": 403}
    for name, who in callers.items():
        headers = who.headers if who else {}
        got = {
            "list": (await live.get(files, headers=headers)).status_code,
            "get": (await live.get(one, headers=headers)).status_code,
            "download": (await live.get(f"{one}/download", headers=headers)).status_code,
            "search": (
                await live.get(
                    f"/api/v1/courses/{course['id']}/search",
                    params={"q": "target"},
                    headers=headers,
                )
            ).status_code,
            "reindex": (await live.post(f"{one}/reindex", headers=headers)).status_code,
            "upload": (
                await live.post(
                    files,
                    files={"file": ("n.txt", f"Notes by {name}.".encode(), "text/plain")},
                    headers=headers,
                )
            ).status_code,
        }
        read = reading.get(name, 200)
        write = writing.get(name)
        expected = {
            "list": read,
            "get": read,
            "download": read,
            "search": read,
            "reindex": write or 202,
            "upload": write or 201,
        }
        assert got == expected, name
        if write is not None:
            assert (await live.delete(one, headers=headers)).status_code == write, name
    doomed = (await upload(live, course["id"], teacher, "doomed.txt", b"Doomed file.")).json()
    admin = callers["admin"]
    assert admin is not None
    assert (await live.delete(f"{files}/{doomed['id']}", headers=admin.headers)).status_code == 204
    assert (await live.delete(one, headers=teacher.headers)).status_code == 204
    # A file id from another course is not reachable through this course's path.
    other, _ = await course_with_lesson(live, teacher)
    foreign = (await upload(live, other["id"], teacher, "foreign.txt", b"Elsewhere.")).json()
    assert (await live.get(f"{files}/{foreign['id']}", headers=teacher.headers)).status_code == 404
