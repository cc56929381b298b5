"""Every analytics route called by each kind of caller against one world (blocks: the
ingest's `INGEST_ROWS`; the reports' and xAPI's rows join `MATRIX` beside them).

Bodies may hold `{name}` placeholders (ids of the world, `{now}`), filled in per test."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from lyceum.kit.runtime import Runtime
from lyceum.models.assessments import Assignment, Quiz
from lyceum.models.identity import Role
from tests.assessments.helpers import Member, member
from tests.courses.test_courses import new_course, published
from tests.support.authorization import Row

API = "/api/v1"
CALLERS = ["anonymous", "enrolled", "other_learner", "instructor", "other_instructor", "admin"]


@dataclass
class World:
    ids: dict[str, str]
    people: dict[str, Member | None]


@pytest.fixture
async def world(client: httpx.AsyncClient, connection: AsyncConnection, runtime: Runtime) -> World:
    """`enrolled` learns in {course} (taught by `instructor`), `other_learner` in
    {other_course} (taught by `other_instructor`); {draft} is `instructor`'s draft."""
    teacher = await member(connection, runtime, Role.instructor, prefix="teacher")
    other_teacher = await member(connection, runtime, Role.instructor, prefix="oi")
    enrolled = await member(connection, runtime, prefix="enrolled")
    other = await member(connection, runtime, prefix="other")
    admin = await member(connection, runtime, Role.admin, prefix="admin")
    course, lessons = await published(client, teacher)  # type: ignore[arg-type]
    other_course, other_lessons = await published(client, other_teacher)  # type: ignore[arg-type]
    draft = await new_course(client, teacher)  # type: ignore[arg-type]
    for who, where in ((enrolled, course), (other, other_course)):
        joined = await client.post(f"{API}/courses/{where['id']}/enrollments", headers=who.headers)
        assert joined.status_code == 201, joined.text
    # The reports' objects: a quiz and an essay assignment of {course}.
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
    people: dict[str, Member | None] = {
        "anonymous": None,
        "enrolled": enrolled,
        "other_learner": other,
        "instructor": teacher,
        "other_instructor": other_teacher,
        "admin": admin,
    }
    ids = {
        "course": course["id"],
        "locked": lessons[1],  # not a preview
        "other_course": other_course["id"],
        "other_locked": other_lessons[1],
        "draft": draft["id"],
        "quiz": str(quiz.id),
        "assignment": str(assignment.id),
        "made_up": "00000000-0000-4000-8000-000000000000",
    }
    return World(ids, people)


def _viewed(object_type: str, object_id: str) -> dict[str, Any]:
    return {
        "events": [
            {
                "id": "{event_id}",
                "verb": "viewed",
                "object": {"type": object_type, "id": object_id},
                "timestamp": "{now}",
            }
        ]
    }


# Ingest: a learner posts about what they may see; a hidden or unknown object is 422
# (`not_visible`), like a wrong id, whoever asks.
INGEST_ROWS: list[Row] = [
    (
        "POST",
        API + "/analytics/events",
        _viewed("lesson", "{locked}"),
        [401, 202, 422, 202, 422, 202],
    ),
    (
        "POST",
        API + "/analytics/events",
        _viewed("lesson", "{other_locked}"),
        [401, 422, 202, 422, 202, 202],
    ),
    (
        "POST",
        API + "/analytics/events",
        _viewed("course", "{draft}"),
        [401, 422, 422, 202, 422, 202],
    ),
    (
        "POST",
        API + "/analytics/events",
        _viewed("course", "{course}"),
        [202 if i else 401 for i in range(6)],
    ),
    (
        "POST",
        API + "/analytics/events",
        _viewed("lesson", "{made_up}"),
        [401, 422, 422, 422, 422, 422],
    ),
]

# --- reports (helper B) -----------------------------------------------------------------
# The course's instructors and admins; students 403 whatever the id (before any lookup),
# another course's instructor 403, an unknown id 404. The dashboard is the caller's own.
TEACHERS = [401, 403, 403, 200, 403, 200]
UNKNOWN = [401, 403, 403, 404, 404, 404]
REPORT_ROWS: list[Row] = [
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
# --- end reports -------------------------------------------------------------------------

MATRIX: list[Row] = [*INGEST_ROWS, *REPORT_ROWS]

# --- xAPI (helper C) -------------------------------------------------------------------
# GET /analytics/xapi/statements has no id in its path: these rows show who reaches which
# course's statements through `course`. `enrolled` learns in {course} (taught by
# `instructor`), `other_learner` in {other_course} (taught by `other_instructor`).
# Learners always get 200 with only their own statements (the filter is forced, so
# another course's id shows them nothing of anyone else's); instructors get 403 for a
# course they do not teach; 404 for a course that does not exist (instructors, admins);
# a cursor the feed did not make is 422. Run by
# tests/analytics/test_xapi_endpoints.py::test_the_xapi_authorization_rows.
XAPI_CALLERS = ["anonymous", "enrolled", "other_learner", "instructor", "other_instructor", "admin"]
XAPI_ROWS: list[tuple[str, str, Any, list[int]]] = [
    ("GET", API + "/analytics/xapi/statements", None, [401, 200, 200, 200, 200, 200]),
    (
        "GET",
        API + "/analytics/xapi/statements?course={course}",
        None,
        [401, 200, 200, 200, 403, 200],
    ),
    (
        "GET",
        API + "/analytics/xapi/statements?course={other_course}",
        None,
        [401, 200, 200, 403, 200, 200],
    ),
    (
        "GET",
        API + "/analytics/xapi/statements?course={made_up}",
        None,
        [401, 200, 200, 404, 404, 404],
    ),
    (
        "GET",
        API + "/analytics/xapi/statements?cursor=bm90LWEtY3Vyc29y",
        None,
        [401, 422, 422, 422, 422, 422],
    ),
]
# --- end xAPI ------------------------------------------------------------------------------


def fill(value: Any, names: dict[str, str]) -> Any:
    """`value` with its `{name}` placeholders replaced, at any depth."""
    if isinstance(value, str):
        return value.format(**names)
    if isinstance(value, dict):
        return {key: fill(item, names) for key, item in value.items()}
    if isinstance(value, list):
        return [fill(item, names) for item in value]
    return value


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
    answers = {}
    for who in CALLERS:
        caller = world.people[who]
        names = {
            **world.ids,
            "now": dt.datetime.now(dt.UTC).isoformat(),
            "event_id": uuid.uuid4().hex,
        }
        row = await connection.begin_nested()
        try:
            response = await client.request(
                method,
                template.format(**names),
                json=fill(body, names),
                headers=caller.headers if caller else {},
            )
        finally:
            await row.rollback()
        answers[who] = response.status_code
        if response.status_code >= 400:
            assert response.headers["content-type"] == "application/problem+json", response.text
    assert answers == dict(zip(CALLERS, expected, strict=True))
