"""Job operations (what Flower gives Celery users): every query that reads or steers the
job queue for admins, `lyceum jobs` and /metrics, and the worker middleware that keeps
the exception of each failed attempt (procrastinate records that a job failed, not why).

The queries run on whatever connection or session the caller has: the request's session
for the admin endpoints, a connection of their own for /metrics and the CLI.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import time
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from procrastinate.exceptions import JobAborted
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from lyceum.kit.errortracking import report_job_failure
from lyceum.kit.jobs import JobContext, Queue, resources
from lyceum.kit.metrics import JOB_DURATION, JOB_RUNS

logger = structlog.get_logger("lyceum.jobs")

Executor = AsyncConnection | AsyncSession

STATUSES = ("todo", "doing", "succeeded", "failed", "cancelled", "aborted")
FINISHED_STATUSES = ("succeeded", "failed", "cancelled", "aborted")
ERROR_MAX_CHARS = 2000
TRACEBACK_MAX_CHARS = 20_000


@dataclasses.dataclass(frozen=True)
class QueueFigures:
    """One queue: its jobs by status, and how long its oldest waiting job has waited
    (a job scheduled for later is not waiting yet; 0.0 when none waits)."""

    queue: str
    counts: dict[str, int]
    oldest_waiting_seconds: float


@dataclasses.dataclass(frozen=True)
class Failure:
    attempt: int
    error: str
    traceback: str | None
    failed_at: dt.datetime


@dataclasses.dataclass(frozen=True)
class JobSummary:
    id: int
    task: str
    queue: str
    status: str
    attempts: int  # runs started so far
    error: str | None  # the last failure's exception, if any
    finished_at: dt.datetime | None


@dataclasses.dataclass(frozen=True)
class JobDetail(JobSummary):
    priority: int
    args: dict[str, Any]
    lock: str | None
    queueing_lock: str | None
    deferred_at: dt.datetime | None
    scheduled_at: dt.datetime | None
    failures: list[Failure]


class JobNotFound(LookupError):
    pass


class JobStateConflict(Exception):
    """The job is not in a state that allows the operation."""

    def __init__(self, job_id: int, status: str, wanted: str) -> None:
        super().__init__(f"job {job_id} is {status}, not {wanted}")
        self.status = status


# Reading -------------------------------------------------------------------------------


async def queue_figures(db: Executor) -> list[QueueFigures]:
    """Every Lyceum queue (empty ones too), then any other queue that holds jobs."""
    counts: dict[str, dict[str, int]] = {queue.value: {} for queue in Queue}
    rows = await db.execute(
        text(
            "SELECT queue_name, status::text, count(*) FROM procrastinate_jobs "
            "GROUP BY queue_name, status"
        )
    )
    for queue, status, count in rows:
        counts.setdefault(queue, {})[status] = int(count)
    waiting = await db.execute(
        text(
            """
            -- Ids grow with time: a queue's unscheduled job waiting longest is its
            -- lowest id, so one event lookup per queue, not one per waiting job.
            WITH due AS (
                SELECT queue_name,
                       min(scheduled_at) AS first_scheduled,
                       min(id) FILTER (WHERE scheduled_at IS NULL) AS first_unscheduled
                FROM procrastinate_jobs
                WHERE status = 'todo' AND (scheduled_at IS NULL OR scheduled_at <= now())
                GROUP BY queue_name
            )
            SELECT due.queue_name,
                   EXTRACT(EPOCH FROM now() - LEAST(due.first_scheduled, (
                       SELECT min(e.at) FROM procrastinate_events AS e
                       WHERE e.job_id = due.first_unscheduled AND e.type = 'deferred'
                   )))
            FROM due
            """
        )
    )
    oldest = {queue: max(float(age or 0.0), 0.0) for queue, age in waiting}
    return [
        QueueFigures(
            queue=queue,
            counts={status: by_status.get(status, 0) for status in STATUSES},
            oldest_waiting_seconds=oldest.get(queue, 0.0),
        )
        for queue, by_status in counts.items()
    ]


_SUMMARY = """
    SELECT j.id, j.task_name, j.queue_name, j.status::text,
           (SELECT count(*) FROM procrastinate_events AS e
            WHERE e.job_id = j.id AND e.type = 'started') AS runs,
           (SELECT f.error FROM job_failures AS f WHERE f.job_id = j.id
            ORDER BY f.failed_at DESC, f.id DESC LIMIT 1) AS error,
           (SELECT max(e.at) FROM procrastinate_events AS e
            WHERE e.job_id = j.id
              AND e.type IN ('failed', 'succeeded', 'cancelled', 'aborted')) AS finished_at
"""


_DETAIL = """, j.priority, j.args, j.lock, j.queueing_lock, j.scheduled_at,
           (SELECT min(e.at) FROM procrastinate_events AS e
            WHERE e.job_id = j.id AND e.type = 'deferred') AS deferred_at
    FROM procrastinate_jobs AS j WHERE j.id = :id
"""
_FAILED = "WHERE j.status = 'failed' AND (CAST(:queue AS text) IS NULL OR j.queue_name = :queue)"


def _summary(row: Any) -> JobSummary:
    return JobSummary(
        id=row.id,
        task=row.task_name,
        queue=row.queue_name,
        status=row.status,
        attempts=int(row.runs),
        error=row.error,
        finished_at=row.finished_at if row.status in FINISHED_STATUSES else None,
    )


async def failed_jobs(
    db: Executor, *, queue: str | None = None, offset: int = 0, limit: int = 20
) -> tuple[list[JobSummary], int]:
    """Failed jobs (no retry left), newest first, with the exception of their last
    attempt; and how many there are."""
    params: dict[str, Any] = {"queue": queue, "offset": offset, "limit": limit}
    total = (
        await db.execute(
            text(f"SELECT count(*) FROM procrastinate_jobs AS j {_FAILED}"),  # noqa: S608 (constants)
            params,
        )
    ).scalar_one()
    rows = await db.execute(
        text(
            f"{_SUMMARY} FROM procrastinate_jobs AS j {_FAILED} ORDER BY j.id DESC "
            "OFFSET :offset LIMIT :limit"
        ),
        params,
    )
    return [_summary(row) for row in rows], int(total)


async def job_detail(db: Executor, job_id: int) -> JobDetail:
    row = (
        await db.execute(
            text(_SUMMARY + _DETAIL),
            {"id": job_id},
        )
    ).one_or_none()
    if row is None:
        raise JobNotFound(job_id)
    failures = await db.execute(
        text(
            "SELECT attempt, error, traceback, failed_at FROM job_failures "
            "WHERE job_id = :id ORDER BY failed_at, id"
        ),
        {"id": job_id},
    )
    summary = _summary(row)
    return JobDetail(
        **dataclasses.asdict(summary),
        priority=row.priority,
        args=dict(row.args),
        lock=row.lock,
        queueing_lock=row.queueing_lock,
        deferred_at=row.deferred_at,
        scheduled_at=row.scheduled_at,
        failures=[
            Failure(attempt=f.attempt, error=f.error, traceback=f.traceback, failed_at=f.failed_at)
            for f in failures
        ],
    )


async def _status(db: Executor, job_id: int) -> str:
    status = (
        await db.execute(
            text("SELECT status::text FROM procrastinate_jobs WHERE id = :id"), {"id": job_id}
        )
    ).scalar_one_or_none()
    if status is None:
        raise JobNotFound(job_id)
    return str(status)


# Steering ------------------------------------------------------------------------------


async def retry_failed(db: AsyncSession, job_id: int) -> None:
    """Put a failed job back in its queue, now, with a fresh set of attempts (its
    failures stay on record). Raises JobNotFound, or JobStateConflict when the job has
    not failed or a job with the same queueing lock already waits."""
    try:
        async with db.begin_nested():
            retried = (
                await db.execute(
                    text(
                        "UPDATE procrastinate_jobs "
                        "SET status = 'todo', attempts = 0, scheduled_at = now() "
                        "WHERE id = :id AND status = 'failed' RETURNING id"
                    ),
                    {"id": job_id},
                )
            ).scalar_one_or_none()
    except IntegrityError:
        # procrastinate allows one waiting job per queueing lock.
        raise JobStateConflict(job_id, "failed", "without a waiting twin") from None
    if retried is None:
        raise JobStateConflict(job_id, await _status(db, job_id), "failed")


async def cancel_waiting(db: Executor, job_id: int) -> None:
    """Cancel a job that waits in its queue (procrastinate's own cancel: a job already
    running is not touched). Raises JobNotFound or JobStateConflict."""
    cancelled = (
        await db.execute(
            text("SELECT procrastinate_cancel_job_v1(:id, false, false)"), {"id": job_id}
        )
    ).scalar_one_or_none()
    if cancelled is None:
        raise JobStateConflict(job_id, await _status(db, job_id), "todo")


# The failure log -----------------------------------------------------------------------


def describe(error: BaseException) -> str:
    message = str(error)
    name = type(error).__name__
    return (f"{name}: {message}" if message else name)[:ERROR_MAX_CHARS]


async def record_failure(db: Executor, context: JobContext, error: BaseException) -> None:
    job = context.job
    if job is None or job.id is None:
        return
    formatted = "".join(traceback.format_exception(error))
    await db.execute(
        text(
            "INSERT INTO job_failures (job_id, attempt, task_name, queue_name, error, traceback) "
            "VALUES (:job_id, :attempt, :task, :queue, :error, :traceback)"
        ),
        {
            "job_id": job.id,
            "attempt": job.attempts + 1,
            "task": job.task_name,
            "queue": job.queue,
            "error": describe(error),
            "traceback": formatted[-TRACEBACK_MAX_CHARS:],
        },
    )


async def record_failures(
    call_next: Callable[[], Awaitable[Any]], context: JobContext, worker: Any
) -> Any:
    """Worker middleware: write the exception of a failed attempt to `job_failures`,
    then let procrastinate retry or fail the job as it would. An aborted or cancelled
    job is no failure; a failure to record never hides the job's own error. A job that
    fails for good (no retry follows) is reported to Sentry when SENTRY_DSN is set.

    Once written down, the failed attempt's finished frames let go of their local
    variables: procrastinate keeps the exception in a local of the frame that caught
    it, a cycle through the traceback which would otherwise hold every session, row
    and connection the task had until the garbage collector's next full pass. The
    traceback itself (files, lines, code) stays whole for the logs."""
    try:
        return await call_next()
    except JobAborted:
        raise
    except Exception as error:
        # Written down in a frame of its own: this one stays in the traceback.
        await _write_down(context, error)
        if attempt_outcome(context, error) == "failed":  # no retry follows
            report_job_failure(context, error)
        let_go_of_locals(error)
        raise


async def _write_down(context: JobContext, error: BaseException) -> None:
    try:
        async with resources(context).database.engine.begin() as connection:
            await record_failure(connection, context, error)
    except Exception:
        logger.exception("job_failure_not_recorded", job_id=getattr(context.job, "id", None))


def let_go_of_locals(error: BaseException) -> None:
    """Clear the local variables of the finished frames in `error`'s traceback and in
    those of the exceptions it was raised from or during (a frame still running, this
    one among them, is left as it is)."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        traceback.clear_frames(current.__traceback__)
        pending += [current.__cause__, current.__context__]


def attempt_outcome(context: JobContext, error: BaseException | None) -> str:
    """How a job attempt ended, as `lyceum_job_runs_total` counts it: succeeded; aborted
    (cancelled, or stopped with its worker); retried when the task's retry policy
    schedules another attempt; failed when none follows."""
    if error is None:
        return "succeeded"
    if isinstance(error, JobAborted | asyncio.CancelledError):
        return "aborted"
    job = context.job
    task = context.app.tasks.get(job.task_name) if job is not None else None
    if (
        task is not None
        and job is not None
        and task.get_retry_exception(exception=error, job=job) is not None
    ):
        return "retried"
    return "failed"


async def record_metrics(
    call_next: Callable[[], Awaitable[Any]], context: JobContext, worker: Any
) -> Any:
    """Worker middleware: count each attempt by queue, task and outcome, and time it."""
    job = context.job
    queue, task = (job.queue, job.task_name) if job is not None else ("", "")
    started = time.perf_counter()
    error: BaseException | None = None
    try:
        return await call_next()
    except BaseException as raised:
        error = raised
        raise
    finally:
        JOB_DURATION.labels(queue, task).observe(time.perf_counter() - started)
        JOB_RUNS.labels(queue, task, attempt_outcome(context, error)).inc()
