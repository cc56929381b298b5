"""What a quiz submission costs the database: the statements it sends on the attempt,
counted. However many questions, a submission reads the attempt, its quiz and its
items in one statement and writes every item and the totals in another."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from lyceum.kit.runtime import Runtime
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
    true_false,
)


@pytest.fixture
async def room(
    client: httpx.AsyncClient, connection: AsyncConnection, runtime: Runtime
) -> Classroom:
    return await classroom(client, connection, runtime)


@contextmanager
def statements(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every statement psycopg sends, through SQLAlchemy or on the driver connection."""
    sent: list[str] = []
    execute = psycopg.AsyncCursor.execute

    async def record(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        # Driver statements go as bytes (PostgreSQL's numbered placeholders).
        text = query.decode() if isinstance(query, bytes) else str(query)
        sent.append(" ".join(text.split()))
        return await execute(self, query, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(psycopg.AsyncCursor, "execute", record)
        yield sent


ANSWERS = {
    "single_choice": {"choice": "b"},
    "multiple_choice": {"choices": ["2", "3"]},
    "true_false": {"value": True},
    "short_answer": {"text": "paris"},
}


@pytest.mark.parametrize("count", [2, 12])
async def test_a_submission_is_one_read_and_one_write_of_the_attempt(
    client: httpx.AsyncClient, room: Classroom, monkeypatch: pytest.MonkeyPatch, count: int
) -> None:
    kinds = [single_choice(), multiple_choice(partial_credit=True), true_false(), short_answer()]
    bodies = [kinds[index % len(kinds)] for index in range(count)]
    questions = [await add_question(client, room, body) for body in bodies]
    quiz = await add_quiz(client, room, [q["id"] for q in questions], pass_percent=50)
    sheet = await start(client, quiz["id"], room.learner)
    answers = [
        {"question_id": question["id"], **ANSWERS[body["kind"]]}
        for question, body in zip(questions, bodies, strict=True)
    ]
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
    on its own. All a submission sends: the account, the attempt's read and write, the
    event row, the notification and the analytics fact."""
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
    sent = [s[:60] for s in sent if not s.startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))]
    assert len(sent) == 6, sent
    inbox = await client.get(f"{API}/me/notifications", headers=room.learner.headers)
    assert inbox.status_code == 200, inbox.text
    titles = [item["title"] for item in inbox.json()["items"]]
    assert f"New grade in {room.course['title']}" in titles, titles
