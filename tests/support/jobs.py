"""Tasks used only by the tests, registered on the real job app.

They record what happened in `test_job_runs`, a table the tests create, so that a
worker in another process can report back through the database.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from typing import Any

import psycopg
from procrastinate import RetryStrategy

from lyceum.kit.jobs import JobContext, Resources, job_app, run_worker
from lyceum.kit.runtime import Runtime

QUEUE = "tests"
SLOW_QUEUE = "tests-slow"

executed: list[str] = []


class _Bound:
    """The session's test runtime (set by the `runtime` fixture), which jobs run with."""

    runtime: Resources | None = None


def bind(runtime: Resources | None) -> None:
    _Bound.runtime = runtime


def with_settings(runtime: Runtime, **changes: Any) -> Runtime:
    """A runtime like `runtime` whose settings differ (jobs read their settings from
    the runtime that runs them)."""
    return dataclasses.replace(runtime, settings=runtime.settings.model_copy(update=changes))


async def run_jobs(
    queues: Sequence[str] | None = None, *, runtime: Resources | None = None
) -> None:
    """Run every queued job (of `queues`, or all) to completion, in this process, with
    the session's test runtime (or `runtime`)."""
    runtime = runtime or _Bound.runtime
    assert runtime is not None, "the runtime fixture binds the test runtime"
    await run_worker(
        runtime, wait=False, install_signal_handlers=False, concurrency=1, queues=queues
    )


CREATE_RUNS_TABLE = """
CREATE TABLE IF NOT EXISTS test_job_runs (
    token text NOT NULL,
    attempt int NOT NULL,
    state text NOT NULL,
    at timestamptz NOT NULL DEFAULT now()
)
"""


@job_app.task(name="tests.record", queue=QUEUE)
async def record(token: str) -> None:
    executed.append(token)


@job_app.task(
    name="tests.always_fails",
    queue=QUEUE,
    retry=RetryStrategy(max_attempts=3, exponential_wait=2),
)
async def always_fails(token: str) -> None:
    raise RuntimeError(f"failure for {token}")


@job_app.task(name="tests.slow", queue=SLOW_QUEUE, pass_context=True)
async def slow(context: JobContext, token: str, conninfo: str) -> None:
    """Sleeps for a long time on its first attempt (to be killed mid-job)."""
    assert context.job is not None
    attempt = context.job.attempts
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        await conn.execute(
            "INSERT INTO test_job_runs (token, attempt, state) VALUES (%s, %s, 'started')",
            (token, attempt),
        )
        if attempt == 0:
            await asyncio.sleep(120)
        await conn.execute(
            "INSERT INTO test_job_runs (token, attempt, state) VALUES (%s, %s, 'finished')",
            (token, attempt),
        )


# On a real queue: `lyceum worker --queues` takes only Lyceum's queue names.
PACED_QUEUE = "maintenance"


@job_app.task(name="tests.paced", queue=PACED_QUEUE, pass_context=True)
async def paced(context: JobContext, token: str, conninfo: str, seconds: list[float]) -> None:
    """Takes `seconds[attempt]` seconds (the last figure for later attempts), recording
    its start and end in `test_job_runs`: the graceful-shutdown tests cut it or let it
    finish."""
    assert context.job is not None
    attempt = context.job.attempts
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        await conn.execute(
            "INSERT INTO test_job_runs (token, attempt, state) VALUES (%s, %s, 'started')",
            (token, attempt),
        )
        await asyncio.sleep(seconds[min(attempt, len(seconds) - 1)])
        await conn.execute(
            "INSERT INTO test_job_runs (token, attempt, state) VALUES (%s, %s, 'finished')",
            (token, attempt),
        )


@job_app.task(name="tests.fails_twice", queue=PACED_QUEUE, retry=RetryStrategy(max_attempts=1))
async def fails_twice(token: str) -> None:
    """Fails every time: retried once at once, then failed for good (on a Lyceum queue,
    so that the real `lyceum worker` takes it)."""
    seen_by_the_error_tracker = f"local of {token}"
    raise RuntimeError(f"failure for {token} ({len(seen_by_the_error_tracker)})")
