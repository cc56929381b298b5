"""Authority comes from the account's current role and its course membership, both read
on every request: an instructor demoted by an admin keeps a valid token and their
course memberships, yet edits, grades and moderates nothing until promoted again."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncConnection

from lyceum.models.identity import Role
from tests.courses.test_courses import new_course, published
from tests.identity.helpers import Account, account

API = "/api/v1"


async def set_role(client: httpx.AsyncClient, admin: Account, who: Account, role: Role) -> None:
    changed = await client.patch(
        f"{API}/users/{who.id}", json={"role": role.value}, headers=admin.headers
    )
    assert changed.status_code == 200, changed.text


def teacher_calls(course: str, draft: str, learner: Account) -> list[tuple[str, str, Any]]:
    """What a course's instructor may do: authoring, rosters, grading, tutor settings,
    chat moderation (method, path, JSON body)."""
    return [
        ("PATCH", f"{API}/courses/{course}", {"subtitle": "Still mine?"}),
        ("POST", f"{API}/courses/{course}/modules", {"title": "Another"}),
        ("GET", f"{API}/courses/{course}/enrollments", None),
        ("GET", f"{API}/courses/{draft}", None),
        ("GET", f"{API}/courses/{course}/questions", None),
        (
            "POST",
            f"{API}/courses/{course}/questions",
            {"kind": "true_false", "prompt": "The sky is blue.", "correct": True, "points": 1},
        ),
        ("GET", f"{API}/courses/{course}/gradebook", None),
        ("GET", f"{API}/tutor/courses/{course}/settings", None),
        ("GET", f"{API}/chat/courses/{course}/mutes", None),
        ("PUT", f"{API}/chat/courses/{course}/mutes/{learner.id}", {"minutes": 5}),
        ("GET", f"{API}/tutor/usage?course_id={course}", None),
    ]


async def test_a_demoted_instructor_loses_authority_over_their_courses_at_once(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await account(client, connection, role=Role.admin, prefix="admin")
    teacher = await account(client, connection, role=Role.instructor, prefix="teacher")
    course, _ = await published(client, teacher)
    draft = await new_course(client, teacher)
    learner = await account(client, connection, prefix="learner")
    enrolled = await client.post(
        f"{API}/courses/{course['id']}/enrollments", headers=learner.headers
    )
    assert enrolled.status_code == 201, enrolled.text
    calls = teacher_calls(course["id"], draft["id"], learner)

    async def statuses() -> list[int]:
        found = []
        for method, path, body in calls:
            response = await client.request(method, path, json=body, headers=teacher.headers)
            found.append(response.status_code)
        return found

    # Each call answers 2xx while they teach (the mute is answered 201 then 200).
    assert all(status < 300 for status in await statuses())

    await set_role(client, admin, teacher, Role.student)
    # Same token, same course membership rows: every call is refused now (404 for the
    # draft, which no longer shows to them; 403 for the rest).
    refused = await statuses()
    assert refused == [403, 403, 403, 404, 403, 403, 403, 403, 403, 403, 403], refused
    # Their token still works for what any account may do.
    assert (await client.get(f"{API}/users/me", headers=teacher.headers)).status_code == 200

    await set_role(client, admin, teacher, Role.instructor)
    assert all(status < 300 for status in await statuses())
