"""Enrollment, progress, rosters, and who may do which."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from lyceum.kit.runtime import Runtime
from lyceum.models.identity import Role
from tests.courses.test_courses import fold, new_course, published
from tests.identity.helpers import Account, account


@pytest.fixture
async def teacher(client: httpx.AsyncClient, connection: AsyncConnection) -> Account:
    return await account(client, connection, role=Role.instructor, prefix="teacher")


async def test_enroll_progress_resume_and_complete(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    teacher: Account,
    runtime: Runtime,
) -> None:
    course, lessons = await published(client, teacher)
    student = await account(client, connection)
    enrolled = await client.post(
        f"/api/v1/courses/{course['id']}/enrollments", headers=student.headers
    )
    assert enrolled.status_code == 201, enrolled.text
    assert enrolled.json()["percent"] == 0
    again = await client.post(
        f"/api/v1/courses/{course['id']}/enrollments", headers=student.headers
    )
    assert again.status_code == 409

    readable = await client.get(f"/api/v1/lessons/{lessons[1]}", headers=student.headers)
    assert readable.status_code == 200 and readable.json()["content"] == "Body of Deeper"

    first = await client.post(f"/api/v1/lessons/{lessons[1]}/complete", headers=student.headers)
    twice = await client.post(f"/api/v1/lessons/{lessons[1]}/complete", headers=student.headers)
    assert first.json()["percent"] == twice.json()["percent"] == 33.3
    assert twice.json()["resume_lesson_id"] == lessons[0]
    assert twice.json()["last_lesson_id"] == lessons[1]
    for lesson in (lessons[0], lessons[2]):
        done = await client.post(f"/api/v1/lessons/{lesson}/complete", headers=student.headers)
    assert done.json()["percent"] == 100
    assert done.json()["status"] == "completed"
    mine = (await client.get("/api/v1/me/enrollments", headers=student.headers)).json()
    assert mine["total"] == 1 and mine["items"][0]["percent"] == 100
    await fold(connection, runtime.cache)
    detail = (await client.get(f"/api/v1/courses/{course['id']}")).json()
    assert detail["enrollment_count"] == 1


async def test_paid_courses_answer_402(
    client: httpx.AsyncClient, connection: AsyncConnection, teacher: Account
) -> None:
    course, _ = await published(client, teacher, price={"amount_cents": 2900, "currency": "USD"})
    student = await account(client, connection)
    response = await client.post(
        f"/api/v1/courses/{course['id']}/enrollments", headers=student.headers
    )
    assert response.status_code == 402
    assert response.headers["content-type"] == "application/problem+json"
    assert f"POST /api/v1/courses/{course['id']}/checkout" in response.json()["detail"]


async def test_drafts_take_no_enrollments(
    client: httpx.AsyncClient, connection: AsyncConnection, teacher: Account
) -> None:
    course = await new_course(client, teacher)
    student = await account(client, connection)
    response = await client.post(
        f"/api/v1/courses/{course['id']}/enrollments", headers=student.headers
    )
    assert response.status_code == 404


async def test_completing_without_enrolling_is_403_and_unenroll_locks_again(
    client: httpx.AsyncClient, connection: AsyncConnection, teacher: Account
) -> None:
    course, lessons = await published(client, teacher)
    outsider = await account(client, connection, prefix="outsider")
    refused = await client.post(f"/api/v1/lessons/{lessons[1]}/complete", headers=outsider.headers)
    assert refused.status_code == 403
    assert (
        await client.get(f"/api/v1/courses/{course['id']}/progress", headers=outsider.headers)
    ).status_code == 403
    await client.post(f"/api/v1/courses/{course['id']}/enrollments", headers=outsider.headers)
    left = await client.delete(
        f"/api/v1/courses/{course['id']}/enrollments/me", headers=outsider.headers
    )
    assert left.status_code == 204
    assert (
        await client.get(f"/api/v1/lessons/{lessons[1]}", headers=outsider.headers)
    ).status_code == 403
    assert (
        await client.delete(
            f"/api/v1/courses/{course['id']}/enrollments/me", headers=outsider.headers
        )
    ).status_code == 404
    rejoin = await client.post(
        f"/api/v1/courses/{course['id']}/enrollments", headers=outsider.headers
    )
    assert rejoin.status_code == 201


async def test_roster_is_for_the_course_teachers_and_admins(
    client: httpx.AsyncClient, connection: AsyncConnection, teacher: Account
) -> None:
    course, _ = await published(client, teacher)
    student = await account(client, connection)
    other_student = await account(client, connection, prefix="other")
    other_teacher = await account(client, connection, role=Role.instructor, prefix="otherteacher")
    admin = await account(client, connection, role=Role.admin, prefix="admin")
    await client.post(f"/api/v1/courses/{course['id']}/enrollments", headers=student.headers)
    path = f"/api/v1/courses/{course['id']}/enrollments"
    roster = await client.get(path, headers=teacher.headers)
    assert roster.status_code == 200
    assert [entry["user_id"] for entry in roster.json()["items"]] == [str(student.id)]
    assert (await client.get(path, headers=admin.headers)).status_code == 200
    for outsider in (student, other_student, other_teacher):
        assert (await client.get(path, headers=outsider.headers)).status_code == 403
    assert (await client.get(path)).status_code == 401
    # Another learner's progress is never reachable: progress is always the caller's own.
    theirs = await client.get(
        f"/api/v1/courses/{course['id']}/progress", headers=other_student.headers
    )
    assert theirs.status_code == 403
    assert (
        await client.get(f"/api/v1/courses/{uuid.uuid4()}/progress", headers=student.headers)
    ).status_code == 404


async def test_my_enrollments_pages_with_each_learners_own_progress(
    client: httpx.AsyncClient, connection: AsyncConnection, teacher: Account
) -> None:
    """The list is one query: its percent counts only the caller's completions (another
    learner's progress in the same course never leaks in), cancelled enrollments are left
    out, and the total holds on every page, past the last one too."""
    courses = [await published(client, teacher) for _ in range(3)]
    student, other = await account(client, connection), await account(client, connection)
    for course, _ in courses:
        for learner in (student, other):
            enrolled = await client.post(
                f"/api/v1/courses/{course['id']}/enrollments", headers=learner.headers
            )
            assert enrolled.status_code == 201, enrolled.text
    first_course, first_lessons = courses[0]
    for lesson in first_lessons:
        await client.post(f"/api/v1/lessons/{lesson}/complete", headers=other.headers)
    await client.post(f"/api/v1/lessons/{first_lessons[0]}/complete", headers=student.headers)
    left = await client.delete(
        f"/api/v1/courses/{courses[2][0]['id']}/enrollments/me", headers=student.headers
    )
    assert left.status_code in (200, 204), left.text

    async def page(number: int) -> dict[str, object]:
        response = await client.get(
            f"/api/v1/me/enrollments?page={number}&size=1", headers=student.headers
        )
        assert response.status_code == 200, response.text
        body: dict[str, object] = response.json()
        return body

    pages = [await page(1), await page(2), await page(3)]
    assert [p["total"] for p in pages] == [2, 2, 2]
    items = [item for p in pages for item in p["items"]]  # type: ignore[attr-defined]
    assert pages[2]["items"] == []
    by_course = {item["course_id"]: item for item in items}
    assert set(by_course) == {courses[0][0]["id"], courses[1][0]["id"]}
    assert by_course[first_course["id"]]["percent"] == 33.3
    assert by_course[courses[1][0]["id"]]["percent"] == 0
    assert by_course[first_course["id"]]["course_title"] == first_course["title"]
