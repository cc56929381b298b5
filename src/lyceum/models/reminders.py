"""The scheduled learner messages already sent (weekly digest, due-soon reminders,
inactivity nudges): one row per kind, learner, subject and period, so two workers on the
same tick, or a tick run twice, send each message once."""

from __future__ import annotations

import datetime as dt
import enum
import uuid

from sqlalchemy import CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from lyceum.models.base import Base


class ReminderKind(enum.StrEnum):
    weekly_digest = "weekly_digest"
    due_soon = "due_soon"
    inactivity_nudge = "inactivity_nudge"


class ReminderSent(Base):
    """A claim: the tick that inserts it (INSERT ... ON CONFLICT DO NOTHING) sends the
    message, in the same transaction; a tick that finds it taken sends nothing."""

    __tablename__ = "reminders_sent"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('weekly_digest', 'due_soon', 'inactivity_nudge')", name="known_kind"
        ),
        # The retention sweep, and "was this course nudged in the last week".
        Index("ix_reminders_sent_sent_at", "sent_at"),
    )

    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    # What the message is about: the quiz or assignment (due soon), the course (nudge),
    # the learner themself (digest). Not a foreign key: it names rows of several tables.
    subject_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    # Which occurrence: the learner's local Monday (digest), the deadline (due soon),
    # the tick's UTC date (nudge).
    period: Mapped[str] = mapped_column(String(40), primary_key=True)
    sent_at: Mapped[dt.datetime]
