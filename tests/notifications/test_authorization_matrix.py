"""Every notification endpoint, called by each kind of caller: nobody reaches another's
notification, only the course's instructors and admins post its announcements, only
its members read them, only admins read the delivery log."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from lyceum.models.identity import Role
from lyceum.models.notifications import Category
from lyceum.notifications.service import notify
from tests.courses.test_courses import published
from tests.identity.helpers import Account, account

CALLERS = ["anonymous", "enrolled", "other_learner", "instructor", "other_instructor", "admin"]


@dataclass
class World:
    course: dict[str, Any]
    note: str
    people: dict[str, Account | None]


@pytest.fixture
async def world(client: httpx.AsyncClient, connection: AsyncConnection) -> World:
    teacher = await account(client, connection, role=Role.instructor, prefix="teacher")
    course, _ = await published(client, teacher)
    enrolled = await account(client, connection, prefix="enrolled")
    await client.post(f"/api/v1/courses/{course['id']}/enrollments", headers=enrolled.headers)
    session = AsyncSession(bind=connection, join_transaction_mode="create_savepoint")
    await notify(
        session,
        user_ids=[enrolled.id],
        category=Category.grades,
        kind="test",
        title="Yours",
        body="b",
        url=None,
        template="grade_released",
        context={},
    )
    await session.flush()
    page = (await client.get("/api/v1/me/notifications", headers=enrolled.headers)).json()
    people: dict[str, Account | None] = {
        "anonymous": None,
        "enrolled": enrolled,
        "other_learner": await account(client, connection, prefix="other"),
        "instructor": teacher,
        "other_instructor": await account(client, connection, role=Role.instructor, prefix="oi"),
        "admin": await account(client, connection, role=Role.admin, prefix="admin"),
    }
    return World(course, page["items"][0]["id"], people)


ANNOUNCEMENT = {"title": "News", "body": "Hello"}
# (method, path template, body, expected status per caller in CALLERS order)
MATRIX: list[tuple[str, str, Any, list[int]]] = [
    ("GET", "/api/v1/me/notifications", None, [401, 200, 200, 200, 200, 200]),
    ("POST", "/api/v1/me/notifications/{note}/read", None, [401, 200, 404, 404, 404, 404]),
    ("POST", "/api/v1/me/notifications/read-all", None, [401, 200, 200, 200, 200, 200]),
    ("DELETE", "/api/v1/me/notifications/{note}", None, [401, 204, 404, 404, 404, 404]),
    ("GET", "/api/v1/me/notification-preferences", None, [401, 200, 200, 200, 200, 200]),
    (
        "PATCH",
        "/api/v1/me/notification-preferences",
        {"channels": {"grades": {"sms": True}}},
        [401, 200, 200, 200, 200, 200],
    ),
    (
        "POST",
        "/api/v1/courses/{course}/announcements",
        ANNOUNCEMENT,
        [401, 403, 403, 201, 403, 201],
    ),
    ("GET", "/api/v1/courses/{course}/announcements", None, [401, 200, 403, 200, 403, 200]),
    ("GET", "/api/v1/admin/notification-deliveries", None, [401, 403, 403, 403, 403, 200]),
]


@pytest.mark.parametrize(("method", "template", "body", "expected"), MATRIX)
async def test_authorization_matrix(
    client: httpx.AsyncClient,
    world: World,
    method: str,
    template: str,
    body: Any,
    expected: list[int],
) -> None:
    path = template.format(course=world.course["id"], note=world.note)
    answers = {}
    for who in CALLERS:
        caller = world.people[who]
        response = await client.request(
            method, path, json=body, headers=caller.headers if caller else {}
        )
        answers[who] = response.status_code
        if response.status_code >= 400:
            assert response.headers["content-type"] == "application/problem+json"
    assert answers == dict(zip(CALLERS, expected, strict=True))


async def test_nobody_else_deletes_a_notification_that_exists(
    client: httpx.AsyncClient, world: World
) -> None:
    owner = world.people["enrolled"]
    assert owner is not None
    others = [world.people[who] for who in CALLERS[2:]]
    for other in others:
        assert other is not None
        response = await client.delete(
            f"/api/v1/me/notifications/{world.note}", headers=other.headers
        )
        assert response.status_code == 404
    response = await client.delete(f"/api/v1/me/notifications/{world.note}", headers=owner.headers)
    assert response.status_code == 204
