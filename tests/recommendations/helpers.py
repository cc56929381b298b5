"""A small catalog with an enrollment history, written straight to the test's
transaction: published courses on two subjects, a draft, a priced course, and learners
who take them in a known pattern."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.kit.ai.embedding import Embedder, get_embedder
from lyceum.models.courses import (
    Course,
    CourseInstructor,
    CourseLevel,
    CourseStatus,
    Enrollment,
    EnrollmentStatus,
)
from lyceum.models.identity import Role, User

NOW = dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.UTC)

SUBJECTS = {
    "python": ("Python basics", "Variables, functions and loops in Python programming."),
    "python2": ("Python data analysis", "Pandas dataframes and Python programming for data."),
    "python3": ("Testing Python code", "Unit tests with pytest for Python programs."),
    "cells": ("Cell biology", "Cells, membranes and mitochondria: how living cells work."),
    "genes": ("Genetics", "Genes, DNA and inheritance in living organisms."),
    "draft": ("Python internals (draft)", "How the Python interpreter works."),
    "priced": ("Python web apps", "Build web applications in Python with FastAPI."),
}


@dataclass
class Catalog:
    teacher: uuid.UUID
    courses: dict[str, uuid.UUID]


async def embedder() -> Embedder:
    return await asyncio.to_thread(get_embedder)


async def user(session: AsyncSession, role: Role = Role.student) -> uuid.UUID:
    person = User(
        email=f"rec-{uuid.uuid4().hex[:12]}@example.com",
        full_name="Learner",
        role=role,
        email_verified_at=NOW,
        preferences={},
    )
    session.add(person)
    await session.flush()
    return person.id


async def catalog(session: AsyncSession, teacher: uuid.UUID | None = None) -> Catalog:
    teacher = teacher or await user(session, Role.instructor)
    courses = {}
    for key, (title, description) in SUBJECTS.items():
        course = Course(
            slug=f"rec-{key}-{uuid.uuid4().hex[:8]}",
            title=title,
            description=description,
            language="en",
            level=CourseLevel.beginner,
            category="science" if key in ("cells", "genes") else "programming",
            tags=[],
            price_cents=4900 if key == "priced" else 0,
            status=CourseStatus.draft if key == "draft" else CourseStatus.published,
            owner_id=teacher,
            published_at=None if key == "draft" else NOW,
        )
        session.add(course)
        await session.flush()
        session.add(CourseInstructor(course_id=course.id, user_id=teacher))
        courses[key] = course.id
    await session.flush()
    return Catalog(teacher, courses)


async def enroll(
    session: AsyncSession,
    user_id: uuid.UUID,
    course_id: uuid.UUID,
    status: EnrollmentStatus = EnrollmentStatus.active,
) -> None:
    session.add(Enrollment(course_id=course_id, user_id=user_id, status=status, enrolled_at=NOW))
    await session.flush()


async def history(session: AsyncSession, world: Catalog) -> None:
    """Six learners take python (completed) and python2, two take python2 and python3,
    three cells and genes,
    and half of the first six take the priced course too."""
    c = world.courses
    for number in range(6):
        learner = await user(session)
        await enroll(session, learner, c["python"], EnrollmentStatus.completed)
        await enroll(session, learner, c["python2"])
        if number % 2:
            await enroll(session, learner, c["priced"])
    for _ in range(2):
        learner = await user(session)
        await enroll(session, learner, c["python2"])
        await enroll(session, learner, c["python3"])
    for _ in range(3):
        learner = await user(session)
        await enroll(session, learner, c["cells"])
        await enroll(session, learner, c["genes"])
