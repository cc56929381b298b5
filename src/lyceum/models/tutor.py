"""Tutor conversations, their stored messages, and each course's tutor settings."""

from __future__ import annotations

import enum
import uuid
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Identity, Index, Integer, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from lyceum.models.base import Base, Timestamps, UUIDPrimaryKey
from lyceum.models.courses import _enum


class MessageRole(enum.StrEnum):
    user = "user"
    assistant = "assistant"


class MessageStatus(enum.StrEnum):
    complete = "complete"
    failed = "failed"
    cached = "cached"
    # The client went away mid-stream: what had arrived is kept, marked.
    interrupted = "interrupted"


class TutorMode(enum.StrEnum):
    socratic = "socratic"
    direct = "direct"


class Conversation(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "tutor_conversations"
    __table_args__ = (Index("ix_tutor_conversations_user_updated", "user_id", "updated_at"),)
    # The INSERT and UPDATE return the server-made times: a response needs no SELECT.
    __mapper_args__ = {"eager_defaults": True}

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    course_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("courses.id", ondelete="CASCADE"), index=True
    )
    lesson_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("lessons.id", ondelete="SET NULL")
    )
    title: Mapped[str] = mapped_column(String(200))
    # Older turns, condensed, once the history outgrows the prompt's budget.
    summary: Mapped[str] = mapped_column(Text, default="")
    summarised_messages: Mapped[int] = mapped_column(Integer, default=0)


class Message(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "tutor_messages"
    __table_args__ = (Index("ix_tutor_messages_conversation", "conversation_id", "seq"),)
    # The INSERT returns the server-made columns (seq, timestamps): storing an answer
    # needs no SELECT afterwards.
    __mapper_args__ = {"eager_defaults": True}

    # Reading order: created_at is the transaction's time, shared by a question and an
    # answer stored together.
    seq: Mapped[int] = mapped_column(BigInteger, Identity(always=True))
    conversation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tutor_conversations.id", ondelete="CASCADE")
    )
    # Denormalised for usage reports by course and user.
    course_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("courses.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    role: Mapped[MessageRole] = mapped_column(_enum(MessageRole, "tutor_message_role"))
    content: Mapped[str] = mapped_column(Text, default="")
    citations: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    tool_calls: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    provider: Mapped[str | None] = mapped_column(String(40))
    model: Mapped[str | None] = mapped_column(String(200))
    tokens_in: Mapped[int] = mapped_column(Integer, default=0)
    tokens_out: Mapped[int] = mapped_column(Integer, default=0)
    latency_ms: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[MessageStatus] = mapped_column(
        _enum(MessageStatus, "tutor_message_status"), default=MessageStatus.complete
    )
    error: Mapped[str | None] = mapped_column(Text)


class TutorSettings(Timestamps, Base):
    """An instructor's choices for the tutor in one course; no row means the defaults."""

    __tablename__ = "tutor_settings"

    course_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("courses.id", ondelete="CASCADE"), primary_key=True
    )
    enabled: Mapped[bool] = mapped_column(default=True)
    mode: Mapped[TutorMode] = mapped_column(
        _enum(TutorMode, "tutor_mode"), default=TutorMode.socratic
    )
    instructions: Mapped[str] = mapped_column(Text, default="")
    monthly_token_budget: Mapped[int | None] = mapped_column(BigInteger)
    hourly_message_limit: Mapped[int | None] = mapped_column(Integer)
