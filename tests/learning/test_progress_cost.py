"""What a learner's progress costs the database. Progress is read on every course page
and answered by every completed lesson, the commonest write of a course: the course's
lessons come in course order with the learner's completions in one statement, titles
only (no lesson bodies), and a completion is written, or found written before, by one
INSERT ... ON CONFLICT DO NOTHING."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from lyceum.models.identity import Role
from tests.assessments.helpers import statements
from tests.courses.test_courses import published
from tests.identity.helpers import Account, account


@pytest.fixture
async def teacher(client: httpx.AsyncClient, connection: AsyncConnection) -> Account:
    return await account(client, connection, role=Role.instructor, prefix="teacher")


def _course_lessons(sent: list[str]) -> list[str]:
    """The statements that list a course's lessons (a completion also reads its one
    lesson, by id)."""
    return [s for s in sent if s.startswith("SELECT") and "lessons.course_id = " in s]


async def test_progress_reads_lessons_and_completions_in_one_statement_without_bodies(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    teacher: Account,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    course, lessons = await published(client, teacher)
    student = await account(client, connection)
    enrolled = await client.post(
        f"/api/v1/courses/{course['id']}/enrollments", headers=student.headers
    )
    assert enrolled.status_code == 201, enrolled.text
    with statements(monkeypatch) as sent:
        done = await client.post(f"/api/v1/lessons/{lessons[1]}/complete", headers=student.headers)
    assert done.status_code == 200, done.text
    reads = [s for s in _course_lessons(sent) if "lessons.title" in s]
    assert len(reads) == 1, reads
    assert "lesson_completions" in reads[0] and "lessons.content" not in reads[0], reads[0]
    # The completion is written (or found written before) by one statement.
    assert not [s for s in sent if s.startswith("SELECT lesson_completions")], sent
    writes = [s for s in sent if s.startswith("INSERT INTO lesson_completions")]
    assert len(writes) == 1 and "ON CONFLICT DO NOTHING" in writes[0], writes
    again = await client.post(f"/api/v1/lessons/{lessons[1]}/complete", headers=student.headers)
    assert again.status_code == 200, again.text
    # The first completion's time stands.
    assert again.json()["lessons"][1]["completed_at"] == done.json()["lessons"][1]["completed_at"]

    with statements(monkeypatch) as sent:
        progress = await client.get(
            f"/api/v1/courses/{course['id']}/progress", headers=student.headers
        )
    assert progress.status_code == 200, progress.text
    reads = _course_lessons(sent)
    assert len(reads) == 1, reads
    assert "lesson_completions" in reads[0] and "lessons.content" not in reads[0], reads[0]

    # Course order, and the completion as the completion answered it.
    body = progress.json()
    assert [lesson["id"] for lesson in body["lessons"]] == lessons
    assert [lesson["completed"] for lesson in body["lessons"]] == [False, True, False]
    assert body["lessons"][1]["completed_at"] == done.json()["lessons"][1]["completed_at"]
    assert body["lessons"][1]["completed_at"] is not None
    assert body["completed_lessons"] == 1 and body["resume_lesson_id"] == lessons[0]


async def test_another_learners_completions_do_not_count(
    client: httpx.AsyncClient, connection: AsyncConnection, teacher: Account
) -> None:
    """The completions joined to the lessons are the caller's only."""
    course, lessons = await published(client, teacher)
    ada, bob = await account(client, connection), await account(client, connection)
    for learner in (ada, bob):
        enrolled = await client.post(
            f"/api/v1/courses/{course['id']}/enrollments", headers=learner.headers
        )
        assert enrolled.status_code == 201, enrolled.text
    for lesson in lessons:
        done = await client.post(f"/api/v1/lessons/{lesson}/complete", headers=ada.headers)
        assert done.status_code == 200, done.text
    mine = await client.get(f"/api/v1/courses/{course['id']}/progress", headers=bob.headers)
    assert mine.status_code == 200, mine.text
    assert mine.json()["completed_lessons"] == 0
    assert [lesson["completed"] for lesson in mine.json()["lessons"]] == [False] * len(lessons)
    assert mine.json()["resume_lesson_id"] == lessons[0]
