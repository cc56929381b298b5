"""Starting a quiz attempt: the quiz's sections are read with their questions in one
statement, and the attempt and every item drawn into it are written in one statement
(`QuizRepository.insert_attempt`), however many questions, where the unit of work sent
a savepoint, the attempt's INSERT, an INSERT per item and the savepoint's release. When
500 learners open an exam at the same moment, that is the burst. The write does nothing
at all when a unique constraint refuses the attempt (a second start racing the first),
and what it writes is what the start's response showed."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from lyceum.assessments.repository.quizzes import QuizRepository
from lyceum.kit.runtime import Runtime
from lyceum.models.assessments import AttemptItem, AttemptStatus, QuestionKind, QuizAttempt
from tests.assessments.helpers import (
    API,
    Classroom,
    add_question,
    add_quiz,
    classroom,
    multiple_choice,
    short_answer,
    single_choice,
    start,
    statements,
    true_false,
)


@pytest.fixture
async def room(
    client: httpx.AsyncClient, connection: AsyncConnection, runtime: Runtime
) -> Classroom:
    return await classroom(client, connection, runtime)


async def _quiz(client: httpx.AsyncClient, room: Classroom, count: int) -> dict[str, Any]:
    kinds = [single_choice(), multiple_choice(partial_credit=True), true_false(), short_answer()]
    questions = [await add_question(client, room, kinds[n % len(kinds)]) for n in range(count)]
    return await add_quiz(
        client,
        room,
        [question["id"] for question in questions],
        shuffle_questions=True,
        shuffle_options=True,
    )


@pytest.mark.parametrize("count", [1, 12])
async def test_a_start_writes_the_attempt_and_its_items_in_one_statement(
    client: httpx.AsyncClient, room: Classroom, monkeypatch: pytest.MonkeyPatch, count: int
) -> None:
    quiz = await _quiz(client, room, count)
    with statements(monkeypatch) as sent:
        response = await client.post(
            f"{API}/quizzes/{quiz['id']}/attempts", headers=room.learner.headers
        )
    assert response.status_code == 201, response.text
    assert len(response.json()["questions"]) == count
    writes = [s for s in sent if s.startswith(("INSERT", "WITH")) and "quiz_attempt" in s]
    assert len(writes) == 1, writes
    (write,) = writes
    assert "INSERT INTO quiz_attempts" in write and "INSERT INTO quiz_attempt_items" in write
    # The quiz's sections are read with their questions.
    reads = [s for s in sent if s.startswith("SELECT") and "quiz_sections" in s]
    assert len(reads) == 1 and "assessment_questions" in reads[0], reads
    assert not [s for s in sent if s.startswith("SELECT assessment_questions")], sent
    # The tests run each request in a savepoint of their own; the start opens none.
    assert len([s for s in sent if s.startswith("SAVEPOINT")]) == 1, sent


async def test_what_a_start_writes_is_what_its_response_showed(
    client: httpx.AsyncClient, room: Classroom
) -> None:
    """Questions and options shuffled: resuming the attempt (read back from its rows)
    shows the same questions in the same order, with the same options in the same
    order, and the same number, status, start and deadline."""
    quiz = await _quiz(client, room, 6)
    started = await start(client, quiz["id"], room.learner)
    resumed = await client.post(
        f"{API}/quizzes/{quiz['id']}/attempts", headers=room.learner.headers
    )
    assert resumed.status_code == 200, resumed.text
    again = resumed.json()
    assert again["id"] == started["id"]
    assert again["questions"] == started["questions"]
    for field in ("quiz_id", "number", "status", "started_at", "deadline_at", "submitted_at"):
        assert again[field] == started[field], field
    sheet = await client.get(f"{API}/attempts/{started['id']}", headers=room.learner.headers)
    assert sheet.status_code == 200, sheet.text
    assert sheet.json()["questions"] == started["questions"]


def _attempt(room: Classroom, quiz_id: uuid.UUID, number: int) -> QuizAttempt:
    return QuizAttempt(
        id=uuid.uuid4(),
        quiz_id=quiz_id,
        course_id=uuid.UUID(room.course_id),
        user_id=room.learner.id,
        number=number,
        status=AttemptStatus.in_progress,
        started_at=dt.datetime.now(dt.UTC),
        deadline_at=None,
        auto_submitted=False,
        late=False,
        max_score=1.0,
    )


def _items(attempt: QuizAttempt, question_id: uuid.UUID) -> list[AttemptItem]:
    return [
        AttemptItem(
            attempt_id=attempt.id,
            position=0,
            question_id=question_id,
            kind=QuestionKind.true_false,
            points=1.0,
            snapshot={"prompt": "?", "options": [], "key": {"value": True}},
            comment="",
        )
    ]


async def _written(session: AsyncSession, attempt_id: uuid.UUID) -> tuple[int, int]:
    attempts = await session.scalar(
        select(func.count()).select_from(QuizAttempt).where(QuizAttempt.id == attempt_id)
    )
    items = await session.scalar(
        select(func.count()).select_from(AttemptItem).where(AttemptItem.attempt_id == attempt_id)
    )
    return int(attempts or 0), int(items or 0)


async def test_a_start_refused_by_a_unique_constraint_writes_nothing(
    client: httpx.AsyncClient, room: Classroom, session: AsyncSession
) -> None:
    """Two starts racing: both read no attempt in progress and the same number of
    attempts used. The second to write is refused, attempt and items alike, and the
    transaction goes on (no error): the request answers 409 `attempt-race`."""
    question = await add_question(client, room, true_false())
    quiz = await add_quiz(client, room, [question["id"]])
    quiz_id, question_id = uuid.UUID(quiz["id"]), uuid.UUID(question["id"])
    repo = QuizRepository(session)

    first = _attempt(room, quiz_id, 1)
    assert await repo.insert_attempt(first, _items(first, question_id))
    assert await _written(session, first.id) == (1, 1)

    same_number = _attempt(room, quiz_id, 1)
    assert not await repo.insert_attempt(same_number, _items(same_number, question_id))
    assert await _written(session, same_number.id) == (0, 0)

    # A later number, but the first attempt is still in progress.
    second_open = _attempt(room, quiz_id, 2)
    assert not await repo.insert_attempt(second_open, _items(second_open, question_id))
    assert await _written(session, second_open.id) == (0, 0)

    # The first one's rows are as written.
    row = await session.get(QuizAttempt, first.id)
    assert row is not None and row.status is AttemptStatus.in_progress and row.number == 1
    (item,) = (
        await session.scalars(select(AttemptItem).where(AttemptItem.attempt_id == first.id))
    ).all()
    assert item.kind is QuestionKind.true_false and item.points == 1.0 and item.comment == ""
    assert item.snapshot["key"] == {"value": True} and item.response is None
