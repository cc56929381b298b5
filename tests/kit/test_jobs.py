"""Jobs ride on the request's transaction (rule 3), retry with backoff, run periodically,
and survive a worker killed mid-job."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from typing import cast

import httpx
import psycopg
import pytest
from fastapi import APIRouter, FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.config import Settings
from lyceum.kit.db import Session, libpq_url
from lyceum.kit.errors import Conflict
from lyceum.kit.jobs import (
    DEFAULT_RETRY,
    defer,
    job_app,
    requeue_stalled_jobs,
    requeue_stalled_jobs_task,
)
from lyceum.kit.runtime import Runtime
from tests.conftest import client_for, make_app
from tests.support import jobs as test_jobs
from tests.support.servers import REPO_ROOT

router = APIRouter(prefix="/api/v1/probe")


@router.post("/jobs/{token}")
async def enqueue(token: str, session: Session, fail: bool = False) -> dict[str, int]:
    await session.execute(text("SELECT 1"))
    job_id = await defer(session, test_jobs.record, token=token)
    if fail:
        raise Conflict("rolled back after enqueueing")
    return {"job_id": job_id}


@pytest.fixture
async def committing_client(
    settings: Settings, runtime: Runtime
) -> AsyncIterator[httpx.AsyncClient]:
    """The real session dependency: requests commit for real."""
    app: FastAPI = make_app(settings, runtime, None)
    app.include_router(router)
    async with client_for(app) as http:
        yield http


async def job_rows(runtime: Runtime, token: str) -> list[tuple[int, str, int]]:
    async with runtime.database.engine.connect() as conn:
        result = await conn.execute(
            text(
                "SELECT id, status::text, attempts FROM procrastinate_jobs "
                "WHERE args->>'token' = :token ORDER BY id"
            ),
            {"token": token},
        )
        return [(row[0], row[1], row[2]) for row in result]


async def drain(queue: str = test_jobs.QUEUE) -> None:
    await test_jobs.run_jobs([queue])


async def test_job_enqueued_in_a_committed_request_runs(
    committing_client: httpx.AsyncClient, runtime: Runtime
) -> None:
    token = uuid.uuid4().hex
    response = await committing_client.post(f"/api/v1/probe/jobs/{token}")
    assert response.status_code == 200
    rows = await job_rows(runtime, token)
    assert [(row[0], row[1]) for row in rows] == [(response.json()["job_id"], "todo")]

    await drain()

    assert token in test_jobs.executed
    assert (await job_rows(runtime, token))[0][1] == "succeeded"


async def test_job_enqueued_in_a_rolled_back_request_never_runs(
    committing_client: httpx.AsyncClient, runtime: Runtime
) -> None:
    token = uuid.uuid4().hex
    response = await committing_client.post(f"/api/v1/probe/jobs/{token}", params={"fail": True})
    assert response.status_code == 409
    assert await job_rows(runtime, token) == []

    await drain()

    assert token not in test_jobs.executed


async def test_failed_job_is_retried_with_exponential_backoff(runtime: Runtime) -> None:
    token = uuid.uuid4().hex
    await test_jobs.always_fails.defer_async(token=token)
    before = dt.datetime.now(dt.UTC)
    await drain()
    [(job_id, status, attempts)] = await job_rows(runtime, token)
    assert (status, attempts) == ("todo", 1)
    async with runtime.database.engine.connect() as conn:
        scheduled = (
            await conn.execute(
                text("SELECT scheduled_at FROM procrastinate_jobs WHERE id = :id"), {"id": job_id}
            )
        ).scalar_one()
    # exponential_wait=2 -> the first retry waits 2**1 = 2 s.
    assert dt.timedelta(seconds=1) <= scheduled - before <= dt.timedelta(seconds=4)
    # Not left to fail again in whichever later test runs this queue.
    assert await job_app.job_manager.cancel_job_by_id_async(job_id)


def test_default_retry_strategy_backs_off_exponentially() -> None:
    from procrastinate.jobs import Job

    waits = []
    for attempts in range(5):
        job = Job(id=1, queue="q", lock=None, queueing_lock=None, task_name="t", attempts=attempts)
        decision = DEFAULT_RETRY.get_retry_decision(exception=RuntimeError(), job=job)
        assert decision is not None and decision.retry_at is not None
        waits.append(round((decision.retry_at - dt.datetime.now(dt.UTC)).total_seconds()))
    assert waits == [2, 4, 8, 16, 32]
    last = Job(id=1, queue="q", lock=None, queueing_lock=None, task_name="t", attempts=6)
    assert DEFAULT_RETRY.get_retry_decision(exception=RuntimeError(), job=last) is None


def test_is_last_attempt_agrees_with_the_retry_decision() -> None:
    """A task's "this failure is final" handling (a file marked failed, an essay left to
    the instructor) runs exactly on the run after which procrastinate retries no more."""
    from types import SimpleNamespace

    from procrastinate.jobs import Job

    from lyceum.kit.jobs import JobContext, is_last_attempt

    for attempts in range((DEFAULT_RETRY.max_attempts or 0) + 1):
        job = Job(id=1, queue="q", lock=None, queueing_lock=None, task_name="t", attempts=attempts)
        context = cast(JobContext, SimpleNamespace(job=job))
        retried = DEFAULT_RETRY.get_retry_decision(exception=RuntimeError(), job=job) is not None
        assert is_last_attempt(context) is not retried, attempts


def test_stalled_job_rescue_is_a_periodic_job() -> None:
    periodic = {
        task.task.name: task.cron for task in job_app.periodic_registry.periodic_tasks.values()
    }
    assert periodic[requeue_stalled_jobs_task.name] == "* * * * *"


@pytest.mark.slow
async def test_worker_killed_mid_job_gets_its_job_retried(
    runtime: Runtime, database_url: str
) -> None:
    conninfo = libpq_url(database_url)
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        await conn.execute(test_jobs.CREATE_RUNS_TABLE)
    token = uuid.uuid4().hex
    await test_jobs.slow.defer_async(token=token, conninfo=conninfo)

    worker = subprocess.Popen(
        [sys.executable, "-m", "tests.support.worker_process", conninfo, test_jobs.SLOW_QUEUE],
        cwd=REPO_ROOT,
        env={**os.environ, "LOG_LEVEL": "WARNING"},
    )
    try:
        deadline = time.monotonic() + 60
        started = False
        while not started and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            async with await psycopg.AsyncConnection.connect(conninfo) as conn:
                row = await (
                    await conn.execute(
                        "SELECT count(*) FROM test_job_runs WHERE token = %s AND state = 'started'",
                        (token,),
                    )
                ).fetchone()
                started = bool(row and row[0])
        assert started, "the worker never picked up the job"
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()

    [(_, status, _)] = await job_rows(runtime, token)
    assert status == "doing"  # the dead worker still holds it

    await asyncio.sleep(1.5)  # no heartbeat for longer than the threshold below
    assert await requeue_stalled_jobs(seconds_since_heartbeat=1.0) >= 1

    await drain(test_jobs.SLOW_QUEUE)

    [(_, status, attempts)] = await job_rows(runtime, token)
    assert status == "succeeded"
    assert attempts == 2  # the killed run and the retry
    async with await psycopg.AsyncConnection.connect(conninfo) as conn:
        states = await (
            await conn.execute(
                "SELECT attempt, state FROM test_job_runs WHERE token = %s ORDER BY at", (token,)
            )
        ).fetchall()
    assert states == [(0, "started"), (1, "started"), (1, "finished")]


async def test_a_job_already_queued_under_its_lock_leaves_the_transaction_usable(
    session: AsyncSession,
) -> None:
    """A second job under a queueing lock that is already waiting is refused by the
    jobs table's unique index; `defer` answers None and the caller's transaction goes on
    (the refusal is confined to a savepoint), as the demo loader's second run needs."""
    lock = f"tests-lock-{uuid.uuid4()}"
    first = await defer(session, test_jobs.record, queueing_lock=lock, token="first")
    second = await defer(session, test_jobs.record, queueing_lock=lock, token="second")
    assert first is not None and second is None
    assert (await session.execute(text("SELECT 1"))).scalar_one() == 1
