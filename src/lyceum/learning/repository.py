"""Every query of enrollment and progress, including how many of a course's lessons a
learner has left (what completing the course needs of its assessments, learning asks
`assessments.service`)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import cast

from sqlalchemy import (
    DateTime,
    Integer,
    Table,
    Uuid,
    and_,
    bindparam,
    exists,
    func,
    insert,
    select,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.models.courses import (
    Certificate,
    Course,
    CourseStatChange,
    Enrollment,
    EnrollmentStatus,
    Lesson,
    LessonCompletion,
    Module,
    Review,
)
from lyceum.models.identity import User
from lyceum.models.payments import Order, OrderStatus


@dataclass(frozen=True, slots=True)
class EnrollmentRow:
    id: uuid.UUID
    course_id: uuid.UUID
    course_title: str
    course_slug: str
    status: EnrollmentStatus
    enrolled_at: dt.datetime
    completed_at: dt.datetime | None
    lessons: int
    completed: int


# Built once (a hot per-user list): the page, with per-row lesson counts and the total.
_ENROLLMENTS_OF = (
    select(
        Enrollment.id,
        Enrollment.course_id,
        Course.title,
        Course.slug,
        Enrollment.status,
        Enrollment.enrolled_at,
        Enrollment.completed_at,
        select(func.count())
        .where(Lesson.course_id == Enrollment.course_id)
        .correlate(Enrollment)
        .scalar_subquery()
        .label("lessons"),
        select(func.count())
        .where(
            LessonCompletion.user_id == Enrollment.user_id,
            LessonCompletion.course_id == Enrollment.course_id,
        )
        .correlate(Enrollment)
        .scalar_subquery()
        .label("completed"),
        func.count().over().label("total"),
    )
    .join(Course, Course.id == Enrollment.course_id)
    .where(
        Enrollment.user_id == bindparam("user_id", type_=Uuid()),
        Enrollment.status != EnrollmentStatus.cancelled,
    )
    .order_by(Enrollment.enrolled_at.desc(), Enrollment.id)
    .offset(bindparam("offset", type_=Integer()))
    .limit(bindparam("limit", type_=Integer()))
)


@dataclass(frozen=True, slots=True)
class LessonDone:
    """A lesson of a course as a learner's progress lists it."""

    id: uuid.UUID
    title: str
    module_id: uuid.UUID
    completed_at: dt.datetime | None  # None: not completed


# The reads of every progress update and lesson completion, built once (building a
# select costs more CPU than SQLAlchemy's cached execution of it).
_ENROLLMENT = select(Enrollment).where(
    Enrollment.course_id == bindparam("course_id", type_=Uuid()),
    Enrollment.user_id == bindparam("user_id", type_=Uuid()),
)
_ENROLLMENT_LOCKED = _ENROLLMENT.with_for_update()
# The course's lessons in course order, each with the learner's completion: titles only,
# no lesson bodies.
_LESSON_PROGRESS = (
    select(Lesson.id, Lesson.title, Lesson.module_id, LessonCompletion.completed_at)
    .join(Module, Module.id == Lesson.module_id)
    .outerjoin(
        LessonCompletion,
        and_(
            LessonCompletion.lesson_id == Lesson.id,
            LessonCompletion.user_id == bindparam("user_id", type_=Uuid()),
        ),
    )
    .where(Lesson.course_id == bindparam("course_id", type_=Uuid()))
    .order_by(Module.position, Lesson.position)
)
_LESSONS_LEFT = (
    select(func.count())
    .select_from(Lesson)
    .where(
        Lesson.course_id == bindparam("course_id", type_=Uuid()),
        ~exists().where(
            LessonCompletion.lesson_id == Lesson.id,
            LessonCompletion.user_id == bindparam("user_id", type_=Uuid()),
        ),
    )
)

# A lesson completed: written unless the learner completed it before (the first
# completion's time stands), in one statement that says which.
_COMPLETIONS = cast(Table, LessonCompletion.__table__)
_ADD_COMPLETION = (
    pg_insert(_COMPLETIONS)
    .values(
        user_id=bindparam("done_user", type_=Uuid()),
        lesson_id=bindparam("done_lesson", type_=Uuid()),
        course_id=bindparam("done_course", type_=Uuid()),
        completed_at=bindparam("done_at", type_=DateTime(timezone=True)),
    )
    .on_conflict_do_nothing()
    .returning(_COMPLETIONS.c.lesson_id)
)


class LearningRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def enrollment(
        self, course_id: uuid.UUID, user_id: uuid.UUID, *, for_update: bool = False
    ) -> Enrollment | None:
        query = _ENROLLMENT_LOCKED if for_update else _ENROLLMENT
        rows = await self.session.execute(query, {"course_id": course_id, "user_id": user_id})
        return rows.scalar_one_or_none()

    async def enrollment_by_id(self, enrollment_id: uuid.UUID) -> Enrollment | None:
        return await self.session.get(Enrollment, enrollment_id)

    async def add(self, entity: object) -> None:
        self.session.add(entity)
        await self.session.flush()

    async def has_paid_order(self, course_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        """Whether the user bought the course: an order paid (or partly refunded) and not
        flagged for an admin."""
        query = select(Order.id).where(
            Order.course_id == course_id,
            Order.user_id == user_id,
            Order.status.in_([OrderStatus.paid, OrderStatus.partially_refunded]),
            Order.flagged_reason.is_(None),
        )
        return (await self.session.execute(query.limit(1))).first() is not None

    async def has_refunded_order(self, course_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        """Whether the user's purchase of the course was refunded in full."""
        query = select(Order.id).where(
            Order.course_id == course_id,
            Order.user_id == user_id,
            Order.status == OrderStatus.refunded,
        )
        return (await self.session.execute(query.limit(1))).first() is not None

    async def record_enrollment_change(self, course_id: uuid.UUID, delta: int) -> None:
        """Append a change to the course's enrollment counter (folded later)."""
        await self.session.execute(
            insert(CourseStatChange).values(course_id=course_id, enrollments=delta)
        )

    async def add_completion(
        self, user_id: uuid.UUID, lesson_id: uuid.UUID, course_id: uuid.UUID, at: dt.datetime
    ) -> bool:
        """Record that the learner completed the lesson: False, and nothing written,
        when they had completed it before."""
        rows = await self.session.execute(
            _ADD_COMPLETION,
            {
                "done_user": user_id,
                "done_lesson": lesson_id,
                "done_course": course_id,
                "done_at": at,
            },
        )
        return rows.first() is not None

    async def percent_by_enrollment(self, enrollments: list[Enrollment]) -> dict[uuid.UUID, float]:
        """Percent complete for each enrollment, in two grouped queries."""
        if not enrollments:
            return {}
        course_ids = {e.course_id for e in enrollments}
        counted = await self.session.execute(
            select(Lesson.course_id, func.count())
            .where(Lesson.course_id.in_(course_ids))
            .group_by(Lesson.course_id)
        )
        totals: dict[uuid.UUID, int] = {course: count for course, count in counted}  # noqa: C416
        rows = await self.session.execute(
            select(LessonCompletion.user_id, LessonCompletion.course_id, func.count())
            .where(
                LessonCompletion.course_id.in_(course_ids),
                LessonCompletion.user_id.in_({e.user_id for e in enrollments}),
            )
            .group_by(LessonCompletion.user_id, LessonCompletion.course_id)
        )
        done = {(user, course): count for user, course, count in rows}
        return {
            e.id: round(100 * done.get((e.user_id, e.course_id), 0) / totals[e.course_id], 1)
            if totals.get(e.course_id)
            else 0.0
            for e in enrollments
        }

    async def enrollments_of(
        self, user_id: uuid.UUID, offset: int, limit: int
    ) -> tuple[list[EnrollmentRow], int]:
        """A page of the learner's enrollments with each course's title, slug, lesson
        count and the learner's completed lessons, and the total, in one round trip
        (the total rides on each row as a window count; only a page past the end asks
        for it separately)."""
        rows = (
            await self.session.execute(
                _ENROLLMENTS_OF, {"user_id": user_id, "offset": offset, "limit": limit}
            )
        ).all()
        if rows:
            total = int(rows[0].total)
        else:
            total = (
                int(
                    (
                        await self.session.execute(
                            select(func.count())
                            .select_from(Enrollment)
                            .where(
                                Enrollment.user_id == user_id,
                                Enrollment.status != EnrollmentStatus.cancelled,
                            )
                        )
                    ).scalar_one()
                )
                if offset
                else 0
            )
        return [
            EnrollmentRow(
                id=row.id,
                course_id=row.course_id,
                course_title=row.title,
                course_slug=row.slug,
                status=row.status,
                enrolled_at=row.enrolled_at,
                completed_at=row.completed_at,
                lessons=int(row.lessons),
                completed=int(row.completed),
            )
            for row in rows
        ], total

    async def roster(
        self, course_id: uuid.UUID, offset: int, limit: int
    ) -> tuple[list[tuple[Enrollment, User]], int]:
        conditions = [
            Enrollment.course_id == course_id,
            Enrollment.status != EnrollmentStatus.cancelled,
        ]
        total = (
            await self.session.execute(
                select(func.count()).select_from(Enrollment).where(*conditions)
            )
        ).scalar_one()
        rows = await self.session.execute(
            select(Enrollment, User)
            .join(User, User.id == Enrollment.user_id)
            .where(*conditions)
            .order_by(Enrollment.enrolled_at, Enrollment.id)
            .offset(offset)
            .limit(limit)
        )
        return [(e, u) for e, u in rows], int(total)

    # Certificates ---------------------------------------------------------------------

    async def certificate_for(self, user_id: uuid.UUID, course_id: uuid.UUID) -> Certificate | None:
        query = select(Certificate).where(
            Certificate.user_id == user_id, Certificate.course_id == course_id
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def certificate_by_code(
        self, code: str, *, user_id: uuid.UUID | None = None
    ) -> Certificate | None:
        query = select(Certificate).where(Certificate.code == code)
        if user_id is not None:
            query = query.where(Certificate.user_id == user_id)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def certificates_of(
        self, user_id: uuid.UUID, offset: int, limit: int
    ) -> tuple[list[Certificate], int]:
        condition = Certificate.user_id == user_id
        total = (
            await self.session.execute(
                select(func.count()).select_from(Certificate).where(condition)
            )
        ).scalar_one()
        rows = await self.session.execute(
            select(Certificate)
            .where(condition)
            .order_by(Certificate.issued_at.desc(), Certificate.id)
            .offset(offset)
            .limit(limit)
        )
        return list(rows.scalars()), int(total)

    # Reviews --------------------------------------------------------------------------

    async def review(
        self, course_id: uuid.UUID, user_id: uuid.UUID, *, for_update: bool = False
    ) -> Review | None:
        query = select(Review).where(Review.course_id == course_id, Review.user_id == user_id)
        if for_update:
            query = query.with_for_update()
        return (await self.session.execute(query)).scalar_one_or_none()

    async def delete_review(self, review: Review) -> None:
        await self.session.delete(review)
        await self.session.flush()

    async def reviews(
        self, course_id: uuid.UUID, offset: int, limit: int
    ) -> tuple[list[tuple[Review, str]], int]:
        condition = Review.course_id == course_id
        total = (
            await self.session.execute(select(func.count()).select_from(Review).where(condition))
        ).scalar_one()
        rows = await self.session.execute(
            select(Review, User.full_name)
            .join(User, User.id == Review.user_id)
            .where(condition)
            .order_by(Review.updated_at.desc(), Review.id)
            .offset(offset)
            .limit(limit)
        )
        return [(review, name) for review, name in rows], int(total)

    # Completion: the course's lessons and required assessments -------------------------

    async def lessons_left(self, course_id: uuid.UUID, user_id: uuid.UUID) -> int:
        """How many of the course's lessons the learner has not completed (one count,
        no lesson bodies loaded: this runs on every passing submission)."""
        rows = await self.session.execute(
            _LESSONS_LEFT, {"course_id": course_id, "user_id": user_id}
        )
        return int(rows.scalar_one())

    async def lesson_progress(self, course_id: uuid.UUID, user_id: uuid.UUID) -> list[LessonDone]:
        """The course's lessons in course order (module, then lesson position), each with
        when the learner completed it, in one statement: what a progress page and every
        completed lesson answer."""
        rows = await self.session.execute(
            _LESSON_PROGRESS, {"course_id": course_id, "user_id": user_id}
        )
        return [LessonDone(*row) for row in rows]
