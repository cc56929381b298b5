"""Every public event is emitted by the action that causes it, validated against the
catalogue and recorded in the `events` table, in that action's transaction, with the
documented payload; internal events pass unchanged."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from lyceum.config import Settings
from lyceum.events.catalogue import EVENTS, VERSION
from lyceum.kit.events import catalogue, emit, react
from lyceum.kit.runtime import Runtime
from lyceum.learning.certificates import issue_for
from lyceum.models.courses import Enrollment
from lyceum.models.events import Event
from tests.assessments.helpers import (
    GOOD_ESSAY,
    Classroom,
    add_assignment,
    add_question,
    add_quiz,
    classroom,
    start,
    true_false,
)
from tests.conftest import committing_client
from tests.identity.flows_helpers import mails_to, token_in
from tests.identity.helpers import register, unique_email
from tests.support.jobs import run_jobs

API = "/api/v1"


async def recorded(session: AsyncSession, name: str, **match: str) -> list[dict[str, Any]]:
    rows = await session.scalars(select(Event).where(Event.type == name))
    found = []
    for row in rows:
        if all(row.payload.get(key) == value for key, value in match.items()):
            assert row.version == VERSION and row.occurred_at.tzinfo is not None
            found.append(row.payload)
    return found


@pytest.fixture
async def room(
    client: httpx.AsyncClient, connection: AsyncConnection, runtime: Runtime
) -> Classroom:
    return await classroom(client, connection, runtime)


def test_the_catalogue_holds_the_documented_events() -> None:
    assert set(EVENTS) == {
        "user.registered",
        "user.email_verified",
        "enrollment.created",
        "lesson.completed",
        "course.completed",
        "certificate.issued",
        "quiz.attempt.graded",
        "submission.graded",
        "announcement.published",
        "order.paid",
        "order.refunded",
        "order.failed",
    }
    assert set(EVENTS) | {"webhook.test"} == set(catalogue())
    assert {entry.version for entry in catalogue().values()} == {"v1"}


async def test_a_payload_that_breaks_the_catalogue_raises(session: AsyncSession) -> None:
    with pytest.raises(ValidationError):
        await emit(session, "lesson.completed", user_id=str(uuid.uuid4()))
    with pytest.raises(ValidationError):
        await emit(
            session,
            "user.registered",
            user_id=str(uuid.uuid4()),
            extra="not in the catalogue",
        )
    with pytest.raises(ValidationError):
        await emit(session, "user.registered", user_id="not-a-uuid")


async def test_internal_events_pass_unchanged_and_are_not_recorded(session: AsyncSession) -> None:
    seen: list[dict[str, Any]] = []

    async def reaction(_: AsyncSession, **payload: Any) -> None:
        seen.append(payload)

    react("tests.internal_event", reaction)
    await emit(session, "tests.internal_event", anything=1, goes=["here"])
    assert seen == [{"anything": 1, "goes": ["here"]}]
    assert await recorded(session, "tests.internal_event") == []


async def test_enrollment_lessons_and_completion_are_recorded(
    client: httpx.AsyncClient, room: Classroom, session: AsyncSession, runtime: Runtime
) -> None:
    learner, course_id = str(room.learner.id), room.course_id
    [enrolled] = await recorded(session, "enrollment.created", user_id=learner)
    assert enrolled["course_id"] == course_id
    enrollment = await session.scalar(
        select(Enrollment).where(Enrollment.user_id == room.learner.id)
    )
    assert enrollment is not None and enrolled["enrollment_id"] == str(enrollment.id)

    for lesson in room.lessons:
        done = await client.post(f"{API}/lessons/{lesson}/complete", headers=room.learner.headers)
        assert done.status_code == 200, done.text
    again = await client.post(
        f"{API}/lessons/{room.lessons[0]}/complete", headers=room.learner.headers
    )
    assert again.status_code == 200
    completed = await recorded(session, "lesson.completed", user_id=learner)
    assert sorted(item["lesson_id"] for item in completed) == sorted(room.lessons)
    assert all(item["course_id"] == course_id for item in completed)
    assert await recorded(session, "course.completed", user_id=learner) == [
        {"enrollment_id": str(enrollment.id), "user_id": learner, "course_id": course_id}
    ]

    enrollment_id = enrollment.id
    session.expire_all()  # the requests completed it on their own sessions
    certificate = await issue_for(
        session, enrollment_id, settings=runtime.settings, storage=runtime.storage
    )
    assert certificate is not None
    assert await recorded(session, "certificate.issued", user_id=learner) == [
        {
            "certificate_id": str(certificate.id),
            "code": certificate.code,
            "user_id": learner,
            "course_id": course_id,
        }
    ]
    # Issued once: making it again records nothing new.
    await issue_for(session, enrollment_id, settings=runtime.settings, storage=runtime.storage)
    assert len(await recorded(session, "certificate.issued", user_id=learner)) == 1


async def test_graded_quiz_attempts_and_released_grades_are_recorded(
    client: httpx.AsyncClient, room: Classroom, session: AsyncSession
) -> None:
    question = await add_question(client, room, true_false())
    quiz = await add_quiz(client, room, [question["id"]])
    sheet = await start(client, quiz["id"], room.learner)
    result = await client.post(
        f"{API}/attempts/{sheet['id']}/submit",
        json={"answers": [{"question_id": question["id"], "value": True}]},
        headers=room.learner.headers,
    )
    assert result.status_code == 200, result.text
    [graded] = await recorded(session, "quiz.attempt.graded", attempt_id=sheet["id"])
    body = result.json()
    assert graded == {
        "attempt_id": sheet["id"],
        "quiz_id": quiz["id"],
        "user_id": str(room.learner.id),
        "course_id": room.course_id,
        "score": float(body["score"]),
        "max_score": float(body["max_score"]),
        "passed": body["passed"],
    }

    assignment = await add_assignment(client, room)
    submitted = await client.post(
        f"{API}/assignments/{assignment['id']}/submissions",
        json={"text": GOOD_ESSAY},
        headers=room.learner.headers,
    )
    assert submitted.status_code == 201, submitted.text
    submission_id = submitted.json()["id"]
    assert await recorded(session, "submission.graded", submission_id=submission_id) == []
    grade = await client.put(
        f"{API}/submissions/{submission_id}/grade",
        json={
            "criteria": [
                {"criterion_id": "content", "points": 4},
                {"criterion_id": "clarity", "points": 3},
            ],
            "release": True,
        },
        headers=room.teacher.headers,
    )
    assert grade.status_code == 200, grade.text
    [released] = await recorded(session, "submission.graded", submission_id=submission_id)
    assert released == {
        "submission_id": submission_id,
        "assignment_id": assignment["id"],
        "user_id": str(room.learner.id),
        "course_id": room.course_id,
        "score": float(grade.json()["points"]),
        "max_score": float(assignment["points"]),
    }


@pytest.fixture
async def live(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    async with committing_client(runtime) as http:
        yield http


async def test_registration_and_email_verification_are_recorded(
    live: httpx.AsyncClient, runtime: Runtime, settings: Settings
) -> None:
    address = unique_email("events")
    user_id = str((await register(live, address))["id"])
    await run_jobs()
    token = token_in(
        next(m for m in mails_to(settings, address) if "Confirm" in str(m["Subject"])),
        "/verify-email",
    )
    assert (await live.post(f"{API}/auth/verify-email", json={"token": token})).status_code == 200
    assert (await live.post(f"{API}/auth/verify-email", json={"token": token})).status_code == 401
    async with runtime.database.sessionmaker() as session:
        assert await recorded(session, "user.registered", user_id=user_id) == [{"user_id": user_id}]
        assert await recorded(session, "user.email_verified", user_id=user_id) == [
            {"user_id": user_id}
        ]
