"""Job arguments stored out of line without compression

A notification fan-out queues one job per batch of recipients whose arguments list the
batch's notification ids (about 10 KB of hex text each). PostgreSQL's default storage
compressed each with pglz on insert: 11 of the 99 ms an announcement to 10,000 learners
took (bench/notifications.py). Uncompressed out-of-line storage costs a little disk for
those few large rows and nothing for the usual small arguments, which stay inline.

Revision ID: 0023_job_args_storage
Revises: 0022_reminders
Create Date: 2026-12-04 14:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0023_job_args_storage"
down_revision: str | None = "0022_reminders"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE procrastinate_jobs ALTER COLUMN args SET STORAGE EXTERNAL")


def downgrade() -> None:
    op.execute("ALTER TABLE procrastinate_jobs ALTER COLUMN args SET STORAGE EXTENDED")
