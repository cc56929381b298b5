"""Every analytics route with an id in its path, called by each kind of caller. Each
helper's routes are one block of rows (`REPORT_ROWS`: the reports); `MATRIX` is all of
them, what `tests/test_authorization_matrix.py` reads."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from lyceum.models.assessments import Assignment, Quiz
from lyceum.models.identity import Role
from tests.courses.test_courses import published
from tests.identity.helpers import Account, account

API = "/api/v1"
CALLERS = ["anonymous", "enrolled", "other_learner", "instructor", "other_instructor", "admin"]


@dataclass
class World:
    ids: dict[str, str]
    people: dict[str, Account | None]


@pytest.fixture
async def world(client: httpx.AsyncClient, connection: AsyncConnection) -> World:
    teacher = await account(client, connection, role=Role.instructor, prefix="teacher")
    other_teacher = await account(client, connection, role=Role.instructor, prefix="oi")
    enrolled = await account(client, connection, prefix="enrolled")
    other = await account(client, connection, prefix="other")
    admin = await account(client, connection, role=Role.admin, prefix="admin")
    course, _ = await published(client, teacher)
    other_course, _ = await published(client, other_teacher)
    for who, where in ((enrolled, course), (other, other_course)):
        joined = await client.post(f"{API}/courses/{where['id']}/enrollments", headers=who.headers)
        assert joined.status_code == 201, joined.text
    quiz = Quiz(course_id=uuid.UUID(course["id"]), title="Q", pass_percent=50, published=True)
    assignment = Assignment(
        course_id=uuid.UUID(course["id"]),
        title="Essay",
        prompt="Argue.",
        rubric={"criteria": []},
        points=10,
        pass_percent=50,
        published=True,
    )
    async with AsyncSession(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    ) as db:
        db.add_all([quiz, assignment])
        await db.commit()
    people: dict[str, Account | None] = {
        "anonymous": None,
        "enrolled": enrolled,
        "other_learner": other,
        "instructor": teacher,
        "other_instructor": other_teacher,
        "admin": admin,
    }
    ids = {
        "course": course["id"],
        "quiz": str(quiz.id),
        "assignment": str(assignment.id),
        "made_up": "00000000-0000-4000-8000-000000000000",
    }
    return World(ids, people)


# (method, path template, body, expected status per caller in CALLERS order)
# Reports: the course's instructors and admins; students 403 whatever the id (before
# any lookup), another course's instructor 403, an unknown id 404.
TEACHERS = [401, 403, 403, 200, 403, 200]
UNKNOWN = [401, 403, 403, 404, 404, 404]
REPORT_ROWS: list[tuple[str, str, Any, list[int]]] = [
    *(
        ("GET", API + "/analytics/courses/{" + key + "}/" + report, None, expected)
        for report in ("overview", "lessons", "tutor", "at-risk")
        for key, expected in (("course", TEACHERS), ("made_up", UNKNOWN))
    ),
    ("GET", API + "/analytics/courses/{course}/overview?format=csv", None, TEACHERS),
    ("GET", API + "/analytics/quizzes/{quiz}/items", None, TEACHERS),
    ("GET", API + "/analytics/quizzes/{made_up}/items", None, UNKNOWN),
    ("GET", API + "/analytics/assignments/{assignment}/rubric", None, TEACHERS),
    ("GET", API + "/analytics/assignments/{made_up}/rubric", None, UNKNOWN),
    ("GET", API + "/me/analytics", None, [401, 200, 200, 200, 200, 200]),
]

MATRIX: list[tuple[str, str, Any, list[int]]] = [*REPORT_ROWS]


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
        headers = caller.headers if caller else {}
        row = await connection.begin_nested()
        try:
            response = await client.request(method, path, json=body, headers=headers)
        finally:
            await row.rollback()
        answers[who] = response.status_code
        if response.status_code >= 400:
            assert response.headers["content-type"] == "application/problem+json", response.text
    assert answers == dict(zip(CALLERS, expected, strict=True))
