"""Graceful shutdown (SHUTDOWN_GRACE_SECONDS): SIGTERM to `lyceum serve` finishes the
streamed answer in flight, takes no new connection and exits 0; SIGTERM to `lyceum
worker` lets a job finish within the grace or puts it back in its queue for another
worker; and a rolling restart of two `lyceum serve` processes under load loses no
request that a client retries once, while a Socket.IO client reconnects and keeps
receiving its room's messages."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import socketio  # type: ignore[import-untyped]
from fastapi import FastAPI
from procrastinate.jobs import Job
from sqlalchemy import text

from lyceum.kit.db import libpq_url
from lyceum.kit.jobs import DEFAULT_RETRY, RequeueOnShutdown, ShutdownAborted
from lyceum.kit.runtime import Runtime
from lyceum.kit.shutdown import HOOK_MARGIN_SECONDS, Drain
from lyceum.models.identity import Role
from tests.chat import conftest as chat_fixtures
from tests.chat.helpers import Live, Member, mint
from tests.conftest import TEST_SECRET
from tests.content.helpers import course_with_lesson, enroll
from tests.support import jobs as test_jobs
from tests.support.fake_llm import fake_llm_server
from tests.support.servers import REPO_ROOT, free_port, start_lyceum, wait_until_healthy

# The chat tests' in-process server and its committed helpers, as fixtures here.
chat_server = chat_fixtures.chat_server
live = chat_fixtures.live


def serve_env(database_url: str, data_dir: Path, **settings: str) -> dict[str, str]:
    return {
        "ENVIRONMENT": "test",
        "DATABASE_URL": database_url,
        "SECRET_KEY": TEST_SECRET,
        "LYCEUM_DATA_DIR": str(data_dir),
        "PUBLIC_BASE_URL": "http://lyceum.test",
        "LOG_LEVEL": "INFO",
        "REDIS_URL": "",
        "SMTP_HOST": "",
        **settings,
    }


def start_serve(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    process = start_lyceum(env, port, log)
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}", "/health/ready", 180, process)
    except Exception:
        process.kill()
        process.wait()
        print(log.read_text(errors="replace"))
        raise
    return process


def terminate(process: subprocess.Popen[bytes], within: float) -> tuple[int, float]:
    """SIGTERM; the exit code and the seconds it took to exit."""
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(timeout=within)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise AssertionError(f"still running {within} s after SIGTERM") from None
    return code, time.monotonic() - started


def fresh_token(live: Live, who: Member, role: Role = Role.student) -> str:
    # The processes run on the real clock, not the in-process server's frozen one.
    return mint(
        live.runtime.tokens, who.id, role, dt.datetime.now(dt.UTC), session_id=who.session_id
    )


# The drain, in process -------------------------------------------------------------------


async def test_readiness_fails_once_the_drain_begins(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    ready = await client.get("/health/ready")
    assert ready.status_code == 200, ready.text
    drain: Drain = app.state.drain
    seen: list[str] = []

    async def hook() -> None:
        seen.append("ran")

    drain.on_drain("probe", hook)
    drain.begin()
    drain.begin()  # idempotent
    draining = await client.get("/health/ready")
    assert draining.status_code == 503
    assert draining.headers["content-type"].startswith("application/problem+json")
    assert draining.json()["checks"] == {
        "shutdown": {"ok": False, "detail": "draining: shutting down"}
    }
    await drain.finished()
    assert seen == ["ran"]
    # Liveness is not readiness: a draining process is alive.
    assert (await client.get("/health/live")).status_code == 200


# lyceum serve ------------------------------------------------------------------------------


@pytest.mark.slow
async def test_sigterm_finishes_the_streamed_answer_then_exits_0(
    live: Live, database_url: str, tmp_path: Path
) -> None:
    teacher = await live.member(Role.instructor, "Grace Teacher")
    course, _ = await course_with_lesson(live.http, teacher, content="Cells divide by mitosis.")
    live.courses.append(uuid.UUID(course["id"]))
    learner = await live.member(name="Stream Learner")
    await enroll(live.http, course["id"], learner)
    token = fresh_token(live, learner)
    grace = 25
    with fake_llm_server(stream_duration=6.0) as llm:
        env = serve_env(
            database_url,
            tmp_path,
            AI_PROVIDER="claude",
            AI_API_KEY="test-key",
            AI_BASE_URL=llm.base_url,
            TUTOR_CACHE_TTL_SECONDS="0",
            SHUTDOWN_GRACE_SECONDS=str(grace),
        )
        port = free_port()
        log = tmp_path / "serve.log"
        process = start_serve(env, port, log)
        base = f"http://127.0.0.1:{port}"
        try:
            # The question is embedded for retrieval: wait for the model, so the stream
            # below is the provider's six seconds, not a model load.
            deadline = time.monotonic() + 300
            while True:
                async with httpx.AsyncClient(timeout=10) as probe:
                    checks = (await probe.get(f"{base}/health/ready")).json()["checks"]
                if checks["embedding_model"]["state"] == "ready":
                    break
                assert time.monotonic() < deadline, checks
                await asyncio.sleep(0.5)
            headers = {"Authorization": f"Bearer {token}"}
            async with httpx.AsyncClient(base_url=base, timeout=60) as http:
                created = await http.post(
                    "/api/v1/tutor/conversations", json={"course_id": course["id"]}, headers=headers
                )
                assert created.status_code == 201, created.text
                events: list[tuple[str, dict[str, Any]]] = []
                signalled_at = 0.0
                refused_or_503 = None
                async with http.stream(
                    "POST",
                    f"/api/v1/tutor/conversations/{created.json()['id']}/messages",
                    json={"content": "How do cells divide?"},
                    headers={**headers, "Accept": "text/event-stream"},
                ) as response:
                    assert response.status_code == 201
                    buffer = ""
                    async for chunk in response.aiter_text():
                        buffer += chunk
                        while "\n\n" in buffer:
                            block, buffer = buffer.split("\n\n", 1)
                            lines = dict(line.split(": ", 1) for line in block.splitlines())
                            events.append((lines["event"], json.loads(lines["data"])))
                        if events and not signalled_at:
                            # The answer is streaming: stop the server under it.
                            process.send_signal(signal.SIGTERM)
                            signalled_at = time.monotonic()
                            await asyncio.sleep(0.5)
                            try:
                                async with httpx.AsyncClient(timeout=5) as other:
                                    probe = await other.get(f"{base}/health/ready")
                                refused_or_503 = f"status {probe.status_code}"
                                assert probe.status_code == 503, probe.text
                            except httpx.ConnectError:
                                refused_or_503 = "refused"
            assert signalled_at, "no event was streamed"
            assert refused_or_503 in ("refused", "status 503")
            names = [name for name, _ in events]
            assert names.count("delta") > 1
            assert names[-1] == "done", names
            done = events[-1][1]
            assert done["status"] == "complete", done
            streamed = "".join(data["text"] for name, data in events if name == "delta")
            async with live.runtime.database.engine.connect() as conn:
                stored = (
                    await conn.execute(
                        text("SELECT content FROM tutor_messages WHERE id = :id"),
                        {"id": done["message_id"]},
                    )
                ).scalar_one()
            assert streamed == stored  # the whole answer arrived, as stored
            code = process.wait(timeout=grace)
            took = time.monotonic() - signalled_at
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    output = log.read_text(errors="replace")
    assert code == 0, output
    assert took < grace, output
    assert "drain_started" in output


# lyceum worker -----------------------------------------------------------------------------

WORKER_CODE = "import tests.support.jobs; from lyceum.cli import cli; cli()"


def start_worker(
    database_url: str, data_dir: Path, log: Path, grace: int, **settings: str
) -> subprocess.Popen[bytes]:
    """The real `lyceum worker` (the test tasks registered first) on the paced queue."""
    env = {
        **os.environ,
        **serve_env(database_url, data_dir, SHUTDOWN_GRACE_SECONDS=str(grace), **settings),
    }
    with log.open("ab") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-c",
                WORKER_CODE,
                "worker",
                "--queues",
                test_jobs.PACED_QUEUE,
                "--concurrency",
                "2",
            ],
            env=env,
            cwd=REPO_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


@pytest.fixture
def conninfo(database_url: str) -> str:
    info = libpq_url(database_url)
    with psycopg.connect(info, autocommit=True) as conn:
        conn.execute(test_jobs.CREATE_RUNS_TABLE)
    return info


def runs(conninfo: str, token: str) -> list[tuple[int, str]]:
    with psycopg.connect(conninfo) as conn:
        return [
            (int(row[0]), str(row[1]))
            for row in conn.execute(
                "SELECT attempt, state FROM test_job_runs WHERE token = %s ORDER BY at",
                (token,),
            )
        ]


def job_state(conninfo: str, job_id: int) -> tuple[str, int, dt.datetime | None]:
    with psycopg.connect(conninfo) as conn:
        row = conn.execute(
            "SELECT status::text, attempts, scheduled_at FROM procrastinate_jobs WHERE id = %s",
            (job_id,),
        ).fetchone()
    assert row is not None
    return str(row[0]), int(row[1]), row[2]


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


@pytest.mark.slow
async def test_worker_cut_by_sigterm_requeues_the_job_for_another_worker(
    runtime: Runtime, database_url: str, conninfo: str, tmp_path: Path
) -> None:
    token = uuid.uuid4().hex
    # 120 s the first time: far beyond the grace; at once when run again.
    job_id = await test_jobs.paced.defer_async(token=token, conninfo=conninfo, seconds=[120, 0])
    first = start_worker(database_url, tmp_path, tmp_path / "first.log", grace=2)
    try:
        wait_for(lambda: runs(conninfo, token) == [(0, "started")], 120, "never started")
        code, took = terminate(first, within=30)
    finally:
        if first.poll() is None:
            first.kill()
    output = (tmp_path / "first.log").read_text(errors="replace")
    assert code == 0, output
    assert 2 <= took < 15, output
    status, attempts, scheduled_at = job_state(conninfo, job_id)
    # Back in the queue at once: not failed, not aborted, no backoff, no stall timeout.
    assert (status, attempts) == ("todo", 1), output
    assert scheduled_at is not None and scheduled_at <= dt.datetime.now(dt.UTC)
    with psycopg.connect(conninfo) as conn:
        failures = conn.execute(
            "SELECT count(*) FROM job_failures WHERE job_id = %s", (job_id,)
        ).fetchone()
    assert failures == (0,)  # a cut job is no failure for the admins
    assert "job_cut_by_shutdown" in output

    second = start_worker(database_url, tmp_path, tmp_path / "second.log", grace=30)
    try:
        wait_for(lambda: job_state(conninfo, job_id)[0] == "succeeded", 120, "not rerun")
    finally:
        code, _ = terminate(second, within=60)
    assert code == 0
    assert runs(conninfo, token) == [(0, "started"), (1, "started"), (1, "finished")]


@pytest.mark.slow
async def test_worker_lets_a_job_finish_within_the_grace(
    runtime: Runtime, database_url: str, conninfo: str, tmp_path: Path
) -> None:
    # Maintenance jobs earlier tests left run here first: the worker would take them
    # beside this one (they go first), and the grace measured would be theirs too.
    await test_jobs.run_jobs([test_jobs.PACED_QUEUE])
    token = uuid.uuid4().hex
    job_id = await test_jobs.paced.defer_async(token=token, conninfo=conninfo, seconds=[4])
    worker = start_worker(database_url, tmp_path, tmp_path / "worker.log", grace=30)
    try:
        wait_for(lambda: runs(conninfo, token) == [(0, "started")], 120, "never started")
        code, took = terminate(worker, within=60)
    finally:
        if worker.poll() is None:
            worker.kill()
    output = (tmp_path / "worker.log").read_text(errors="replace")
    assert code == 0, output
    assert took < 30, output
    assert job_state(conninfo, job_id)[:2] == ("succeeded", 1)  # the one run
    assert runs(conninfo, token) == [(0, "started"), (0, "finished")]


def test_requeue_on_shutdown_leaves_user_aborts_and_failures_to_the_task() -> None:
    """The strategy only changes what a shutdown cut: anything else follows the task's
    own strategy (or none)."""
    job = Job(id=1, queue="q", lock=None, queueing_lock=None, task_name="t", attempts=9)
    strategy = RequeueOnShutdown(DEFAULT_RETRY)
    cut = strategy.get_retry_decision(exception=ShutdownAborted(), job=job)
    assert cut is not None and cut.retry_at is not None
    assert abs((cut.retry_at - dt.datetime.now(dt.UTC)).total_seconds()) < 2
    assert strategy.get_retry_decision(exception=RuntimeError(), job=job) is None  # 9 > 6
    assert strategy.get_retry_decision(exception=asyncio.CancelledError(), job=job) is None
    assert RequeueOnShutdown(None).get_retry_decision(exception=RuntimeError(), job=job) is None


# Rolling restart -----------------------------------------------------------------------------

CLIENTS = 20


class Load:
    """`CLIENTS` clients in a loop, each on its own process first, alternating a read
    (the catalog) and a write (a lesson marked done), retrying ONCE against the other
    process on a connection error or a 503."""

    def __init__(self, bases: list[str], lesson_id: str, tokens: list[str]) -> None:
        self.bases = bases
        self.lesson_id = lesson_id
        self.tokens = tokens
        self.outcomes: Counter[str] = Counter()
        self.lost: list[str] = []
        self.stopping = asyncio.Event()
        self.slowest = 0.0

    async def _one(
        self, http: httpx.AsyncClient, base: str, write: bool, token: str
    ) -> httpx.Response:
        started = time.monotonic()
        try:
            return await self._send(http, base, write, token)
        finally:
            self.slowest = max(self.slowest, time.monotonic() - started)

    async def _send(
        self, http: httpx.AsyncClient, base: str, write: bool, token: str
    ) -> httpx.Response:
        if write:
            return await http.post(
                f"{base}/api/v1/lessons/{self.lesson_id}/complete",
                headers={"Authorization": f"Bearer {token}"},
            )
        return await http.get(f"{base}/api/v1/courses", params={"size": 5})

    async def client(self, number: int) -> None:
        token = self.tokens[number % len(self.tokens)]
        # A slow answer is an answer: on two cores shared with other work, a process
        # loading its embedding model starves the other for seconds.
        async with httpx.AsyncClient(timeout=90) as http:
            count = 0
            while not self.stopping.is_set():
                write = count % 2 == 1
                count += 1
                first = self.bases[number % 2]
                second = self.bases[(number + 1) % 2]
                problem = ""
                try:
                    response = await self._one(http, first, write, token)
                    if response.status_code != 503:
                        self._settle(response, "first")
                        await asyncio.sleep(0.02)
                        continue
                    problem = "503"
                except httpx.TransportError as error:
                    problem = type(error).__name__
                try:
                    response = await self._one(http, second, write, token)
                    self._settle(response, "retried", problem)
                except httpx.TransportError as error:
                    self.outcomes["lost"] += 1
                    self.lost.append(f"{problem} then {type(error).__name__}")
                await asyncio.sleep(0.02)

    def _settle(self, response: httpx.Response, how: str, problem: str = "") -> None:
        if response.status_code < 400:
            self.outcomes[how] += 1
        else:
            self.outcomes["lost"] += 1
            self.lost.append(f"{problem} then {response.status_code} {response.text[:200]}")


class Listener:
    """A python-socketio client that reconnects on its own (as the official clients do)
    and joins its room again on every connection."""

    def __init__(self, url: str, token: str, course_id: str) -> None:
        self.url = url
        self.sio = socketio.AsyncClient(reconnection=True, reconnection_delay=0.5)
        self.connections = 0
        self.messages: list[str] = []
        self.joined = asyncio.Event()

        async def on_connect() -> None:
            self.connections += 1
            answer = await self.sio.call("join_room", {"course_id": course_id}, timeout=10)
            assert answer["ok"], answer
            self.joined.set()

        async def on_message(data: dict[str, Any]) -> None:
            self.messages.append(data["text"])

        async def on_disconnect(*_: Any) -> None:
            self.joined.clear()

        self.sio.on("connect", on_connect)
        self.sio.on("message", on_message)
        self.sio.on("disconnect", on_disconnect)
        self.token = token

    async def start(self) -> None:
        await self.sio.connect(
            self.url, auth={"token": self.token}, transports=["websocket"], wait_timeout=10
        )
        await asyncio.wait_for(self.joined.wait(), 15)


async def say(url: str, token: str, course_id: str, text_: str) -> None:
    """A message from a short-lived client on `url`."""
    sio = socketio.AsyncClient(reconnection=False)
    await sio.connect(url, auth={"token": token}, transports=["websocket"], wait_timeout=10)
    try:
        joined = await sio.call("join_room", {"course_id": course_id}, timeout=10)
        assert joined["ok"], joined
        room_id = joined["room"]["id"]
        sent = await sio.call(
            "message",
            {"room_id": room_id, "client_id": uuid.uuid4().hex, "text": text_},
            timeout=10,
        )
        assert sent["ok"], sent
    finally:
        await sio.disconnect()


async def until(predicate: Any, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.1)


@pytest.mark.slow
@pytest.mark.redis
async def test_rolling_restart_under_load_loses_no_retried_request(
    live: Live, database_url: str, redis_url: str, tmp_path: Path
) -> None:
    teacher = await live.member(Role.instructor, "Grace Teacher")
    course, lesson_id = await course_with_lesson(live.http, teacher)
    live.courses.append(uuid.UUID(course["id"]))
    learners = [await live.member(name=f"Learner {index}") for index in range(4)]
    for learner in learners:
        await enroll(live.http, course["id"], learner)
    tokens = [fresh_token(live, learner) for learner in learners]

    env = serve_env(database_url, tmp_path, REDIS_URL=redis_url, SHUTDOWN_GRACE_SECONDS="10")
    ports = [free_port(), free_port()]
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    processes = [start_serve(env, port, log) for port, log in zip(ports, logs, strict=True)]
    load = Load(bases, lesson_id, tokens)
    listener = Listener(bases[0], tokens[0], course["id"])
    clients: list[asyncio.Task[None]] = []
    exits: list[tuple[int, float]] = []
    try:
        await listener.start()
        await say(bases[1], tokens[1], course["id"], "before")
        await until(lambda: "before" in listener.messages, 15, "no message before")
        clients = [asyncio.create_task(load.client(number)) for number in range(CLIENTS)]
        await asyncio.sleep(3)
        for index in (0, 1):
            exits.append(await asyncio.to_thread(terminate, processes[index], 30))
            processes[index] = await asyncio.to_thread(start_serve, env, ports[index], logs[index])
            await asyncio.sleep(3)
        load.stopping.set()
        await asyncio.gather(*clients)
        # The listener lost A, came back (to A restarted), and hears the room again.
        await until(lambda: listener.joined.is_set(), 60, "the listener never rejoined")
        await say(bases[1], tokens[1], course["id"], "after")
        await until(lambda: "after" in listener.messages, 15, "no message after the restart")
    finally:
        load.stopping.set()
        for task in clients:
            task.cancel()
        with contextlib.suppress(Exception):
            await listener.sio.disconnect()
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
    total = sum(load.outcomes.values())
    print(
        f"\nrolling restart: {total} requests, {load.outcomes['retried']} retried once, "
        f"{load.outcomes['lost']} lost; exits {exits}; listener connections "
        f"{listener.connections}; slowest request {load.slowest:.1f} s"
    )
    assert [code for code, _ in exits] == [0, 0], "\n".join(
        log.read_text(errors="replace")[-6000:] for log in logs
    )
    # The grace, then the margin the drain allows for closing pools (HOOK_MARGIN_SECONDS,
    # the 10 s that Kubernetes' 45 s leave beyond the preStop pause and the grace).
    assert all(took < 10 + HOOK_MARGIN_SECONDS for _, took in exits), exits
    assert load.lost == [], load.lost[:10]
    assert total > 200
    assert load.outcomes["first"] > 0
    assert listener.connections >= 2  # it was dropped and came back
