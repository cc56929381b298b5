"""Enrollment and progress rules."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.assessments import service as assessments
from lyceum.courses.service import CourseService
from lyceum.kit.errors import Conflict, Forbidden, NotFound, PaymentRequired
from lyceum.kit.events import emit
from lyceum.learning import schemas
from lyceum.learning.repository import LearningRepository
from lyceum.models.courses import (
    Course,
    CourseStatus,
    Enrollment,
    EnrollmentStatus,
    Lesson,
    Review,
)
from lyceum.models.identity import User


async def complete_if_done(
    session: AsyncSession, course_id: uuid.UUID, user_id: uuid.UUID, now: dt.datetime
) -> bool:
    """Complete the learner's enrollment when every lesson is done and every required
    assessment is passed, emitting `course.completed` (and so the certificate) once.
    Called when a lesson is completed and when an assessment is passed, so whichever
    comes last completes the course."""
    enrollment = await LearningRepository(session).enrollment(course_id, user_id, for_update=True)
    if (
        enrollment is None
        or enrollment.status is not EnrollmentStatus.active
        or enrollment.completed_at is not None  # completed before: one completion per enrollment
    ):
        return False
    # The enrollment's row lock comes first: a lesson completed and a quiz passed at the
    # same moment are serialised, and the second to lock sees the first's commit.
    requirements = LearningRepository(session)
    if await requirements.lessons_left(course_id, user_id):
        return False
    if await assessments.unpassed_required(session, course_id, user_id):
        return False
    enrollment.status = EnrollmentStatus.completed
    enrollment.completed_at = now
    await session.flush()
    await emit(
        session,
        "course.completed",
        enrollment_id=str(enrollment.id),
        user_id=str(enrollment.user_id),
        course_id=str(enrollment.course_id),
    )
    return True


async def enroll_for_order(
    session: AsyncSession, *, course_id: uuid.UUID, user_id: uuid.UUID, now: dt.datetime
) -> Enrollment:
    """Enroll the buyer of a paid order (the payments domain calls this in the
    transaction that marks the order paid): no 402, whatever the course's status now;
    a cancelled enrollment is taken up again, an active one left as it is."""
    repo = LearningRepository(session)
    enrollment = await repo.enrollment(course_id, user_id, for_update=True)
    if enrollment is not None and enrollment.status is not EnrollmentStatus.cancelled:
        return enrollment
    if enrollment is None:
        enrollment = Enrollment(course_id=course_id, user_id=user_id, enrolled_at=now)
        await repo.add(enrollment)
    else:
        enrollment.status = EnrollmentStatus.active
        enrollment.enrolled_at = now
        enrollment.completed_at = None
    await session.flush()
    await repo.record_enrollment_change(course_id, 1)
    await emit(
        session,
        "enrollment.created",
        enrollment_id=str(enrollment.id),
        user_id=str(user_id),
        course_id=str(course_id),
    )
    return enrollment


async def end_paid_access(
    session: AsyncSession, *, course_id: uuid.UUID, user_id: uuid.UUID
) -> bool:
    """End the enrollment of a buyer whose order was refunded in full; False when there
    was none to end. Open chat sockets drop out at their next access check."""
    repo = LearningRepository(session)
    enrollment = await repo.enrollment(course_id, user_id, for_update=True)
    if enrollment is None or enrollment.status is EnrollmentStatus.cancelled:
        return False
    if await repo.has_paid_order(course_id, user_id):
        return False  # another purchase of the course still stands
    enrollment.status = EnrollmentStatus.cancelled
    await session.flush()
    await repo.record_enrollment_change(course_id, -1)
    return True


async def has_access(session: AsyncSession, *, course_id: uuid.UUID, user_id: uuid.UUID) -> bool:
    """Whether the user is enrolled (active or completed) in the course."""
    enrollment = await LearningRepository(session).enrollment(course_id, user_id)
    return enrollment is not None and enrollment.status is not EnrollmentStatus.cancelled


def percent(done: int, total: int) -> float:
    """Share of a course's lessons done, 0-100 with one decimal (0 for an empty course)."""
    return round(100 * done / total, 1) if total else 0.0


class LearningService:
    def __init__(self, session: AsyncSession, courses: CourseService, now: dt.datetime) -> None:
        self.session = session
        self.repo = LearningRepository(session)
        self.courses = courses
        self.now = now

    async def enroll(self, caller: User, course: Course) -> Enrollment:
        if course.status is not CourseStatus.published:
            raise Conflict("Only published courses take enrollments.")
        if course.price_cents > 0 and not await self.repo.has_paid_order(course.id, caller.id):
            # A learner who bought the course and left it comes back without paying again.
            raise PaymentRequired(
                "This course is paid: "
                f"buy it with POST /api/v1/courses/{course.id}/checkout (an Idempotency-Key "
                "header is required); you are enrolled once the payment is confirmed."
            )
        enrollment = await self.repo.enrollment(course.id, caller.id, for_update=True)
        if enrollment is not None and enrollment.status is not EnrollmentStatus.cancelled:
            raise Conflict("You are already enrolled in this course.")
        if enrollment is None:
            enrollment = Enrollment(course_id=course.id, user_id=caller.id, enrolled_at=self.now)
            await self.repo.add(enrollment)
        else:
            enrollment.status = EnrollmentStatus.active
            enrollment.enrolled_at = self.now
        await self.session.flush()
        # An appended change, not a count and a course-row update: enrolling in a
        # popular course waits for no other learner (the counters follow within seconds).
        await self.courses.record_stat_change(course.id, enrollments=1)
        await emit(
            self.session,
            "enrollment.created",
            enrollment_id=str(enrollment.id),
            user_id=str(caller.id),
            course_id=str(course.id),
        )
        return enrollment

    async def own_enrollment(self, caller: User, course_id: uuid.UUID) -> Enrollment:
        """The caller's enrollment in the course (active or completed), locked."""
        enrollment = await self.repo.enrollment(course_id, caller.id, for_update=True)
        if enrollment is None or enrollment.status is EnrollmentStatus.cancelled:
            raise NotFound("You are not enrolled in this course.")
        return enrollment

    async def unenroll(self, enrollment: Enrollment) -> None:
        enrollment.status = EnrollmentStatus.cancelled
        await self.session.flush()
        await self.courses.record_stat_change(enrollment.course_id, enrollments=-1)

    async def active_enrollment(self, caller: User, course: Course) -> Enrollment:
        """The caller's enrollment in a course they may see, locked; 403 without one."""
        enrollment = await self.repo.enrollment(course.id, caller.id, for_update=True)
        if enrollment is None or enrollment.status is EnrollmentStatus.cancelled:
            raise Forbidden("Enroll in the course first.", slug="not-enrolled")
        return enrollment

    async def complete_lesson(
        self, caller: User, lesson: Lesson, course: Course, enrollment: Enrollment
    ) -> schemas.CourseProgress:
        if await self.repo.add_completion(caller.id, lesson.id, course.id, self.now):
            await emit(
                self.session,
                "lesson.completed",
                user_id=str(caller.id),
                course_id=str(course.id),
                lesson_id=str(lesson.id),
            )
        enrollment.last_lesson_id = lesson.id
        enrollment.last_activity_at = self.now
        await complete_if_done(self.session, course.id, caller.id, self.now)
        await self.session.flush()
        return await self.progress(course, enrollment)

    async def progress(self, course: Course, enrollment: Enrollment) -> schemas.CourseProgress:
        items = [
            schemas.LessonProgress(
                id=lesson.id,
                title=lesson.title,
                module_id=lesson.module_id,
                completed=lesson.completed_at is not None,
                completed_at=lesson.completed_at,
            )
            for lesson in await self.repo.lesson_progress(course.id, enrollment.user_id)
        ]
        completed = sum(item.completed for item in items)
        resume = next((item.id for item in items if not item.completed), None)
        standings = await assessments.standings(self.session, course.id, enrollment.user_id)
        return schemas.CourseProgress(
            course_id=course.id,
            status=enrollment.status,
            percent=percent(completed, len(items)),
            completed_lessons=completed,
            total_lessons=len(items),
            last_lesson_id=enrollment.last_lesson_id,
            resume_lesson_id=resume or (items[-1].id if items else None),
            lessons=items,
            assessments=[
                schemas.AssessmentProgress(
                    id=standing.id,
                    kind=standing.kind,
                    title=standing.title,
                    required=standing.required,
                    passed=standing.passed,
                    percent=standing.percent,
                )
                for standing in standings
            ],
        )

    async def my_enrollments(
        self, caller: User, offset: int, limit: int
    ) -> tuple[list[schemas.EnrollmentOut], int]:
        rows, total = await self.repo.enrollments_of(caller.id, offset, limit)
        return [
            schemas.EnrollmentOut(
                id=row.id,
                course_id=row.course_id,
                course_title=row.course_title,
                course_slug=row.course_slug,
                status=row.status,
                enrolled_at=row.enrolled_at,
                completed_at=row.completed_at,
                percent=percent(row.completed, row.lessons),
            )
            for row in rows
        ], total

    async def roster(
        self, course: Course, offset: int, limit: int
    ) -> tuple[list[schemas.RosterEntry], int]:
        rows, total = await self.repo.roster(course.id, offset, limit)
        percents = await self.repo.percent_by_enrollment([e for e, _ in rows])
        return [
            schemas.RosterEntry(
                user_id=u.id,
                full_name=u.full_name,
                email=u.email,
                status=e.status,
                enrolled_at=e.enrolled_at,
                percent=percents.get(e.id, 0.0),
            )
            for e, u in rows
        ], total

    # Reviews --------------------------------------------------------------------------

    async def require_learner(self, caller: User, course: Course) -> None:
        """Only the course's learners (active or completed) review it."""
        if not await self.courses.is_learner(course.id, caller.id):
            raise Forbidden(
                "Only learners enrolled in the course may review it.", slug="not-enrolled"
            )

    async def upsert_review(
        self, caller: User, course: Course, data: schemas.ReviewIn
    ) -> tuple[schemas.ReviewOut, bool]:
        review = await self.repo.review(course.id, caller.id, for_update=True)
        created = False
        if review is None:
            try:
                async with self.session.begin_nested():
                    review = Review(
                        course_id=course.id, user_id=caller.id, rating=data.rating, text=data.text
                    )
                    await self.repo.add(review)
                created = True
            except IntegrityError:
                # The same learner's other request created it a moment ago: update that.
                review = await self.repo.review(course.id, caller.id, for_update=True)
                if review is None:
                    raise
        if created:
            await self.courses.record_stat_change(course.id, ratings=1, rating_points=data.rating)
        else:
            if review.rating != data.rating:
                await self.courses.record_stat_change(
                    course.id, rating_points=data.rating - review.rating
                )
            review.rating = data.rating
            review.text = data.text
        await self.session.flush()
        await self.session.refresh(review)
        return _review_out(review, caller.full_name), created

    async def own_review(self, caller: User, course_id: uuid.UUID) -> Review:
        review = await self.repo.review(course_id, caller.id, for_update=True)
        if review is None:
            raise NotFound("You have not reviewed this course.")
        return review

    async def delete_review(self, review: Review) -> None:
        await self.repo.delete_review(review)
        await self.courses.record_stat_change(
            review.course_id, ratings=-1, rating_points=-review.rating
        )

    async def reviews(
        self, course: Course, offset: int, limit: int
    ) -> tuple[list[schemas.ReviewOut], int]:
        rows, total = await self.repo.reviews(course.id, offset, limit)
        return [_review_out(review, name) for review, name in rows], total


def _review_out(review: Review, author: str) -> schemas.ReviewOut:
    return schemas.ReviewOut(
        id=review.id,
        course_id=review.course_id,
        user_id=review.user_id,
        author_name=author,
        rating=review.rating,
        text=review.text,
        created_at=review.created_at,
        updated_at=review.updated_at,
    )
