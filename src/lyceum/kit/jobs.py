"""Background jobs on procrastinate (PostgreSQL): one App per process, tasks registered
on it by each domain's `tasks.py`.

Rule 3 of ARCHITECTURE.md: `defer()` writes the job row on the request session's own
psycopg connection, so the job commits or rolls back with the data it concerns.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg_pool
import structlog
from procrastinate import App, JobContext, PsycopgConnector, RetryStrategy
from procrastinate.app import WorkerOptions
from procrastinate.tasks import Task
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.kit.db import Database, libpq_url, raw_connection

logger = structlog.get_logger("lyceum.jobs")

# Modules whose import registers tasks; a worker imports them all.
TASK_MODULES = [
    "lyceum.kit.mail",
    "lyceum.kit.jobs",
    "lyceum.identity.tasks",
    "lyceum.learning.tasks",
    "lyceum.content.tasks",
    "lyceum.assessments.tasks",
]

# How often a worker writes its heartbeat, and after how long without one its
# running jobs count as stalled (the worker died: kill -9, OOM, lost machine).
HEARTBEAT_SECONDS = 5.0
STALLED_AFTER_SECONDS = 30.0

# The default for Lyceum tasks: exponential backoff 2 s, 4 s, 8 s, 16 s, 32 s; 6 attempts.
DEFAULT_RETRY = RetryStrategy(max_attempts=6, exponential_wait=2)

job_app = App(connector=PsycopgConnector(), import_paths=TASK_MODULES)


def load_task_modules() -> None:
    """Import every module that registers tasks and event subscriptions."""
    for module in TASK_MODULES:
        importlib.import_module(module)


async def open_jobs(database_url: str, *, max_size: int = 4) -> psycopg_pool.AsyncConnectionPool:
    """Open the job app on its own small pool (workers hold a LISTEN connection)."""
    pool = psycopg_pool.AsyncConnectionPool(
        libpq_url(database_url),
        min_size=1,
        max_size=max_size,
        open=False,
        check=psycopg_pool.AsyncConnectionPool.check_connection,
        name="procrastinate",
    )
    await pool.open(wait=True)
    load_task_modules()
    await job_app.open_async(pool)
    return pool


async def close_jobs(pool: psycopg_pool.AsyncConnectionPool) -> None:
    await job_app.close_async()
    await pool.close()


async def defer(session: AsyncSession, task: Task[Any, Any, Any], **kwargs: Any) -> int:
    """Enqueue `task` inside the session's transaction; returns the job id."""
    connection = await raw_connection(session)
    job_id: int = await task.configure(connection=connection).defer_async(**kwargs)
    logger.debug("job_deferred", task=task.name, job_id=job_id)
    return job_id


async def run_worker(
    *,
    name: str = "worker",
    concurrency: int = 4,
    wait: bool = True,
    install_signal_handlers: bool = True,
    heartbeat_seconds: float = HEARTBEAT_SECONDS,
    queues: list[str] | None = None,
) -> None:
    options: WorkerOptions = {
        "name": name,
        "concurrency": concurrency,
        "wait": wait,
        "install_signal_handlers": install_signal_handlers,
        "update_heartbeat_interval": heartbeat_seconds,
        "stalled_worker_timeout": STALLED_AFTER_SECONDS,
        "listen_notify": True,
    }
    if queues:  # without `queues` the worker serves every queue
        options["queues"] = queues
    await job_app.run_worker_async(**options)


async def requeue_stalled_jobs(seconds_since_heartbeat: float = STALLED_AFTER_SECONDS) -> int:
    """Put back in the queue the jobs whose worker stopped sending heartbeats."""
    manager = job_app.job_manager
    stalled = list(await manager.get_stalled_jobs(seconds_since_heartbeat=seconds_since_heartbeat))
    for job in stalled:
        await manager.retry_job(job)
        logger.warning("stalled_job_requeued", job_id=job.id, task=job.task_name)
    return len(stalled)


@job_app.periodic(cron="* * * * *", periodic_id="requeue-stalled")
@job_app.task(name="lyceum.requeue_stalled_jobs", queueing_lock="requeue_stalled_jobs")
async def requeue_stalled_jobs_task(timestamp: int) -> int:
    """Every minute: rescue jobs of dead workers (they are retried on a live one)."""
    return await requeue_stalled_jobs()


__all__ = [
    "DEFAULT_RETRY",
    "JobContext",
    "close_jobs",
    "defer",
    "job_app",
    "open_jobs",
    "requeue_stalled_jobs",
    "run_worker",
]


class _TaskDatabase:
    """The database jobs use in this process, bound when the runtime starts."""

    database: Database | None = None


def bind_database(database: Database | None) -> None:
    _TaskDatabase.database = database


@asynccontextmanager
async def task_session() -> AsyncIterator[AsyncSession]:
    """A session for one job run: commits if the task returns, rolls back if it raises
    (and procrastinate then retries the job)."""
    database = _TaskDatabase.database
    if database is None:
        raise RuntimeError("no database bound for jobs in this process")
    async with database.sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        else:
            await session.commit()
