"""Every course and learning endpoint, called by each kind of caller."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from lyceum.models.identity import Role
from tests.courses.test_courses import published
from tests.identity.helpers import Account, account

CALLERS = ["anonymous", "enrolled", "other_learner", "instructor", "other_instructor", "admin"]


@dataclass
class World:
    course: dict[str, Any]
    lessons: list[str]
    module_id: str
    people: dict[str, Account | None]
    co_instructor: Account


@pytest.fixture
async def world(client: httpx.AsyncClient, connection: AsyncConnection) -> World:
    teacher = await account(client, connection, role=Role.instructor, prefix="teacher")
    course, lessons = await published(client, teacher)
    enrolled = await account(client, connection, prefix="enrolled")
    await client.post(f"/api/v1/courses/{course['id']}/enrollments", headers=enrolled.headers)
    people: dict[str, Account | None] = {
        "anonymous": None,
        "enrolled": enrolled,
        "other_learner": await account(client, connection, prefix="other"),
        "instructor": teacher,
        "other_instructor": await account(client, connection, role=Role.instructor, prefix="oi"),
        "admin": await account(client, connection, role=Role.admin, prefix="admin"),
    }
    co = await account(client, connection, role=Role.instructor, prefix="co")
    return World(course, lessons, course["modules"][0]["id"], people, co)


# (method, path template, body, expected status per caller in CALLERS order)
MATRIX: list[tuple[str, str, Any, list[int]]] = [
    ("GET", "/api/v1/courses/{course}", None, [200, 200, 200, 200, 200, 200]),
    ("GET", "/api/v1/courses/{course}/modules", None, [200, 200, 200, 200, 200, 200]),
    ("GET", "/api/v1/courses/{course}/reviews", None, [200, 200, 200, 200, 200, 200]),
    ("GET", "/api/v1/lessons/{preview}", None, [200, 200, 200, 200, 200, 200]),
    ("GET", "/api/v1/lessons/{locked}", None, [401, 200, 403, 200, 403, 200]),
    ("PATCH", "/api/v1/courses/{course}", {"subtitle": "x"}, [401, 403, 403, 200, 403, 200]),
    ("POST", "/api/v1/courses/{course}/publish", None, [401, 403, 403, 200, 403, 200]),
    ("POST", "/api/v1/courses/{course}/modules", {"title": "New"}, [401, 403, 403, 201, 403, 201]),
    (
        "PATCH",
        "/api/v1/courses/{course}/modules/{module}",
        {"title": "Renamed"},
        [401, 403, 403, 200, 403, 200],
    ),
    (
        "POST",
        "/api/v1/courses/{course}/modules/{module}/lessons",
        {"title": "L"},
        [401, 403, 403, 201, 403, 201],
    ),
    ("PATCH", "/api/v1/lessons/{locked}", {"title": "Edited"}, [401, 403, 403, 200, 403, 200]),
    ("POST", "/api/v1/courses/{course}/instructors", "co", [401, 403, 403, 204, 403, 204]),
    ("GET", "/api/v1/courses/{course}/enrollments", None, [401, 403, 403, 200, 403, 200]),
    ("GET", "/api/v1/courses/{course}/progress", None, [401, 200, 403, 403, 403, 403]),
    ("POST", "/api/v1/lessons/{locked}/complete", None, [401, 200, 403, 403, 403, 403]),
    ("PUT", "/api/v1/courses/{course}/reviews/me", {"rating": 4}, [401, 201, 403, 403, 403, 403]),
    ("GET", "/api/v1/me/enrollments", None, [401, 200, 200, 200, 200, 200]),
    ("GET", "/api/v1/me/certificates", None, [401, 200, 200, 200, 200, 200]),
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
    path = template.format(
        course=world.course["id"],
        module=world.module_id,
        preview=world.lessons[0],
        locked=world.lessons[1],
    )
    if body == "co":
        body = {"user_id": str(world.co_instructor.id)}
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


async def test_enrolled_learners_see_only_their_own_lists(
    client: httpx.AsyncClient, world: World
) -> None:
    enrolled = world.people["enrolled"]
    other = world.people["other_learner"]
    assert enrolled is not None and other is not None
    mine = (await client.get("/api/v1/me/enrollments", headers=enrolled.headers)).json()
    theirs = (await client.get("/api/v1/me/enrollments", headers=other.headers)).json()
    assert mine["total"] == 1 and theirs["total"] == 0
