"""The embedded mode's bulk worker runs in a child process of the server, at a lower
CPU priority, and never outlives the server: stopped with it, and gone by itself when
the server is killed."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import time
from pathlib import Path

import httpx
import psutil
import pytest
from PIL import Image

from lyceum.config import Settings
from lyceum.content.tasks import ingest_file
from lyceum.kit.embedded_pg import EmbeddedPostgres
from lyceum.kit.jobs import Queue
from lyceum.kit.runtime import Runtime
from lyceum.kit.workerprocess import NICENESS, supervise
from lyceum.models.identity import Role
from tests.conftest import client_for, make_app
from tests.content.helpers import course_with_lesson, person, upload
from tests.support.jobs import run_jobs
from tests.support.servers import free_port, start_lyceum, stop, wait_until_healthy

pytestmark = pytest.mark.slow

QUEUE = "tests-bulk"
MODULE = "lyceum.kit.workerprocess"


def bulk_children(pid: int) -> list[psutil.Process]:
    found = []
    for child in psutil.Process(pid).children():
        try:
            if MODULE in child.cmdline():
                found.append(child)
        except psutil.Error:
            continue
    return found


async def test_bulk_jobs_run_in_a_lower_priority_child_that_stops_with_the_server(
    settings: Settings, runtime: Runtime, database_url: str
) -> None:
    app = make_app(settings, runtime, None)
    async with client_for(app) as live:
        teacher = await person(live, runtime, Role.instructor)
        course, _ = await course_with_lesson(live, teacher, publish=False)
        # An image: its job needs no embedding model, so the child has little to load.
        image = io.BytesIO()
        Image.new("RGB", (64, 48), (30, 90, 160)).save(image, format="PNG")
        uploaded = await upload(live, course["id"], teacher, "diagram.png", image.getvalue())
        assert uploaded.status_code == 201, uploaded.text
        path = f"/api/v1/courses/{course['id']}/files/{uploaded.json()['id']}"
        # On a queue of its own, so the child takes this job and nothing another test left.
        async with runtime.database.engine.begin() as conn:
            raw = await conn.get_raw_connection()
            await ingest_file.configure(queue=QUEUE, connection=raw.driver_connection).defer_async(
                file_id=uploaded.json()["id"]
            )

        supervisor = asyncio.create_task(supervise(settings, database_url, [QUEUE]))
        try:
            # Niced, the child gets little CPU on a busy machine: wait, and assert only
            # on what happened.
            deadline = time.monotonic() + 600
            status = "pending"
            while status != "ready":
                assert not supervisor.done(), supervisor
                assert time.monotonic() < deadline, f"still {status}"
                await asyncio.sleep(0.5)
                status = (await live.get(path, headers=teacher.headers)).json()["status"]
            (child,) = bulk_children(os.getpid())
            assert child.nice() >= os.nice(0) + NICENESS
        finally:
            supervisor.cancel()
            with pytest.raises(asyncio.CancelledError):
                await supervisor
        gone, alive = psutil.wait_procs([child], timeout=30)
        assert gone and not alive
        # The upload's own job, on the usual queue, is not left for other tests.
        await run_jobs([Queue.indexing.value])


def test_the_bulk_worker_goes_when_the_server_is_killed(tmp_path: Path) -> None:
    data_dir = tmp_path / "lyceum"
    data_dir.mkdir()
    port = free_port()
    env = {
        "DATABASE_URL": "",
        "LYCEUM_DATA_DIR": str(data_dir),
        "ENVIRONMENT": "development",
        "LOG_LEVEL": "INFO",
    }
    server = start_lyceum(env, port, data_dir / "serve.log")
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}", "/health/ready", 120, server)
        deadline = time.monotonic() + 60
        children = bulk_children(server.pid)
        while not children:
            assert time.monotonic() < deadline, (data_dir / "serve.log").read_text()
            time.sleep(0.2)
            children = bulk_children(server.pid)
        (child,) = children
        # The child lowers its priority first thing, once its interpreter is up.
        expected = psutil.Process(server.pid).nice() + NICENESS
        while child.nice() != expected:
            assert time.monotonic() < deadline, (data_dir / "serve.log").read_text()
            time.sleep(0.2)
        # The server answers while its child works on its own.
        assert httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=10).status_code == 200
    except BaseException:
        stop(server)
        raise
    # The hardest stop: no lifespan, no signal to the child.
    os.kill(server.pid, signal.SIGKILL)
    server.wait(timeout=10)
    gone, alive = psutil.wait_procs([child], timeout=30)
    assert gone and not alive, (data_dir / "serve.log").read_text()
    # The embedded PostgreSQL outlived the kill: stop it as its last user.
    database = EmbeddedPostgres(data_dir / "postgres")
    database.start()
    database.stop()
