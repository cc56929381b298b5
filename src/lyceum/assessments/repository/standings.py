"""Where learners stand across a course's assessments: the gradebook's cells, the
required assessments course completion waits for, and the graded work in progress the
tutor must not do for them."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    CompoundSelect,
    DateTime,
    Integer,
    Row,
    Uuid,
    and_,
    bindparam,
    exists,
    false,
    func,
    literal,
    or_,
    select,
    true,
    union_all,
)

from lyceum.assessments.repository.base import Repository
from lyceum.models.assessments import (
    Assignment,
    AttemptItem,
    AttemptStatus,
    EssaySubmission,
    Quiz,
    QuizAttempt,
    ReviewPolicy,
    SubmissionStatus,
)
from lyceum.models.courses import Enrollment, EnrollmentStatus
from lyceum.models.identity import User


def _standings_of_learner() -> CompoundSelect[Any]:
    """`standings_of`'s statement, built once: the course's published quizzes, each with
    the learner's best graded attempt (a lateral aggregate, with how many there are),
    then its published assignments, each with the learner's released grade (at most
    one submission per learner and assignment), each part oldest first."""
    course_id = bindparam("course_id", type_=Uuid())
    user_id = bindparam("user_id", type_=Uuid())
    best = (
        select(
            func.max(QuizAttempt.percent).label("percent"),
            func.bool_or(QuizAttempt.passed).label("passed"),
            func.count().label("graded"),
        )
        .where(
            QuizAttempt.quiz_id == Quiz.id,
            QuizAttempt.user_id == user_id,
            QuizAttempt.status == AttemptStatus.graded,
        )
        .lateral("best")
    )
    quizzes = (
        select(
            Quiz.id,
            literal(0).label("part"),
            Quiz.title,
            Quiz.required,
            Quiz.weight,
            Quiz.pass_percent,
            (Quiz.review_policy == ReviewPolicy.none).label("hidden"),
            (best.c.graded > 0).label("graded"),
            best.c.percent,
            best.c.passed,
            Quiz.created_at,
        )
        .select_from(Quiz)
        .outerjoin(best, true())
        .where(Quiz.course_id == course_id, Quiz.published.is_(True))
    )
    released = (
        select(
            Assignment.id,
            literal(1),
            Assignment.title,
            Assignment.required,
            Assignment.weight,
            Assignment.pass_percent,
            false(),
            EssaySubmission.id.is_not(None),
            EssaySubmission.percent,
            EssaySubmission.passed,
            Assignment.created_at,
        )
        .select_from(Assignment)
        .outerjoin(
            EssaySubmission,
            and_(
                EssaySubmission.assignment_id == Assignment.id,
                EssaySubmission.user_id == user_id,
                EssaySubmission.status == SubmissionStatus.released,
            ),
        )
        .where(Assignment.course_id == course_id, Assignment.published.is_(True))
    )
    both: CompoundSelect[Any] = union_all(quizzes, released)
    columns = both.selected_columns
    return both.order_by(columns.part, columns.created_at, columns.id)


_STANDINGS_OF_LEARNER = _standings_of_learner()


class StandingRepository(Repository):
    async def published_assessments(
        self, course_id: uuid.UUID
    ) -> tuple[list[Quiz], list[Assignment]]:
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
        return list(quizzes.scalars()), list(assignments.scalars())

    async def standings_of(self, course_id: uuid.UUID, user_id: uuid.UUID) -> list[Row[Any]]:
        """One learner's standing on every published assessment of the course, in one
        statement (`_standings_of_learner`): rows of (id, part: 0 a quiz, 1 an
        assignment, title, required, weight, pass_percent, hidden: a quiz that shows no
        score, graded: whether a graded attempt or a released grade exists, percent,
        passed), quizzes first, each part oldest first. What a progress read and every completed lesson answer;
        the gradebook reads the same for many learners (`best_quiz_results`,
        `released_results`)."""
        rows = await self.session.execute(
            _STANDINGS_OF_LEARNER, {"course_id": course_id, "user_id": user_id}
        )
        return list(rows)

    async def learners(
        self, course_id: uuid.UUID, offset: int, limit: int | None
    ) -> tuple[list[User], int]:
        conditions = [
            Enrollment.course_id == course_id,
            Enrollment.status != EnrollmentStatus.cancelled,
        ]
        total = await self._count(Enrollment, conditions)
        query = (
            select(User)
            .join(Enrollment, Enrollment.user_id == User.id)
            .where(*conditions)
            .order_by(User.full_name, User.id)
            .offset(offset)
        )
        if limit is not None:
            query = query.limit(limit)
        return list((await self.session.execute(query)).scalars()), total

    async def best_quiz_results(
        self, course_id: uuid.UUID, user_ids: Sequence[uuid.UUID]
    ) -> dict[tuple[uuid.UUID, uuid.UUID], tuple[float, bool]]:
        """(quiz, learner) -> (best percent, passed any attempt), graded attempts only."""
        if not user_ids:
            return {}
        rows = await self.session.execute(
            select(
                QuizAttempt.quiz_id,
                QuizAttempt.user_id,
                func.max(QuizAttempt.percent),
                func.bool_or(QuizAttempt.passed),
            )
            .where(
                QuizAttempt.course_id == course_id,
                QuizAttempt.user_id.in_(set(user_ids)),
                QuizAttempt.status == AttemptStatus.graded,
            )
            .group_by(QuizAttempt.quiz_id, QuizAttempt.user_id)
        )
        return {
            (quiz_id, user_id): (float(best or 0.0), bool(passed))
            for quiz_id, user_id, best, passed in rows
        }

    async def released_results(
        self, course_id: uuid.UUID, user_ids: Sequence[uuid.UUID]
    ) -> dict[tuple[uuid.UUID, uuid.UUID], tuple[float, bool]]:
        """(assignment, learner) -> (percent, passed), released grades only."""
        if not user_ids:
            return {}
        rows = await self.session.execute(
            select(
                EssaySubmission.assignment_id,
                EssaySubmission.user_id,
                EssaySubmission.percent,
                EssaySubmission.passed,
            ).where(
                EssaySubmission.course_id == course_id,
                EssaySubmission.user_id.in_(set(user_ids)),
                EssaySubmission.status == SubmissionStatus.released,
            )
        )
        return {
            (assignment_id, user_id): (float(percent or 0.0), bool(passed))
            for assignment_id, user_id, percent, passed in rows
        }

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

    async def graded_prompts(
        self, user_id: uuid.UUID, course_id: uuid.UUID, now: dt.datetime, prompt_chars: int
    ) -> list[str]:
        """In one round trip: the question texts of the learner's attempts in progress in
        a course, then the openings (`prompt_chars`) of the prompts of the course's
        published assignments they have yet to submit and still could."""
        rows = await self.session.execute(
            _GRADED_PROMPTS,
            {"user_id": user_id, "course_id": course_id, "now": now, "prompt_chars": prompt_chars},
        )
        return [prompt for prompt in rows.scalars() if prompt]


def _graded_prompts() -> CompoundSelect[str]:
    """`graded_prompts`' statement, with its values as bound parameters: built once, so a
    question does not pay for building it (and its cache key) again."""
    user_id = bindparam("user_id", type_=Uuid())
    course_id = bindparam("course_id", type_=Uuid())
    now = bindparam("now", type_=DateTime(timezone=True))
    attempts = (
        select(AttemptItem.snapshot["prompt"].astext.label("prompt"))
        .join(QuizAttempt, QuizAttempt.id == AttemptItem.attempt_id)
        .where(
            QuizAttempt.user_id == user_id,
            QuizAttempt.course_id == course_id,
            QuizAttempt.status == AttemptStatus.in_progress,
            or_(QuizAttempt.deadline_at.is_(None), QuizAttempt.deadline_at > now),
        )
        .limit(500)
        .subquery()
    )
    submitted = exists().where(
        EssaySubmission.assignment_id == Assignment.id, EssaySubmission.user_id == user_id
    )
    assignments = (
        select(
            func.substr(Assignment.prompt, 1, bindparam("prompt_chars", type_=Integer())).label(
                "prompt"
            )
        )
        .where(
            Assignment.course_id == course_id,
            Assignment.published.is_(True),
            ~submitted,
            or_(
                Assignment.due_at.is_(None),
                Assignment.due_at > now,
                Assignment.late_policy != "refuse",
            ),
        )
        .limit(100)
        .subquery()
    )
    return union_all(select(attempts.c.prompt), select(assignments.c.prompt))


_GRADED_PROMPTS = _graded_prompts()
