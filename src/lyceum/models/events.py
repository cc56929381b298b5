"""The event log: every public (catalogued) event, written in the transaction that
caused it."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import Index, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from lyceum.models.base import Base


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (Index("ix_events_type_occurred_at", "type", "occurred_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    type: Mapped[str] = mapped_column(String(100))
    version: Mapped[str] = mapped_column(String(10))
    occurred_at: Mapped[dt.datetime]
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
