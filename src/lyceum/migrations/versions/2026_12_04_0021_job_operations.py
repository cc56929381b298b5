"""Job operations: the exception of every failed job attempt (procrastinate keeps none)

Revision ID: 0021_job_operations
Revises: 0020_channels
Create Date: 2026-12-04 12:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021_job_operations"
down_revision: str | None = "0020_channels"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "job_failures",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("job_id", sa.BigInteger(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("task_name", sa.String(length=128), nullable=False),
        sa.Column("queue_name", sa.String(length=128), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("traceback", sa.Text(), nullable=True),
        sa.Column(
            "failed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        # procrastinate's table is not in the models' metadata: the key lives here only.
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["procrastinate_jobs.id"],
            name="fk_job_failures_job_id_procrastinate_jobs",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_job_failures"),
    )
    op.create_index(
        "ix_job_failures_job_id_failed_at", "job_failures", ["job_id", "failed_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_job_failures_job_id_failed_at", table_name="job_failures")
    op.drop_table("job_failures")
