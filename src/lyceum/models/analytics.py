"""Learning analytics: the raw event store, partitioned by month, the dedupe keys of
client event ids, the watermarks of the incremental jobs, and the rollups they keep.

`analytics_events` is declared PARTITION BY RANGE (occurred_at); its monthly partitions
(`analytics_events_pYYYYMM`) are made by `lyceum.analytics.partition_repository`, ahead of time,
and dropped after the retention period. It has no foreign keys on purpose: ingest checks
the objects once per batch, and a row per event must stay cheap to write; a deleted
user's or course's events go with their partitions' retention (or the account erasure).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    BigInteger,
    Date,
    Index,
    Integer,
    Sequence,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import UserDefinedType

from lyceum.models.base import Base
from lyceum.models.content import EMBEDDING_DIMENSIONS


class Xid8(UserDefinedType[str]):
    """PostgreSQL's 64-bit transaction id (`pg_current_xact_id()`); read as text."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "xid8"


EVENT_ID_SEQUENCE = Sequence("analytics_events_id_seq")


class AnalyticsEvent(Base):
    __tablename__ = "analytics_events"
    __table_args__ = (
        Index("ix_analytics_events_course_id_occurred_at", "course_id", "occurred_at"),
        Index("ix_analytics_events_user_id_occurred_at", "user_id", "occurred_at"),
        Index("ix_analytics_events_tx", "tx"),
        {"postgresql_partition_by": "RANGE (occurred_at)"},
    )

    id: Mapped[int] = mapped_column(
        BigInteger,
        EVENT_ID_SEQUENCE,
        primary_key=True,
        server_default=EVENT_ID_SEQUENCE.next_value(),
    )
    occurred_at: Mapped[dt.datetime] = mapped_column(primary_key=True)
    received_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    # The writing transaction: the incremental jobs' watermark (lyceum.analytics.cursor_repository).
    tx: Mapped[str] = mapped_column(Xid8(), server_default=text("pg_current_xact_id()"))
    # The xAPI statement id: uuid5 of (user, client id) for an app's event, random for
    # the platform's.
    event_id: Mapped[uuid.UUID]
    user_id: Mapped[uuid.UUID]
    course_id: Mapped[uuid.UUID | None]
    lesson_id: Mapped[uuid.UUID | None]
    source: Mapped[str] = mapped_column(String(8))
    client_event_id: Mapped[str | None] = mapped_column(String(64))
    verb: Mapped[str] = mapped_column(String(32))
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[uuid.UUID | None]
    page: Mapped[int | None] = mapped_column(Integer)
    duration_ms: Mapped[int | None] = mapped_column(BigInteger)
    # {score, max_score, success, completion, response, answered}, each where it applies.
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # {platform, app_version, session_id, query, ...}: what the app said about itself.
    context: Mapped[dict[str, Any] | None] = mapped_column(JSONB)


class AnalyticsEventKey(Base):
    """A client event id already taken by a user: a repeat of it is ignored."""

    __tablename__ = "analytics_event_keys"
    __table_args__ = (Index("ix_analytics_event_keys_received_at", "received_at"),)

    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    client_event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    received_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())


class AnalyticsCursor(Base):
    """How far an incremental job has read the event store (a transaction id)."""

    __tablename__ = "analytics_cursors"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[str] = mapped_column(Xid8())
    updated_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())


class CourseDaily(Base):
    __tablename__ = "analytics_course_daily"

    course_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    events: Mapped[int] = mapped_column(BigInteger, default=0)
    time_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    views: Mapped[int] = mapped_column(BigInteger, default=0)
    completions: Mapped[int] = mapped_column(BigInteger, default=0)
    enrollments: Mapped[int] = mapped_column(BigInteger, default=0)
    tutor_questions: Mapped[int] = mapped_column(BigInteger, default=0)
    chat_messages: Mapped[int] = mapped_column(BigInteger, default=0)


class LessonDaily(Base):
    __tablename__ = "analytics_lesson_daily"
    __table_args__ = (Index("ix_analytics_lesson_daily_course_id_day", "course_id", "day"),)

    lesson_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    course_id: Mapped[uuid.UUID]
    views: Mapped[int] = mapped_column(BigInteger, default=0)
    completions: Mapped[int] = mapped_column(BigInteger, default=0)
    time_ms: Mapped[int] = mapped_column(BigInteger, default=0)


class LearnerCourse(Base):
    __tablename__ = "analytics_learner_course"
    __table_args__ = (
        Index("ix_analytics_learner_course_course_id_last_at", "course_id", "last_at"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    course_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    first_at: Mapped[dt.datetime]
    last_at: Mapped[dt.datetime]
    events: Mapped[int] = mapped_column(BigInteger, default=0)
    time_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    lessons_completed: Mapped[int] = mapped_column(Integer, default=0)
    tutor_questions: Mapped[int] = mapped_column(Integer, default=0)


class LearnerLesson(Base):
    __tablename__ = "analytics_learner_lesson"
    __table_args__ = (Index("ix_analytics_learner_lesson_course_id", "course_id"),)

    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    lesson_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    course_id: Mapped[uuid.UUID]
    first_at: Mapped[dt.datetime]
    last_at: Mapped[dt.datetime]
    completed_at: Mapped[dt.datetime | None]
    views: Mapped[int] = mapped_column(BigInteger, default=0)
    time_ms: Mapped[int] = mapped_column(BigInteger, default=0)


class LearnerDaily(Base):
    __tablename__ = "analytics_learner_daily"

    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    events: Mapped[int] = mapped_column(BigInteger, default=0)
    time_ms: Mapped[int] = mapped_column(BigInteger, default=0)


class TutorQuestion(Base):
    """A learner's question to the tutor, whether the material answered it, and (for
    the unanswered ones, written with it, or by a job when the question came without one)
    its embedding for grouping by meaning."""

    __tablename__ = "analytics_tutor_questions"
    __table_args__ = (
        Index("ix_analytics_tutor_questions_course_id_asked_at", "course_id", "asked_at"),
    )

    message_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    course_id: Mapped[uuid.UUID]
    lesson_id: Mapped[uuid.UUID | None]
    user_id: Mapped[uuid.UUID]
    asked_at: Mapped[dt.datetime]
    answered: Mapped[bool]
    question: Mapped[str] = mapped_column(Text)
    embedding: Mapped[list[float] | None] = mapped_column(Vector(EMBEDDING_DIMENSIONS))
