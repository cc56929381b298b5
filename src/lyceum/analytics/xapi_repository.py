"""Every query of the xAPI statement feed and of the job that forwards statements to an
external Learning Record Store.

Both read only rows whose writing transaction has finished (`tx` below the oldest
running transaction, `analytics.cursor_repository`): such a set never changes
afterwards, so a feed paged over it by (received_at, id) neither skips nor repeats a
row while events keep arriving, and the forwarding job's watermark never passes a row
that commits later.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import and_, cast, func, literal, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from lyceum.analytics.cursor_repository import Window
from lyceum.analytics.vocabulary import ObjectType, Verb
from lyceum.models.analytics import AnalyticsEvent, Xid8
from lyceum.models.assessments import Quiz, ReviewPolicy
from lyceum.models.courses import CourseInstructor


@dataclass(frozen=True)
class StatementScope:
    """Whose statements a caller may read: one learner's (`user_id`), some courses'
    (`course_ids`), the courses `taught_by` an instructor, any combination (all must
    hold), or (none set) everyone's."""

    user_id: uuid.UUID | None = None
    course_ids: Sequence[uuid.UUID] | None = None
    taught_by: uuid.UUID | None = None
    # A learner reading: mark passed/failed events of quizzes that hide their scores.
    as_learner: bool = False


@dataclass(frozen=True)
class FeedEvent:
    """A feed row and whether its score is hidden from the reader (a learner's own
    passed/failed event of a quiz with review policy "none")."""

    event: AnalyticsEvent
    hide_score: bool


@dataclass(frozen=True)
class StatementFilter:
    """One page of the feed: rows of finished transactions below `horizon`, stored
    after `since` (exclusive) and up to `until` (inclusive), after the (received_at, id)
    position `after`, at most `limit`."""

    horizon: int
    since: dt.datetime | None
    until: dt.datetime | None
    after: tuple[dt.datetime, int] | None
    limit: int


def _xid8(value: int) -> ColumnElement[str]:
    return cast(str(value), Xid8())


def _scoped(scope: StatementScope) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if scope.user_id is not None:
        conditions.append(AnalyticsEvent.user_id == scope.user_id)
    if scope.course_ids is not None:
        conditions.append(AnalyticsEvent.course_id.in_(scope.course_ids))
    if scope.taught_by is not None:
        taught = select(CourseInstructor.course_id).where(
            CourseInstructor.user_id == scope.taught_by
        )
        conditions.append(AnalyticsEvent.course_id.in_(taught))
    return conditions


async def horizon(session: AsyncSession) -> int:
    """The oldest transaction still running: every row below it is final."""
    value = (
        await session.execute(text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text"))
    ).scalar_one()
    return int(value)


async def statement_events(
    session: AsyncSession, scope: StatementScope, page: StatementFilter
) -> list[FeedEvent]:
    """The page's events in (received_at, id) order, one more than `limit` (to tell
    whether another page follows), each with whether its score is hidden from the
    reader (joined with the quiz's review policy, for a learner)."""
    hidden: ColumnElement[bool] = literal(False)
    if scope.as_learner:
        hidden = func.coalesce(Quiz.review_policy == ReviewPolicy.none, False)
    query = select(AnalyticsEvent, hidden).where(
        AnalyticsEvent.tx < _xid8(page.horizon), *_scoped(scope)
    )
    if scope.as_learner:
        query = query.outerjoin(
            Quiz,
            and_(
                AnalyticsEvent.object_type == ObjectType.quiz.value,
                AnalyticsEvent.verb.in_([Verb.passed.value, Verb.failed.value]),
                Quiz.id == AnalyticsEvent.object_id,
            ),
        )
    if page.since is not None:
        query = query.where(AnalyticsEvent.received_at > page.since)
    if page.until is not None:
        query = query.where(AnalyticsEvent.received_at <= page.until)
    if page.after is not None:
        query = query.where(
            tuple_(AnalyticsEvent.received_at, AnalyticsEvent.id) > tuple_(*page.after)
        )
    query = query.order_by(AnalyticsEvent.received_at, AnalyticsEvent.id).limit(page.limit + 1)
    rows = (await session.execute(query)).all()
    return [FeedEvent(event=event, hide_score=bool(hide)) for event, hide in rows]


async def consistent_through(session: AsyncSession, horizon: int) -> dt.datetime:
    """A time before which every statement stored is already in the feed (xAPI's
    `X-Experience-API-Consistent-Through`): the earliest of now, the start of any other
    open transaction of this database (it may still write events stamped from then),
    and the earliest event of a transaction at or above the horizon."""
    value = (
        await session.execute(
            text(
                "SELECT least(clock_timestamp(),"
                " (SELECT min(xact_start) FROM pg_stat_activity"
                "   WHERE datname = current_database() AND pid <> pg_backend_pid()"
                "   AND backend_type = 'client backend' AND xact_start IS NOT NULL),"
                " (SELECT min(received_at) FROM analytics_events"
                "   WHERE tx >= CAST(:horizon AS xid8)))"
            ),
            {"horizon": str(horizon)},
        )
    ).scalar_one()
    moment: dt.datetime = value
    return moment


@dataclass(frozen=True)
class WindowEvent:
    """An event of a forwarding window with its transaction id as an integer."""

    tx: int
    event: AnalyticsEvent


async def window_events(
    session: AsyncSession, window: Window, *, from_tx: int, after_id: int | None, limit: int
) -> list[WindowEvent]:
    """Events of `window` from transaction `from_tx` on (past `after_id` within it), in
    (tx, id) order, at most `limit`."""
    query = select(AnalyticsEvent, AnalyticsEvent.tx).where(
        AnalyticsEvent.tx >= _xid8(max(window.lo, from_tx)),
        AnalyticsEvent.tx < _xid8(window.hi),
    )
    if after_id is not None:
        query = query.where(
            tuple_(AnalyticsEvent.tx, AnalyticsEvent.id) > tuple_(_xid8(from_tx), after_id)
        )
    query = query.order_by(AnalyticsEvent.tx, AnalyticsEvent.id).limit(limit)
    rows = (await session.execute(query)).all()
    return [WindowEvent(tx=int(tx), event=event) for event, tx in rows]


async def job_in_flight(session: AsyncSession, task_name: str) -> bool:
    """Whether a job of `task_name` is queued, running, or waiting for its retry."""
    found = await session.execute(
        text(
            "SELECT EXISTS (SELECT 1 FROM procrastinate_jobs"
            " WHERE task_name = :task AND status IN ('todo', 'doing'))"
        ),
        {"task": task_name},
    )
    return bool(found.scalar_one())


__all__ = [
    "FeedEvent",
    "StatementFilter",
    "StatementScope",
    "WindowEvent",
    "consistent_through",
    "horizon",
    "job_in_flight",
    "statement_events",
    "window_events",
]
