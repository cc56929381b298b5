"""Tutor insights: questions recorded from the `tutor.question_asked` event in the
emitting transaction, embedded by the job with the real embedder, counted per lesson,
and the unanswered ones grouped by meaning (paraphrases together, an unrelated question
apart)."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import httpx
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from lyceum.analytics.report_tasks import embed_questions
from lyceum.kit.ai.embedding import get_embedder
from lyceum.kit.events import emit
from tests.analytics.report_fixtures import add_user, get_csv, get_json, taught_course
from tests.support.clock import FrozenClock

API = "/api/v1/analytics"

INTEREST = (
    "How do I compute compound interest?",
    "What is the formula for compound interest?",
    "How is interest compounded over several years?",
)


async def test_tutor_questions_per_lesson_and_unanswered_topics(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    session: AsyncSession,
    clock: FrozenClock,
) -> None:
    world = await taught_course(client, connection, session, clock)
    course = world.course_id
    l1, l2, _ = world.lesson_ids
    asker = await add_user(session, "Asker")
    asked: list[tuple[uuid.UUID | None, bool, str]] = [
        (l1, False, INTEREST[0]),
        (l1, False, INTEREST[1]),
        (l1, True, "What is a mean?"),
        (l2, False, INTEREST[2]),
        (l2, False, "When is the final exam?"),
        (l2, True, "What is variance?"),
        (l2, True, "Define standard deviation."),
        (None, False, "Where can I download the slides?"),
    ]
    ids = []
    for lesson, answered, question in asked:
        message_id = uuid.uuid4()
        ids.append(message_id)
        await emit(
            session,
            "tutor.question_asked",
            message_id=str(message_id),
            user_id=str(asker),
            course_id=str(course),
            lesson_id=None if lesson is None else str(lesson),
            answered=answered,
            question=question,
        )
    # A repeated event records nothing twice.
    await emit(
        session,
        "tutor.question_asked",
        message_id=str(ids[0]),
        user_id=str(asker),
        course_id=str(course),
        lesson_id=str(l1),
        answered=False,
        question=INTEREST[0],
    )
    await session.commit()
    # Questions are stamped with the database's time, not the test clock's.
    today = dt.datetime.now(dt.UTC).date()
    window = {"from": (today - dt.timedelta(days=1)).isoformat(), "to": today.isoformat()}
    path = f"{API}/courses/{course}/tutor"

    before = await get_json(client, path, world.teacher, **window)
    assert (before["questions"], before["pending"], before["topics"]) == (8, 5, [])

    embedder = await asyncio.to_thread(get_embedder)
    assert await embed_questions(session, embedder, ids) == 5  # the unanswered ones
    assert await embed_questions(session, embedder, ids) == 0  # a second run: nothing left
    await session.commit()

    body = await get_json(client, path, world.teacher, **window)
    assert (body["questions"], body["answered"], body["not_found"]) == (8, 3, 5)
    assert body["answered_share"] == 3 / 8
    assert body["pending"] == 0
    assert [(row["lesson_id"], row["questions"], row["answered"]) for row in body["lessons"]] == [
        (str(l2), 4, 2),
        (str(l1), 3, 1),
        (None, 1, 0),
    ]
    topics = body["topics"]
    interest = topics[0]
    assert interest["count"] == 3
    assert {interest["representative"], *interest["examples"]} == set(INTEREST)
    rest = sorted((topic["representative"], topic["count"]) for topic in topics[1:])
    assert rest == [("When is the final exam?", 1), ("Where can I download the slides?", 1)]

    rows = await get_csv(client, path, world.teacher, **window)
    assert rows[0] == ["section", "lesson_id", "label", "questions", "answered", "not_found"]
    assert rows[1] == ["lesson", str(l2), "Lesson 1.2", "4", "2", "2"]
    assert [row[3] for row in rows if row[0] == "topic"] == ["3", "1", "1"]

    # Outside the window: nothing.
    old = {"from": "2026-01-01", "to": "2026-01-31"}
    empty = await get_json(client, path, world.teacher, **old)
    assert (empty["questions"], empty["answered_share"], empty["topics"]) == (0, None, [])
