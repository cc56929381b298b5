"""Scheduled learner messages already sent (digest, due soon, inactivity nudge)

Revision ID: 0022_reminders
Revises: 0021_job_operations
Create Date: 2026-12-04 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022_reminders"
down_revision: str | None = "0021_job_operations"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "reminders_sent",
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column("period", sa.String(length=40), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('weekly_digest', 'due_soon', 'inactivity_nudge')",
            name=op.f("ck_reminders_sent_known_kind"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_reminders_sent_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "kind", "user_id", "subject_id", "period", name=op.f("pk_reminders_sent")
        ),
    )
    op.create_index("ix_reminders_sent_sent_at", "reminders_sent", ["sent_at"])


def downgrade() -> None:
    op.drop_index("ix_reminders_sent_sent_at", table_name="reminders_sent")
    op.drop_table("reminders_sent")
