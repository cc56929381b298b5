"""`GET /courses/teaching`: the courses the caller teaches, drafts and archived ones
included (the instructor's "my courses" in the web app), and nobody else's."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncConnection

from lyceum.models.identity import Role
from tests.courses.test_courses import new_course, published
from tests.identity.helpers import account


async def test_an_instructor_lists_their_drafts_and_published_courses(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    teacher = await account(client, connection, role=Role.instructor, prefix="teach")
    other = await account(client, connection, role=Role.instructor, prefix="other")
    draft = await new_course(client, teacher)
    live, _ = await published(client, teacher)
    archived = await new_course(client, teacher)
    await client.post(f"/api/v1/courses/{archived['id']}/archive", headers=teacher.headers)
    theirs = await new_course(client, other)

    answer = await client.get("/api/v1/courses/teaching", headers=teacher.headers)
    assert answer.status_code == 200, answer.text
    listed = {item["id"]: item["status"] for item in answer.json()["items"]}
    assert listed[draft["id"]] == "draft"
    assert listed[live["id"]] == "published"
    assert listed[archived["id"]] == "archived"
    assert theirs["id"] not in listed
    assert answer.json()["total"] == 3

    # The public catalog still shows published courses only.
    catalog = await client.get("/api/v1/courses", params={"instructor": teacher.id})
    assert [item["id"] for item in catalog.json()["items"]] == [live["id"]]


async def test_students_may_not_list_taught_courses(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    student = await account(client, connection, role=Role.student, prefix="learner")
    answer = await client.get("/api/v1/courses/teaching", headers=student.headers)
    assert answer.status_code == 403
