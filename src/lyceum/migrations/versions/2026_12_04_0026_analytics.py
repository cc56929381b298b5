"""Learning analytics: the raw events (partitioned by month), the client ids already
seen, the incremental jobs' cursors, the rollups and the tutor questions

The partitions of the months around the migration's run are made here; the periodic
partition job makes the later ones.

Revision ID: 0026_analytics
Revises: 0025_payment_notifications
Create Date: 2026-12-04 19:40:00
"""

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from pgvector.sqlalchemy import Vector

revision: str = "0026_analytics"
down_revision: str | None = "0025_payment_notifications"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _months_around(today: dt.date, before: int, after: int) -> list[dt.date]:
    base = today.year * 12 + today.month - 1
    return [
        dt.date(index // 12, index % 12 + 1, 1) for index in range(base - before, base + after + 1)
    ]


def upgrade() -> None:
    op.execute("CREATE SEQUENCE analytics_events_id_seq")
    op.execute(
        """
        CREATE TABLE analytics_events (
            id BIGINT DEFAULT nextval('analytics_events_id_seq') NOT NULL,
            occurred_at TIMESTAMP WITH TIME ZONE NOT NULL,
            received_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
            tx xid8 DEFAULT pg_current_xact_id() NOT NULL,
            event_id UUID NOT NULL,
            user_id UUID NOT NULL,
            course_id UUID,
            lesson_id UUID,
            source VARCHAR(8) NOT NULL,
            client_event_id VARCHAR(64),
            verb VARCHAR(32) NOT NULL,
            object_type VARCHAR(32) NOT NULL,
            object_id UUID,
            page INTEGER,
            duration_ms BIGINT,
            result JSONB,
            context JSONB,
            CONSTRAINT pk_analytics_events PRIMARY KEY (id, occurred_at)
        ) PARTITION BY RANGE (occurred_at)
        """
    )
    op.execute("ALTER SEQUENCE analytics_events_id_seq OWNED BY analytics_events.id")
    op.create_index(
        "ix_analytics_events_course_id_occurred_at",
        "analytics_events",
        ["course_id", "occurred_at"],
    )
    op.create_index(
        "ix_analytics_events_user_id_occurred_at", "analytics_events", ["user_id", "occurred_at"]
    )
    op.create_index("ix_analytics_events_tx", "analytics_events", ["tx"])
    for month in _months_around(dt.datetime.now(dt.UTC).date(), 2, 3):
        upper = dt.date(month.year + month.month // 12, month.month % 12 + 1, 1)
        op.execute(
            f"CREATE TABLE IF NOT EXISTS analytics_events_p{month.year:04d}{month.month:02d}"
            f" PARTITION OF analytics_events FOR VALUES FROM ('{month.isoformat()} 00:00:00+00')"
            f" TO ('{upper.isoformat()} 00:00:00+00')"
        )

    op.create_table(
        "analytics_event_keys",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("client_event_id", sa.String(length=64), nullable=False),
        sa.Column(
            "received_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("user_id", "client_event_id", name=op.f("pk_analytics_event_keys")),
    )
    op.create_index("ix_analytics_event_keys_received_at", "analytics_event_keys", ["received_at"])
    op.execute(
        """
        CREATE TABLE analytics_cursors (
            name VARCHAR(64) NOT NULL,
            position xid8 NOT NULL,
            updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
            CONSTRAINT pk_analytics_cursors PRIMARY KEY (name)
        )
        """
    )

    def counter(name: str) -> sa.Column[int]:
        return sa.Column(name, sa.BigInteger(), nullable=False)

    op.create_table(
        "analytics_course_daily",
        sa.Column("course_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        *(
            counter(name)
            for name in (
                "events",
                "time_ms",
                "views",
                "completions",
                "enrollments",
                "tutor_questions",
                "chat_messages",
            )
        ),
        sa.PrimaryKeyConstraint("course_id", "day", name=op.f("pk_analytics_course_daily")),
    )
    op.create_table(
        "analytics_lesson_daily",
        sa.Column("lesson_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("course_id", sa.Uuid(), nullable=False),
        *(counter(name) for name in ("views", "completions", "time_ms")),
        sa.PrimaryKeyConstraint("lesson_id", "day", name=op.f("pk_analytics_lesson_daily")),
    )
    op.create_index(
        "ix_analytics_lesson_daily_course_id_day", "analytics_lesson_daily", ["course_id", "day"]
    )
    op.create_table(
        "analytics_learner_course",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("course_id", sa.Uuid(), nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        counter("events"),
        counter("time_ms"),
        sa.Column("lessons_completed", sa.Integer(), nullable=False),
        sa.Column("tutor_questions", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "course_id", name=op.f("pk_analytics_learner_course")),
    )
    op.create_index(
        "ix_analytics_learner_course_course_id_last_at",
        "analytics_learner_course",
        ["course_id", "last_at"],
    )
    op.create_table(
        "analytics_learner_lesson",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("lesson_id", sa.Uuid(), nullable=False),
        sa.Column("course_id", sa.Uuid(), nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        counter("views"),
        counter("time_ms"),
        sa.PrimaryKeyConstraint("user_id", "lesson_id", name=op.f("pk_analytics_learner_lesson")),
    )
    op.create_index(
        "ix_analytics_learner_lesson_course_id", "analytics_learner_lesson", ["course_id"]
    )
    op.create_table(
        "analytics_learner_daily",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        counter("events"),
        counter("time_ms"),
        sa.PrimaryKeyConstraint("user_id", "day", name=op.f("pk_analytics_learner_daily")),
    )
    op.create_table(
        "analytics_tutor_questions",
        sa.Column("message_id", sa.Uuid(), nullable=False),
        sa.Column("course_id", sa.Uuid(), nullable=False),
        sa.Column("lesson_id", sa.Uuid(), nullable=True),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("asked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered", sa.Boolean(), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("embedding", Vector(384), nullable=True),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_analytics_tutor_questions")),
    )
    op.create_index(
        "ix_analytics_tutor_questions_course_id_asked_at",
        "analytics_tutor_questions",
        ["course_id", "asked_at"],
    )


def downgrade() -> None:
    for table in (
        "analytics_tutor_questions",
        "analytics_learner_daily",
        "analytics_learner_lesson",
        "analytics_learner_course",
        "analytics_lesson_daily",
        "analytics_course_daily",
        "analytics_cursors",
        "analytics_event_keys",
        "analytics_events",
    ):
        op.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
    op.execute("DROP SEQUENCE IF EXISTS analytics_events_id_seq")
