"""Every assessments endpoint, called by each kind of caller: anonymous, the learner who
owns the attempt and submission, a classmate (enrolled too), an outsider (not
enrolled), the course's instructor, another instructor, and an admin.

One world is built, and each row runs inside a savepoint rolled back afterwards, so
every row sees the same world and the whole matrix costs one setup."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncConnection

from lyceum.kit.runtime import Runtime
from lyceum.models.identity import Role
from tests.assessments.helpers import (
    API,
    GOOD_ESSAY,
    add_assignment,
    add_question,
    add_quiz,
    assignment_body,
    classroom,
    enrolled_learner,
    member,
    start,
    true_false,
)
from tests.assessments.test_essays import docx_bytes

CALLERS = ["anonymous", "owner", "classmate", "outsider", "instructor", "other_instructor", "admin"]
GRADES = {
    "criteria": [
        {"criterion_id": "content", "points": 1},
        {"criterion_id": "clarity", "points": 1},
    ]
}

# (method, path, body, expected status per caller in CALLERS order). A body of "file"
# uploads a DOCX essay.
MATRIX: list[tuple[str, str, Any, list[int]]] = [
    # question bank
    ("POST", "/courses/{course}/questions", true_false(), [401, 403, 403, 403, 201, 403, 201]),
    ("GET", "/courses/{course}/questions", None, [401, 403, 403, 403, 200, 403, 200]),
    ("GET", "/questions/{question}", None, [401, 403, 403, 403, 200, 403, 200]),
    ("PUT", "/questions/{question}", true_false(), [401, 403, 403, 403, 200, 403, 200]),
    ("DELETE", "/questions/{spare_question}", None, [401, 403, 403, 403, 204, 403, 204]),
    # quizzes
    ("POST", "/courses/{course}/quizzes", {"title": "Q"}, [401, 403, 403, 403, 201, 403, 201]),
    ("GET", "/courses/{course}/quizzes", None, [401, 200, 200, 403, 200, 403, 200]),
    ("GET", "/quizzes/{quiz}", None, [401, 200, 200, 403, 200, 403, 200]),
    ("GET", "/quizzes/{draft_quiz}", None, [401, 404, 404, 403, 200, 403, 200]),
    ("GET", "/quizzes/{quiz}/definition", None, [401, 403, 403, 403, 200, 403, 200]),
    ("PATCH", "/quizzes/{quiz}", {"description": "x"}, [401, 403, 403, 403, 200, 403, 200]),
    ("DELETE", "/quizzes/{draft_quiz}", None, [401, 403, 403, 403, 204, 403, 204]),
    ("POST", "/quizzes/{quiz}/attempts", None, [401, 200, 201, 403, 403, 403, 403]),
    ("GET", "/quizzes/{quiz}/attempts/me", None, [401, 200, 200, 403, 200, 403, 200]),
    ("GET", "/quizzes/{quiz}/attempts", None, [401, 403, 403, 403, 200, 403, 200]),
    # attempts: the owner's own; nobody else's by id (admins may read)
    ("GET", "/attempts/{attempt}", None, [401, 200, 404, 404, 404, 404, 200]),
    ("PUT", "/attempts/{attempt}/answers", {"answers": []}, [401, 200, 404, 404, 404, 404, 404]),
    ("POST", "/attempts/{attempt}/submit", {}, [401, 200, 404, 404, 404, 404, 404]),
    ("GET", "/attempts/{attempt}/result", None, [401, 409, 404, 404, 404, 404, 409]),
    ("GET", "/attempts/{attempt}/review", None, [401, 403, 403, 403, 200, 403, 200]),
    (
        "POST",
        "/attempts/{attempt}/grades",
        {"grades": [{"question_id": "{question}", "points": 0}]},
        [401, 403, 403, 403, 409, 403, 409],
    ),
    # assignments
    (
        "POST",
        "/courses/{course}/assignments",
        assignment_body(),
        [401, 403, 403, 403, 201, 403, 201],
    ),
    ("GET", "/courses/{course}/assignments", None, [401, 200, 200, 403, 200, 403, 200]),
    ("GET", "/assignments/{assignment}", None, [401, 200, 200, 403, 200, 403, 200]),
    ("GET", "/assignments/{assignment}/definition", None, [401, 403, 403, 403, 200, 403, 200]),
    ("PATCH", "/assignments/{assignment}", {"title": "T"}, [401, 403, 403, 403, 200, 403, 200]),
    ("DELETE", "/assignments/{spare_assignment}", None, [401, 403, 403, 403, 204, 403, 204]),
    (
        "POST",
        "/assignments/{assignment}/submissions",
        {"text": GOOD_ESSAY},
        [401, 409, 201, 403, 403, 403, 403],
    ),
    (
        "POST",
        "/assignments/{assignment}/submissions/file",
        "file",
        [401, 409, 201, 403, 403, 403, 403],
    ),
    ("GET", "/assignments/{assignment}/submissions/me", None, [401, 200, 404, 403, 404, 403, 404]),
    ("GET", "/assignments/{assignment}/submissions", None, [401, 403, 403, 403, 200, 403, 200]),
    ("GET", "/courses/{course}/review-queue", None, [401, 403, 403, 403, 200, 403, 200]),
    # a submission by id: the instructor's view; never another learner's
    ("GET", "/submissions/{submission}", None, [401, 403, 403, 403, 200, 403, 200]),
    ("POST", "/submissions/{submission}/accept", {}, [401, 403, 403, 403, 409, 403, 409]),
    ("PUT", "/submissions/{submission}/grade", GRADES, [401, 403, 403, 403, 200, 403, 200]),
    ("POST", "/submissions/{submission}/release", None, [401, 403, 403, 403, 409, 403, 409]),
    ("GET", "/courses/{course}/assessment-audit", None, [401, 403, 403, 403, 200, 403, 200]),
    # gradebook
    ("GET", "/courses/{course}/gradebook", None, [401, 403, 403, 403, 200, 403, 200]),
    ("GET", "/courses/{course}/gradebook.csv", None, [401, 403, 403, 403, 200, 403, 200]),
    ("GET", "/courses/{course}/grades/me", None, [401, 200, 200, 403, 403, 403, 403]),
]


@dataclass
class World:
    ids: dict[str, str]
    people: dict[str, Any]


async def build_world(
    client: httpx.AsyncClient, connection: AsyncConnection, runtime: Runtime
) -> World:
    room = await classroom(client, connection, runtime)
    question = await add_question(client, room, true_false())
    spare_question = await add_question(client, room, true_false())
    quiz = await add_quiz(client, room, [question["id"]])
    draft = await client.post(
        f"{API}/courses/{room.course_id}/quizzes",
        json={"title": "Draft", "sections": [{"question_id": question["id"]}]},
        headers=room.teacher.headers,
    )
    attempt = await start(client, quiz["id"], room.learner)
    assignment = await add_assignment(client, room)
    spare_assignment = await add_assignment(client, room)
    submission = await client.post(
        f"{API}/assignments/{assignment['id']}/submissions",
        json={"text": GOOD_ESSAY},
        headers=room.learner.headers,
    )
    assert submission.status_code == 201, submission.text
    people = {
        "anonymous": None,
        "owner": room.learner,
        "classmate": await enrolled_learner(client, connection, runtime, room, "classmate"),
        "outsider": await member(connection, runtime, prefix="outsider"),
        "instructor": room.teacher,
        "other_instructor": await member(connection, runtime, Role.instructor, prefix="oi"),
        "admin": await member(connection, runtime, Role.admin, prefix="admin"),
    }
    ids = {
        "course": room.course_id,
        "question": question["id"],
        "spare_question": spare_question["id"],
        "quiz": quiz["id"],
        "draft_quiz": draft.json()["id"],
        "attempt": attempt["id"],
        "assignment": assignment["id"],
        "spare_assignment": spare_assignment["id"],
        "submission": submission.json()["id"],
    }
    return World(ids, people)


def _fill(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**ids) if value.startswith("{") or "/" in value else value
    if isinstance(value, dict):
        return {key: _fill(item, ids) for key, item in value.items()}
    if isinstance(value, list):
        return [_fill(item, ids) for item in value]
    return value


async def call(
    client: httpx.AsyncClient, method: str, path: str, body: Any, who: Any
) -> httpx.Response:
    headers = who.headers if who is not None else {}
    if body == "file":
        files = {
            "file": ("essay.docx", io.BytesIO(docx_bytes([GOOD_ESSAY])), "application/octet-stream")
        }
        return await client.request(method, API + path, files=files, headers=headers)
    return await client.request(method, API + path, json=body, headers=headers)


async def test_authorization_matrix(
    client: httpx.AsyncClient, connection: AsyncConnection, runtime: Runtime
) -> None:
    world = await build_world(client, connection, runtime)
    mismatches = []
    for method, template, body, expected in MATRIX:
        path = template.format(**world.ids)
        filled = _fill(body, world.ids) if body != "file" else body
        for who, status in zip(CALLERS, expected, strict=True):
            row = await connection.begin_nested()
            try:
                response = await call(client, method, path, filled, world.people[who])
            finally:
                await row.rollback()
            if response.status_code >= 400:
                assert response.headers["content-type"] == "application/problem+json"
            if response.status_code != status:
                mismatches.append(
                    f"{method} {template} as {who}: {response.status_code}, expected {status} "
                    f"({response.text[:160]})"
                )
    assert not mismatches, "\n".join(mismatches)


async def test_one_learner_cannot_reach_anothers_work_by_id(
    client: httpx.AsyncClient, connection: AsyncConnection, runtime: Runtime
) -> None:
    world = await build_world(client, connection, runtime)
    classmate = world.people["classmate"]
    attempt, submission = world.ids["attempt"], world.ids["submission"]
    for path in (f"/attempts/{attempt}", f"/attempts/{attempt}/result"):
        response = await client.get(API + path, headers=classmate.headers)
        assert response.status_code == 404
        assert attempt not in response.text or response.json()["instance"].endswith(path)
    seen = await client.get(f"{API}/submissions/{submission}", headers=classmate.headers)
    assert seen.status_code == 403 and GOOD_ESSAY[:40] not in seen.text
    lists = await client.get(
        f"{API}/quizzes/{world.ids['quiz']}/attempts/me", headers=classmate.headers
    )
    assert lists.json()["total"] == 0
