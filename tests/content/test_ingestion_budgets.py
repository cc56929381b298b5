"""Indexing a course file costs bounded work, and says how far it is: progress in the
file's status while the job runs, a cap on passages, page and time budgets on reading
the file, and per-user upload limits."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from lyceum.config import Settings
from lyceum.kit.jobs import Queue
from lyceum.kit.runtime import Runtime
from lyceum.models.content import CourseFile
from lyceum.models.identity import Role
from tests.conftest import client_for, make_app
from tests.content.helpers import (
    Person,
    blank_pdf,
    course_with_lesson,
    drain_jobs,
    pdf_pages,
    person,
    upload,
)
from tests.content.test_files_api import chunk_count
from tests.support.clock import FrozenClock
from tests.support.jobs import run_jobs
from tests.support.runtimes import settings_changed

TOPICS = (
    "membrane",
    "ribosome",
    "enzyme",
    "chloroplast",
    "nucleus",
    "vacuole",
    "cytoskeleton",
    "lysosome",
)


@pytest.fixture
def live_app(settings: Settings, runtime: Runtime) -> FastAPI:
    app = make_app(settings, runtime, None)
    app.state.clock = FrozenClock()
    return app


@pytest.fixture
async def live(live_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(live_app) as http:
        yield http


@pytest.fixture
async def teacher(live: httpx.AsyncClient, runtime: Runtime) -> Person:
    return await person(live, runtime, Role.instructor)


def handout(paragraphs: int) -> bytes:
    """Plain text of `paragraphs` paragraphs of about 90 words each (about two passages
    every three paragraphs)."""
    parts = []
    for number in range(paragraphs):
        topic = TOPICS[number % len(TOPICS)]
        sentences = [
            f"Paragraph {number} is about the {topic} and what it does in the living cell.",
            f"The {topic} works with the other organelles, and a biologist studies it closely.",
            f"Each cell keeps its {topic} busy: section {number} of this handout explains how.",
            "Students often confuse it with its neighbours, so the diagram shows them apart.",
            "Remember the main idea, and read the next paragraph before the quiz on Friday.",
        ]
        parts.append(" ".join(sentences))
    return "\n\n".join(parts).encode()


async def file_status(http: httpx.AsyncClient, path: str, who: Person) -> dict[str, Any]:
    response = await http.get(path, headers=who.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_long_file_shows_its_progress_and_is_indexed_up_to_the_cap(
    live: httpx.AsyncClient, runtime: Runtime, live_app: FastAPI, teacher: Person
) -> None:
    course, _ = await course_with_lesson(live, teacher, publish=False)
    response = await upload(live, course["id"], teacher, "textbook.txt", handout(300))
    assert response.status_code == 201, response.text
    assert response.json()["progress"] is None and response.json()["truncated"] is False
    path = f"/api/v1/courses/{course['id']}/files/{response.json()['id']}"

    seen: list[dict[str, Any]] = []
    with settings_changed(live_app, runtime, ingest_max_chunks=130) as capped:
        job = asyncio.ensure_future(run_jobs([Queue.indexing.value], runtime=capped))
        while not job.done():
            body = await file_status(live, path, teacher)
            if body["status"] == "processing" and body["progress"] is not None:
                seen.append(body["progress"])
            await asyncio.sleep(0.02)
        await job

    # Three batches of at most 64 passages, each reported once it is stored, in a
    # transaction of its own, while the job still runs.
    embedding = [step for step in seen if step["phase"] == "embedding"]
    assert {step["chunks_total"] for step in embedding} == {130}
    partial = [step for step in embedding if 0 < step["chunks_done"] < 130]
    assert partial, seen
    for step in embedding:
        assert step["percent"] == step["chunks_done"] * 100 // 130
    assert [step["chunks_done"] for step in embedding] == sorted(
        step["chunks_done"] for step in embedding
    )

    ready = await file_status(live, path, teacher)
    assert ready["status"] == "ready" and ready["progress"] is None
    assert ready["chunk_count"] == 130 and ready["truncated"] is True
    notice = ready["notice"]
    assert notice.startswith("The file is longer than this server indexes: only its first 130")
    percent = int(notice.split("about ")[1].split("%")[0])
    assert 10 < percent < 90
    assert await chunk_count(runtime, file_id=ready["id"]) == 130


async def test_pages_beyond_the_budget_are_not_indexed_and_the_file_says_so(
    live: httpx.AsyncClient, runtime: Runtime, live_app: FastAPI, teacher: Person
) -> None:
    course, _ = await course_with_lesson(live, teacher, publish=False)
    pages = [f"Page {number} explains the {topic}." for number, topic in enumerate(TOPICS[:5], 1)]
    response = await upload(live, course["id"], teacher, "five.pdf", pdf_pages(pages))
    assert response.status_code == 201, response.text
    with settings_changed(live_app, runtime, extraction_max_pages=2) as budget:
        await run_jobs([Queue.indexing.value], runtime=budget)
    ready = await file_status(
        live, f"/api/v1/courses/{course['id']}/files/{response.json()['id']}", teacher
    )
    assert ready["status"] == "ready" and ready["page_count"] == 5
    assert ready["truncated"] is True
    assert ready["notice"] == (
        "Only the first 2 of 5 pages were read. The rest of the file is not searchable."
    )
    found = await live.get(
        f"/api/v1/courses/{course['id']}/search",
        params={"q": "nucleus vacuole chloroplast", "k": 20},
        headers=teacher.headers,
    )
    pages_found = {
        hit["source"]["page"] for hit in found.json()["items"] if hit["source"]["kind"] == "file"
    }
    assert pages_found <= {1, 2}


async def test_a_file_that_takes_too_long_to_read_fails_with_a_reason(
    live: httpx.AsyncClient, runtime: Runtime, live_app: FastAPI, teacher: Person
) -> None:
    """35,000 pages behind a page tree that claims one: counting them takes seconds."""
    course, _ = await course_with_lesson(live, teacher, publish=False)
    response = await upload(live, course["id"], teacher, "hidden.pdf", blank_pdf(35_000, 1))
    assert response.status_code == 201, response.text
    with settings_changed(live_app, runtime, extraction_timeout_seconds=0.5) as budget:
        await run_jobs([Queue.indexing.value], runtime=budget)
    failed = await file_status(
        live, f"/api/v1/courses/{course['id']}/files/{response.json()['id']}", teacher
    )
    assert failed["status"] == "failed" and failed["chunk_count"] == 0
    assert failed["failure_reason"] == (
        "Reading the file took longer than 0.5 seconds, so it was stopped."
    )


async def test_uploads_and_reindexing_are_rate_limited_per_user(
    live: httpx.AsyncClient, runtime: Runtime, live_app: FastAPI, teacher: Person
) -> None:
    course, _ = await course_with_lesson(live, teacher, publish=False)
    with settings_changed(live_app, runtime, file_upload_rate_limit="2/hour"):
        first = await upload(live, course["id"], teacher, "a.md", b"# A\n\nOne.")
        assert first.status_code == 201, first.text
        reindexed = await live.post(
            f"/api/v1/courses/{course['id']}/files/{first.json()['id']}/reindex",
            headers=teacher.headers,
        )
        assert reindexed.status_code == 202, reindexed.text
        limited = await upload(live, course["id"], teacher, "b.md", b"# B\n\nTwo.")
        assert limited.status_code == 429, limited.text
        assert limited.json()["type"].endswith("/rate-limited")
        assert int(limited.headers["retry-after"]) > 0
        files = await live.get(f"/api/v1/courses/{course['id']}/files", headers=teacher.headers)
        assert [file["name"] for file in files.json()["items"]] == ["a.md"]
    await drain_jobs()


async def test_a_file_that_fails_on_reindexing_keeps_no_old_passages(
    live: httpx.AsyncClient, runtime: Runtime, teacher: Person
) -> None:
    course, _ = await course_with_lesson(live, teacher, publish=False)
    response = await upload(live, course["id"], teacher, "notes.txt", handout(6))
    path = f"/api/v1/courses/{course['id']}/files/{response.json()['id']}"
    await drain_jobs()
    ready = await file_status(live, path, teacher)
    assert ready["status"] == "ready" and ready["chunk_count"] > 0
    # The stored object goes bad (a storage fault, a botched restore): not UTF-8 any more.
    async with runtime.database.sessionmaker() as session:
        file = await session.get(CourseFile, uuid.UUID(ready["id"]))
        assert file is not None
        key = file.storage_key
    await runtime.storage.put(key, b"caf\xe9 " * 100, "text/plain")
    again = await live.post(f"{path}/reindex", headers=teacher.headers)
    assert again.status_code == 202, again.text
    await drain_jobs()
    failed = await file_status(live, path, teacher)
    assert failed["status"] == "failed" and "not valid UTF-8" in failed["failure_reason"]
    assert failed["chunk_count"] == 0
    assert await chunk_count(runtime, file_id=ready["id"]) == 0
