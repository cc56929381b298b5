"""Course chat: rooms, members' read state, messages, mutes

Revision ID: 0008_chat
Revises: 0007_chunk_search_by_course
Create Date: 2026-11-22 07:10:00
"""

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_chat"
down_revision: str | None = "0007_chunk_search_by_course"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamps() -> list[sa.Column[dt.datetime]]:
    return [
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
    ]


def upgrade() -> None:
    op.create_table(
        "chat_rooms",
        sa.Column("kind", sa.Enum("course", "direct", name="chat_room_kind"), nullable=False),
        sa.Column("course_id", sa.Uuid(), nullable=True),
        sa.Column("direct_key", sa.String(length=73), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        *_timestamps(),
        sa.CheckConstraint(
            "(kind = 'course') = (course_id IS NOT NULL)",
            name=op.f("ck_chat_rooms_course_room_course"),
        ),
        sa.CheckConstraint(
            "(kind = 'direct') = (direct_key IS NOT NULL)",
            name=op.f("ck_chat_rooms_direct_room_key"),
        ),
        sa.ForeignKeyConstraint(
            ["course_id"],
            ["courses.id"],
            name=op.f("fk_chat_rooms_course_id_courses"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chat_rooms")),
        sa.UniqueConstraint("course_id", name=op.f("uq_chat_rooms_course_id")),
        sa.UniqueConstraint("direct_key", name=op.f("uq_chat_rooms_direct_key")),
    )
    op.create_table(
        "chat_messages",
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("room_id", sa.Uuid(), nullable=False),
        sa.Column("sender_id", sa.Uuid(), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_by_id", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["deleted_by_id"],
            ["users.id"],
            name=op.f("fk_chat_messages_deleted_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["room_id"],
            ["chat_rooms.id"],
            name=op.f("fk_chat_messages_room_id_chat_rooms"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sender_id"],
            ["users.id"],
            name=op.f("fk_chat_messages_sender_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chat_messages")),
        sa.UniqueConstraint(
            "sender_id", "client_id", name=op.f("uq_chat_messages_sender_id_client_id")
        ),
    )
    op.create_index("ix_chat_messages_room_seq", "chat_messages", ["room_id", "seq"], unique=False)
    op.create_table(
        "chat_members",
        sa.Column("room_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("last_read_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_read_message_id", sa.Uuid(), nullable=True),
        sa.Column(
            "joined_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["last_read_message_id"],
            ["chat_messages.id"],
            name=op.f("fk_chat_members_last_read_message_id_chat_messages"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["room_id"],
            ["chat_rooms.id"],
            name=op.f("fk_chat_members_room_id_chat_rooms"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_chat_members_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("room_id", "user_id", name=op.f("pk_chat_members")),
    )
    op.create_index(op.f("ix_chat_members_user_id"), "chat_members", ["user_id"], unique=False)
    op.create_table(
        "chat_mutes",
        sa.Column("course_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("muted_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("muted_by_id", sa.Uuid(), nullable=True),
        sa.Column("reason", sa.String(length=300), nullable=False),
        *_timestamps(),
        sa.ForeignKeyConstraint(
            ["course_id"],
            ["courses.id"],
            name=op.f("fk_chat_mutes_course_id_courses"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["muted_by_id"],
            ["users.id"],
            name=op.f("fk_chat_mutes_muted_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_chat_mutes_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("course_id", "user_id", name=op.f("pk_chat_mutes")),
    )


def downgrade() -> None:
    op.drop_table("chat_mutes")
    op.drop_index(op.f("ix_chat_members_user_id"), table_name="chat_members")
    op.drop_table("chat_members")
    op.drop_index("ix_chat_messages_room_seq", table_name="chat_messages")
    op.drop_table("chat_messages")
    op.drop_table("chat_rooms")
    sa.Enum(name="chat_room_kind").drop(op.get_bind(), checkfirst=True)
