"""Every query of the assessments domain."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from sqlalchemy import and_, delete, exists, func, or_, select, union_all
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.models.assessments import (
    Assignment,
    AttemptItem,
    AttemptStatus,
    AuditEntry,
    EssaySubmission,
    Question,
    QuestionKind,
    Quiz,
    QuizAttempt,
    QuizSection,
    ReviewPolicy,
    SimilarityFlag,
    SubmissionStatus,
)
from lyceum.models.base import Base
from lyceum.models.courses import Enrollment, EnrollmentStatus, Lesson, LessonCompletion
from lyceum.models.identity import User

M = TypeVar("M", bound=Base)
Published = TypeVar("Published", Quiz, Assignment)


@dataclass(frozen=True, slots=True)
class QuestionFilters:
    tag: str | None = None
    kind: QuestionKind | None = None
    difficulty: str | None = None


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


class AssessmentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def _count(self, model: type[Base], conditions: Sequence[Any]) -> int:
        query = select(func.count()).select_from(model).where(*conditions)
        return int((await self.session.execute(query)).scalar_one())

    async def _page(
        self,
        model: type[M],
        conditions: Sequence[Any],
        order_by: tuple[Any, ...],
        offset: int,
        limit: int,
    ) -> tuple[list[M], int]:
        """One page of `model` rows matching `conditions`, and how many match in all."""
        total = await self._count(model, conditions)
        rows = await self.session.scalars(
            select(model).where(*conditions).order_by(*order_by).offset(offset).limit(limit)
        )
        return list(rows), total

    async def _course_page(
        self,
        model: type[Published],
        course_id: uuid.UUID,
        published_only: bool,
        offset: int,
        limit: int,
    ) -> tuple[list[Published], int]:
        """A course's quizzes or assignments (only the published ones for learners),
        oldest first."""
        conditions: list[Any] = [model.course_id == course_id]
        if published_only:
            conditions.append(model.published.is_(True))
        return await self._page(model, conditions, (model.created_at, model.id), offset, limit)

    async def add(self, entity: object) -> None:
        self.session.add(entity)
        await self.session.flush()

    async def add_all(self, entities: Sequence[object]) -> None:
        self.session.add_all(entities)
        await self.session.flush()

    async def delete(self, entity: object) -> None:
        await self.session.delete(entity)
        await self.session.flush()

    async def user_names(self, user_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
        if not user_ids:
            return {}
        rows = await self.session.execute(
            select(User.id, User.full_name).where(User.id.in_(set(user_ids)))
        )
        return {user_id: name for user_id, name in rows}  # noqa: C416 (Row, not tuple)

    # Question bank --------------------------------------------------------------------

    async def question(self, question_id: uuid.UUID) -> Question | None:
        return await self.session.get(Question, question_id)

    async def questions(
        self, course_id: uuid.UUID, filters: QuestionFilters, offset: int, limit: int
    ) -> tuple[list[Question], int]:
        conditions: list[Any] = [Question.course_id == course_id]
        if filters.tag is not None:
            conditions.append(Question.tags.contains([filters.tag]))
        if filters.kind is not None:
            conditions.append(Question.kind == filters.kind)
        if filters.difficulty is not None:
            conditions.append(Question.difficulty == filters.difficulty)
        return await self._page(
            Question,
            conditions,
            (
                Question.created_at,
                Question.id,
            ),
            offset,
            limit,
        )

    async def questions_by_id(
        self, course_id: uuid.UUID, ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, Question]:
        if not ids:
            return {}
        rows = await self.session.execute(
            select(Question).where(Question.course_id == course_id, Question.id.in_(set(ids)))
        )
        return {question.id: question for question in rows.scalars()}

    async def tagged_questions(self, course_id: uuid.UUID, tag: str) -> list[Question]:
        rows = await self.session.execute(
            select(Question)
            .where(Question.course_id == course_id, Question.tags.contains([tag]))
            .order_by(Question.id)
        )
        return list(rows.scalars())

    async def tagged_question_ids(self, course_id: uuid.UUID, tag: str) -> set[uuid.UUID]:
        rows = await self.session.execute(
            select(Question.id).where(
                Question.course_id == course_id, Question.tags.contains([tag])
            )
        )
        return set(rows.scalars())

    async def question_in_a_quiz(self, question_id: uuid.UUID) -> bool:
        query = select(exists().where(QuizSection.question_id == question_id))
        return bool((await self.session.execute(query)).scalar_one())

    # Quizzes --------------------------------------------------------------------------

    async def quiz(self, quiz_id: uuid.UUID, *, for_update: bool = False) -> Quiz | None:
        return await self.session.get(Quiz, quiz_id, with_for_update=for_update)

    async def quizzes(
        self, course_id: uuid.UUID, *, published_only: bool, offset: int, limit: int
    ) -> tuple[list[Quiz], int]:
        return await self._course_page(Quiz, course_id, published_only, offset, limit)

    async def sections(self, quiz_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[QuizSection]]:
        found: dict[uuid.UUID, list[QuizSection]] = {quiz_id: [] for quiz_id in quiz_ids}
        if not quiz_ids:
            return found
        rows = await self.session.execute(
            select(QuizSection)
            .where(QuizSection.quiz_id.in_(set(quiz_ids)))
            .order_by(QuizSection.quiz_id, QuizSection.position)
        )
        for section in rows.scalars():
            found[section.quiz_id].append(section)
        return found

    async def replace_sections(self, quiz_id: uuid.UUID, sections: list[QuizSection]) -> None:
        await self.session.execute(delete(QuizSection).where(QuizSection.quiz_id == quiz_id))
        await self.add_all(sections)

    async def quiz_has_attempts(self, quiz_id: uuid.UUID) -> bool:
        query = select(exists().where(QuizAttempt.quiz_id == quiz_id))
        return bool((await self.session.execute(query)).scalar_one())

    # Attempts -------------------------------------------------------------------------

    async def attempt(
        self, attempt_id: uuid.UUID, *, for_update: bool = False
    ) -> QuizAttempt | None:
        return await self.session.get(QuizAttempt, attempt_id, with_for_update=for_update)

    async def attempt_with_quiz(
        self, attempt_id: uuid.UUID, *, for_update: bool = False
    ) -> tuple[QuizAttempt, Quiz] | None:
        """The attempt (locked if asked) and its quiz, in one round trip."""
        query = (
            select(QuizAttempt, Quiz)
            .join(Quiz, Quiz.id == QuizAttempt.quiz_id)
            .where(QuizAttempt.id == attempt_id)
        )
        if for_update:
            query = query.with_for_update(of=QuizAttempt)
        row = (await self.session.execute(query)).first()
        return (row[0], row[1]) if row is not None else None

    async def open_attempt(self, quiz_id: uuid.UUID, user_id: uuid.UUID) -> QuizAttempt | None:
        query = (
            select(QuizAttempt)
            .where(
                QuizAttempt.quiz_id == quiz_id,
                QuizAttempt.user_id == user_id,
                QuizAttempt.status == AttemptStatus.in_progress,
            )
            .with_for_update()
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def attempts_used(self, quiz_id: uuid.UUID, user_id: uuid.UUID) -> int:
        query = select(func.coalesce(func.max(QuizAttempt.number), 0)).where(
            QuizAttempt.quiz_id == quiz_id, QuizAttempt.user_id == user_id
        )
        return int((await self.session.execute(query)).scalar_one())

    async def items(self, attempt_id: uuid.UUID) -> list[AttemptItem]:
        rows = await self.session.execute(
            select(AttemptItem)
            .where(AttemptItem.attempt_id == attempt_id)
            .order_by(AttemptItem.position)
        )
        return list(rows.scalars())

    async def attempts(
        self,
        quiz_id: uuid.UUID,
        *,
        user_id: uuid.UUID | None,
        offset: int,
        limit: int,
    ) -> tuple[list[QuizAttempt], int]:
        conditions: list[Any] = [QuizAttempt.quiz_id == quiz_id]
        if user_id is not None:
            conditions.append(QuizAttempt.user_id == user_id)
        return await self._page(
            QuizAttempt,
            conditions,
            (
                QuizAttempt.started_at.desc(),
                QuizAttempt.id,
            ),
            offset,
            limit,
        )

    async def expired_attempt_ids(self, before: dt.datetime, limit: int) -> list[uuid.UUID]:
        """Attempts in progress whose deadline (with its grace) has passed."""
        rows = await self.session.execute(
            select(QuizAttempt.id)
            .where(
                QuizAttempt.status == AttemptStatus.in_progress,
                QuizAttempt.deadline_at < before,
            )
            .order_by(QuizAttempt.deadline_at)
            .limit(limit)
        )
        return list(rows.scalars())

    # Assignments ----------------------------------------------------------------------

    async def assignment(
        self, assignment_id: uuid.UUID, *, for_update: bool = False
    ) -> Assignment | None:
        return await self.session.get(Assignment, assignment_id, with_for_update=for_update)

    async def assignments(
        self, course_id: uuid.UUID, *, published_only: bool, offset: int, limit: int
    ) -> tuple[list[Assignment], int]:
        return await self._course_page(Assignment, course_id, published_only, offset, limit)

    async def assignment_has_submissions(self, assignment_id: uuid.UUID) -> bool:
        query = select(exists().where(EssaySubmission.assignment_id == assignment_id))
        return bool((await self.session.execute(query)).scalar_one())

    async def graded_prompts(
        self, user_id: uuid.UUID, course_id: uuid.UUID, now: dt.datetime, prompt_chars: int
    ) -> list[str]:
        """In one round trip: the question texts of the learner's attempts in progress in
        a course, then the openings (`prompt_chars`) of the prompts of the course's
        published assignments they have yet to submit and still could."""
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
            select(func.substr(Assignment.prompt, 1, prompt_chars).label("prompt"))
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
        rows = await self.session.execute(
            union_all(select(attempts.c.prompt), select(assignments.c.prompt))
        )
        return [prompt for prompt in rows.scalars() if prompt]

    async def submission(
        self, submission_id: uuid.UUID, *, for_update: bool = False
    ) -> EssaySubmission | None:
        return await self.session.get(EssaySubmission, submission_id, with_for_update=for_update)

    async def submission_of(
        self, assignment_id: uuid.UUID, user_id: uuid.UUID
    ) -> EssaySubmission | None:
        query = select(EssaySubmission).where(
            EssaySubmission.assignment_id == assignment_id, EssaySubmission.user_id == user_id
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def submissions(
        self,
        *,
        course_id: uuid.UUID | None = None,
        assignment_id: uuid.UUID | None = None,
        statuses: Sequence[SubmissionStatus] = (),
        offset: int,
        limit: int,
    ) -> tuple[list[tuple[EssaySubmission, Assignment, str, bool]], int]:
        """(submission, assignment, learner name, flagged), oldest first: the review
        queue order."""
        conditions: list[Any] = []
        if course_id is not None:
            conditions.append(EssaySubmission.course_id == course_id)
        if assignment_id is not None:
            conditions.append(EssaySubmission.assignment_id == assignment_id)
        if statuses:
            conditions.append(EssaySubmission.status.in_(list(statuses)))
        total = await self._count(EssaySubmission, conditions)
        flagged = exists().where(SimilarityFlag.submission_id == EssaySubmission.id)
        rows = await self.session.execute(
            select(EssaySubmission, Assignment, User.full_name, flagged)
            .join(Assignment, Assignment.id == EssaySubmission.assignment_id)
            .join(User, User.id == EssaySubmission.user_id)
            .where(*conditions)
            .order_by(EssaySubmission.submitted_at, EssaySubmission.id)
            .offset(offset)
            .limit(limit)
        )
        return [(sub, assignment, name, bool(flag)) for sub, assignment, name, flag in rows], total

    async def near_duplicates(
        self, submission: EssaySubmission, vector: Sequence[float], threshold: float
    ) -> list[tuple[uuid.UUID, float]]:
        """Other learners' submissions to the same assignment at least `threshold`
        similar (cosine) to `vector`."""
        distance = EssaySubmission.embedding.cosine_distance(list(vector))
        rows = await self.session.execute(
            select(EssaySubmission.id, (1 - distance).label("similarity"))
            .where(
                EssaySubmission.assignment_id == submission.assignment_id,
                EssaySubmission.user_id != submission.user_id,
                EssaySubmission.embedding.is_not(None),
                distance <= 1 - threshold,
            )
            .order_by(distance)
            .limit(50)
        )
        return [(other_id, float(similarity)) for other_id, similarity in rows]

    async def flag_pair(
        self, first: uuid.UUID, second: uuid.UUID, similarity: float, at: dt.datetime
    ) -> None:
        """Both directions; flagging a pair again changes nothing (a rerun job)."""
        rows = [
            {
                "submission_id": a,
                "other_submission_id": b,
                "similarity": similarity,
                "flagged_at": at,
            }
            for a, b in ((first, second), (second, first))
        ]
        await self.session.execute(insert(SimilarityFlag).values(rows).on_conflict_do_nothing())

    async def similar_to(
        self, submission_id: uuid.UUID
    ) -> list[tuple[uuid.UUID, uuid.UUID, float]]:
        """(other submission, its learner, similarity), most similar first."""
        rows = await self.session.execute(
            select(
                SimilarityFlag.other_submission_id,
                EssaySubmission.user_id,
                SimilarityFlag.similarity,
            )
            .join(EssaySubmission, EssaySubmission.id == SimilarityFlag.other_submission_id)
            .where(SimilarityFlag.submission_id == submission_id)
            .order_by(SimilarityFlag.similarity.desc())
        )
        return [(other, user, float(similarity)) for other, user, similarity in rows]

    # Audit ----------------------------------------------------------------------------

    async def audit(
        self, course_id: uuid.UUID, subject_id: uuid.UUID | None, offset: int, limit: int
    ) -> tuple[list[tuple[AuditEntry, str | None]], int]:
        conditions: list[Any] = [AuditEntry.course_id == course_id]
        if subject_id is not None:
            conditions.append(AuditEntry.subject_id == subject_id)
        total = await self._count(AuditEntry, conditions)
        rows = await self.session.execute(
            select(AuditEntry, User.full_name)
            .outerjoin(User, User.id == AuditEntry.actor_id)
            .where(*conditions)
            .order_by(AuditEntry.seq.desc())
            .offset(offset)
            .limit(limit)
        )
        return [(entry, name) for entry, name in rows], total

    # Gradebook and completion ---------------------------------------------------------

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

    async def standings(self, course_id: uuid.UUID, user_id: uuid.UUID) -> list[Standing]:
        """The learner's standing on every published assessment of the course."""
        quizzes, assignments = await self.published_assessments(course_id)
        quiz_results = await self.best_quiz_results(course_id, [user_id])
        essay_results = await self.released_results(course_id, [user_id])
        standings = []
        for quiz in quizzes:
            percent, passed = quiz_results.get((quiz.id, user_id), (None, False))
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
        for assignment in assignments:
            percent, passed = essay_results.get((assignment.id, user_id), (None, False))
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
                and_(
                    Quiz.course_id == course_id,
                    Quiz.published.is_(True),
                    Quiz.required.is_(True),
                    ~passed_quiz,
                )
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
