"""Background jobs on procrastinate (PostgreSQL): one App per process, tasks registered
on it by each domain's `tasks.py` through `task()` below.

Rule 3 of the architecture: `defer()` writes the job row on the request session's own
psycopg connection, so the job commits or rolls back with the data it concerns.

Rule 14: every task runs on a named queue. Work a person waits for (mail, certificates,
notifications, webhooks) runs on user-facing queues, served by workers of their own, so
it never waits behind bulk work (indexing course files, AI essay scoring). Where one
worker serves several queues, higher-priority jobs are fetched first.

Jobs get settings and clients from the worker's runtime (`resources(context)`), built
once per worker process and closed when it stops, never from module globals.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Concatenate, Literal, ParamSpec, Protocol, TypeVar, overload

import psycopg_pool
import structlog
from procrastinate import App, BaseRetryStrategy, JobContext, PsycopgConnector, RetryStrategy
from procrastinate.app import WorkerOptions
from procrastinate.exceptions import AlreadyEnqueued, ConnectorException
from procrastinate.job_context import AbortReason
from procrastinate.jobs import Job
from procrastinate.retry import RetryDecision
from procrastinate.tasks import Task
from procrastinate.worker import Worker
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.kit import tracing
from lyceum.kit.db import Database, libpq_url, raw_connection, unit_of_work

if TYPE_CHECKING:
    from lyceum.config import Settings
    from lyceum.kit.cache import Cache
    from lyceum.kit.mail import Mailer
    from lyceum.kit.ratelimit import RateLimiter
    from lyceum.kit.sandbox import Sandbox
    from lyceum.kit.storage import Storage

logger = structlog.get_logger("lyceum.jobs")

P = ParamSpec("P")
R = TypeVar("R")


class Queue(StrEnum):
    """Every queue a Lyceum job runs on."""

    mail = "mail"
    notifications = "notifications"
    certificates = "certificates"
    progress = "progress"
    webhooks = "webhooks"
    maintenance = "maintenance"
    ai = "ai"
    indexing = "indexing"


# Higher is fetched first by a worker that serves several queues.
PRIORITIES: dict[Queue, int] = {
    Queue.mail: 100,
    Queue.notifications: 90,
    Queue.certificates: 80,
    Queue.progress: 70,
    Queue.webhooks: 60,
    Queue.maintenance: 10,
    Queue.ai: -10,
    Queue.indexing: -20,
}
# Queues whose jobs someone is waiting for. Housekeeping (maintenance) is short and rides
# along at the lowest priority; it rescues stalled jobs of every queue, so it must not
# wait behind an hour of indexing.
USER_FACING_QUEUES: tuple[Queue, ...] = (
    Queue.mail,
    Queue.notifications,
    Queue.certificates,
    Queue.progress,
    Queue.webhooks,
    Queue.maintenance,
)
# CPU- or provider-bound work that may run for minutes per job.
BULK_QUEUES: tuple[Queue, ...] = (Queue.ai, Queue.indexing)

# Modules whose import registers tasks and event reactions; a worker imports them all.
TASK_MODULES = [
    "lyceum.kit.mail",
    "lyceum.kit.jobs",
    "lyceum.identity.tasks",
    "lyceum.courses.tasks",
    "lyceum.learning.tasks",
    "lyceum.learning.reactions",
    "lyceum.content.tasks",
    "lyceum.assessments.tasks",
    "lyceum.events.catalogue",
    "lyceum.webhooks.tasks",
    "lyceum.notifications.tasks",
    "lyceum.notifications.reactions",
    "lyceum.payments.receipts",
    "lyceum.channels.tasks",
    "lyceum.reminders.tasks",
    "lyceum.system.tasks",
    "lyceum.payments.tasks",
    "lyceum.analytics.xapi_tasks",
    "lyceum.analytics.tasks",
    "lyceum.analytics.facts",
    "lyceum.analytics.report_tasks",
    "lyceum.recommendations.tasks",
]

# How often a worker writes its heartbeat, and after how long without one its
# running jobs count as stalled (the worker died: kill -9, OOM, lost machine).
HEARTBEAT_SECONDS = 5.0
STALLED_AFTER_SECONDS = 30.0

# The retry policy of every Lyceum task: exponential backoff 2 s, 4 s, 8 s, 16 s, 32 s;
# 6 attempts in all.
DEFAULT_RETRY = RetryStrategy(max_attempts=6, exponential_wait=2)

job_app = App(connector=PsycopgConnector(), import_paths=TASK_MODULES)


@overload
def task(
    *,
    name: str,
    queue: Queue,
    pass_context: Literal[False] = False,
    retry: RetryStrategy | Literal[False] = DEFAULT_RETRY,
    queueing_lock: str | None = None,
) -> Callable[[Callable[P, R]], Task[P, R, P]]: ...


@overload
def task(
    *,
    name: str,
    queue: Queue,
    pass_context: Literal[True],
    retry: RetryStrategy | Literal[False] = DEFAULT_RETRY,
    queueing_lock: str | None = None,
) -> Callable[
    [Callable[Concatenate[JobContext, P], R]], Task[Concatenate[JobContext, P], R, P]
]: ...


def task(
    *,
    name: str,
    queue: Queue,
    pass_context: bool = False,
    retry: RetryStrategy | Literal[False] = DEFAULT_RETRY,
    queueing_lock: str | None = None,
) -> Any:
    """Register a Lyceum task on its queue, at the queue's priority, with the one retry
    policy (`retry=False` for periodic jobs: the next tick is their retry)."""
    return job_app.task(
        name=name,
        queue=queue.value,
        priority=PRIORITIES[queue],
        retry=retry,
        pass_context=pass_context,  # type: ignore[call-overload]
        queueing_lock=queueing_lock,
    )


def is_last_attempt(context: JobContext) -> bool:
    """Whether a failure now is final (no retry follows). `job.attempts` counts the runs
    before this one, and procrastinate retries while it is under `max_attempts`: a task
    runs `max_attempts + 1` times, the last with `attempts == max_attempts`."""
    attempts = context.job.attempts if context.job is not None else 0
    return attempts >= (DEFAULT_RETRY.max_attempts or 0)


# The worker's runtime ---------------------------------------------------------------


class Resources(Protocol):
    """What a job may use: the worker process's runtime (`kit.runtime.Runtime`), built
    once per process and closed at shutdown."""

    @property
    def settings(self) -> Settings: ...
    @property
    def database(self) -> Database: ...
    @property
    def cache(self) -> Cache: ...
    @property
    def rate_limiter(self) -> RateLimiter: ...
    @property
    def storage(self) -> Storage: ...
    @property
    def mailer(self) -> Mailer: ...
    @property
    def sandbox(self) -> Sandbox: ...


RESOURCES_KEY = "lyceum.resources"


def resources(context: JobContext) -> Resources:
    """The runtime of the worker running this job."""
    found = context.additional_context.get(RESOURCES_KEY)
    if found is None:
        raise RuntimeError("this worker was started without a runtime (run_worker(resources))")
    runtime: Resources = found
    return runtime


@asynccontextmanager
async def transaction(runtime: Resources) -> AsyncIterator[AsyncSession]:
    """A session for one step of a job: committed if the block returns (then its
    after-commit effects run), rolled back if it raises (and procrastinate retries)."""
    async with runtime.database.sessionmaker() as session, unit_of_work(session):
        yield session


# Deferring and working ----------------------------------------------------------------


_task_modules_loaded = False


def load_task_modules() -> None:
    """Import every module that registers tasks and event subscriptions. Every emitted
    event asks for them; once they are all in, the question costs one check instead of
    a pass through the import machinery per module (44 a graded quiz attempt)."""
    global _task_modules_loaded
    if _task_modules_loaded:
        return
    for module in TASK_MODULES:
        importlib.import_module(module)
    _task_modules_loaded = True


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


async def defer(
    session: AsyncSession,
    task: Task[Any, Any, Any],
    *,
    queueing_lock: str | None = None,
    schedule_at: datetime | None = None,
    **kwargs: Any,
) -> int | None:
    """Enqueue `task` inside the session's transaction; returns the job id. With a
    `queueing_lock`, a job of the same lock already waiting makes this one redundant:
    nothing is enqueued and None comes back. With `schedule_at`, the job waits until then.
    When tracing is on, the job carries the deferring span's trace context (`kit.tracing`)."""
    if tracing.enabled():
        trace_context = tracing.job_trace_context()
        if trace_context is not None:
            kwargs[tracing.TRACE_KEY] = trace_context
    if queueing_lock is None:
        connection = await raw_connection(session)
        configured = task.configure(connection=connection, schedule_at=schedule_at)
        job_id: int = await configured.defer_async(**kwargs)
        return job_id
    # A duplicate must not abort the caller's transaction: try it in a savepoint. The
    # connection is asked for inside the nested transaction, which is what makes
    # SQLAlchemy send its SAVEPOINT (a connection taken before it would run the INSERT
    # with no savepoint at all, and a refused duplicate would abort the transaction).
    try:
        async with session.begin_nested():
            connection = await raw_connection(session)
            configured = task.configure(
                connection=connection, queueing_lock=queueing_lock, schedule_at=schedule_at
            )
            return int(await configured.defer_async(**kwargs))
    except AlreadyEnqueued:
        return None


def queue_names(queues: Sequence[str] | None) -> list[str] | None:
    """Validated queue names (None: every queue)."""
    if not queues:
        return None
    known = {queue.value for queue in Queue}
    unknown = [name for name in queues if name not in known]
    if unknown:
        raise ValueError(
            f"unknown queue(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    return list(dict.fromkeys(queues))


# Shutdown ----------------------------------------------------------------------------------


class ShutdownAborted(asyncio.CancelledError):
    """A job cut because its worker is shutting down and the grace period ran out. A
    CancelledError, so procrastinate records the attempt as aborted, not failed."""


async def requeue_on_shutdown(
    call_next: Callable[[], Awaitable[Any]], context: JobContext, worker: Any
) -> Any:
    """Worker middleware (the outermost): tells a job cut by the worker's shutdown
    apart from one an admin aborted, so `RequeueOnShutdown` can put it back."""
    try:
        return await call_next()
    except asyncio.CancelledError as cancelled:
        if context.abort_reason() is AbortReason.SHUTDOWN and not isinstance(
            cancelled, ShutdownAborted
        ):
            job = context.job
            logger.warning("job_cut_by_shutdown", job_id=job.id, task=job.task_name)
            raise ShutdownAborted(*cancelled.args) from cancelled
        raise


class RequeueOnShutdown(BaseRetryStrategy):
    """A task's retry strategy (`base`, or none), except that a job cut by a shutdown
    goes back to its queue at once: status todo, no backoff, whatever its attempts
    (procrastinate counts the cut run as one), so another worker, or this one restarted,
    runs it from the start. Tasks are written to be run again (at-least-once)."""

    def __init__(self, base: BaseRetryStrategy | None) -> None:
        self.base = base

    def get_retry_decision(self, *, exception: BaseException, job: Job) -> RetryDecision | None:
        if isinstance(exception, ShutdownAborted):
            return RetryDecision(retry_in={"seconds": 0})
        if self.base is None:
            return None
        return self.base.get_retry_decision(exception=exception, job=job)


def _requeue_on_shutdown_everywhere() -> None:
    """Give every registered task `RequeueOnShutdown` (once: it is idempotent)."""
    for registered in job_app.tasks.values():
        if not isinstance(registered.retry_strategy, RequeueOnShutdown):
            registered.retry_strategy = RequeueOnShutdown(registered.retry_strategy)


async def _beat_while_draining(worker: Worker, interval: float) -> None:
    """procrastinate stops the worker's heartbeat as soon as it starts shutting down,
    then gives running jobs the grace period: a grace near the stall threshold would let
    another worker's `requeue_stalled_jobs` take a job that is still running here. The
    heartbeat goes on until the worker unregisters."""
    while (worker_id := worker.worker_id) is not None:
        with contextlib.suppress(Exception):
            await job_app.job_manager.update_heartbeat(worker_id)
        await asyncio.sleep(interval)


async def run_worker(
    runtime: Resources,
    *,
    name: str = "worker",
    concurrency: int = 4,
    wait: bool = True,
    install_signal_handlers: bool = True,
    heartbeat_seconds: float = HEARTBEAT_SECONDS,
    queues: Sequence[str] | None = None,
    shutdown_graceful_timeout: float | None = None,
) -> None:
    """Run jobs of `queues` (all when None) with `runtime` as their resources, until
    cancelled. Cancelled, the worker stops fetching and running jobs get
    `shutdown_graceful_timeout` seconds (None: as long as they take) to finish; the rest
    are cut and put back in their queue at once (`RequeueOnShutdown`). Each failed
    attempt's exception is written to `job_failures` (kit.jobops) for the admins, and each
    attempt counted in `lyceum_job_runs_total` and `lyceum_job_duration_seconds`."""
    from lyceum.kit.jobops import record_failures, record_metrics  # it builds on this module

    options: WorkerOptions = {
        "name": name,
        "concurrency": concurrency,
        "wait": wait,
        "install_signal_handlers": install_signal_handlers,
        "update_heartbeat_interval": heartbeat_seconds,
        "stalled_worker_timeout": STALLED_AFTER_SECONDS,
        "listen_notify": True,
        "additional_context": {RESOURCES_KEY: runtime},
        # requeue_on_shutdown is the outermost; the trace context a traced process
        # stored in the job is always taken out before the task sees its arguments.
        "worker_middleware": [
            requeue_on_shutdown,
            tracing.job_middleware,
            record_metrics,
            record_failures,
        ],
    }
    if queues:  # without `queues` the worker serves every queue
        options["queues"] = list(queues)
    if shutdown_graceful_timeout is not None:
        options["shutdown_graceful_timeout"] = shutdown_graceful_timeout
    _requeue_on_shutdown_everywhere()
    worker = Worker(app=job_app, **options)
    # procrastinate's Worker.run and Worker.stop carry no annotations.
    running = asyncio.create_task(
        worker.run(),  # type: ignore[no-untyped-call]
        name=f"procrastinate-{name}",
    )
    try:
        await asyncio.shield(running)
    except asyncio.CancelledError:
        if running.done():
            raise
        # Stop fetching, wait for the running jobs (the grace), requeue the rest.
        beating = asyncio.create_task(_beat_while_draining(worker, heartbeat_seconds))
        worker.stop()  # type: ignore[no-untyped-call]
        try:
            await running
        finally:
            beating.cancel()
        raise


async def requeue_stalled_jobs(seconds_since_heartbeat: float = STALLED_AFTER_SECONDS) -> int:
    """Put back in the queue the jobs whose worker stopped sending heartbeats."""
    manager = job_app.job_manager
    stalled = list(await manager.get_stalled_jobs(seconds_since_heartbeat=seconds_since_heartbeat))
    requeued = 0
    for job in stalled:
        try:
            await manager.retry_job(job)
        except ConnectorException:
            # It left `doing` meanwhile: its own worker finished or requeued it.
            logger.info("stalled_job_already_moved", job_id=job.id, task=job.task_name)
            continue
        requeued += 1
        logger.warning("stalled_job_requeued", job_id=job.id, task=job.task_name)
    return requeued


@job_app.periodic(cron="* * * * *", periodic_id="requeue-stalled")
@task(
    name="lyceum.requeue_stalled_jobs",
    queue=Queue.maintenance,
    retry=False,
    queueing_lock="requeue_stalled_jobs",
)
async def requeue_stalled_jobs_task(timestamp: int) -> int:
    """Every minute: rescue jobs of dead workers (they are retried on a live one)."""
    return await requeue_stalled_jobs()


__all__ = [
    "BULK_QUEUES",
    "DEFAULT_RETRY",
    "PRIORITIES",
    "USER_FACING_QUEUES",
    "JobContext",
    "Queue",
    "RequeueOnShutdown",
    "Resources",
    "ShutdownAborted",
    "close_jobs",
    "defer",
    "is_last_attempt",
    "job_app",
    "open_jobs",
    "requeue_stalled_jobs",
    "resources",
    "run_worker",
    "task",
    "transaction",
]
