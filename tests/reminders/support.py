"""Rows for the reminder tests (written through the ORM, as the domains would), and a
recording stand-in for `notifications.service.notify` with its exact signature."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.models.assessments import (
    Assignment,
    AttemptStatus,
    EssaySubmission,
    Quiz,
    QuizAttempt,
)
from lyceum.models.courses import (
    Course,
    CourseLevel,
    Enrollment,
    EnrollmentStatus,
    Lesson,
    LessonCompletion,
    LessonKind,
    Module,
)
from lyceum.models.identity import Role, User
from lyceum.models.notifications import Category

LONG_AGO = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Sent:
    user_ids: list[uuid.UUID]
    category: str
    kind: str
    title: str
    body: str
    url: str | None
    template: str
    context: dict[str, Any]
    dedupe_key: str | None
    data: dict[str, Any] | None


@dataclass
class RecordingNotify:
    """Records each call; every recipient counts as written."""

    sent: list[Sent] = field(default_factory=list)

    async def __call__(
        self,
        session: AsyncSession,
        *,
        user_ids: Sequence[uuid.UUID],
        category: Category,
        kind: str,
        title: str,
        body: str,
        url: str | None,
        template: str,
        context: dict[str, Any],
        dedupe_key: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> int:
        assert session.in_transaction()
        self.sent.append(
            Sent(
                list(user_ids),
                category,
                kind,
                title,
                body,
                url,
                template,
                context,
                dedupe_key,
                data,
            )
        )
        return len(user_ids)

    def to(self, user: User, kind: str | None = None) -> list[Sent]:
        return [
            sent
            for sent in self.sent
            if user.id in sent.user_ids and (kind is None or sent.kind == kind)
        ]


async def user(session: AsyncSession, *, time_zone: str = "UTC", name: str = "Learner") -> User:
    row = User(
        email=f"{uuid.uuid4().hex[:12]}@reminders.test",
        full_name=name,
        role=Role.student,
        timezone=time_zone,
    )
    session.add(row)
    await session.flush()
    return row


@dataclass(frozen=True)
class CourseRows:
    course: Course
    lessons: list[Lesson]


async def course(
    session: AsyncSession, owner: User, *, lessons: int = 4, title: str = "Botany"
) -> CourseRows:
    row = Course(
        slug=f"c-{uuid.uuid4().hex[:12]}",
        title=title,
        language="en",
        level=CourseLevel.beginner,
        category="science",
        owner_id=owner.id,
    )
    session.add(row)
    await session.flush()
    module = Module(course_id=row.id, title="Module", position=1)
    session.add(module)
    await session.flush()
    rows = [
        Lesson(
            module_id=module.id,
            course_id=row.id,
            title=f"Lesson {number}",
            kind=LessonKind.text,
            position=number,
        )
        for number in range(1, lessons + 1)
    ]
    session.add_all(rows)
    await session.flush()
    return CourseRows(row, rows)


async def enroll(
    session: AsyncSession,
    learner: User,
    course_rows: CourseRows,
    *,
    status: EnrollmentStatus = EnrollmentStatus.active,
    at: dt.datetime = LONG_AGO,
    last_activity_at: dt.datetime | None = None,
) -> Enrollment:
    row = Enrollment(
        course_id=course_rows.course.id,
        user_id=learner.id,
        status=status,
        enrolled_at=at,
        last_activity_at=last_activity_at,
    )
    session.add(row)
    await session.flush()
    return row


async def complete(session: AsyncSession, learner: User, lesson: Lesson, at: dt.datetime) -> None:
    session.add(
        LessonCompletion(
            user_id=learner.id, lesson_id=lesson.id, course_id=lesson.course_id, completed_at=at
        )
    )
    await session.flush()


async def quiz(
    session: AsyncSession,
    course_rows: CourseRows,
    *,
    due_at: dt.datetime | None = None,
    available_until: dt.datetime | None = None,
    published: bool = True,
) -> Quiz:
    row = Quiz(
        course_id=course_rows.course.id,
        title="Leaves quiz",
        pass_percent=50,
        due_at=due_at,
        available_until=available_until,
        published=published,
    )
    session.add(row)
    await session.flush()
    return row


async def assignment(
    session: AsyncSession, course_rows: CourseRows, *, due_at: dt.datetime | None
) -> Assignment:
    row = Assignment(
        course_id=course_rows.course.id,
        title="Photosynthesis essay",
        prompt="Explain photosynthesis.",
        rubric={"criteria": []},
        points=10,
        pass_percent=50,
        due_at=due_at,
        published=True,
    )
    session.add(row)
    await session.flush()
    return row


async def attempt(
    session: AsyncSession, learner: User, quiz_row: Quiz, *, status: AttemptStatus, at: dt.datetime
) -> None:
    session.add(
        QuizAttempt(
            quiz_id=quiz_row.id,
            course_id=quiz_row.course_id,
            user_id=learner.id,
            number=1,
            status=status,
            started_at=at,
            submitted_at=None if status == AttemptStatus.in_progress else at,
            max_score=10,
        )
    )
    await session.flush()


async def submit(
    session: AsyncSession, learner: User, assignment_row: Assignment, at: dt.datetime
) -> None:
    session.add(
        EssaySubmission(
            assignment_id=assignment_row.id,
            course_id=assignment_row.course_id,
            user_id=learner.id,
            text="Plants turn light into sugar.",
            word_count=5,
            source="text",
            submitted_at=at,
        )
    )
    await session.flush()
