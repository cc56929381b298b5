"""A standalone worker for the kill-mid-job test.

Usage: `python -m tests.support.worker_process DATABASE_URL QUEUE`.
"""

from __future__ import annotations

import asyncio
import sys

import tests.support.jobs  # noqa: F401  (registers the test tasks)
from lyceum.kit.jobs import close_jobs, open_jobs, run_worker


async def main(database_url: str, queue: str) -> None:
    pool = await open_jobs(database_url)
    try:
        await run_worker(name="doomed", concurrency=1, queues=[queue], heartbeat_seconds=0.5)
    finally:
        await close_jobs(pool)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
