"""Every query of the scheduled learner messages: who is due (claimed in one set-based
INSERT ... SELECT ... ON CONFLICT DO NOTHING RETURNING each), what their messages say,
and the retention sweep of the claims."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    Subquery,
    Uuid,
    and_,
    any_,
    bindparam,
    delete,
    exists,
    func,
    literal,
    select,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from lyceum.models.assessments import Assignment, AttemptStatus, EssaySubmission, Quiz, QuizAttempt
from lyceum.models.courses import Course, Enrollment, EnrollmentStatus, Lesson, LessonCompletion
from lyceum.models.courses import Module as CourseModule
from lyceum.models.identity import User
from lyceum.models.notifications import Category, Channel, NotificationPreference
from lyceum.models.reminders import ReminderKind, ReminderSent

# A SELECT of the ids of users who turned a category off (see service.DeclinedUsers).
UserIds = Select[uuid.UUID]
# What a claim inserts: kind, user_id, subject_id, period, sent_at.
ClaimRows = Select[*tuple[Any, ...]]
UuidColumn = ColumnElement[uuid.UUID] | InstrumentedAttribute[uuid.UUID]


@dataclass(frozen=True, slots=True)
class CourseProgress:
    """One active enrollment as the digest and the nudge show it."""

    user_id: uuid.UUID
    full_name: str
    course_id: uuid.UUID
    course_title: str
    lessons: int
    completed: int
    completed_since: int
    next_lesson_id: uuid.UUID | None
    next_lesson_title: str | None


@dataclass(frozen=True, slots=True)
class DueItem:
    """A quiz or assignment closing soon."""

    id: uuid.UUID
    kind: str  # quiz | assignment
    title: str
    course_title: str
    closes_at: dt.datetime


def _reachable(user: type[User] = User) -> ColumnElement[bool]:
    return and_(user.is_active.is_(True), user.deleted_at.is_(None))


def _not_declined(user_id: UuidColumn, declined: UserIds | None) -> list[ColumnElement[bool]]:
    return [] if declined is None else [user_id.not_in(declined.scalar_subquery())]


def users_declining(category: Category, on_by_default: Sequence[Channel]) -> UserIds:
    """The users whose notification preferences turn `category` off on every channel:
    none enabled, and each channel that is on by default explicitly disabled."""
    preference = NotificationPreference
    enabled = preference.enabled
    return (
        select(preference.user_id)
        .where(preference.category == category)
        .group_by(preference.user_id)
        .having(
            func.count().filter(enabled.is_(True)) == 0,
            func.count().filter(enabled.is_(False), preference.channel.in_(on_by_default))
            == len(on_by_default),
        )
    )


class RemindersRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def _claim(self, rows: ClaimRows) -> list[tuple[uuid.UUID, uuid.UUID]]:
        """Insert the claims `rows` selects (user_id, subject_id, period, sent_at); return
        (user, subject) of those this transaction won. A claim another transaction holds
        waits for it, then counts as taken (or is won if that one rolled back)."""
        statement = (
            insert(ReminderSent)
            .from_select(["kind", "user_id", "subject_id", "period", "sent_at"], rows)
            .on_conflict_do_nothing()
            .returning(ReminderSent.user_id, ReminderSent.subject_id)
        )
        result = await self.session.execute(statement)
        return [(row.user_id, row.subject_id) for row in result]

    @staticmethod
    def _unclaimed(
        kind: ReminderKind,
        user_id: UuidColumn,
        subject_id: UuidColumn,
        period: ColumnElement[str],
    ) -> ColumnElement[bool]:
        # Skipping what is claimed lets each batch move on to the next learners.
        return ~exists().where(
            ReminderSent.kind == kind.value,
            ReminderSent.user_id == user_id,
            ReminderSent.subject_id == subject_id,
            ReminderSent.period == period,
        )

    # Weekly digest ----------------------------------------------------------------------

    async def claim_digests(
        self,
        *,
        zones: Sequence[str],
        period: str,
        tick: dt.datetime,
        declined: UserIds | None,
        limit: int,
    ) -> list[uuid.UUID]:
        """Claim this week's digest for up to `limit` learners whose time zone is one of
        `zones` (those where it is Monday morning now), who have an active enrollment."""
        if not zones:
            return []
        period_value = literal(period, String())
        rows = (
            select(
                literal(ReminderKind.weekly_digest.value, String()),
                User.id,
                User.id,
                period_value,
                literal(tick),
            )
            .where(
                User.timezone.in_(zones),
                _reachable(),
                exists().where(
                    Enrollment.user_id == User.id, Enrollment.status == EnrollmentStatus.active
                ),
                self._unclaimed(ReminderKind.weekly_digest, User.id, User.id, period_value),
                *_not_declined(User.id, declined),
            )
            .order_by(User.id)
            .limit(limit)
        )
        return [user for user, _ in await self._claim(rows)]

    async def progress(
        self,
        pairs: Sequence[tuple[uuid.UUID, uuid.UUID]] | None = None,
        *,
        users: Sequence[uuid.UUID] | None = None,
        since: dt.datetime,
        until: dt.datetime,
    ) -> list[CourseProgress]:
        """The active enrollments of `users` (or exactly the (user, course) `pairs`) with
        each course's lesson count, the learner's completed lessons (all, and within
        [since, until)) and the first lesson of the syllabus they have not completed; in
        one query, ordered by learner and enrollment date."""
        lessons = (
            select(func.count())
            .where(Lesson.course_id == Enrollment.course_id)
            .correlate(Enrollment)
            .scalar_subquery()
        )
        completed = (
            select(func.count())
            .where(
                LessonCompletion.user_id == Enrollment.user_id,
                LessonCompletion.course_id == Enrollment.course_id,
            )
            .correlate(Enrollment)
            .scalar_subquery()
        )
        completed_since = (
            select(func.count())
            .where(
                LessonCompletion.user_id == Enrollment.user_id,
                LessonCompletion.course_id == Enrollment.course_id,
                LessonCompletion.completed_at >= since,
                LessonCompletion.completed_at < until,
            )
            .correlate(Enrollment)
            .scalar_subquery()
        )
        next_lesson = (
            select(Lesson.id, Lesson.title)
            .join(CourseModule, CourseModule.id == Lesson.module_id)
            .where(
                Lesson.course_id == Enrollment.course_id,
                ~exists()
                .where(
                    LessonCompletion.user_id == Enrollment.user_id,
                    LessonCompletion.lesson_id == Lesson.id,
                )
                .correlate_except(LessonCompletion),
            )
            .order_by(CourseModule.position, Lesson.position, Lesson.id)
            .limit(1)
            .correlate(Enrollment)
            .lateral("next_lesson")
        )
        query = (
            select(
                Enrollment.user_id,
                User.full_name,
                Enrollment.course_id,
                Course.title,
                lessons.label("lessons"),
                completed.label("completed"),
                completed_since.label("completed_since"),
                next_lesson.c.id,
                next_lesson.c.title.label("next_title"),
            )
            .join(User, User.id == Enrollment.user_id)
            .join(Course, Course.id == Enrollment.course_id)
            .outerjoin(next_lesson, literal(True))
            .where(Enrollment.status == EnrollmentStatus.active)
            .order_by(Enrollment.user_id, Enrollment.enrolled_at, Enrollment.id)
        )
        # Arrays, not IN lists: one parameter each however many learners a batch holds.
        if users is not None:
            query = query.where(
                Enrollment.user_id == any_(bindparam("users", list(users), type_=ARRAY(Uuid())))
            )
        if pairs is not None:
            wanted = (
                func.unnest(
                    bindparam("pair_users", [user for user, _ in pairs], type_=ARRAY(Uuid())),
                    bindparam("pair_courses", [course for _, course in pairs], type_=ARRAY(Uuid())),
                )
                .table_valued("user_id", "course_id")
                .render_derived()
            )
            query = query.join(
                wanted,
                and_(
                    wanted.c.user_id == Enrollment.user_id,
                    wanted.c.course_id == Enrollment.course_id,
                ),
            )
        result = await self.session.execute(query)
        return [
            CourseProgress(
                user_id=row.user_id,
                full_name=row.full_name,
                course_id=row.course_id,
                course_title=row.title,
                lessons=int(row.lessons),
                completed=int(row.completed),
                completed_since=int(row.completed_since),
                next_lesson_id=row.id,
                next_lesson_title=row.next_title,
            )
            for row in result
        ]

    # Due soon ---------------------------------------------------------------------------

    @staticmethod
    def _closing(start: dt.datetime, end: dt.datetime) -> Subquery:
        """Published quizzes and assignments closing in (start, end]: a quiz closes at the
        earlier of its due time and the end of its window."""
        quiz_closes = func.least(Quiz.due_at, Quiz.available_until)
        quizzes = select(
            Quiz.id.label("item_id"),
            Quiz.course_id.label("course_id"),
            literal("quiz", String()).label("item_kind"),
            quiz_closes.label("closes_at"),
        ).where(Quiz.published.is_(True), quiz_closes > start, quiz_closes <= end)
        assignments = select(
            Assignment.id,
            Assignment.course_id,
            literal("assignment", String()),
            Assignment.due_at,
        ).where(Assignment.published.is_(True), Assignment.due_at > start, Assignment.due_at <= end)
        return union_all(quizzes, assignments).subquery("closing")

    async def claim_due_soon(
        self,
        *,
        tick: dt.datetime,
        within: dt.timedelta,
        declined: UserIds | None,
        limit: int,
    ) -> list[tuple[uuid.UUID, uuid.UUID]]:
        """Claim the reminder of each (enrolled learner, item) closing within `within` of
        `tick` that the learner has not submitted; once per deadline (a moved deadline
        is a new one). Returns (user, item) of the claims won."""
        closing = self._closing(tick, tick + within)
        period = func.to_char(
            func.timezone("UTC", closing.c.closes_at), 'YYYY-MM-DD"T"HH24:MI:SS"Z"'
        )
        submitted_quiz = exists().where(
            QuizAttempt.quiz_id == closing.c.item_id,
            QuizAttempt.user_id == Enrollment.user_id,
            QuizAttempt.status != AttemptStatus.in_progress,
        )
        submitted_essay = exists().where(
            EssaySubmission.assignment_id == closing.c.item_id,
            EssaySubmission.user_id == Enrollment.user_id,
        )
        rows = (
            select(
                literal(ReminderKind.due_soon.value, String()),
                Enrollment.user_id,
                closing.c.item_id,
                period,
                literal(tick),
            )
            .select_from(closing)
            .join(
                Enrollment,
                and_(
                    Enrollment.course_id == closing.c.course_id,
                    Enrollment.status == EnrollmentStatus.active,
                ),
            )
            .join(User, User.id == Enrollment.user_id)
            .where(
                _reachable(),
                ~and_(closing.c.item_kind == "quiz", submitted_quiz),
                ~and_(closing.c.item_kind == "assignment", submitted_essay),
                self._unclaimed(
                    ReminderKind.due_soon, Enrollment.user_id, closing.c.item_id, period
                ),
                *_not_declined(Enrollment.user_id, declined),
            )
            .order_by(closing.c.item_id, Enrollment.user_id)
            .limit(limit)
        )
        return await self._claim(rows)

    async def due_items(self, ids: Sequence[uuid.UUID]) -> list[DueItem]:
        """The quizzes and assignments `ids` names, with their course's title."""
        quiz_closes = func.least(Quiz.due_at, Quiz.available_until)
        quizzes = (
            select(Quiz.id, literal("quiz", String()), Quiz.title, Course.title, quiz_closes)
            .join(Course, Course.id == Quiz.course_id)
            .where(Quiz.id.in_(ids))
        )
        assignments = (
            select(
                Assignment.id,
                literal("assignment", String()),
                Assignment.title,
                Course.title,
                Assignment.due_at,
            )
            .join(Course, Course.id == Assignment.course_id)
            .where(Assignment.id.in_(ids))
        )
        result = await self.session.execute(union_all(quizzes, assignments))
        return [
            DueItem(id=item, kind=kind, title=title, course_title=course, closes_at=closes)
            for item, kind, title, course, closes in result
        ]

    # Inactivity nudge -------------------------------------------------------------------

    async def claim_nudges(
        self,
        *,
        tick: dt.datetime,
        idle: dt.timedelta,
        declined: UserIds | None,
        limit: int,
    ) -> list[tuple[uuid.UUID, uuid.UUID]]:
        """Claim a nudge for each active enrollment without activity for `idle`, unless
        one went out for it within the last `idle`. Returns (user, course) won. The period
        is the tick's UTC date: two workers on one tick collide on it."""
        period = literal(tick.astimezone(dt.UTC).date().isoformat(), String())
        recently_nudged = exists().where(
            ReminderSent.kind == ReminderKind.inactivity_nudge.value,
            ReminderSent.user_id == Enrollment.user_id,
            ReminderSent.subject_id == Enrollment.course_id,
            ReminderSent.sent_at > tick - idle,
        )
        rows = (
            select(
                literal(ReminderKind.inactivity_nudge.value, String()),
                Enrollment.user_id,
                Enrollment.course_id,
                period,
                literal(tick),
            )
            .join(User, User.id == Enrollment.user_id)
            .where(
                Enrollment.status == EnrollmentStatus.active,
                func.coalesce(Enrollment.last_activity_at, Enrollment.enrolled_at) <= tick - idle,
                _reachable(),
                ~recently_nudged,
                *_not_declined(Enrollment.user_id, declined),
            )
            .order_by(Enrollment.user_id, Enrollment.course_id)
            .limit(limit)
        )
        return await self._claim(rows)

    # Retention --------------------------------------------------------------------------

    async def delete_sent_before(self, cutoff: dt.datetime) -> int:
        """Forget claims older than `cutoff` (older than any period they guard)."""
        result = await self.session.execute(
            delete(ReminderSent).where(ReminderSent.sent_at < cutoff)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]
