"""Outgoing webhooks: the endpoints admins register and the log of every delivery."""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum

from sqlalchemy import Enum, ForeignKey, Index, Integer, String, Text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from lyceum.models.base import Base, Timestamps, UUIDPrimaryKey


class WebhookEndpoint(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "webhook_endpoints"

    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str] = mapped_column(String(500), default="")
    event_types: Mapped[list[str]] = mapped_column(ARRAY(String(100)))
    is_active: Mapped[bool] = mapped_column(default=True)
    # "whsec_" + base64 of the key (Standard Webhooks), sealed with SECRET_KEY; shown once.
    secret: Mapped[str] = mapped_column(String(500))
    # When deliveries started failing without a success since (None: healthy).
    failing_since: Mapped[dt.datetime | None]
    disabled_reason: Mapped[str | None] = mapped_column(String(300))
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )


class WebhookDeliveryStatus(StrEnum):
    pending = "pending"  # waiting for its first or next attempt
    succeeded = "succeeded"
    failed = "failed"  # given up: retries spent, endpoint gone or disabled, or refused


class WebhookDelivery(UUIDPrimaryKey, Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_endpoint_created", "endpoint_id", "created_at"),
        Index("ix_webhook_deliveries_created_at", "created_at"),
    )

    endpoint_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE")
    )
    # The event's id: the `webhook-id` header, the same on every attempt and redelivery,
    # so a receiver can drop a duplicate.
    event_id: Mapped[uuid.UUID]
    event_type: Mapped[str] = mapped_column(String(100))
    body: Mapped[str] = mapped_column(Text)  # the exact JSON sent (and signed)
    status: Mapped[WebhookDeliveryStatus] = mapped_column(
        Enum(WebhookDeliveryStatus, name="webhook_delivery_status", native_enum=False, length=16),
        default=WebhookDeliveryStatus.pending,
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime | None]
    last_attempt_at: Mapped[dt.datetime | None]
    status_code: Mapped[int | None]
    duration_ms: Mapped[int | None]
    response_body: Mapped[str | None] = mapped_column(Text)  # at most 2 KB of it
    last_error: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[dt.datetime]
