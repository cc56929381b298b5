"""`lyceum worker --metrics-port` serves the worker's own Prometheus metrics: a job it
ran shows up in `lyceum_job_runs_total` on that port."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from procrastinate.exceptions import AlreadyEnqueued

from lyceum.kit.jobs import requeue_stalled_jobs_task
from lyceum.kit.runtime import Runtime
from tests.conftest import TEST_SECRET
from tests.support.servers import REPO_ROOT, free_port, stop

pytestmark = pytest.mark.slow

SUCCEEDED = (
    'lyceum_job_runs_total{outcome="succeeded",queue="maintenance",'
    'task="lyceum.requeue_stalled_jobs"}'
)


async def test_the_worker_serves_its_job_metrics(
    runtime: Runtime, database_url: str, tmp_path: Path
) -> None:
    port = free_port()
    log = tmp_path / "worker.log"
    env = {
        **os.environ,
        "ENVIRONMENT": "test",
        "DATABASE_URL": database_url,
        "LYCEUM_DATA_DIR": str(tmp_path),
        "SECRET_KEY": TEST_SECRET,
        "PUBLIC_BASE_URL": "http://lyceum.test",
        "REDIS_URL": "",
        "LOG_LEVEL": "INFO",
    }
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "lyceum",
                "worker",
                "--queues",
                "maintenance",
                "--metrics-port",
                str(port),
            ],
            env=env,
            cwd=REPO_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        # The worker's own periodic deferrer queues the same task every minute under the
        # same queueing lock, and may get there first: either way one such job is
        # queued for this worker to run, which is all the test needs.
        with contextlib.suppress(AlreadyEnqueued):
            await requeue_stalled_jobs_task.defer_async(timestamp=int(time.time()))
        deadline = time.monotonic() + 90
        text = ""
        async with httpx.AsyncClient() as http:
            while time.monotonic() < deadline:
                assert worker.poll() is None, log.read_text()
                try:
                    response = await http.get(f"http://127.0.0.1:{port}/metrics", timeout=2)
                except httpx.HTTPError:
                    response = None
                if response is not None and response.status_code == 200:
                    text = response.text
                    if SUCCEEDED in text:
                        break
                await asyncio.sleep(0.2)
        assert SUCCEEDED in text, log.read_text()[-3000:]
        assert "lyceum_job_duration_seconds_bucket{" in text
        assert "worker_metrics_serving" in log.read_text()
    finally:
        stop(worker)
    assert worker.returncode == 0, log.read_text()[-3000:]
