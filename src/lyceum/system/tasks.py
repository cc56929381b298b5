"""The periodic cleanups on the `maintenance` queue, hourly, each at a minute of its own.
Two workers on one tick make one job (procrastinate's periodic defer is unique per tick,
and the queueing lock keeps one waiting); a run never overlaps another
(system.cleanup's advisory lock)."""

from __future__ import annotations

import datetime as dt
from contextlib import AbstractAsyncContextManager

from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.kit.jobs import JobContext, Queue, Resources, job_app, resources, task, transaction
from lyceum.system import cleanup


def _sessions(runtime: Resources) -> cleanup.Sessions:
    def session() -> AbstractAsyncContextManager[AsyncSession]:
        return transaction(runtime)

    return session


def _tick(timestamp: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC)


@job_app.periodic(cron="7 * * * *", periodic_id="cleanup-finished-jobs")
@task(
    name="lyceum.cleanup.finished_jobs",
    queue=Queue.maintenance,
    pass_context=True,
    retry=False,
    queueing_lock="cleanup.finished_jobs",
)
async def cleanup_finished_jobs(context: JobContext, timestamp: int) -> int | None:
    """Jobs finished more than JOB_RETENTION_DAYS ago."""
    runtime = resources(context)
    return await cleanup.finished_jobs(_sessions(runtime), runtime.settings, _tick(timestamp))


@job_app.periodic(cron="17 * * * *", periodic_id="cleanup-login-sessions")
@task(
    name="lyceum.cleanup.login_sessions",
    queue=Queue.maintenance,
    pass_context=True,
    retry=False,
    queueing_lock="cleanup.login_sessions",
)
async def cleanup_login_sessions(context: JobContext, timestamp: int) -> int | None:
    """Logins and refresh tokens ended more than REFRESH_TOKEN_RETENTION_DAYS ago."""
    runtime = resources(context)
    return await cleanup.login_sessions(_sessions(runtime), runtime.settings, _tick(timestamp))


@job_app.periodic(cron="27 * * * *", periodic_id="cleanup-one-time-tokens")
@task(
    name="lyceum.cleanup.one_time_tokens",
    queue=Queue.maintenance,
    pass_context=True,
    retry=False,
    queueing_lock="cleanup.one_time_tokens",
)
async def cleanup_one_time_tokens(context: JobContext, timestamp: int) -> int | None:
    """Verification and reset tokens used or expired ONE_TIME_TOKEN_RETENTION_DAYS ago."""
    runtime = resources(context)
    return await cleanup.one_time_tokens(_sessions(runtime), runtime.settings, _tick(timestamp))


@job_app.periodic(cron="37 * * * *", periodic_id="cleanup-mail-log")
@task(
    name="lyceum.cleanup.mail_log",
    queue=Queue.maintenance,
    pass_context=True,
    retry=False,
    queueing_lock="cleanup.mail_log",
)
async def cleanup_mail_log(context: JobContext, timestamp: int) -> int | None:
    """The mail delivery log older than MAIL_LOG_RETENTION_DAYS."""
    runtime = resources(context)
    return await cleanup.mail_log(_sessions(runtime), runtime.settings, _tick(timestamp))


@job_app.periodic(cron="47 * * * *", periodic_id="cleanup-orphan-uploads")
@task(
    name="lyceum.cleanup.orphan_uploads",
    queue=Queue.maintenance,
    pass_context=True,
    retry=False,
    queueing_lock="cleanup.orphan_uploads",
)
async def cleanup_orphan_uploads(context: JobContext, timestamp: int) -> int | None:
    """Stored uploads no row refers to, older than ORPHAN_UPLOAD_GRACE_HOURS."""
    runtime = resources(context)
    return await cleanup.orphan_uploads(
        _sessions(runtime), runtime.storage, runtime.settings, _tick(timestamp)
    )


__all__ = [
    "cleanup_finished_jobs",
    "cleanup_login_sessions",
    "cleanup_mail_log",
    "cleanup_one_time_tokens",
    "cleanup_orphan_uploads",
]
