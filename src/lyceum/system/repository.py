"""Every query of the system endpoints: the job queue's counts for /metrics."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine


async def job_counts(engine: AsyncEngine) -> dict[str, int]:
    """Jobs by status (procrastinate's table), on a connection of its own: /metrics
    has no request session."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT status::text, count(*) FROM procrastinate_jobs GROUP BY status")
        )
        return {status: count for status, count in rows}  # noqa: C416
