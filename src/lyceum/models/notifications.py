"""Notifications: what a user was told (the in-app centre), how they want to be told
(preferences per category and channel, quiet hours), what went out on each channel
(the delivery log), and course announcements."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Any

from sqlalchemy import Enum, ForeignKey, Index, String, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from lyceum.models.base import Base, UUIDPrimaryKey


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    return Enum(cls, name=name, values_callable=lambda members: [m.value for m in members])


class Category(enum.StrEnum):
    """What a notification is about; preferences are set per category."""

    security = "security"
    course_activity = "course_activity"
    grades = "grades"
    reminders = "reminders"
    announcements = "announcements"
    weekly_digest = "weekly_digest"
    payments = "payments"  # receipts and refunds of one's own orders


class Channel(enum.StrEnum):
    in_app = "in_app"
    email = "email"
    sms = "sms"
    push = "push"


class DeliveryStatus(enum.StrEnum):
    queued = "queued"
    sent = "sent"
    skipped = "skipped"
    failed = "failed"


CATEGORY_ENUM = _enum(Category, "notification_category")
CHANNEL_ENUM = _enum(Channel, "notification_channel")
DELIVERY_STATUS_ENUM = _enum(DeliveryStatus, "notification_delivery_status")


class Notification(UUIDPrimaryKey, Base):
    """One thing one user was told. Written in sets by `notifications.service.notify`;
    the only indexes are the two its readers need (an announcement to 10,000 learners
    writes 10,000 rows in one statement)."""

    __tablename__ = "notifications"
    __table_args__ = (
        Index(
            "uq_notifications_user_dedupe",
            "user_id",
            "dedupe_key",
            unique=True,
            postgresql_where=text("dedupe_key IS NOT NULL"),
        ),
        Index("ix_notifications_user_created", "user_id", text("created_at DESC")),
    )

    # No foreign key to users: checking one per row would double the cost of a large
    # fan-out, and a deleted account's notifications go with the retention job.
    user_id: Mapped[uuid.UUID]
    category: Mapped[Category] = mapped_column(CATEGORY_ENUM)
    kind: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(String(2000))
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    dedupe_key: Mapped[str | None] = mapped_column(String(200))
    # False when the user turned the in-app channel off for this category: the row still
    # anchors the other channels' deliveries, but the notification centre hides it.
    listed: Mapped[bool] = mapped_column(server_default=text("true"))
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    read_at: Mapped[dt.datetime | None]


class NotificationPreference(Base):
    """A user's choice for one category and channel; no row means the default."""

    __tablename__ = "notification_preferences"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    category: Mapped[Category] = mapped_column(CATEGORY_ENUM, primary_key=True)
    channel: Mapped[Channel] = mapped_column(CHANNEL_ENUM, primary_key=True)
    enabled: Mapped[bool]


class QuietHours(Base):
    """When SMS and push wait: from `starts` to `ends`, local time in the user's time
    zone (`users.timezone`); `starts > ends` spans midnight."""

    __tablename__ = "notification_quiet_hours"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    starts: Mapped[dt.time]
    ends: Mapped[dt.time]


class NotificationDelivery(UUIDPrimaryKey, Base):
    """One send on one channel: written by the delivery job when it claims the send
    (not at fan-out), so a retried job finds it and never sends twice."""

    __tablename__ = "notification_deliveries"
    __table_args__ = (Index("ix_notification_deliveries_user_created", "user_id", "created_at"),)

    # What makes the send one send: `<notification id>:<channel>`.
    key: Mapped[str] = mapped_column(String(200), unique=True)
    notification_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("notifications.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[uuid.UUID]
    channel: Mapped[Channel] = mapped_column(CHANNEL_ENUM)
    status: Mapped[DeliveryStatus] = mapped_column(
        DELIVERY_STATUS_ENUM, default=DeliveryStatus.queued
    )
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))
    provider_id: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[dt.datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class Announcement(UUIDPrimaryKey, Base):
    __tablename__ = "announcements"
    __table_args__ = (Index("ix_announcements_course_created", "course_id", "created_at"),)

    course_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"))
    author_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    title: Mapped[str] = mapped_column(String(200))
    body_markdown: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text)
    publish_at: Mapped[dt.datetime]
    published_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
