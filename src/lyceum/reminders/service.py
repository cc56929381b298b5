"""The scheduled learner messages: the weekly progress digest (Monday 09:00 in each
learner's own time zone), due-soon reminders (24 h before a quiz or assignment closes)
and inactivity nudges (7 days idle on an active enrollment, at most once a week).

Each send claims (kind, learner, subject, period) in `reminders_sent` with one set-based
INSERT ... ON CONFLICT DO NOTHING RETURNING, and calls `notify` for what it won in the same
transaction: two workers on the same tick send once, and a rolled-back tick leaves the
claims free for the next one. The time is the tick's, never the clock's, so the tests
freeze it by passing it in.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.identity.schemas import TIME_ZONES
from lyceum.models.notifications import Category, Channel
from lyceum.notifications.service import default_enabled, notify
from lyceum.reminders.repository import (
    CourseProgress,
    RemindersRepository,
    UserIds,
    users_declining,
)

# The digest goes out on Monday (weekday 0) from 09:00 local time; a tick that runs up to
# three hours late (workers down at nine) still sends it, later that Monday morning, but
# a learner who enrolls on Tuesday waits for next Monday.
DIGEST_WEEKDAY = 0
DIGEST_AT = dt.time(9, 0)
DIGEST_CATCH_UP = dt.timedelta(hours=3)
DUE_SOON_WITHIN = dt.timedelta(hours=24)
IDLE_AFTER = dt.timedelta(days=7)
# Claims per transaction: a large school's Monday is many short transactions, which two
# workers can share, rather than one long one.
BATCH_SIZE = 500

WEEKLY_DIGEST = Category.weekly_digest
REMINDERS = Category.reminders


class Notify(Protocol):
    """The part of `lyceum.notifications.service.notify` reminders use: in-app rows and
    channel deliveries for `user_ids`, in the caller's transaction, honouring each
    user's preferences (the tests pass a recorder instead)."""

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
    ) -> int: ...


# The users who turned a category off on every channel, as a SELECT of user ids (for a
# category name): they are not even claimed (`notify` honours the preferences per
# channel for everyone else).
DeclinedUsers = Callable[[Category], UserIds]


def declined_in_preferences(category: Category) -> UserIds:
    """The users who turned `category` off on every channel in their notification
    preferences (a channel they never chose keeps the notifications domain's default)."""
    on_by_default = [channel for channel in Channel if default_enabled(category, channel)]
    return users_declining(category, on_by_default)


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def digest_zones(tick: dt.datetime) -> tuple[list[str], str]:
    """The time zones where `tick` falls in the digest's Monday-morning window, and that
    Monday's date (the digest's period). Every zone in the window shares the date: no two
    zones are a week apart."""
    zones: list[str] = []
    monday = ""
    for name in TIME_ZONES:
        local = tick.astimezone(_zone(name))
        if local.weekday() != DIGEST_WEEKDAY:
            continue
        start = dt.datetime.combine(local.date(), DIGEST_AT, tzinfo=local.tzinfo)
        if start <= local < start + DIGEST_CATCH_UP:
            zones.append(name)
            monday = local.date().isoformat()
    return zones, monday


def _percent(progress: CourseProgress) -> float:
    return round(100 * progress.completed / progress.lessons, 1) if progress.lessons else 0.0


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


class ReminderService:
    def __init__(
        self,
        session: AsyncSession,
        *,
        base_url: str,
        notify: Notify = notify,
        declined: DeclinedUsers | None = declined_in_preferences,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        self.session = session
        self.repo = RemindersRepository(session)
        self.base_url = base_url.rstrip("/")
        self.notify = notify
        self.declined = declined
        self.batch_size = batch_size

    def _declined(self, category: Category) -> UserIds | None:
        return None if self.declined is None else self.declined(category)

    def _lesson_url(self, lesson_id: uuid.UUID) -> str:
        return f"{self.base_url}/api/v1/lessons/{lesson_id}"

    def _course_url(self, course_id: uuid.UUID) -> str:
        return f"{self.base_url}/api/v1/courses/{course_id}"

    async def send_digests(self, tick: dt.datetime) -> int:
        """Claim and send one batch of weekly digests due at `tick`; returns how many
        were claimed (a full batch means more may wait)."""
        zones, monday = digest_zones(tick)
        users = await self.repo.claim_digests(
            zones=zones,
            period=monday,
            tick=tick,
            declined=self._declined(WEEKLY_DIGEST),
            limit=self.batch_size,
        )
        if not users:
            return 0
        rows = await self.repo.progress(users=users, since=tick - dt.timedelta(days=7), until=tick)
        by_user: dict[uuid.UUID, list[CourseProgress]] = defaultdict(list)
        for row in rows:
            by_user[row.user_id].append(row)
        week = dt.date.fromisoformat(monday)
        for user_id, courses in by_user.items():
            done = sum(course.completed_since for course in courses)
            await self.notify(
                self.session,
                user_ids=[user_id],
                category=WEEKLY_DIGEST,
                kind="weekly_progress",
                title="Your week on Lyceum",
                body=(
                    f"{_plural(done, 'lesson')} completed this week across "
                    f"{_plural(len(courses), 'course')}."
                ),
                url=f"{self.base_url}/api/v1/me/enrollments",
                template="weekly_progress",
                context={
                    "full_name": courses[0].full_name,
                    # The mail writes the week in the reader's language (`days`).
                    "week_first": (week - dt.timedelta(days=7)).isoformat(),
                    "week_last": (week - dt.timedelta(days=1)).isoformat(),
                    "courses": [
                        {
                            "title": course.course_title,
                            "percent": _percent(course),
                            "next_lesson_title": course.next_lesson_title,
                            "next_lesson_url": (
                                self._lesson_url(course.next_lesson_id)
                                if course.next_lesson_id is not None
                                else None
                            ),
                            "lessons_completed_this_week": course.completed_since,
                        }
                        for course in courses
                    ],
                },
                dedupe_key=f"weekly_digest:{monday}",
            )
        return len(users)

    async def send_due_soon(self, tick: dt.datetime) -> int:
        """Claim and send one batch of due-soon reminders (one `notify` per item for
        every learner it claimed); returns how many (learner, item) were claimed."""
        claims = await self.repo.claim_due_soon(
            tick=tick,
            within=DUE_SOON_WITHIN,
            declined=self._declined(REMINDERS),
            limit=self.batch_size,
        )
        if not claims:
            return 0
        learners: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
        for user_id, item_id in claims:
            learners[item_id].append(user_id)
        for item in await self.repo.due_items(list(learners)):
            due_at = f"{item.closes_at.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC"
            path = "quizzes" if item.kind == "quiz" else "assignments"
            url = f"{self.base_url}/api/v1/{path}/{item.id}"
            await self.notify(
                self.session,
                user_ids=learners[item.id],
                category=REMINDERS,
                kind="due_soon",
                title=f"Due soon: {item.title}",
                body=f'"{item.title}" in {item.course_title} closes at {due_at}.',
                url=url,
                template="due_soon",
                # Shared by every recipient: the delivery adds each one's own full_name.
                context={
                    "item_title": item.title,
                    "course_title": item.course_title,
                    # ISO 8601: the mail writes it in the reader's language (`when`).
                    "due_at": item.closes_at.astimezone(dt.UTC).isoformat(),
                    "url": url,
                },
                dedupe_key=f"due_soon:{item.id}:{item.closes_at.astimezone(dt.UTC).isoformat()}",
                data={"item_id": str(item.id), "item_kind": item.kind},
            )
        return len(claims)

    async def send_nudges(self, tick: dt.datetime) -> int:
        """Claim and send one batch of inactivity nudges; returns how many (learner,
        course) were claimed."""
        claims = await self.repo.claim_nudges(
            tick=tick,
            idle=IDLE_AFTER,
            declined=self._declined(REMINDERS),
            limit=self.batch_size,
        )
        if not claims:
            return 0
        day = tick.astimezone(dt.UTC).date().isoformat()
        for course in await self.repo.progress(claims, since=tick, until=tick):
            url = (
                self._lesson_url(course.next_lesson_id)
                if course.next_lesson_id is not None
                else self._course_url(course.course_id)
            )
            await self.notify(
                self.session,
                user_ids=[course.user_id],
                category=REMINDERS,
                kind="inactivity_nudge",
                title=f"Pick up {course.course_title} again",
                body=(
                    f"It has been a week since you last studied {course.course_title}; "
                    + (
                        f'next up: "{course.next_lesson_title}".'
                        if course.next_lesson_title is not None
                        else "your course is waiting."
                    )
                ),
                url=url,
                template="inactivity_nudge",
                context={
                    "full_name": course.full_name,
                    "course_title": course.course_title,
                    "next_lesson_title": course.next_lesson_title,
                    "url": url,
                },
                dedupe_key=f"inactivity_nudge:{course.course_id}:{day}",
                data={"course_id": str(course.course_id)},
            )
        return len(claims)

    async def forget_sent_before(self, cutoff: dt.datetime) -> int:
        """Delete claims older than `cutoff`; returns how many."""
        return await self.repo.delete_sent_before(cutoff)
