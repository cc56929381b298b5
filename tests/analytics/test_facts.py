"""The platform's own events, recorded without any app, by the real services: enrolling,
completing lessons and the course, a graded quiz; the tutor's question hook is in
test_facts_tutor.py and the chat copy below."""

from __future__ import annotations

import datetime as dt
import uuid

import httpx
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from structlog.testing import capture_logs

from lyceum.analytics.tasks import copy_chat
from lyceum.kit.runtime import Runtime
from tests.analytics.ingest_helpers import stored
from tests.assessments.helpers import add_question, add_quiz, classroom, start, true_false

API = "/api/v1"


async def test_enrollment_lessons_and_course_completion_are_recorded(
    client: httpx.AsyncClient, connection: AsyncConnection, runtime: Runtime
) -> None:
    room = await classroom(client, connection, runtime)
    learner, course_id = room.learner, uuid.UUID(room.course_id)
    (enrolled,) = await stored(connection, learner.id, source="server")
    assert (enrolled.verb, enrolled.object_type, enrolled.object_id) == (
        "enrolled",
        "course",
        course_id,
    )
    assert enrolled.course_id == course_id and enrolled.client_event_id is None
    for lesson in room.lessons:
        done = await client.post(f"{API}/lessons/{lesson}/complete", headers=learner.headers)
        assert done.status_code == 200, done.text
    # completing one again records nothing more
    again = await client.post(f"{API}/lessons/{room.lessons[0]}/complete", headers=learner.headers)
    assert again.status_code == 200
    events = await stored(connection, learner.id, source="server")
    completed = [(e.object_type, e.object_id, e.lesson_id) for e in events if e.verb == "completed"]
    assert completed == [
        *(("lesson", uuid.UUID(lesson), uuid.UUID(lesson)) for lesson in room.lessons),
        ("course", course_id, None),
    ]
    assert all(e.course_id == course_id and e.source == "server" for e in events)
    assert len({e.event_id for e in events}) == len(events)


async def test_a_graded_quiz_is_recorded_with_its_score(
    client: httpx.AsyncClient, connection: AsyncConnection, runtime: Runtime
) -> None:
    room = await classroom(client, connection, runtime)
    question = await add_question(client, room, true_false(points=2))
    quiz = await add_quiz(client, room, [question["id"]], pass_percent=50)
    results = []
    for value in (False, True):  # wrong, then right
        sheet = await start(client, quiz["id"], room.learner)
        submitted = await client.post(
            f"{API}/attempts/{sheet['id']}/submit",
            json={"answers": [{"question_id": question["id"], "value": value}]},
            headers=room.learner.headers,
        )
        assert submitted.status_code == 200, submitted.text
        results.append(sheet["id"])
    graded = [
        e
        for e in await stored(connection, room.learner.id, source="server")
        if e.object_type == "quiz"
    ]
    assert [e.verb for e in graded] == ["failed", "passed"]
    assert [e.result for e in graded] == [
        {"score": 0.0, "max_score": 2.0, "success": False, "completion": True},
        {"score": 2.0, "max_score": 2.0, "success": True, "completion": True},
    ]
    assert [e.context["attempt_id"] for e in graded] == results
    assert all(e.object_id == uuid.UUID(quiz["id"]) for e in graded)


async def test_course_chat_messages_are_copied_once(
    client: httpx.AsyncClient, connection: AsyncConnection, runtime: Runtime, session: AsyncSession
) -> None:
    from sqlalchemy import insert, select

    from lyceum.models.chat import ChatMessage, ChatRoom, RoomKind

    room = await classroom(client, connection, runtime)
    chat_room = (
        await connection.execute(
            select(ChatRoom.id).where(
                ChatRoom.course_id == uuid.UUID(room.course_id), ChatRoom.kind == RoomKind.course
            )
        )
    ).scalar_one_or_none()
    if chat_room is None:
        chat_room = uuid.uuid4()
        await connection.execute(
            insert(ChatRoom).values(
                id=chat_room, kind=RoomKind.course, course_id=uuid.UUID(room.course_id)
            )
        )
    for n in range(3):
        await connection.execute(
            insert(ChatMessage).values(
                room_id=chat_room, sender_id=room.learner.id, client_id=f"m{n}", text=f"hello {n}"
            )
        )
    # A message from before analytics existed (no partition holds its month): passed
    # over, and the copy goes on past it instead of failing every minute.
    await connection.execute(
        insert(ChatMessage).values(
            room_id=chat_room,
            sender_id=room.learner.id,
            client_id="ancient",
            text="long ago",
            created_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=3 * 365),
        )
    )
    now = dt.datetime.now(dt.UTC)
    assert await copy_chat(session, now, max_age_days=30) >= 3
    assert await copy_chat(session, now, max_age_days=30) == 0  # each once
    commented = [
        e
        for e in await stored(connection, room.learner.id, source="server")
        if e.verb == "commented"
    ]
    assert len(commented) == 3
    assert {(e.object_type, e.object_id, e.course_id) for e in commented} == {
        ("chat_room", chat_room, uuid.UUID(room.course_id))
    }


async def test_a_missing_partition_never_fails_the_action_that_caused_the_fact(
    client: httpx.AsyncClient, connection: AsyncConnection, runtime: Runtime
) -> None:
    from sqlalchemy import text

    from lyceum.analytics.partition_repository import partition_name

    room = await classroom(client, connection, runtime)
    # The partition job has not run for months: this month has no partition (dropped
    # inside the test's transaction, which rolls it back).
    month = partition_name(dt.datetime.now(dt.UTC).date().replace(day=1))
    await connection.execute(text(f"DROP TABLE {month}"))
    done = await client.post(
        f"{API}/lessons/{room.lessons[0]}/complete", headers=room.learner.headers
    )
    assert done.status_code == 200, done.text
    # A graded quiz's fact is written by its event's own INSERT (a CTE of it): without
    # the partition the event row is still written, the fact is not, and it is logged.
    question = await add_question(client, room, true_false(points=2))
    quiz = await add_quiz(client, room, [question["id"]], pass_percent=50)
    sheet = await start(client, quiz["id"], room.learner)
    with capture_logs() as logs:
        submitted = await client.post(
            f"{API}/attempts/{sheet['id']}/submit",
            json={"answers": [{"question_id": question["id"], "value": True}]},
            headers=room.learner.headers,
        )
    assert submitted.status_code == 200, submitted.text
    assert submitted.json()["status"] == "graded"
    assert [e.verb for e in await stored(connection, room.learner.id, source="server")] == []
    missing = [log for log in logs if log["event"] == "analytics_partition_missing"]
    assert [log["object_type"] for log in missing] == ["quiz"], logs
    recorded = await connection.execute(
        text("SELECT count(*) FROM events WHERE type = 'quiz.attempt.graded'")
    )
    assert recorded.scalar_one() >= 1
