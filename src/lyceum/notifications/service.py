"""Telling people what happened: `notify` (the one way every domain notifies users),
the notification centre, preferences, one-click unsubscribe, and course announcements.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from markdown_it import MarkdownIt
from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.config import Settings
from lyceum.kit import live
from lyceum.kit.errors import NotFound
from lyceum.kit.events import emit
from lyceum.kit.jobs import PRIORITIES, Queue
from lyceum.kit.metrics import NOTIFICATIONS
from lyceum.kit.security import constant_time_equal
from lyceum.models.courses import Course
from lyceum.models.identity import User
from lyceum.models.notifications import (
    Announcement,
    Category,
    Channel,
    DeliveryStatus,
    Notification,
    NotificationDelivery,
)
from lyceum.notifications import schemas
from lyceum.notifications.repository import (
    ChannelJob,
    FanOut,
    NotificationRepository,
    enrolled_learners,
)

logger = structlog.get_logger("lyceum.notifications")

DELIVER_EMAIL_TASK = "lyceum.notifications.deliver_email"
DELIVER_TASK = "lyceum.notifications.deliver"
# Socket.IO event of a new notification (in the user's personal room).
LIVE_EVENT = "notification"
DEFAULT_BATCH_SIZE = 250

# Channels pushed to phones: they are on by default only for what a learner would want
# to hear about at once.
PUSH_BY_DEFAULT = frozenset({Category.grades, Category.announcements, Category.reminders})
# What a user cannot turn off: mail about their account's security, and the receipts
# and refund confirmations of what they bought (transactional records a buyer must
# get, like an invoice; they only follow the buyer's own purchases).
LOCKED: frozenset[tuple[Category, Channel]] = frozenset(
    {(Category.security, Channel.email), (Category.payments, Channel.email)}
)

CHANNEL_JOBS: tuple[ChannelJob, ...] = (
    ChannelJob(Channel.email, Queue.mail.value, DELIVER_EMAIL_TASK, PRIORITIES[Queue.mail]),
    ChannelJob(
        Channel.sms, Queue.notifications.value, DELIVER_TASK, PRIORITIES[Queue.notifications]
    ),
    ChannelJob(
        Channel.push, Queue.notifications.value, DELIVER_TASK, PRIORITIES[Queue.notifications]
    ),
)


def default_enabled(category: Category, channel: Channel) -> bool:
    """A channel's setting for a category while the user has not chosen."""
    if channel in (Channel.in_app, Channel.email):
        return True
    if channel is Channel.sms:
        return False
    return category in PUSH_BY_DEFAULT


def is_locked(category: Category, channel: Channel) -> bool:
    return (category, channel) in LOCKED


async def notify(
    session: AsyncSession,
    *,
    user_ids: Sequence[uuid.UUID] | Select[Any],
    category: Category,
    kind: str,
    title: str,
    body: str,
    url: str | None,
    template: str,
    context: dict[str, Any],
    dedupe_key: str | None = None,
    data: dict[str, Any] | None = None,
    now: dt.datetime | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> int:
    """Notify every user of `user_ids` (a list, or a SELECT of user ids) in the
    caller's transaction: one in-app notification each (hidden from the centre where
    the user turned in-app off), and a job per batch of recipients for each channel
    they want, held until their quiet hours end for SMS and push. With `dedupe_key`,
    a user who already has a notification of that key gets nothing new. Returns the
    number of notifications written. Once committed, online users get it at once
    over their socket."""
    at = now or dt.datetime.now(dt.UTC)
    spec = FanOut(
        category=category,
        kind=kind,
        title=title[:300],
        body=body,
        url=url,
        data=data or {},
        dedupe_key=dedupe_key,
        template=template,
        context=context,
        defaults={channel: default_enabled(category, channel) for channel in Channel},
        locked=frozenset(channel for channel in Channel if is_locked(category, channel)),
        jobs=CHANNEL_JOBS,
        batch_size=batch_size,
        now=at,
    )
    listening = live.listening()
    count, written = await NotificationRepository(session).fan_out(
        user_ids, spec, returning=listening
    )
    if listening:
        live.push_after_commit(
            session,
            LIVE_EVENT,
            [
                (
                    row.user_id,
                    {
                        "id": str(row.notification_id),
                        "category": category.value,
                        "kind": kind,
                        "title": spec.title,
                        "body": body,
                        "url": url,
                        "data": spec.data,
                        "created_at": row.created_at.isoformat(),
                        "read_at": None,
                    },
                )
                for row in written
                if row.listed
            ],
        )
    # A counter, not an info line: a graded quiz writes one notification, and the log
    # line cost as much CPU as half the statement that writes it (bench/assessments.py).
    NOTIFICATIONS.labels(category.value).inc(count)
    logger.debug("notified", kind=kind, category=category.value, recipients=count)
    return count


# One-click unsubscribe ----------------------------------------------------------------


def _signature(secret: str, user_id: uuid.UUID, category: Category) -> str:
    digest = hmac.new(
        secret.encode(), f"unsubscribe:{user_id}:{category.value}".encode(), hashlib.sha256
    ).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def unsubscribe_token(settings: Settings, user_id: uuid.UUID, category: Category) -> str:
    """A token naming a user and a category, signed with the secret key: the link in
    the mail is the credential (no sign-in), and it can do one thing only."""
    return (
        f"{user_id}.{category.value}.{_signature(settings.secret_key_value(), user_id, category)}"
    )


def unsubscribe_url(settings: Settings, user_id: uuid.UUID, category: Category) -> str:
    token = unsubscribe_token(settings, user_id, category)
    return f"{settings.base_url()}/api/v1/notifications/unsubscribe?token={token}"


def read_unsubscribe_token(settings: Settings, token: str) -> tuple[uuid.UUID, Category]:
    parts = token.split(".")
    try:
        user_id, category = uuid.UUID(parts[0]), Category(parts[1])
    except (IndexError, ValueError):
        raise _bad_token() from None
    if len(parts) != 3 or is_locked(category, Channel.email):
        raise _bad_token()
    expected = _signature(settings.secret_key_value(), user_id, category)
    if not constant_time_equal(expected, parts[2]):
        raise _bad_token()
    return user_id, category


def _bad_token() -> NotFound:
    # As for any signed link: a forged or mangled one leads nowhere.
    return NotFound("This unsubscribe link is not valid.")


# The notification centre and preferences ------------------------------------------------


@dataclass
class Preferences:
    choices: dict[tuple[Category, Channel], bool]
    quiet_hours: tuple[dt.time, dt.time] | None
    time_zone: str


class NotificationService:
    def __init__(self, session: AsyncSession, *, now: dt.datetime) -> None:
        self.session = session
        self.now = now
        self.repository = NotificationRepository(session)

    async def page(
        self, user: User, *, unread: bool, offset: int, limit: int
    ) -> tuple[list[Notification], int, int]:
        return await self.repository.page_of(user.id, unread=unread, offset=offset, limit=limit)

    async def mine(self, user: User, notification_id: uuid.UUID) -> Notification:
        notification = await self.repository.mine(user.id, notification_id)
        if notification is None:
            raise NotFound("No such notification.")
        return notification

    async def mark_read(self, notification: Notification) -> Notification:
        if notification.read_at is None:
            notification.read_at = self.now
            await self.session.flush()
        return notification

    async def mark_all_read(self, user: User) -> int:
        return await self.repository.mark_all_read(user.id, self.now)

    async def delete(self, notification: Notification) -> None:
        await self.repository.delete(notification)

    async def preferences(self, user: User) -> Preferences:
        chosen = await self.repository.preferences_of(user.id)
        choices = {
            (category, channel): True
            if is_locked(category, channel)
            else chosen.get((category, channel), default_enabled(category, channel))
            for category in Category
            for channel in Channel
        }
        hours = await self.repository.quiet_hours_of(user.id)
        return Preferences(
            choices,
            (hours.starts, hours.ends) if hours is not None else None,
            user.timezone,
        )

    async def update_preferences(
        self,
        user: User,
        *,
        choices: dict[tuple[Category, Channel], bool],
        quiet_hours: tuple[dt.time, dt.time] | bool | None,
        time_zone: str | None,
    ) -> Preferences:
        """`quiet_hours`: a window, None to clear it, False to leave it as it is."""
        await self.repository.set_preferences(user.id, choices)
        if quiet_hours is not False:
            await self.repository.set_quiet_hours(
                user.id, quiet_hours if isinstance(quiet_hours, tuple) else None
            )
        if time_zone is not None:
            user.timezone = time_zone
        await self.session.flush()
        return await self.preferences(user)

    async def deliveries(
        self,
        *,
        user_id: uuid.UUID | None,
        channel: Channel | None,
        status: DeliveryStatus | None,
        notification_id: uuid.UUID | None,
        offset: int,
        limit: int,
    ) -> tuple[list[NotificationDelivery], int]:
        return await self.repository.deliveries(
            user_id=user_id,
            channel=channel,
            status=status,
            notification_id=notification_id,
            offset=offset,
            limit=limit,
        )

    async def unsubscribe(self, user_id: uuid.UUID, category: Category) -> None:
        """Turn off mail of one category (the link's); a deleted account is a no-op."""
        if await self.repository.user(user_id) is None:
            return
        await self.repository.set_preferences(user_id, {(category, Channel.email): False})


# Announcements ----------------------------------------------------------------------------

_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False})


def render_markdown(source: str) -> str:
    """Course authors' markdown as HTML: raw HTML in it is escaped (not passed through),
    and links to `javascript:`, `vbscript:`, `file:` and `data:` URLs are dropped."""
    html: str = _markdown.render(source)
    return html


class AnnouncementService:
    def __init__(self, session: AsyncSession, *, settings: Settings, now: dt.datetime) -> None:
        self.session = session
        self.settings = settings
        self.now = now
        self.repository = NotificationRepository(session)

    async def post(
        self,
        course: Course,
        author: User,
        *,
        title: str,
        body: str,
        publish_at: dt.datetime | None,
    ) -> tuple[Announcement, bool]:
        """Store an announcement; publish it now, or return False when a job publishes
        it at `publish_at`."""
        announcement = await self.repository.add_announcement(
            Announcement(
                id=uuid.uuid4(),
                course_id=course.id,
                author_id=author.id,
                title=title,
                body_markdown=body,
                body_html=render_markdown(body),
                publish_at=publish_at if publish_at is not None else self.now,
            )
        )
        if publish_at is None or publish_at <= self.now:
            await publish(self.session, announcement, settings=self.settings, now=self.now)
            return announcement, True
        return announcement, False

    async def page(
        self, course: Course, *, editor: bool, offset: int, limit: int
    ) -> tuple[list[Announcement], int]:
        return await self.repository.announcements(
            course.id, include_scheduled=editor, offset=offset, limit=limit
        )


async def publish(
    session: AsyncSession, announcement: Announcement, *, settings: Settings, now: dt.datetime
) -> int:
    """Publish once: mark it, emit `announcement.published`, notify every learner.
    Once is the announcement row's doing (`published_at`, locked by the scheduled job),
    so the notifications need no dedupe key: their insert skips ON CONFLICT."""
    if announcement.published_at is not None:
        return 0
    announcement.published_at = now
    await session.flush()
    repository = NotificationRepository(session)
    course_title = await repository.course_title(announcement.course_id) or ""
    url = f"/api/v1/courses/{announcement.course_id}/announcements"
    await emit(
        session,
        "announcement.published",
        announcement_id=str(announcement.id),
        course_id=str(announcement.course_id),
    )
    return await notify(
        session,
        user_ids=enrolled_learners(announcement.course_id),
        category=Category.announcements,
        kind="announcement",
        title=announcement.title,
        body=announcement.body_markdown[:500],
        url=url,
        template="announcement",
        context={
            "course_title": course_title,
            "title": announcement.title,
            "body": announcement.body_markdown,
            "url": url,
        },
        data={"announcement_id": str(announcement.id), "course_id": str(announcement.course_id)},
        now=now,
        batch_size=settings.notification_batch_size,
    )


async def publish_due(
    session: AsyncSession, announcement_id: uuid.UUID, *, settings: Settings, now: dt.datetime
) -> int:
    """The scheduled publication's job: publish if it is still unpublished."""
    announcement = await NotificationRepository(session).announcement_for_update(announcement_id)
    if announcement is None:
        return 0
    return await publish(session, announcement, settings=settings, now=now)


def preferences_out(preferences: Preferences) -> schemas.PreferencesOut:
    """The caller's choices as `GET /me/notification-preferences` shows them."""
    channels: dict[Category, dict[Channel, bool]] = {}
    for (category, channel), enabled in preferences.choices.items():
        channels.setdefault(category, {})[channel] = enabled
    hours = preferences.quiet_hours
    return schemas.PreferencesOut(
        channels=channels,
        quiet_hours=schemas.QuietHoursIn(start=hours[0], end=hours[1]) if hours else None,
        time_zone=preferences.time_zone,
    )
