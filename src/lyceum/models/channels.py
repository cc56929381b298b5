"""Where a user's SMS and push notifications go (a verified phone, browser push
subscriptions, mobile devices), and the log of sends that keeps a retried job from
sending twice."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import CheckConstraint, ForeignKey, Index, SmallInteger, String, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column

from lyceum.models.base import Base, Timestamps, UUIDPrimaryKey


class UserPhone(Timestamps, Base):
    """A user's phone number (E.164). It receives nothing but its verification code
    until `verified_at` is set. While a code is out, `code_nonce` says which one: the
    code is derived from it and the server's key, so neither the table nor the job that
    sends it holds the code itself."""

    __tablename__ = "user_phones"
    __table_args__ = (
        # One account per verified number; an unverified claim blocks nobody.
        Index(
            "uq_user_phones_verified_number",
            "number",
            unique=True,
            postgresql_where=text("verified_at IS NOT NULL"),
        ),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    number: Mapped[str] = mapped_column(String(16))
    verified_at: Mapped[dt.datetime | None]
    code_nonce: Mapped[str | None] = mapped_column(String(64))
    code_expires_at: Mapped[dt.datetime | None]
    # Wrong codes entered against the current code; past the limit it stops working.
    code_attempts: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")


class PushSubscription(UUIDPrimaryKey, Base):
    """A browser's Web Push subscription (the PushSubscription JSON it sends)."""

    __tablename__ = "push_subscriptions"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    endpoint: Mapped[str] = mapped_column(Text, unique=True)
    p256dh: Mapped[str] = mapped_column(String(200))
    auth: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())


class PushDevice(UUIDPrimaryKey, Base):
    """A mobile app install, by its Firebase Cloud Messaging registration token."""

    __tablename__ = "push_devices"
    __table_args__ = (
        CheckConstraint("platform IN ('android', 'ios', 'web')", name="known_platform"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    token: Mapped[str] = mapped_column(String(1024), unique=True)
    platform: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())


class ChannelSend(Base):
    """One message handed to a provider (one SMS, or one push to one subscription or
    device), under the key its sender chose: found here, it is not sent again."""

    __tablename__ = "channel_sends"

    idempotency_key: Mapped[str] = mapped_column(String(300), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    # No foreign key: the record outlives a deleted account, so a retry still finds it.
    user_id: Mapped[uuid.UUID]
    provider_id: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now(), index=True)
