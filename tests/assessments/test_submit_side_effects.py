"""What a graded quiz submission leaves behind besides its grade, each once, in the
submission's transaction: the `quiz.attempt.graded` event row, a webhook delivery of
that event to each active endpoint subscribed to it (none to the others), the
learner's notification naming the course, and the analytics fact. And a submission
that answers one question twice is refused whole."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from lyceum.kit.runtime import Runtime
from lyceum.models.analytics import AnalyticsEvent
from lyceum.models.assessments import AttemptItem, QuizAttempt
from lyceum.models.events import Event
from lyceum.models.identity import Role
from lyceum.models.notifications import Notification
from lyceum.models.webhooks import WebhookDelivery
from tests.assessments.helpers import (
    API,
    Classroom,
    add_question,
    add_quiz,
    classroom,
    multiple_choice,
    short_answer,
    start,
    true_false,
)
from tests.assessments.test_quizzes import problem
from tests.identity.helpers import account
from tests.webhooks.helpers import API as WEBHOOKS


@pytest.fixture
async def room(
    client: httpx.AsyncClient, connection: AsyncConnection, runtime: Runtime
) -> Classroom:
    return await classroom(client, connection, runtime)


async def test_a_graded_submission_records_its_event_delivery_notification_and_fact(
    client: httpx.AsyncClient, connection: AsyncConnection, room: Classroom
) -> None:
    admin = await account(client, connection, role=Role.admin)
    endpoints = {}
    for name, types in (
        ("graded", ["quiz.attempt.graded"]),
        ("other", ["course.completed"]),
        ("paused", ["quiz.attempt.graded"]),
    ):
        created = await client.post(
            WEBHOOKS,
            json={"url": f"https://hooks.example.com/{name}", "event_types": types},
            headers=admin.headers,
        )
        assert created.status_code == 201, created.text
        endpoints[name] = uuid.UUID(created.json()["id"])
    paused = await client.patch(
        f"{WEBHOOKS}/{endpoints['paused']}", json={"is_active": False}, headers=admin.headers
    )
    assert paused.status_code == 200, paused.text

    question = await add_question(client, room, true_false(points=2))
    quiz = await add_quiz(client, room, [question["id"]], pass_percent=50)
    sheet = await start(client, quiz["id"], room.learner)
    submitted = await client.post(
        f"{API}/attempts/{sheet['id']}/submit",
        json={"answers": [{"question_id": question["id"], "value": True}]},
        headers=room.learner.headers,
    )
    assert submitted.status_code == 200, submitted.text
    assert submitted.json()["status"] == "graded" and submitted.json()["score"] == 2.0

    recorded = (
        await connection.execute(select(Event).where(Event.type == "quiz.attempt.graded"))
    ).all()
    [event] = [row for row in recorded if row.payload["attempt_id"] == sheet["id"]]
    assert event.version == "v1" and event.occurred_at.tzinfo is not None
    assert event.payload == {
        "attempt_id": sheet["id"],
        "quiz_id": quiz["id"],
        "user_id": str(room.learner.id),
        "course_id": room.course_id,
        "score": 2.0,
        "max_score": 2.0,
        "passed": True,
    }

    deliveries = (
        await connection.execute(
            select(WebhookDelivery.endpoint_id, WebhookDelivery.event_type).where(
                WebhookDelivery.event_id == event.id
            )
        )
    ).all()
    assert [tuple(row) for row in deliveries] == [(endpoints["graded"], "quiz.attempt.graded")]

    notes = (
        await connection.execute(
            select(Notification.kind, Notification.title, Notification.body).where(
                Notification.user_id == room.learner.id
            )
        )
    ).all()
    graded = [tuple(note) for note in notes if note.kind == "quiz.attempt.graded"]
    assert graded == [
        ("quiz.attempt.graded", f"New grade in {room.course['title']}", "You scored 2 of 2.")
    ]

    facts = (
        await connection.execute(
            select(AnalyticsEvent.verb, AnalyticsEvent.context).where(
                AnalyticsEvent.user_id == room.learner.id,
                AnalyticsEvent.object_type == "quiz",
            )
        )
    ).all()
    assert [tuple(fact) for fact in facts] == [("passed", {"attempt_id": sheet["id"]})]


async def test_answering_one_question_twice_refuses_the_whole_submission(
    client: httpx.AsyncClient, connection: AsyncConnection, room: Classroom
) -> None:
    kinds = [true_false(), multiple_choice(partial_credit=True), short_answer()]
    questions = [await add_question(client, room, body) for body in kinds]
    quiz = await add_quiz(client, room, [q["id"] for q in questions])
    sheet = await start(client, quiz["id"], room.learner)
    answers = [
        {"question_id": questions[0]["id"], "value": True},
        {"question_id": questions[1]["id"], "choices": ["2", "3"]},
        {"question_id": questions[0]["id"], "value": False},
    ]
    refused = await client.post(
        f"{API}/attempts/{sheet['id']}/submit",
        json={"answers": answers},
        headers=room.learner.headers,
    )
    assert problem(refused, 422)["errors"][0]["field"] == "body.answers.2.question_id"
    attempt = (
        await connection.execute(
            select(QuizAttempt.status).where(QuizAttempt.id == uuid.UUID(sheet["id"]))
        )
    ).scalar_one()
    assert attempt.value == "in_progress"
    saved = (
        await connection.execute(
            select(AttemptItem.response).where(AttemptItem.attempt_id == uuid.UUID(sheet["id"]))
        )
    ).scalars()
    assert list(saved) == [None, None, None]

    # Answered once each, the same submission is graded, partial credit and all.
    accepted = await client.post(
        f"{API}/attempts/{sheet['id']}/submit",
        json={"answers": [*answers[:2], {"question_id": questions[2]["id"], "text": "paris"}]},
        headers=room.learner.headers,
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "graded"
