"""Every query of the analytics reports and the learner's dashboard. Each reads the
rollups kept by the analytics jobs or a bounded, indexed slice of the source tables (one
course's enrollments, one quiz's attempts, one learner's rows): never the raw events."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    Boolean,
    Text,
    Uuid,
    and_,
    bindparam,
    delete,
    extract,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import distinct_on, insert
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.models.analytics import (
    CourseDaily,
    LearnerCourse,
    LearnerDaily,
    LearnerLesson,
    TutorQuestion,
)
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
from lyceum.models.courses import (
    Course,
    Enrollment,
    EnrollmentStatus,
    Lesson,
    LessonCompletion,
    Module,
)
from lyceum.models.identity import User
from lyceum.models.tutor import Message

# Unanswered questions clustered per tutor report: the most recent ones of the window.
MAX_TOPIC_QUESTIONS = 1000
RECENT_SCORES = 10

# Every tutor question writes one (`add_tutor_question`): built once, its values bound,
# since building the INSERT cost more CPU than SQLAlchemy's cached execution of it.
_ADD_TUTOR_QUESTION = (
    insert(TutorQuestion)
    .values(
        message_id=bindparam("message_id", type_=Uuid()),
        user_id=bindparam("user_id", type_=Uuid()),
        course_id=bindparam("course_id", type_=Uuid()),
        lesson_id=bindparam("lesson_id", type_=Uuid()),
        answered=bindparam("answered", type_=Boolean()),
        question=bindparam("question", type_=Text()),
        embedding=bindparam("embedding", type_=TutorQuestion.embedding.type),
        asked_at=func.now(),
    )
    .on_conflict_do_nothing(index_elements=[TutorQuestion.message_id])
)


class AnalyticsReportRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # --- what a report is about ---------------------------------------------------

    async def quiz(self, quiz_id: uuid.UUID) -> Quiz | None:
        return await self.session.get(Quiz, quiz_id)

    async def assignment(self, assignment_id: uuid.UUID) -> Assignment | None:
        return await self.session.get(Assignment, assignment_id)

    # --- course overview ----------------------------------------------------------

    async def enrollment_summary(self, course_id: uuid.UUID, now: dt.datetime) -> Any:
        """Enrollment counts by status, learners (not cancelled) active over 7 and 30 days and the
        median seconds from enrollment to completion, in one pass over the course's
        enrollments (with their rollup row)."""
        last = func.greatest(LearnerCourse.last_at, Enrollment.last_activity_at)
        completed = Enrollment.status == EnrollmentStatus.completed
        staying = Enrollment.status != EnrollmentStatus.cancelled
        seconds = extract("epoch", Enrollment.completed_at - Enrollment.enrolled_at)
        query = (
            select(
                func.count().label("total"),
                func.count().filter(Enrollment.status == EnrollmentStatus.active).label("active"),
                func.count().filter(completed).label("completed"),
                func.count()
                .filter(Enrollment.status == EnrollmentStatus.cancelled)
                .label("cancelled"),
                func.count().filter(staying, last >= now - dt.timedelta(days=7)).label("active_7d"),
                func.count()
                .filter(staying, last >= now - dt.timedelta(days=30))
                .label("active_30d"),
                func.percentile_cont(0.5)
                .within_group(seconds)
                .filter(and_(completed, Enrollment.completed_at.is_not(None)))
                .label("median_seconds"),
            )
            .select_from(Enrollment)
            .outerjoin(
                LearnerCourse,
                and_(
                    LearnerCourse.user_id == Enrollment.user_id,
                    LearnerCourse.course_id == Enrollment.course_id,
                ),
            )
            .where(Enrollment.course_id == course_id)
        )
        return (await self.session.execute(query)).one()

    async def course_days(
        self, course_id: uuid.UUID, first: dt.date, last: dt.date
    ) -> Sequence[CourseDaily]:
        query = (
            select(CourseDaily)
            .where(
                CourseDaily.course_id == course_id,
                CourseDaily.day >= first,
                CourseDaily.day <= last,
            )
            .order_by(CourseDaily.day)
        )
        return (await self.session.scalars(query)).all()

    # --- lesson funnel ------------------------------------------------------------

    async def lesson_funnel(self, course_id: uuid.UUID) -> Sequence[Any]:
        """The course's lessons in syllabus order, each with reached, completed, dropped
        and the median and mean time on task (see `reports.AnalyticsReports.lessons`)."""
        syllabus = (
            select(
                Lesson.id.label("lesson_id"),
                func.row_number()
                .over(order_by=(Module.position, Lesson.position, Lesson.id))
                .label("idx"),
            )
            .join(Module, Module.id == Lesson.module_id)
            .where(Lesson.course_id == course_id)
            .cte("syllabus")
        )
        rollup = (
            select(
                LearnerLesson.user_id,
                LearnerLesson.lesson_id,
                LearnerLesson.time_ms,
                LearnerLesson.completed_at,
            )
            .where(LearnerLesson.course_id == course_id)
            .subquery("rollup")
        )
        done = (
            select(LessonCompletion.user_id, LessonCompletion.lesson_id)
            .where(LessonCompletion.course_id == course_id)
            .subquery("done")
        )
        user_id = func.coalesce(rollup.c.user_id, done.c.user_id)
        lesson_id = func.coalesce(rollup.c.lesson_id, done.c.lesson_id)
        touched = (
            select(
                user_id.label("user_id"),
                lesson_id.label("lesson_id"),
                rollup.c.time_ms,
                or_(done.c.user_id.is_not(None), rollup.c.completed_at.is_not(None)).label(
                    "completed"
                ),
                Enrollment.status,
            )
            .select_from(
                rollup.join(
                    done,
                    and_(
                        done.c.user_id == rollup.c.user_id,
                        done.c.lesson_id == rollup.c.lesson_id,
                    ),
                    full=True,
                )
            )
            .join(
                Enrollment,
                and_(Enrollment.user_id == user_id, Enrollment.course_id == course_id),
            )
            .cte("touched")
        )
        timed = touched.c.time_ms > 0
        stats = (
            select(
                touched.c.lesson_id,
                func.count().label("reached"),
                func.count().filter(touched.c.completed).label("completed"),
                func.percentile_cont(0.5)
                .within_group(touched.c.time_ms)
                .filter(timed)
                .label("median_time_ms"),
                func.avg(touched.c.time_ms).filter(timed).label("mean_time_ms"),
            )
            .group_by(touched.c.lesson_id)
            .subquery("stats")
        )
        furthest = (
            select(touched.c.user_id, func.max(syllabus.c.idx).label("idx"))
            .join(syllabus, syllabus.c.lesson_id == touched.c.lesson_id)
            .where(touched.c.status != EnrollmentStatus.completed)
            .group_by(touched.c.user_id)
            .subquery("furthest")
        )
        drops = (
            select(furthest.c.idx, func.count().label("dropped"))
            .group_by(furthest.c.idx)
            .subquery("drops")
        )
        query = (
            select(
                Module.id.label("module_id"),
                Module.title.label("module_title"),
                Module.position.label("module_position"),
                Lesson.id.label("lesson_id"),
                Lesson.title.label("lesson_title"),
                Lesson.position.label("lesson_position"),
                func.coalesce(stats.c.reached, 0).label("reached"),
                func.coalesce(stats.c.completed, 0).label("completed"),
                func.coalesce(drops.c.dropped, 0).label("dropped"),
                stats.c.median_time_ms,
                stats.c.mean_time_ms,
            )
            .select_from(syllabus)
            .join(Lesson, Lesson.id == syllabus.c.lesson_id)
            .join(Module, Module.id == Lesson.module_id)
            .outerjoin(stats, stats.c.lesson_id == syllabus.c.lesson_id)
            .outerjoin(drops, drops.c.idx == syllabus.c.idx)
            .order_by(syllabus.c.idx)
        )
        return (await self.session.execute(query)).all()

    async def learner_count(self, course_id: uuid.UUID) -> int:
        query = select(func.count()).where(Enrollment.course_id == course_id)
        return int(await self.session.scalar(query) or 0)

    # --- quiz items ---------------------------------------------------------------

    def _first_graded_attempts(self, quiz_id: uuid.UUID) -> Any:
        return (
            select(QuizAttempt.id)
            .where(QuizAttempt.quiz_id == quiz_id, QuizAttempt.status == AttemptStatus.graded)
            .order_by(QuizAttempt.user_id, QuizAttempt.number)
            .ext(distinct_on(QuizAttempt.user_id))
        )

    async def counted_attempt_items(self, quiz_id: uuid.UUID) -> Sequence[Any]:
        """The items of each learner's first graded attempt at the quiz."""
        query = select(
            AttemptItem.attempt_id,
            AttemptItem.position,
            AttemptItem.question_id,
            AttemptItem.kind,
            AttemptItem.points,
            AttemptItem.awarded,
            AttemptItem.response,
        ).where(AttemptItem.attempt_id.in_(self._first_graded_attempts(quiz_id)))
        return (await self.session.execute(query)).all()

    async def question_snapshots(self, quiz_id: uuid.UUID) -> Sequence[Any]:
        """One snapshot per question drawn in those attempts (prompt, options, key), the
        most recent attempt's: the question as learners last saw it."""
        query = (
            select(
                AttemptItem.question_id,
                AttemptItem.snapshot["prompt"].astext.label("prompt"),
                AttemptItem.snapshot["options"].label("options"),
                AttemptItem.snapshot["key"]["correct"].label("correct"),
            )
            .join(QuizAttempt, QuizAttempt.id == AttemptItem.attempt_id)
            .where(AttemptItem.attempt_id.in_(self._first_graded_attempts(quiz_id)))
            .order_by(AttemptItem.question_id, QuizAttempt.started_at.desc())
            .ext(distinct_on(AttemptItem.question_id))
        )
        return (await self.session.execute(query)).all()

    # --- rubric -------------------------------------------------------------------

    async def settled_grades(self, assignment_id: uuid.UUID) -> Sequence[Any]:
        """The final grade of every submission an instructor settled (or that was
        released automatically): reviewed and released ones."""
        query = select(EssaySubmission.final, EssaySubmission.status).where(
            EssaySubmission.assignment_id == assignment_id,
            EssaySubmission.status.in_([SubmissionStatus.reviewed, SubmissionStatus.released]),
            EssaySubmission.final.is_not(None),
        )
        return (await self.session.execute(query)).all()

    # --- tutor insights -----------------------------------------------------------

    def _asked(self, course_id: uuid.UUID, start: dt.datetime, end: dt.datetime) -> Any:
        return and_(
            TutorQuestion.course_id == course_id,
            TutorQuestion.asked_at >= start,
            TutorQuestion.asked_at < end,
        )

    async def tutor_by_lesson(
        self, course_id: uuid.UUID, start: dt.datetime, end: dt.datetime
    ) -> Sequence[Any]:
        query = (
            select(
                TutorQuestion.lesson_id,
                Lesson.title.label("lesson_title"),
                func.count().label("questions"),
                func.count().filter(TutorQuestion.answered).label("answered"),
            )
            .outerjoin(Lesson, Lesson.id == TutorQuestion.lesson_id)
            .where(self._asked(course_id, start, end))
            .group_by(TutorQuestion.lesson_id, Lesson.title)
            .order_by(func.count().desc(), Lesson.title)
        )
        return (await self.session.execute(query)).all()

    async def unanswered_questions(
        self, course_id: uuid.UUID, start: dt.datetime, end: dt.datetime
    ) -> Sequence[Any]:
        """The window's most recent unanswered questions that have their embedding."""
        query = (
            select(
                TutorQuestion.message_id,
                TutorQuestion.question,
                TutorQuestion.embedding,
            )
            .where(
                self._asked(course_id, start, end),
                TutorQuestion.answered.is_(False),
                TutorQuestion.embedding.is_not(None),
            )
            .order_by(TutorQuestion.asked_at.desc())
            .limit(MAX_TOPIC_QUESTIONS)
        )
        return (await self.session.execute(query)).all()

    async def pending_embeddings(
        self, course_id: uuid.UUID, start: dt.datetime, end: dt.datetime
    ) -> int:
        query = select(func.count()).where(
            self._asked(course_id, start, end),
            TutorQuestion.answered.is_(False),
            TutorQuestion.embedding.is_(None),
        )
        return int(await self.session.scalar(query) or 0)

    async def forget_conversation_questions(self, conversation_id: uuid.UUID) -> None:
        """Delete the questions asked in a tutor conversation (its messages still exist:
        run before they go)."""
        messages = select(Message.id).where(Message.conversation_id == conversation_id)
        await self.session.execute(
            delete(TutorQuestion).where(TutorQuestion.message_id.in_(messages))
        )

    async def forget_learner_questions(self, user_id: uuid.UUID) -> None:
        """Delete every question a learner asked the tutor."""
        await self.session.execute(delete(TutorQuestion).where(TutorQuestion.user_id == user_id))

    async def add_tutor_question(
        self,
        *,
        message_id: uuid.UUID,
        user_id: uuid.UUID,
        course_id: uuid.UUID,
        lesson_id: uuid.UUID | None,
        answered: bool,
        question: str,
        embedding: Sequence[float] | None = None,
    ) -> None:
        """Record a question once (a repeated event changes nothing), asked now (the
        emitting transaction's time), with its `embedding` when the caller has it."""
        await self.session.execute(
            _ADD_TUTOR_QUESTION,
            {
                "message_id": message_id,
                "user_id": user_id,
                "course_id": course_id,
                "lesson_id": lesson_id,
                "answered": answered,
                "question": question,
                "embedding": embedding,
            },
        )

    async def questions_to_embed(self, message_ids: Sequence[uuid.UUID]) -> Sequence[Any]:
        """The named questions that the material did not answer and that have no
        embedding yet (only those are grouped into topics)."""
        query = select(TutorQuestion.message_id, TutorQuestion.question).where(
            TutorQuestion.message_id.in_(message_ids),
            TutorQuestion.answered.is_(False),
            TutorQuestion.embedding.is_(None),
        )
        return (await self.session.execute(query)).all()

    async def set_embedding(self, message_id: uuid.UUID, vector: list[float]) -> None:
        await self.session.execute(
            update(TutorQuestion)
            .where(
                TutorQuestion.message_id == message_id,
                TutorQuestion.embedding.is_(None),
            )
            .values(embedding=vector)
        )

    # --- learners at risk ---------------------------------------------------------

    async def active_learners(self, course_id: uuid.UUID) -> Sequence[Any]:
        """The course's active enrollments with their learner, last activity, lessons
        completed and when they last completed one."""
        done = (
            select(
                LessonCompletion.user_id,
                func.count().label("lessons_completed"),
                func.max(LessonCompletion.completed_at).label("last_completion_at"),
            )
            .where(LessonCompletion.course_id == course_id)
            .group_by(LessonCompletion.user_id)
            .subquery("done")
        )
        query = (
            select(
                Enrollment.user_id,
                User.full_name,
                User.email,
                Enrollment.enrolled_at,
                func.greatest(LearnerCourse.last_at, Enrollment.last_activity_at).label(
                    "last_activity_at"
                ),
                func.coalesce(done.c.lessons_completed, 0).label("lessons_completed"),
                done.c.last_completion_at,
            )
            .join(User, User.id == Enrollment.user_id)
            .outerjoin(
                LearnerCourse,
                and_(
                    LearnerCourse.user_id == Enrollment.user_id,
                    LearnerCourse.course_id == course_id,
                ),
            )
            .outerjoin(done, done.c.user_id == Enrollment.user_id)
            .where(Enrollment.course_id == course_id, Enrollment.status == EnrollmentStatus.active)
        )
        return (await self.session.execute(query)).all()

    async def lesson_count(self, course_id: uuid.UUID) -> int:
        query = select(func.count()).where(Lesson.course_id == course_id)
        return int(await self.session.scalar(query) or 0)

    async def quiz_percents(self, course_id: uuid.UUID) -> dict[uuid.UUID, list[float]]:
        """Each learner's graded quiz percents in the course, oldest first."""
        query = (
            select(QuizAttempt.user_id, QuizAttempt.percent)
            .where(
                QuizAttempt.course_id == course_id,
                QuizAttempt.status == AttemptStatus.graded,
                QuizAttempt.percent.is_not(None),
            )
            .order_by(QuizAttempt.user_id, QuizAttempt.graded_at, QuizAttempt.number)
        )
        found: dict[uuid.UUID, list[float]] = {}
        for user_id, percent in (await self.session.execute(query)).all():
            found.setdefault(user_id, []).append(float(percent or 0.0))
        return found

    # --- the learner's dashboard --------------------------------------------------

    async def learner_days(self, user_id: uuid.UUID) -> Sequence[Any]:
        """The learner's days with activity (one rollup row each)."""
        query = select(LearnerDaily.day, LearnerDaily.events, LearnerDaily.time_ms).where(
            LearnerDaily.user_id == user_id
        )
        return (await self.session.execute(query)).all()

    async def learner_courses(self, user_id: uuid.UUID) -> Sequence[Any]:
        """The learner's enrollments that are not cancelled, with lessons completed and
        the course's lesson count, most recently enrolled first."""
        total = (
            select(func.count())
            .where(Lesson.course_id == Enrollment.course_id)
            .scalar_subquery()
            .label("lessons_total")
        )
        completed = (
            select(func.count())
            .where(
                LessonCompletion.user_id == user_id,
                LessonCompletion.course_id == Enrollment.course_id,
            )
            .scalar_subquery()
            .label("lessons_completed")
        )
        query = (
            select(Course.id, Course.title, Enrollment.status, completed, total)
            .join(Course, Course.id == Enrollment.course_id)
            .where(Enrollment.user_id == user_id, Enrollment.status != EnrollmentStatus.cancelled)
            .order_by(Enrollment.enrolled_at.desc(), Course.id)
        )
        return (await self.session.execute(query)).all()

    async def recent_scores(self, user_id: uuid.UUID) -> Sequence[Any]:
        """The learner's last grades they can see: graded quiz attempts of quizzes that
        show scores, released essay grades; newest first."""
        quizzes = (
            select(
                literal("quiz").label("kind"),
                QuizAttempt.id,
                Quiz.title,
                QuizAttempt.course_id,
                QuizAttempt.score,
                QuizAttempt.max_score,
                QuizAttempt.percent,
                QuizAttempt.graded_at.label("at"),
            )
            .join(Quiz, Quiz.id == QuizAttempt.quiz_id)
            .where(
                QuizAttempt.user_id == user_id,
                QuizAttempt.status == AttemptStatus.graded,
                QuizAttempt.graded_at.is_not(None),
                Quiz.review_policy != ReviewPolicy.none,
            )
            .order_by(QuizAttempt.graded_at.desc())
            .limit(RECENT_SCORES)
        )
        essays = (
            select(
                literal("essay").label("kind"),
                EssaySubmission.id,
                Assignment.title,
                EssaySubmission.course_id,
                EssaySubmission.points,
                Assignment.points,
                EssaySubmission.percent,
                EssaySubmission.released_at.label("at"),
            )
            .join(Assignment, Assignment.id == EssaySubmission.assignment_id)
            .where(
                EssaySubmission.user_id == user_id,
                EssaySubmission.status == SubmissionStatus.released,
                EssaySubmission.released_at.is_not(None),
                EssaySubmission.points.is_not(None),
            )
            .order_by(EssaySubmission.released_at.desc())
            .limit(RECENT_SCORES)
        )
        rows = [
            *(await self.session.execute(quizzes)).all(),
            *(await self.session.execute(essays)).all(),
        ]
        rows.sort(key=lambda row: row.at, reverse=True)
        return rows[:RECENT_SCORES]
