"""What a quiz submission and an autosave of answers cost the database: the statements
they send on the attempt, counted. However many questions, a submission reads the
attempt, its quiz and its items in one statement and writes every item and the totals
in another; an autosave reads the same way and writes the answered items in one."""

from __future__ import annotations

from typing import Any

import httpx
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
