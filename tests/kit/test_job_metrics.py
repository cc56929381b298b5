"""Job attempts are counted by queue, task and outcome, and timed, by the worker
middleware: a success, a failure that will be retried, the last failure, and an abort."""

from __future__ import annotations

import uuid

from procrastinate.exceptions import JobAborted
from sqlalchemy import text

from lyceum.kit.jobs import job_app
from lyceum.kit.runtime import Runtime
from tests.support import jobs as test_jobs
from tests.support.metrics import sample


@job_app.task(name="tests.metrics.aborts", queue=test_jobs.QUEUE)
async def aborts(token: str) -> None:
    raise JobAborted(f"aborted {token}")


def _runs(task: str, outcome: str) -> float:
    return sample("lyceum_job_runs_total", queue=test_jobs.QUEUE, task=task, outcome=outcome)


def _timed(task: str) -> float:
    return sample("lyceum_job_duration_seconds_count", queue=test_jobs.QUEUE, task=task)


async def test_each_attempt_is_counted_by_outcome_and_timed(runtime: Runtime) -> None:
    # Whatever earlier tests left due in this queue runs now, outside the counts.
    await test_jobs.run_jobs([test_jobs.QUEUE])
    before = {
        ("tests.record", "succeeded"): _runs("tests.record", "succeeded"),
        ("tests.always_fails", "retried"): _runs("tests.always_fails", "retried"),
        ("tests.always_fails", "failed"): _runs("tests.always_fails", "failed"),
        ("tests.metrics.aborts", "aborted"): _runs("tests.metrics.aborts", "aborted"),
    }
    timed = _timed("tests.always_fails")
    token = uuid.uuid4().hex
    await test_jobs.record.defer_async(token=token)
    job_id = await test_jobs.always_fails.defer_async(token=token)
    await aborts.defer_async(token=token)
    await test_jobs.run_jobs([test_jobs.QUEUE])

    assert _runs("tests.record", "succeeded") == before[("tests.record", "succeeded")] + 1
    assert _runs("tests.always_fails", "retried") == before[("tests.always_fails", "retried")] + 1
    assert _runs("tests.always_fails", "failed") == before[("tests.always_fails", "failed")]
    assert (
        _runs("tests.metrics.aborts", "aborted") == before[("tests.metrics.aborts", "aborted")] + 1
    )
    assert _timed("tests.always_fails") == timed + 1

    # procrastinate retries while `attempts` (retries so far) < max_attempts (3): with
    # three behind it, the next attempt, due now, fails for good.
    async with runtime.database.engine.begin() as conn:
        await conn.execute(
            text("UPDATE procrastinate_jobs SET attempts = 3, scheduled_at = now() WHERE id = :id"),
            {"id": job_id},
        )
    await test_jobs.run_jobs([test_jobs.QUEUE])
    assert _runs("tests.always_fails", "failed") == before[("tests.always_fails", "failed")] + 1
    assert _runs("tests.always_fails", "retried") == before[("tests.always_fails", "retried")] + 1
    assert _timed("tests.always_fails") == timed + 2
