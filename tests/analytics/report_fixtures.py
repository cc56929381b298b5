"""A small world for the report tests, written straight into the tables (the rollups as
the analytics jobs would leave them), so each report's numbers can be worked out by
hand: a course taught by one instructor, its syllabus, learners and what they did."""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from lyceum.models.courses import (
    Course,
    CourseInstructor,
    CourseLevel,
    CourseStatus,
    Enrollment,
    EnrollmentStatus,
    Lesson,
    LessonCompletion,
    LessonKind,
    Module,
)
from lyceum.models.identity import Role, User
from tests.identity.helpers import Account, account
from tests.support.clock import FrozenClock

NOW = dt.datetime(2026, 6, 15, 12, 0, tzinfo=dt.UTC)
TODAY = NOW.date()


def ago(days: float = 0, hours: float = 0) -> dt.datetime:
    return NOW - dt.timedelta(days=days, hours=hours)


@dataclass
class Taught:
    """A published course: its teacher (an account), modules and lessons in syllabus
    order."""

    teacher: Account
    course_id: uuid.UUID
    module_ids: list[uuid.UUID]
    lesson_ids: list[uuid.UUID]


async def add_user(session: AsyncSession, name: str, role: Role = Role.student) -> uuid.UUID:
    user = User(
        email=f"{name.lower()}-{uuid.uuid4().hex[:8]}@example.com",
        full_name=name,
        role=role,
        password_hash=None,
    )
    session.add(user)
    await session.flush()
    return user.id


async def add_course(
    session: AsyncSession, owner_id: uuid.UUID, modules: tuple[int, ...] = (2, 1)
) -> tuple[uuid.UUID, list[uuid.UUID], list[uuid.UUID]]:
    """A published course with `modules[i]` lessons in module i. Positions are given in
    reverse of insertion, so syllabus order is not insertion order."""
    course = Course(
        slug=f"course-{uuid.uuid4().hex[:10]}",
        title="Statistics",
        language="en",
        level=CourseLevel.beginner,
        category="math",
        owner_id=owner_id,
        status=CourseStatus.published,
        published_at=ago(days=100),
    )
    session.add(course)
    await session.flush()
    session.add(CourseInstructor(course_id=course.id, user_id=owner_id))
    module_ids: list[uuid.UUID] = []
    lesson_ids: list[uuid.UUID] = []
    for m_index in reversed(range(len(modules))):
        module = Module(course_id=course.id, title=f"Module {m_index + 1}", position=m_index + 1)
        session.add(module)
        await session.flush()
        module_ids.insert(0, module.id)
        lessons = []
        for l_index in reversed(range(modules[m_index])):
            lesson = Lesson(
                module_id=module.id,
                course_id=course.id,
                title=f"Lesson {m_index + 1}.{l_index + 1}",
                kind=LessonKind.text,
                position=l_index + 1,
            )
            session.add(lesson)
            await session.flush()
            lessons.insert(0, lesson.id)
        lesson_ids[0:0] = lessons
    await session.flush()
    return course.id, module_ids, lesson_ids


async def enroll(
    session: AsyncSession,
    course_id: uuid.UUID,
    user_id: uuid.UUID,
    *,
    enrolled_at: dt.datetime,
    status: EnrollmentStatus = EnrollmentStatus.active,
    completed_at: dt.datetime | None = None,
    last_activity_at: dt.datetime | None = None,
) -> None:
    session.add(
        Enrollment(
            course_id=course_id,
            user_id=user_id,
            status=status,
            enrolled_at=enrolled_at,
            completed_at=completed_at,
            last_activity_at=last_activity_at,
        )
    )
    await session.flush()


async def complete(
    session: AsyncSession,
    course_id: uuid.UUID,
    user_id: uuid.UUID,
    lesson_id: uuid.UUID,
    at: dt.datetime,
) -> None:
    session.add(
        LessonCompletion(user_id=user_id, lesson_id=lesson_id, course_id=course_id, completed_at=at)
    )
    await session.flush()


async def add_rows(session: AsyncSession, *rows: Any) -> None:
    session.add_all(rows)
    await session.flush()


async def taught_course(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    session: AsyncSession,
    clock: FrozenClock,
    modules: tuple[int, ...] = (2, 1),
) -> Taught:
    """A course taught by a new instructor; the clock frozen at NOW."""
    clock.current = NOW
    teacher = await account(client, connection, role=Role.instructor, prefix="teacher")
    course_id, module_ids, lesson_ids = await add_course(session, teacher.id, modules)
    await session.commit()
    return Taught(teacher, course_id, module_ids, lesson_ids)


async def get_json(
    client: httpx.AsyncClient, path: str, who: Account, **params: Any
) -> dict[str, Any]:
    response = await client.get(path, headers=who.headers, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def get_csv(
    client: httpx.AsyncClient, path: str, who: Account, **params: Any
) -> list[list[str]]:
    response = await client.get(path, headers=who.headers, params={**params, "format": "csv"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    text = response.content.decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text)))
