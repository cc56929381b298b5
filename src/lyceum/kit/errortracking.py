"""Errors reported to Sentry when SENTRY_DSN is set, from every process that has them:
the API's unhandled errors (the SDK's own integrations), and the jobs that failed for
good, from whichever process ran them (`lyceum serve`'s workers, `lyceum worker`).

A failed job is reported by the worker middleware that writes it down
(`kit.jobops.record_failures`), before it lets go of the frames' local variables, so
the event carries them; procrastinate's own error line for the same exception is then
dropped by the SDK as a duplicate. A failure the task's retry policy tries again is not
reported: it is in `job_failures`, and its last attempt is reported if it fails too."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Literal

from lyceum import __version__
from lyceum.config import Settings

if TYPE_CHECKING:
    from lyceum.kit.jobs import JobContext

Role = Literal["api", "worker"]


def init_sentry(settings: Settings, role: Role) -> None:
    """Start reporting to SENTRY_DSN (nothing when it is unset)."""
    if settings.sentry_dsn is None:
        return
    import sentry_sdk

    sentry_sdk.init(
        dsn=settings.sentry_dsn.get_secret_value(),
        environment=settings.environment.value,
        release=f"lyceum@{__version__}",
        traces_sample_rate=0.0,
    )
    sentry_sdk.set_tag("lyceum.role", role)


def report_job_failure(context: JobContext, error: BaseException) -> None:
    """Report a job that failed for good, with its task, queue, id and attempt."""
    if "sentry_sdk" not in sys.modules:  # never initialised in this process
        return
    import sentry_sdk

    job = context.job
    if job is None or not sentry_sdk.get_client().is_active():
        return
    with sentry_sdk.new_scope() as scope:
        scope.set_tag("job.task", job.task_name)
        scope.set_tag("job.queue", job.queue)
        scope.set_context("job", {"id": job.id, "attempt": job.attempts + 1})
        sentry_sdk.capture_exception(error)
