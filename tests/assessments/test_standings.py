"""Where a learner stands on a course's assessments, as their progress shows it (and as
every completed lesson answers it): the course's published quizzes, oldest first, each
with the learner's best graded attempt (no score for a quiz that shows none), then its
published assignments, read in one statement; another learner's work never counts."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from lyceum.kit.runtime import Runtime
from tests.assessments.helpers import (
    API,
    Classroom,
    Member,
    add_assignment,
    add_question,
    add_quiz,
    classroom,
    enrolled_learner,
    single_choice,
    start,
    statements,
)


@pytest.fixture
async def room(
    client: httpx.AsyncClient, connection: AsyncConnection, runtime: Runtime
) -> Classroom:
    return await classroom(client, connection, runtime)


async def _take(
    client: httpx.AsyncClient,
    quiz: dict[str, Any],
    question: dict[str, Any],
    who: Member,
    choice: str,
) -> None:
    sheet = await start(client, quiz["id"], who)
    result = await client.post(
        f"{API}/attempts/{sheet['id']}/submit",
        json={"answers": [{"question_id": question["id"], "choice": choice}]},
        headers=who.headers,
    )
    assert result.status_code == 200, result.text


async def test_progress_shows_the_learners_own_standing_read_in_one_statement(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    runtime: Runtime,
    room: Classroom,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    question = await add_question(client, room, single_choice())  # "b" is right
    scored = await add_quiz(client, room, [question["id"]], pass_percent=50, required=True)
    hidden = await add_quiz(client, room, [question["id"]], review_policy="none")
    await add_quiz(client, room, [question["id"]], published=False)
    essay = await add_assignment(client, room)
    peer = await enrolled_learner(client, connection, runtime, room)

    # The learner fails then passes the first quiz; the peer passes the second.
    await _take(client, scored, question, room.learner, "a")
    await _take(client, scored, question, room.learner, "b")
    await _take(client, hidden, question, peer, "b")

    with statements(monkeypatch) as sent:
        progress = await client.get(
            f"{API}/courses/{room.course_id}/progress", headers=room.learner.headers
        )
    assert progress.status_code == 200, progress.text
    reads = [s for s in sent if "quiz_attempts" in s or "essay_submissions" in s]
    assert len(reads) == 1, reads
    assert "assignments" in reads[0] and "quizzes" in reads[0]

    assessments = progress.json()["assessments"]
    # Quizzes first (among themselves oldest first: here, made in one transaction,
    # they are equally old), then assignments.
    assert [a["kind"] for a in assessments] == ["quiz", "quiz", "assignment"]
    standing = {a["id"]: (a["required"], a["percent"], a["passed"]) for a in assessments}
    assert standing == {
        scored["id"]: (True, 100.0, True),  # the best attempt
        hidden["id"]: (False, None, False),  # the peer's pass is not the learner's
        essay["id"]: (False, None, False),  # nothing released
    }

    # Passing the quiz that shows no score: passed, still no percent.
    await _take(client, hidden, question, room.learner, "b")
    progress = await client.get(
        f"{API}/courses/{room.course_id}/progress", headers=room.learner.headers
    )
    now = {a["id"]: (a["percent"], a["passed"]) for a in progress.json()["assessments"]}
    assert now[hidden["id"]] == (None, True) and now[scored["id"]] == (100.0, True)

    # The peer's own view: only their pass.
    theirs = await client.get(f"{API}/courses/{room.course_id}/progress", headers=peer.headers)
    assert {a["id"]: (a["percent"], a["passed"]) for a in theirs.json()["assessments"]} == {
        scored["id"]: (None, False),
        hidden["id"]: (None, True),
        essay["id"]: (None, False),
    }
