"""Every query of enrollment and progress, including what completing a course needs to
know of its lessons and assessments (read from their tables, so learning imports no
other domain's code)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.models.assessments import (
    Assignment,
    AttemptStatus,
    EssaySubmission,
    Quiz,
    QuizAttempt,
    ReviewPolicy,
    SubmissionStatus,
)
from lyceum.models.courses import (
    Certificate,
    Course,
    Enrollment,
    EnrollmentStatus,
    Lesson,
    LessonCompletion,
    Review,
)
from lyceum.models.identity import User


@dataclass(frozen=True, slots=True)
class Standing:
    """Where one learner stands on one published assessment."""

    id: uuid.UUID
    kind: Literal["quiz", "assignment"]
    title: str
    required: bool
    weight: float
    pass_percent: float
    percent: float | None
    passed: bool


class LearningRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def enrollment(
        self, course_id: uuid.UUID, user_id: uuid.UUID, *, for_update: bool = False
    ) -> Enrollment | None:
        query = select(Enrollment).where(
            Enrollment.course_id == course_id, Enrollment.user_id == user_id
        )
        if for_update:
            query = query.with_for_update()
        return (await self.session.execute(query)).scalar_one_or_none()

    async def enrollment_by_id(self, enrollment_id: uuid.UUID) -> Enrollment | None:
        return await self.session.get(Enrollment, enrollment_id)

    async def add(self, entity: object) -> None:
        self.session.add(entity)
        await self.session.flush()

    async def completions(
        self, course_id: uuid.UUID, user_id: uuid.UUID
    ) -> dict[uuid.UUID, LessonCompletion]:
        rows = await self.session.execute(
            select(LessonCompletion).where(
                LessonCompletion.course_id == course_id, LessonCompletion.user_id == user_id
            )
        )
        return {row.lesson_id: row for row in rows.scalars()}

    async def completion(self, lesson_id: uuid.UUID, user_id: uuid.UUID) -> LessonCompletion | None:
        return await self.session.get(LessonCompletion, (user_id, lesson_id))

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
            .where(LessonCompletion.course_id.in_(course_ids))
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
    ) -> tuple[list[tuple[Enrollment, Course]], int]:
        conditions = [
            Enrollment.user_id == user_id,
            Enrollment.status != EnrollmentStatus.cancelled,
        ]
        total = (
            await self.session.execute(
                select(func.count()).select_from(Enrollment).where(*conditions)
            )
        ).scalar_one()
        rows = await self.session.execute(
            select(Enrollment, Course)
            .join(Course, Course.id == Enrollment.course_id)
            .where(*conditions)
            .order_by(Enrollment.enrolled_at.desc(), Enrollment.id)
            .offset(offset)
            .limit(limit)
        )
        return [(e, c) for e, c in rows], int(total)

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
        done = exists().where(
            LessonCompletion.lesson_id == Lesson.id, LessonCompletion.user_id == user_id
        )
        query = select(func.count()).select_from(Lesson).where(Lesson.course_id == course_id, ~done)
        return int((await self.session.execute(query)).scalar_one())

    async def unpassed_required(self, course_id: uuid.UUID, user_id: uuid.UUID) -> int:
        """How many of the course's published required assessments the learner has not
        passed, in one query."""
        passed_quiz = exists().where(
            QuizAttempt.quiz_id == Quiz.id,
            QuizAttempt.user_id == user_id,
            QuizAttempt.status == AttemptStatus.graded,
            QuizAttempt.passed.is_(True),
        )
        passed_essay = exists().where(
            EssaySubmission.assignment_id == Assignment.id,
            EssaySubmission.user_id == user_id,
            EssaySubmission.status == SubmissionStatus.released,
            EssaySubmission.passed.is_(True),
        )
        quizzes = (
            select(func.count())
            .select_from(Quiz)
            .where(
                Quiz.course_id == course_id,
                Quiz.published.is_(True),
                Quiz.required.is_(True),
                ~passed_quiz,
            )
            .scalar_subquery()
        )
        assignments = (
            select(func.count())
            .select_from(Assignment)
            .where(
                Assignment.course_id == course_id,
                Assignment.published.is_(True),
                Assignment.required.is_(True),
                ~passed_essay,
            )
            .scalar_subquery()
        )
        return int((await self.session.execute(select(quizzes + assignments))).scalar_one())

    async def standings(self, course_id: uuid.UUID, user_id: uuid.UUID) -> list[Standing]:
        """The learner's standing on every published assessment of the course (quizzes,
        then assignments, each oldest first): the best graded attempt of a quiz, the
        released grade of an assignment."""
        quizzes = await self.session.execute(
            select(Quiz)
            .where(Quiz.course_id == course_id, Quiz.published.is_(True))
            .order_by(Quiz.created_at, Quiz.id)
        )
        assignments = await self.session.execute(
            select(Assignment)
            .where(Assignment.course_id == course_id, Assignment.published.is_(True))
            .order_by(Assignment.created_at, Assignment.id)
        )
        attempts = await self.session.execute(
            select(
                QuizAttempt.quiz_id, func.max(QuizAttempt.percent), func.bool_or(QuizAttempt.passed)
            )
            .where(
                QuizAttempt.course_id == course_id,
                QuizAttempt.user_id == user_id,
                QuizAttempt.status == AttemptStatus.graded,
            )
            .group_by(QuizAttempt.quiz_id)
        )
        best = {quiz_id: (float(top or 0.0), bool(passed)) for quiz_id, top, passed in attempts}
        released = await self.session.execute(
            select(
                EssaySubmission.assignment_id, EssaySubmission.percent, EssaySubmission.passed
            ).where(
                EssaySubmission.course_id == course_id,
                EssaySubmission.user_id == user_id,
                EssaySubmission.status == SubmissionStatus.released,
            )
        )
        graded = {
            assignment_id: (float(percent or 0.0), bool(passed))
            for assignment_id, percent, passed in released
        }
        standings = []
        for quiz in quizzes.scalars():
            percent, passed = best.get(quiz.id, (None, False))
            if quiz.review_policy is ReviewPolicy.none:
                percent = None  # the quiz shows its learners no score
            standings.append(
                Standing(
                    quiz.id,
                    "quiz",
                    quiz.title,
                    quiz.required,
                    quiz.weight,
                    quiz.pass_percent,
                    percent,
                    passed,
                )
            )
        for assignment in assignments.scalars():
            percent, passed = graded.get(assignment.id, (None, False))
            standings.append(
                Standing(
                    assignment.id,
                    "assignment",
                    assignment.title,
                    assignment.required,
                    assignment.weight,
                    assignment.pass_percent,
                    percent,
                    passed,
                )
            )
        return standings
