"""The rollups, kept current incrementally: each run takes the events written since the
last one (the `rollups` cursor: every transaction below its upper bound has finished,
`analytics.cursor_repository`) and adds them into five tables with one
`INSERT ... SELECT ... GROUP BY ... ON CONFLICT DO UPDATE` each, in the transaction that
moves the cursor, so an event is counted exactly once whatever runs concurrently.

What each column counts (a day is the event's UTC date of `occurred_at`; "server" means
recorded by the platform, not sent by an app):

| table (key) | column | counts |
|---|---|---|
| `analytics_course_daily` (course_id, day) | events | every event of the course |
| | time_ms | the sum of their `duration_ms` (none: 0) |
| | views | `viewed` events (of the course page or anything in it) |
| | completions | server `completed` events of a lesson (lessons completed) |
| | enrollments | `enrolled` events |
| | tutor_questions | `asked` events (questions to the tutor) |
| | chat_messages | `commented` events (course chat messages) |
| `analytics_lesson_daily` (lesson_id, day) | views, completions, time_ms | as above, over the events placed in the lesson (the lesson, its quiz, its assignment) |
| `analytics_learner_course` (user_id, course_id) | first_at, last_at | the learner's first and last event time in the course |
| | events, time_ms | as above, the learner's |
| | lessons_completed | server `completed` events of the course's lessons |
| | tutor_questions | `asked` events |
| `analytics_learner_lesson` (user_id, lesson_id) | first_at, last_at, views, time_ms | as above, in the lesson |
| | completed_at | the earliest server `completed` event of the lesson (none: null) |
| `analytics_learner_daily` (user_id, day) | events, time_ms | every event of the learner, in any course or none |

`recompute_from_scratch` rewrites all five from the stored events (after a change of
these definitions; the tests check that the incremental runs agree with it). Events of
dropped partitions are gone from a recomputation but stay counted in the rollups.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.analytics import cursor_repository as cursor
from lyceum.analytics import repository

CURSOR = "rollups"


@dataclass(frozen=True)
class RollupRun:
    lo: int
    hi: int

    @property
    def empty(self) -> bool:
        return self.hi <= self.lo


async def run_rollups(session: AsyncSession) -> RollupRun:
    """Fold the events written since the last run into the rollups (and move the cursor)
    in the session's transaction. Two runs at once serialise on the cursor's row."""
    window = await cursor.advance(session, CURSOR)
    if not window.empty:
        await repository.apply_window(session, window)
    return RollupRun(window.lo, window.hi)


async def recompute_from_scratch(session: AsyncSession) -> RollupRun:
    """Rewrite every rollup from the events stored now, and put the cursor where that
    leaves it, in the session's transaction (the cursor's row lock keeps the incremental
    job out meanwhile)."""
    window = await cursor.advance(session, CURSOR)
    await repository.rebuild_rollups(session, window.hi)
    return RollupRun(0, window.hi)
