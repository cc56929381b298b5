"""Course material chunks keep their vectors inline and their search vectors compressed

Revision ID: 0010_chunk_storage
Revises: 0009_assessments
Create Date: 2026-11-22 08:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010_chunk_storage"
down_revision: str | None = "0009_assessments"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # pgvector's type is stored EXTERNAL: a row past the 2 kB TOAST threshold (a chunk's
    # text, tsvector and 1.5 kB vector usually are) had its vector moved out of line, so
    # an exact scan of a course's chunks fetched every vector from the TOAST table.
    # PLAIN keeps it in the row; the text (EXTENDED) moves out of line first, and the
    # tsvector stays in the row compressed (MAIN) for ts_rank_cd. bench/retrieval.py:
    # the exact vector query on a 1,000-chunk course went from 20 ms to 2 ms (EXPLAIN
    # ANALYZE). Rows written from now on get this layout; `lyceum reindex` rewrites
    # the existing ones.
    op.execute("ALTER TABLE content_chunks ALTER COLUMN embedding SET STORAGE PLAIN")
    op.execute("ALTER TABLE content_chunks ALTER COLUMN search SET STORAGE MAIN")


def downgrade() -> None:
    op.execute("ALTER TABLE content_chunks ALTER COLUMN search SET STORAGE EXTENDED")
    op.execute("ALTER TABLE content_chunks ALTER COLUMN embedding SET STORAGE EXTERNAL")
