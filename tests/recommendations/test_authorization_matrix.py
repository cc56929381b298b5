"""Every recommendation route with an id in its path, called by each kind of caller: a
course's related courses are for whoever may see the course (a published one: anyone;
a draft: its instructors and admins, 404 to the rest)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from lyceum.models.identity import Role
from tests.identity.helpers import Account, account
from tests.recommendations.helpers import catalog, enroll

API = "/api/v1"
CALLERS = ["anonymous", "learner", "instructor", "other_instructor", "admin"]


@dataclass
class World:
    ids: dict[str, str]
    people: dict[str, Account | None]


@pytest.fixture
async def world(
    client: httpx.AsyncClient, connection: AsyncConnection, session: AsyncSession
) -> World:
    teacher = await account(client, connection, role=Role.instructor, prefix="teacher")
    other_teacher = await account(client, connection, role=Role.instructor, prefix="oi")
    learner = await account(client, connection, prefix="learner")
    admin = await account(client, connection, role=Role.admin, prefix="admin")
    courses = (await catalog(session, teacher.id)).courses
    await enroll(session, learner.id, courses["python"])
    people: dict[str, Account | None] = {
        "anonymous": None,
        "learner": learner,
        "instructor": teacher,
        "other_instructor": other_teacher,
        "admin": admin,
    }
    ids = {
        "published": str(courses["python"]),
        "draft": str(courses["draft"]),
        "made_up": str(uuid.UUID("00000000-0000-4000-8000-000000000000")),
    }
    return World(ids, people)


# (method, path template, body, expected status per caller in CALLERS order)
MATRIX: list[tuple[str, str, Any, list[int]]] = [
    ("GET", API + "/courses/{published}/related", None, [200, 200, 200, 200, 200]),
    ("GET", API + "/courses/{draft}/related", None, [404, 404, 200, 404, 200]),
    ("GET", API + "/courses/{made_up}/related", None, [404, 404, 404, 404, 404]),
    ("GET", API + "/courses/{published}/related?limit=0", None, [422] * 5),
]


@pytest.mark.parametrize(("method", "template", "body", "expected"), MATRIX)
async def test_authorization_matrix(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    world: World,
    method: str,
    template: str,
    body: Any,
    expected: list[int],
) -> None:
    path = template.format(**world.ids)
    answers = {}
    for who in CALLERS:
        caller = world.people[who]
        row = await connection.begin_nested()
        try:
            response = await client.request(
                method, path, json=body, headers=caller.headers if caller else {}
            )
        finally:
            await row.rollback()
        answers[who] = response.status_code
        if response.status_code >= 400:
            assert response.headers["content-type"] == "application/problem+json", response.text
    assert answers == dict(zip(CALLERS, expected, strict=True))
