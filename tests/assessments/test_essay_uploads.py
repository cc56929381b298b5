"""Essay files are read within budgets while the learner waits: pages, time and memory
(in the sandbox), and uploads per learner. A file beyond a budget is refused at once
with a problem naming the field, and nothing is stored."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncConnection

from lyceum.kit.runtime import Runtime
from tests.assessments.helpers import API, GOOD_ESSAY, Classroom, Member, add_assignment, classroom
from tests.assessments.test_quizzes import problem
from tests.content.helpers import blank_pdf, pdf_pages
from tests.support.runtimes import settings_changed


@pytest.fixture
async def room(
    client: httpx.AsyncClient, connection: AsyncConnection, runtime: Runtime
) -> Classroom:
    return await classroom(client, connection, runtime)


async def upload_essay(
    client: httpx.AsyncClient, assignment_id: str, who: Member, name: str, data: bytes
) -> httpx.Response:
    return await client.post(
        f"{API}/assignments/{assignment_id}/submissions/file",
        files={"file": (name, data, "application/pdf")},
        headers=who.headers,
    )


async def nothing_submitted(client: httpx.AsyncClient, assignment_id: str, who: Member) -> bool:
    mine = await client.get(
        f"{API}/assignments/{assignment_id}/submissions/me", headers=who.headers
    )
    return mine.status_code == 404


async def test_a_pdf_of_35000_empty_pages_is_refused_at_once(
    client: httpx.AsyncClient, room: Classroom
) -> None:
    """A 4.5 MB PDF of 35,000 blank pages took 100 s of extraction inside the request."""
    assignment = await add_assignment(client, room)
    hostile = blank_pdf(35_000)
    assert len(hostile) < 5 * 1024 * 1024  # under ESSAY_UPLOAD_MAX_BYTES
    response = await upload_essay(client, assignment["id"], room.learner, "essay.pdf", hostile)
    body = problem(response, 413, "essay-too-long")
    assert body["detail"] == "The PDF has 35,000 pages; at most 100 are accepted."
    assert body["errors"][0]["field"] == "body.file"
    assert await nothing_submitted(client, assignment["id"], room.learner)


async def test_a_pdf_that_hides_its_pages_is_stopped_by_the_time_budget(
    app: FastAPI, client: httpx.AsyncClient, room: Classroom, runtime: Runtime
) -> None:
    """35,000 pages behind a page tree that claims one: walking the tree to count them
    takes seconds, more than the time budget, so the reading is stopped."""
    assignment = await add_assignment(client, room)
    hostile = blank_pdf(35_000, declared=1)
    with settings_changed(app, runtime, essay_extraction_timeout_seconds=0.5):
        response = await upload_essay(client, assignment["id"], room.learner, "essay.pdf", hostile)
    body = problem(response, 422, "extraction-limit")
    assert "took longer than 0.5 seconds" in body["detail"]
    assert body["errors"][0]["field"] == "body.file"
    assert await nothing_submitted(client, assignment["id"], room.learner)


async def test_essay_uploads_are_rate_limited_per_learner(
    app: FastAPI, client: httpx.AsyncClient, room: Classroom, runtime: Runtime
) -> None:
    first = await add_assignment(client, room)
    second = await add_assignment(client, room)
    essay = pdf_pages([GOOD_ESSAY])
    with settings_changed(app, runtime, essay_upload_rate_limit="2/hour"):
        accepted = await upload_essay(client, first["id"], room.learner, "essay.pdf", essay)
        assert accepted.status_code == 201, accepted.text
        # A refused upload costs as much to look at as an accepted one: it counts.
        again = await upload_essay(client, first["id"], room.learner, "essay.pdf", essay)
        problem(again, 409, "already-submitted")
        limited = await upload_essay(client, second["id"], room.learner, "essay.pdf", essay)
        problem(limited, 429, "rate-limited")
        assert int(limited.headers["retry-after"]) > 0
        assert await nothing_submitted(client, second["id"], room.learner)
        # Other learners have limits of their own.
        other = await upload_essay(client, second["id"], room.teacher, "essay.pdf", essay)
        assert other.status_code != 429
