"""The tutor's question hook: a learner's question to the tutor is recorded as an `asked`
event in the transaction that stores it, with whether the course material answered it
(the retrieval found relevant passages), never the question itself. The offline tutor on a
demo course indexed by the job worker, on committed data."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from lyceum.config import Settings
from lyceum.kit.runtime import Runtime
from lyceum.models.identity import Role
from tests.conftest import client_for, make_app
from tests.content.helpers import enroll, person
from tests.support.clock import FrozenClock
from tests.tutor.test_tutor_offline import conversation, demo_course


@pytest.fixture
async def live(settings: Settings, runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    assert settings.ai_offline
    await runtime.rate_limiter.reset()
    app = make_app(settings, runtime, None)
    app.state.clock = FrozenClock()
    async with client_for(app) as http:
        yield http


async def asked_events(runtime: Runtime, user_id: uuid.UUID) -> list[Any]:
    async with runtime.database.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT verb, object_type, object_id, course_id, lesson_id, result, context"
                " FROM analytics_events WHERE user_id = :user AND verb = 'asked'"
                " ORDER BY id"
            ),
            {"user": user_id},
        )
        return list(rows)


async def test_questions_are_recorded_with_whether_the_material_answered(
    live: httpx.AsyncClient, runtime: Runtime
) -> None:
    teacher = await person(live, runtime, Role.instructor)
    course = await demo_course(live, teacher, "cell-biology")
    learner = await person(live, runtime)
    await enroll(live, course["id"], learner)
    chat = await conversation(live, course["id"], learner)
    questions = {
        "What does the mitochondrion do for the cell?": True,
        "Who won the football World Cup in 2018?": False,
    }
    for question in questions:
        response = await live.post(
            f"/api/v1/tutor/conversations/{chat}/messages",
            json={"content": question},
            headers=learner.headers,
        )
        assert response.status_code == 201, response.text
    events = await asked_events(runtime, learner.id)
    # The question itself stays out of the event (tutor conversations are private).
    assert [e.result for e in events] == [{"answered": a} for a in questions.values()]
    course_id = uuid.UUID(course["id"])
    for event in events:
        assert (event.object_type, event.object_id, event.course_id) == (
            "course",
            course_id,
            course_id,
        )
        assert event.lesson_id is None
        uuid.UUID(event.context["message_id"])  # the stored question's id
    # The course's instructor trying the tutor out is not a learner asking.
    own = await conversation(live, course["id"], teacher)
    tried = await live.post(
        f"/api/v1/tutor/conversations/{own}/messages",
        json={"content": "What does the mitochondrion do for the cell?"},
        headers=teacher.headers,
    )
    assert tried.status_code == 201, tried.text
    assert await asked_events(runtime, teacher.id) == []
