"""Course chat: rooms (one per course, and direct conversations), their members' read
state, the stored messages, and moderation mutes."""

from __future__ import annotations

import datetime as dt
import enum
import uuid

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Identity,
    Index,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from lyceum.models.base import Base, Timestamps, UUIDPrimaryKey
from lyceum.models.courses import _enum


class RoomKind(enum.StrEnum):
    course = "course"
    direct = "direct"


class ChatRoom(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "chat_rooms"
    __table_args__ = (
        CheckConstraint("(kind = 'course') = (course_id IS NOT NULL)", name="course_room_course"),
        CheckConstraint("(kind = 'direct') = (direct_key IS NOT NULL)", name="direct_room_key"),
    )

    kind: Mapped[RoomKind] = mapped_column(_enum(RoomKind, "chat_room_kind"))
    # A course room belongs to one course; a direct room to no course (its two members
    # only had to share one when it was opened).
    course_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("courses.id", ondelete="CASCADE"), unique=True
    )
    # "<smaller user id>:<larger user id>": one direct room per pair, whoever opens it.
    direct_key: Mapped[str | None] = mapped_column(String(73), unique=True)


class ChatMember(Base):
    """A user's place in a room: both people of a direct room from the start; course
    members once they first open the room. Holds what they have read."""

    __tablename__ = "chat_members"

    room_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("chat_rooms.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    last_read_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    last_read_message_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("chat_messages.id", ondelete="SET NULL")
    )
    joined_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())


class ChatMessage(UUIDPrimaryKey, Base):
    __tablename__ = "chat_messages"
    __table_args__ = (
        Index("ix_chat_messages_room_seq", "room_id", "seq"),
        # A client retrying a send with the same client_id gets the stored message back.
        UniqueConstraint("sender_id", "client_id"),
    )

    # Reading order and the history cursor: strictly increasing across the table.
    seq: Mapped[int] = mapped_column(BigInteger, Identity(always=True))
    room_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("chat_rooms.id", ondelete="CASCADE"))
    sender_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    client_id: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    deleted_at: Mapped[dt.datetime | None]
    deleted_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )


class ChatMute(Timestamps, Base):
    """A user silenced in one course's chat until `muted_until`."""

    __tablename__ = "chat_mutes"

    course_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("courses.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    muted_until: Mapped[dt.datetime]
    muted_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    reason: Mapped[str] = mapped_column(String(300), default="")
