"""A course's indexing state: each lesson and file pending, processing, ready or failed,
kept in step with the lesson's text by the database, moved on by the indexing jobs, and
shown to the course's members (counts) and instructors (every item)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from lyceum.content.repository import IndexingRepository
from lyceum.kit.runtime import Runtime
from lyceum.models.content import FileStatus
from lyceum.models.identity import Role
from tests.conftest import committing_client
from tests.content.helpers import Person, course_with_lesson, drain_jobs, enroll, person, upload


@pytest.fixture
async def live(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    async with committing_client(runtime) as http:
        yield http


async def state(http: httpx.AsyncClient, course_id: str, who: Person | None) -> httpx.Response:
    return await http.get(
        f"/api/v1/courses/{course_id}/indexing", headers=who.headers if who else {}
    )


def counts(body: dict[str, Any], kind: str) -> tuple[int, int, int, int]:
    part = body[kind]
    return part["pending"], part["processing"], part["ready"], part["failed"]


async def test_a_lesson_waits_until_indexed_and_waits_again_after_an_edit(
    live: httpx.AsyncClient, runtime: Runtime
) -> None:
    teacher = await person(live, runtime, Role.instructor)
    course, lesson_id = await course_with_lesson(
        live,
        teacher,
        lesson_title="Cells",
        content="# Cells\n\nEvery living thing is made of cells.",
    )
    learner = await person(live, runtime)
    await enroll(live, course["id"], learner)

    waiting = await state(live, course["id"], teacher)
    assert waiting.status_code == 200, waiting.text
    body = waiting.json()
    assert body["complete"] is False and counts(body, "lessons") == (1, 0, 0, 0)
    assert counts(body, "files") == (0, 0, 0, 0)
    (item,) = body["items"]
    assert item["kind"] == "lesson" and item["id"] == lesson_id and item["status"] == "pending"
    assert item["title"] == "Cells" and item["indexed_at"] is None
    # Learners see how far it is, not the items.
    seen = (await state(live, course["id"], learner)).json()
    assert counts(seen, "lessons") == (1, 0, 0, 0) and seen["items"] == []

    await drain_jobs()
    done = (await state(live, course["id"], teacher)).json()
    assert done["complete"] is True and counts(done, "lessons") == (0, 0, 1, 0)
    assert done["items"][0]["status"] == "ready" and done["items"][0]["indexed_at"]

    # Not the text: nothing to index again.
    moved = await live.patch(
        f"/api/v1/lessons/{lesson_id}", json={"is_preview": True}, headers=teacher.headers
    )
    assert moved.status_code == 200, moved.text
    assert (await state(live, course["id"], teacher)).json()["complete"] is True
    edited = await live.patch(
        f"/api/v1/lessons/{lesson_id}",
        json={"content": "# Cells\n\nCells come from other cells."},
        headers=teacher.headers,
    )
    assert edited.status_code == 200
    again = (await state(live, course["id"], teacher)).json()
    assert again["complete"] is False and counts(again, "lessons") == (1, 0, 0, 0)
    await drain_jobs()
    assert (await state(live, course["id"], teacher)).json()["complete"] is True


async def test_an_edit_while_the_job_indexes_keeps_the_lesson_waiting(
    live: httpx.AsyncClient, runtime: Runtime
) -> None:
    teacher = await person(live, runtime, Role.instructor)
    course, lesson_id = await course_with_lesson(live, teacher, content="First text.")
    lesson = uuid.UUID(lesson_id)
    async with runtime.database.sessionmaker() as session:
        read = await IndexingRepository(session).lesson_version(lesson)
    assert read is not None
    # The text changes after the job read its version (and its text) ...
    await live.patch(
        f"/api/v1/lessons/{lesson_id}", json={"content": "Second text."}, headers=teacher.headers
    )
    async with runtime.database.sessionmaker() as session, session.begin():
        repo = IndexingRepository(session)
        # ... so what it indexed is not the lesson's text: not ready.
        assert await repo.mark_lesson_indexed(lesson, read) is False
        current = await repo.lesson_version(lesson)
    assert current == read + 1
    items = (await state(live, course["id"], teacher)).json()["items"]
    assert items[0]["status"] == "pending"
    await drain_jobs()  # the job the edit queued
    items = (await state(live, course["id"], teacher)).json()["items"]
    assert items[0]["status"] == "ready"


async def test_files_are_counted_and_failures_explained_to_instructors(
    live: httpx.AsyncClient, runtime: Runtime
) -> None:
    teacher = await person(live, runtime, Role.instructor)
    course, _ = await course_with_lesson(live, teacher, content="Hello.")
    good = await upload(live, course["id"], teacher, "notes.md", b"# Notes\n\nPlants grow.")
    broken = await upload(live, course["id"], teacher, "broken.pdf", b"%PDF-1.7\n" + b"\x13" * 900)
    assert good.status_code == 201 and broken.status_code == 201
    before = (await state(live, course["id"], teacher)).json()
    assert counts(before, "files") == (2, 0, 0, 0)
    await drain_jobs()
    after = (await state(live, course["id"], teacher)).json()
    assert counts(after, "files") == (0, 0, 1, 1) and after["complete"] is True
    files = {item["title"]: item for item in after["items"] if item["kind"] == "file"}
    assert files["notes.md"]["status"] == FileStatus.ready.value
    assert (
        files["broken.pdf"]["status"] == "failed" and "PDF" in files["broken.pdf"]["failure_reason"]
    )


async def test_only_the_courses_members_see_its_indexing_state(
    live: httpx.AsyncClient, runtime: Runtime
) -> None:
    teacher = await person(live, runtime, Role.instructor)
    course, _ = await course_with_lesson(live, teacher, content="Hello.")
    draft, _ = await course_with_lesson(live, teacher, content="Hello.", publish=False)
    admin = await person(live, runtime, Role.admin)
    stranger = await person(live, runtime)
    assert (await state(live, course["id"], None)).status_code == 401
    assert (await state(live, course["id"], stranger)).status_code == 403
    assert (await state(live, draft["id"], stranger)).status_code == 404
    assert (await state(live, str(uuid.uuid4()), teacher)).status_code == 404
    seen = (await state(live, course["id"], admin)).json()
    assert len(seen["items"]) == 1
