"""The mail delivery log: one row per logical message

Revision ID: 0012_mail_deliveries
Revises: 0011_chunk_hnsw_build
Create Date: 2026-12-03 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_mail_deliveries"
down_revision: str | None = "0011_chunk_hnsw_build"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "mail_deliveries",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("template", sa.String(length=64), nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("message_id", sa.String(length=200), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("destination", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_mail_deliveries")),
    )


def downgrade() -> None:
    op.drop_table("mail_deliveries")
