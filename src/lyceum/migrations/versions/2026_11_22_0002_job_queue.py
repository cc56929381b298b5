"""The procrastinate job queue schema (tables, functions, triggers), version 3.10.

Later procrastinate upgrades add their SQL migrations as new revisions here.

Revision ID: 0002_job_queue
Revises: 0001_extensions
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op
from procrastinate.schema import SchemaManager

revision: str = "0002_job_queue"
down_revision: str | None = "0001_extensions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _run_script(script: str) -> None:
    op.get_bind().execution_options(no_parameters=True).exec_driver_sql(script)


def upgrade() -> None:
    # Sent as one parameterless driver statement: the schema holds `$$` function bodies
    # and `::` casts that text() would misread as bind parameters, and psycopg only runs
    # several statements at once when no parameters are passed.
    _run_script(SchemaManager.get_schema())


def downgrade() -> None:
    _run_script(
        """
        DROP TABLE IF EXISTS procrastinate_events, procrastinate_periodic_defers,
            procrastinate_jobs, procrastinate_workers CASCADE;
        DROP TYPE IF EXISTS procrastinate_job_event_type, procrastinate_job_status CASCADE;
        """
    )
