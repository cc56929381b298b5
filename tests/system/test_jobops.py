"""Job operations: queue figures, failed jobs with the exception that failed them, retry
and cancel (409 in the wrong state), `lyceum jobs`, and the per-queue gauges of /metrics.
Admins only."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection
from typer.testing import CliRunner

from lyceum.cli import cli
from lyceum.kit.jobs import job_app
from lyceum.kit.runtime import Runtime
from lyceum.models.identity import Role
from tests.chat.helpers import Member, member_in
from tests.support.clock import FrozenClock
from tests.support.jobs import run_jobs

QUEUE = "tests-jobops"
JOBS = "/api/v1/admin/jobs"


@job_app.task(name="tests.jobops.fails", queue=QUEUE, retry=False)
async def fails(token: str) -> None:
    raise RuntimeError(f"boom {token}")


@job_app.task(name="tests.jobops.succeeds", queue=QUEUE)
async def succeeds(token: str) -> None:
    return None


@pytest.fixture
async def admin(connection: AsyncConnection, runtime: Runtime, clock: FrozenClock) -> Member:
    return await member_in(connection, runtime.tokens, clock.now(), Role.admin, "Ada")


async def insert_job(
    connection: AsyncConnection, queue: str, status: str, *, due_in: float | None = None
) -> int:
    """A job row in the test's transaction (rolled back with it)."""
    job_id: int = (
        await connection.execute(
            text(
                "INSERT INTO procrastinate_jobs (queue_name, task_name, status, scheduled_at) "
                "VALUES (:queue, 'tests.jobops.succeeds', CAST(:status AS "
                "procrastinate_job_status), now() + make_interval(secs => CAST(:due AS float8))) "
                "RETURNING id"
            ),
            {"queue": queue, "status": status, "due": due_in},
        )
    ).scalar_one()
    return job_id


async def test_queue_figures_count_jobs_by_status_and_the_oldest_wait(
    client: httpx.AsyncClient, connection: AsyncConnection, admin: Member
) -> None:
    queue = f"q-{uuid.uuid4().hex[:8]}"
    await insert_job(connection, queue, "todo", due_in=-90)
    await insert_job(connection, queue, "todo")
    await insert_job(connection, queue, "todo", due_in=3600)
    for status in ("doing", "succeeded", "succeeded", "failed", "cancelled", "aborted"):
        await insert_job(connection, queue, status)

    response = await client.get(f"{JOBS}/queues", headers=admin.headers)

    assert response.status_code == 200, response.text
    by_queue = {item["queue"]: item for item in response.json()["items"]}
    assert by_queue[queue]["counts"] == {
        "todo": 3,
        "doing": 1,
        "succeeded": 2,
        "failed": 1,
        "cancelled": 1,
        "aborted": 1,
    }
    # The job scheduled for later is not waiting; the one due 90 s ago is the oldest.
    assert by_queue[queue]["oldest_waiting_seconds"] == pytest.approx(90, abs=1)
    # Every Lyceum queue is listed, the empty ones too.
    assert {"mail", "notifications", "maintenance", "indexing"} <= set(by_queue)


@pytest.fixture
async def failed_job(runtime: Runtime) -> AsyncIterator[tuple[int, str]]:
    """A job that really failed on a worker (committed; removed afterwards). Ask for it
    before `client`: it is removed after the test's transaction (which may hold its row
    locked) has rolled back."""
    token = uuid.uuid4().hex
    job_id = await fails.defer_async(token=token)
    await run_jobs([QUEUE])
    yield job_id, token
    async with runtime.database.engine.begin() as conn:
        await conn.execute(text("DELETE FROM procrastinate_jobs WHERE id = :id"), {"id": job_id})


async def test_a_failed_job_is_listed_with_its_error(
    failed_job: tuple[int, str], client: httpx.AsyncClient, admin: Member
) -> None:
    job_id, token = failed_job
    response = await client.get(
        f"{JOBS}/failed", params={"queue": QUEUE, "size": 100}, headers=admin.headers
    )
    assert response.status_code == 200, response.text
    page = response.json()
    [item] = [item for item in page["items"] if item["id"] == job_id]
    assert item["task"] == "tests.jobops.fails"
    assert item["queue"] == QUEUE
    assert item["attempts"] == 1
    assert item["error"] == f"RuntimeError: boom {token}"
    assert item["finished_at"] is not None
    assert page["total"] >= 1

    detail = (await client.get(f"{JOBS}/{job_id}", headers=admin.headers)).json()
    assert detail["status"] == "failed"
    assert detail["args"] == {"token": token}
    [failure] = detail["failures"]
    assert failure["attempt"] == 1
    assert "raise RuntimeError" in failure["traceback"]


async def test_retry_a_failed_job_then_cancel_it_while_it_waits(
    failed_job: tuple[int, str], client: httpx.AsyncClient, admin: Member
) -> None:
    job_id, _ = failed_job
    # Only a waiting job can be cancelled: this one has failed.
    refused = await client.post(f"{JOBS}/{job_id}/cancel", headers=admin.headers)
    assert refused.status_code == 409
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"].endswith("/job-not-waiting")

    retried = await client.post(f"{JOBS}/{job_id}/retry", headers=admin.headers)
    assert retried.status_code == 200, retried.text
    assert retried.json()["status"] == "todo"
    # Only a failed job can be retried: this one waits now.
    again = await client.post(f"{JOBS}/{job_id}/retry", headers=admin.headers)
    assert again.status_code == 409
    assert again.json()["type"].endswith("/job-not-failed")

    cancelled = await client.post(f"{JOBS}/{job_id}/cancel", headers=admin.headers)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert (await client.post(f"{JOBS}/{job_id}/cancel", headers=admin.headers)).status_code == 409


async def test_unknown_jobs_and_bad_ids(client: httpx.AsyncClient, admin: Member) -> None:
    for method, path in (
        ("GET", f"{JOBS}/999999999999"),
        ("POST", f"{JOBS}/999999999999/retry"),
        ("POST", f"{JOBS}/999999999999/cancel"),
    ):
        response = await client.request(method, path, headers=admin.headers)
        assert response.status_code == 404, path
        assert response.headers["content-type"] == "application/problem+json"
    bad = await client.get(f"{JOBS}/0", headers=admin.headers)
    assert bad.status_code == 422
    assert bad.headers["content-type"] == "application/problem+json"


async def test_only_admins_operate_jobs(
    client: httpx.AsyncClient, connection: AsyncConnection, runtime: Runtime, clock: FrozenClock
) -> None:
    teacher = await member_in(connection, runtime.tokens, clock.now(), Role.instructor, "Tea")
    for method, path in (
        ("GET", f"{JOBS}/queues"),
        ("GET", f"{JOBS}/failed"),
        ("GET", f"{JOBS}/1"),
        ("POST", f"{JOBS}/1/retry"),
        ("POST", f"{JOBS}/1/cancel"),
    ):
        assert (await client.request(method, path)).status_code == 401, path
        assert (await client.request(method, path, headers=teacher.headers)).status_code == 403


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["jobs", *args])
    return result.exit_code, result.stdout


async def test_the_cli_lists_queues_and_failed_jobs_and_retries(
    failed_job: tuple[int, str],
) -> None:
    job_id, token = failed_job
    code, out = await asyncio.to_thread(_cli, "queues", "--json")
    assert code == 0, out
    queues = {item["queue"]: item for item in json.loads(out)}
    assert queues[QUEUE]["counts"]["failed"] >= 1
    assert set(queues[QUEUE]) == {"queue", "counts", "oldest_waiting_seconds"}

    code, out = await asyncio.to_thread(_cli, "failed", "--queue", QUEUE, "--json")
    assert code == 0, out
    [item] = [item for item in json.loads(out)["items"] if item["id"] == job_id]
    assert item["error"] == f"RuntimeError: boom {token}"

    code, out = await asyncio.to_thread(_cli, "cancel", str(job_id), "--json")
    assert code == 1  # not waiting
    code, out = await asyncio.to_thread(_cli, "retry", str(job_id), "--json")
    assert code == 0, out
    assert json.loads(out)["status"] == "todo"
    code, out = await asyncio.to_thread(_cli, "cancel", str(job_id), "--json")
    assert code == 0, out
    assert json.loads(out)["status"] == "cancelled"

    code, out = await asyncio.to_thread(_cli, "queues")
    assert code == 0 and "mail" in out and "cancelled" in out


async def test_metrics_show_each_queue_by_status_and_its_oldest_wait(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    queue = f"m-{uuid.uuid4().hex[:8]}"
    async with runtime.database.engine.begin() as conn:
        await insert_job(conn, queue, "todo", due_in=-120)
        await insert_job(conn, queue, "failed")
    try:
        text_out = (await client.get("/metrics")).text
    finally:
        async with runtime.database.engine.begin() as conn:
            await conn.execute(
                text("DELETE FROM procrastinate_jobs WHERE queue_name = :q"), {"q": queue}
            )
    assert f'lyceum_jobs{{queue="{queue}",status="todo"}} 1.0' in text_out
    assert f'lyceum_jobs{{queue="{queue}",status="failed"}} 1.0' in text_out
    assert f'lyceum_jobs{{queue="{queue}",status="doing"}} 0.0' in text_out
    assert 'lyceum_jobs{queue="maintenance",status="todo"}' in text_out
    [line] = [
        line
        for line in text_out.splitlines()
        if line.startswith(f'lyceum_job_oldest_waiting_seconds{{queue="{queue}"}}')
    ]
    assert 119 <= float(line.split()[-1]) < 180
