"""Course files: indexing progress (phase, passages done of planned) and truncation

Revision ID: 0017_file_indexing_progress
Revises: 0016_ai_paths
Create Date: 2026-12-03 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017_file_indexing_progress"
down_revision: str | None = "0016_ai_paths"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PHASE = sa.Enum("scanning", "extracting", "embedding", name="indexing_phase")


def upgrade() -> None:
    PHASE.create(op.get_bind(), checkfirst=True)
    op.add_column("course_files", sa.Column("indexing_phase", PHASE, nullable=True))
    op.add_column(
        "course_files",
        sa.Column("indexing_done", sa.Integer(), server_default="0", nullable=False),
    )
    op.add_column("course_files", sa.Column("indexing_total", sa.Integer(), nullable=True))
    op.add_column(
        "course_files",
        sa.Column("truncated", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.add_column("course_files", sa.Column("notice", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("course_files", "notice")
    op.drop_column("course_files", "truncated")
    op.drop_column("course_files", "indexing_total")
    op.drop_column("course_files", "indexing_done")
    op.drop_column("course_files", "indexing_phase")
    PHASE.drop(op.get_bind(), checkfirst=True)
