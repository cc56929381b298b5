"""A standalone worker for the kill-mid-job test.

Usage: `python -m tests.support.worker_process DATABASE_URL QUEUE`.
"""

from __future__ import annotations

import asyncio
import sys

import tests.support.jobs  # noqa: F401  (registers the test tasks)
from lyceum.config import load_settings
from lyceum.kit.jobs import run_worker
from lyceum.kit.runtime import Runtime


async def main(database_url: str, queue: str) -> None:
    runtime = await Runtime.start(load_settings(), database_url=database_url, migrate=False)
    try:
        await run_worker(
            runtime, name="doomed", concurrency=1, queues=[queue], heartbeat_seconds=0.5
        )
    finally:
        await runtime.stop()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
