"""Course material text search reads one course's postings: (course_id, search) GIN

Revision ID: 0007_chunk_search_by_course
Revises: 0006_tutor
Create Date: 2026-11-22 06:20:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007_chunk_search_by_course"
down_revision: str | None = "0006_tutor"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # btree_gin lets a GIN index hold the uuid course_id beside the tsvector, so the
    # course filter and the text match are answered by one index scan.
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gin")
    op.create_index(
        "ix_content_chunks_course_search",
        "content_chunks",
        ["course_id", "search"],
        unique=False,
        postgresql_using="gin",
    )
    op.drop_index("ix_content_chunks_search", table_name="content_chunks", postgresql_using="gin")


def downgrade() -> None:
    op.create_index(
        "ix_content_chunks_search",
        "content_chunks",
        ["search"],
        unique=False,
        postgresql_using="gin",
    )
    op.drop_index(
        "ix_content_chunks_course_search", table_name="content_chunks", postgresql_using="gin"
    )
