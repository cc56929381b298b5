"""What a quiz submission and an autosave of answers cost the database: the statements
they send on the attempt, counted. However many questions, a submission reads the
attempt, its quiz and its items in one statement and writes every item and the totals
in another (its graded event's INSERT, `kit.events.Alongside`); an autosave reads the
same way and writes the answered items in one."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import inspect, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from lyceum.assessments.repository.quizzes import QuizRepository
from lyceum.kit.db import DriverEntity
from lyceum.kit.runtime import Runtime
from lyceum.models.assessments import AttemptItem, Question, Quiz, QuizAttempt
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


ANSWERS: dict[str, dict[str, Any]] = {
    "single_choice": {"choice": "b"},
    "multiple_choice": {"choices": ["2", "3"]},
    "true_false": {"value": True},
    "short_answer": {"text": "paris"},
}


async def _started(
    client: httpx.AsyncClient, room: Classroom, count: int
) -> tuple[list[dict[str, Any]], dict[str, Any], list[dict[str, Any]]]:
    """A started attempt at a quiz of `count` questions of every auto-graded kind:
    (questions, the attempt's sheet, a right answer to each)."""
    kinds = [single_choice(), multiple_choice(partial_credit=True), true_false(), short_answer()]
    bodies = [kinds[index % len(kinds)] for index in range(count)]
    questions = [await add_question(client, room, body) for body in bodies]
    quiz = await add_quiz(client, room, [q["id"] for q in questions], pass_percent=50)
    sheet = await start(client, quiz["id"], room.learner)
    answers = [
        {"question_id": question["id"], **ANSWERS[body["kind"]]}
        for question, body in zip(questions, bodies, strict=True)
    ]
    return questions, sheet, answers


@pytest.mark.parametrize("count", [2, 12])
async def test_a_submission_is_one_read_and_one_write_of_the_attempt(
    client: httpx.AsyncClient, room: Classroom, monkeypatch: pytest.MonkeyPatch, count: int
) -> None:
    _, sheet, answers = await _started(client, room, count)
    with statements(monkeypatch) as sent:
        result = await client.post(
            f"{API}/attempts/{sheet['id']}/submit",
            json={"answers": answers},
            headers=room.learner.headers,
        )
    assert result.status_code == 200, result.text
    assert result.json()["status"] == "graded"
    on_attempts = [statement for statement in sent if "quiz_attempt" in statement]
    assert len(on_attempts) == 2, on_attempts
    read, write = on_attempts
    assert read.startswith("SELECT") and "FOR UPDATE" in read
    assert write.startswith("WITH") and "UPDATE quiz_attempt_items" in write


async def test_the_graded_notification_names_the_course_without_reading_it_again(
    client: httpx.AsyncClient, room: Classroom, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The attempt's read brings the course title along (`kit.db.transaction_memo`):
    the "New grade" notification names the course, and no statement asks for the title
    on its own. All a submission sends: the account, the attempt's read, the event row
    (which writes the attempt's items and totals, `kit.events.Alongside`, and the
    analytics fact, `kit.events.write_with_event`) and the notification."""
    question = await add_question(client, room, single_choice())
    quiz = await add_quiz(client, room, [question["id"]], pass_percent=50)
    sheet = await start(client, quiz["id"], room.learner)
    with statements(monkeypatch) as sent:
        result = await client.post(
            f"{API}/attempts/{sheet['id']}/submit",
            json={"answers": [{"question_id": question["id"], "choice": "b"}]},
            headers=room.learner.headers,
        )
    assert result.status_code == 200, result.text
    assert not [s for s in sent if "courses.title" in s and "quiz_attempt" not in s], sent
    # (The tests run each request in a savepoint of their own transaction.)
    sent = [s for s in sent if not s.startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))]
    assert len(sent) == 4, [s[:60] for s in sent]
    facts = [s for s in sent if "INSERT INTO analytics_events" in s]
    assert len(facts) == 1 and "INSERT INTO events" in facts[0], [s[:60] for s in sent]
    assert "UPDATE quiz_attempt_items" in facts[0] and "UPDATE quiz_attempts" in facts[0]
    inbox = await client.get(f"{API}/me/notifications", headers=room.learner.headers)
    assert inbox.status_code == 200, inbox.text
    titles = [item["title"] for item in inbox.json()["items"]]
    assert f"New grade in {room.course['title']}" in titles, titles


@pytest.mark.parametrize("count", [2, 12])
async def test_saving_answers_is_one_read_and_one_write_of_the_attempt(
    client: httpx.AsyncClient, room: Classroom, monkeypatch: pytest.MonkeyPatch, count: int
) -> None:
    """An autosave, however many answers it carries: the attempt's locked read and one
    UPDATE of the answered items (the unit of work sent one per item). What it wrote is
    what the attempt shows when read again; an answer with no value clears the saved
    one (SQL NULL, not a JSON null)."""
    questions, sheet, answers = await _started(client, room, count)
    with statements(monkeypatch) as sent:
        saved = await client.put(
            f"{API}/attempts/{sheet['id']}/answers",
            json={"answers": answers},
            headers=room.learner.headers,
        )
    assert saved.status_code == 200, saved.text
    on_attempts = [statement for statement in sent if "quiz_attempt" in statement]
    assert len(on_attempts) == 2, on_attempts
    read, write = on_attempts
    assert read.startswith("SELECT") and "FOR UPDATE" in read
    assert write.startswith("UPDATE quiz_attempt_items") and "jsonb_to_recordset" in write

    # The first answer cleared, the others kept.
    cleared = await client.put(
        f"{API}/attempts/{sheet['id']}/answers",
        json={"answers": [{"question_id": questions[0]["id"]}]},
        headers=room.learner.headers,
    )
    assert cleared.status_code == 200, cleared.text
    current = await client.get(f"{API}/attempts/{sheet['id']}", headers=room.learner.headers)
    assert current.status_code == 200, current.text
    shown = {
        q["question_id"]: {k: v for k, v in q["answer"].items() if v is not None}
        if q["answer"] is not None
        else None
        for q in current.json()["questions"]
    }
    expected = {
        a["question_id"]: {k: v for k, v in a.items() if k != "question_id"} for a in answers
    }
    assert shown[questions[0]["id"]] is None
    for question in questions[1:]:
        assert shown[question["id"]] == expected[question["id"]], question["id"]


def _columns(entity: object) -> dict[str, Any]:
    """Every column attribute of a mapped object, with its value's type."""
    mapper = inspect(type(entity))
    return {
        attribute.key: (getattr(entity, attribute.key), type(getattr(entity, attribute.key)))
        for attribute in mapper.column_attrs
    }


@pytest.mark.parametrize("submitted", [False, True])
async def test_the_attempt_read_for_answers_is_what_the_orm_reads(
    client: httpx.AsyncClient, room: Classroom, session: AsyncSession, submitted: bool
) -> None:
    """`attempt_for_answers` builds its objects from a driver statement's row
    (`kit.db.DriverEntity`): every column of the attempt, its quiz and its items holds
    what the ORM's own loading holds, value and type (floats, enum members, JSON,
    timestamps with their zone), before and after grading."""
    _, sheet, answers = await _started(client, room, 5)
    saved = await client.put(
        f"{API}/attempts/{sheet['id']}/answers",
        json={"answers": answers[:3]},
        headers=room.learner.headers,
    )
    assert saved.status_code == 200, saved.text
    if submitted:
        done = await client.post(
            f"{API}/attempts/{sheet['id']}/submit",
            json={"answers": answers[3:4]},
            headers=room.learner.headers,
        )
        assert done.status_code == 200, done.text
    attempt_id = uuid.UUID(sheet["id"])
    found = await QuizRepository(session).attempt_for_answers(attempt_id)
    assert found is not None
    attempt, quiz, items = found
    orm_attempt = await session.get(QuizAttempt, attempt_id)
    assert orm_attempt is not None
    orm_quiz = await session.get(Quiz, orm_attempt.quiz_id)
    orm_items = (
        await session.scalars(
            select(AttemptItem)
            .where(AttemptItem.attempt_id == attempt_id)
            .order_by(AttemptItem.position)
        )
    ).all()
    assert _columns(attempt) == _columns(orm_attempt)
    assert _columns(quiz) == _columns(orm_quiz)
    assert [_columns(item) for item in items] == [_columns(item) for item in orm_items]
    assert orm_attempt.score is not None if submitted else orm_attempt.score is None
    assert sum(item.response is not None for item in items) == (4 if submitted else 3)
    # Built, not loaded: in no session, so a change to one is never flushed.
    assert all(inspect(entity).transient for entity in (attempt, quiz, *items))


def test_a_driver_entity_refuses_a_column_it_cannot_convert() -> None:
    """A question's tags are a PostgreSQL array, which SQLAlchemy converts: reading
    questions from a driver row is refused when the entity is made, not wrong later."""
    with pytest.raises(TypeError, match=r"Question\.tags"):
        DriverEntity.of(Question)
