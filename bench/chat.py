"""Scenario: course chat over Socket.IO, one server process.

    python bench/chat.py [--rooms N] [--per-room N] [--rates 100,250,500,1000,1500,2000]
                         [--step-seconds S] [--redis] [--json PATH] [--keep-temp]

1. Starts its own embedded PostgreSQL in a temp dir, creates a fresh database, migrates
   it, and seeds `--rooms` published courses (50) with `--per-room` enrolled learners
   each (20): 1,000 accounts, whose access tokens it signs with the server's key.
2. Targets, one after the other, each `uvicorn ... --workers 1` (one process):
   * **baseline**: a bare python-socketio server (this file's `baseline_app`) with the
     same events and ack shapes, no database, no auth, no limits: it puts the socket in
     the room on `join_room` and broadcasts each `message` to the room;
   * **lyceum**: `lyceum.app:create_app --factory` on the bench database: token check on
     connect, membership check and presence on join, and per message validation, the
     blocked-words and size checks, the rate limiter (CHAT_RATE_LIMIT raised to
     1000/10 seconds so the load is not refused: at 2,000 msg/s each user sends 2/s),
     the mute check and the INSERT (the message writer's group commit), then the
     broadcast. No REDIS_URL: the in-memory Socket.IO manager, cache and limiter;
   * **lyceum-redis** (with `--redis`): the same with REDIS_URL set to a throwaway
     redis-server: the Redis manager (every broadcast also published), presence, cache
     and rate limiter in Redis, as replicas run.
3. Against each, a load generator in a separate process (raw Engine.IO v4 / Socket.IO v5
   frames over aiohttp websockets, uvloop when installed, so the client side stays
   cheap) connects one socket per learner and joins its course's room, then sends
   messages at each rate of `--rates` for `--step-seconds`, round robin over all
   sockets, each with an ack. A message carries its send time (in its `client_id`);
   every socket in the room (20, the sender included) records the delivery latency.
   Figures per step: sent and acknowledged messages/s, deliveries/s, delivery latency
   p50/p99, and the server's CPU use (1.0 = one core).
4. Memory per idle connection: the server's RSS after one warm-up socket, then after all
   sockets have connected and joined (and 2 s of quiet), divided by their number.

Seed target: 1,000 messages/s sent with p99 delivery under 50 ms. The load generator,
the server and PostgreSQL share this machine's cores: on a small machine they compete.

Rates go up until a step saturates (deliveries lost, sockets dropped because their pong
came too late, or a p99 of seconds); higher rates are then skipped for that target.

Exit code 0 whatever the figures; 1 if a server fails to start or the load generator
fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import itertools
import json
import multiprocessing
import os
import platform
import secrets
import shutil
import signal
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import psutil

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
# This checkout's code, here (migrations, seeding) and in the servers (CHECKOUT_SRC),
# rather than whichever checkout the virtualenv installed `lyceum` from.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from bench.harness import (
    LOOPBACK,
    REPO_ROOT,
    BenchError,
    Server,
    load_average,
    migrated_postgres,
    percentile,
    scenario_main,
    start_server,
    stop_server,
    uvicorn_argv,
    wait_until_settled,
)

SCENARIO = "chat"
CHECKOUT_SRC = str(REPO_ROOT / "src")
DATABASE = "lyceum_bench_chat"
TARGET_RATE = 1000
TARGET_P99_MS = 50.0
BENCH_RATE_LIMIT = "1000/10 seconds"
LYCEUM_STARTUP_TIMEOUT = 120.0
BASELINE_STARTUP_TIMEOUT = 30.0
CONNECT_CONCURRENCY = 25
# After a step, how long stragglers may take to arrive before they count as lost.
DRAIN_SECONDS = 15.0
# A step whose p99 delivery exceeds this is saturated: higher rates are not tried.
SATURATED_P99_MS = 1000.0
TEXT_PADDING = "x" * 60  # a message of ~80 characters, a typical chat line


# The baseline server ------------------------------------------------------------------


def baseline_app() -> Any:
    """A bare python-socketio server speaking the same events as Lyceum's chat."""
    import socketio

    sio = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins=[])
    names: dict[str, str] = {}

    async def health(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b'{"status":"ok"}'})

    @sio.on("connect")
    async def connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
        names[sid] = "Learner"

    @sio.on("disconnect")
    async def disconnect(sid: str, reason: str) -> None:
        names.pop(sid, None)

    @sio.on("join_room")
    async def join_room(sid: str, data: dict[str, Any]) -> dict[str, Any]:
        room = str(data["course_id"])
        await sio.enter_room(sid, room)
        return {"ok": True, "room": {"id": room}, "online": []}

    @sio.on("message")
    async def message(sid: str, data: dict[str, Any]) -> dict[str, Any]:
        out = {
            "id": str(uuid.uuid4()),
            "room_id": data["room_id"],
            "sender": {"id": sid, "full_name": names.get(sid, "")},
            "client_id": data["client_id"],
            "text": str(data["text"]).strip(),
            "created_at": dt.datetime.now(dt.UTC).isoformat(),
        }
        await sio.emit("message", out, to=data["room_id"])
        return {"ok": True, "message": out, "duplicate": False}

    return socketio.ASGIApp(sio, other_asgi_app=health)


# The load generator (its own process) ------------------------------------------------


@dataclass(frozen=True)
class LoadSpec:
    port: int
    seats: list[tuple[str, str]]  # (access token, course id), one per socket
    rates: list[int]
    step_seconds: float


@dataclass
class StepResult:
    rate: int
    sent: int = 0
    acked: int = 0
    ack_errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    expected: int = 0
    delivered: int = 0
    send_seconds: float = 0.0
    delivery_seconds: float = 0.0
    p50_ms: float = float("nan")
    p99_ms: float = float("nan")
    max_ms: float = float("nan")
    ack_p50_ms: float = float("nan")
    ack_p99_ms: float = float("nan")
    loader_cpu: float = float("nan")
    server_cpu: float = float("nan")
    send_failures: int = 0
    sockets_lost: int = 0

    @property
    def sent_per_second(self) -> float:
        return self.sent / self.send_seconds if self.send_seconds else 0.0

    @property
    def delivered_per_second(self) -> float:
        return self.delivered / self.delivery_seconds if self.delivery_seconds else 0.0

    @property
    def lost(self) -> int:
        return self.expected - self.delivered

    @property
    def saturated(self) -> bool:
        """Far behind: deliveries lost, sockets dropped, or a p99 of seconds."""
        return bool(self.lost or self.sockets_lost or self.send_failures) or not (
            self.p99_ms < SATURATED_P99_MS
        )


class Tally:
    """What the sockets of one step have seen."""

    def __init__(self, step: int) -> None:
        self.step = step
        self.latencies: list[float] = []
        self.ack_latencies: list[float] = []
        self.acked = 0
        self.ack_errors = 0
        self.error_samples: list[str] = []
        self.last_delivery = 0.0


# Tallies are looked up by step number from every socket's reader.
_TALLIES: dict[int, Tally] = {}


class RawSocket:
    """One Socket.IO client on a raw websocket: just the frames this bench needs."""

    def __init__(self, ws: Any, room_size: int) -> None:
        self.ws = ws
        self.room_id = ""
        self.room_size = room_size
        self.next_ack = itertools.count(1)
        self.acks: dict[int, tuple[float, Any]] = {}
        self.reader: asyncio.Task[None] | None = None
        # The server hung up (an overloaded server drops sockets whose pong is late).
        self.dead = False

    async def handshake(self, token: str) -> None:
        opening = await self.ws.receive_str()
        if not opening.startswith("0"):
            raise BenchError(f"unexpected Engine.IO opening {opening[:80]!r}")
        await self.ws.send_str("40" + json.dumps({"token": token}))
        answer = await self.ws.receive_str()
        if not answer.startswith("40"):
            raise BenchError(f"connection refused: {answer[:200]}")

    async def call(self, event: str, payload: dict[str, Any], on_ack: Any) -> bool:
        """Send an event with an ack; False if the socket is gone."""
        if self.dead or self.ws.closed:
            self.dead = True
            return False
        ack_id = next(self.next_ack)
        self.acks[ack_id] = (time.perf_counter(), on_ack)
        try:
            await self.ws.send_str(f"42{ack_id}" + json.dumps([event, payload]))
        except (ConnectionError, RuntimeError):
            self.acks.pop(ack_id, None)
            self.dead = True
            return False
        return True

    async def read(self, tallies: dict[int, Tally]) -> None:
        import orjson

        perf_counter_ns = time.perf_counter_ns
        async for frame in self.ws:
            data = frame.data
            if not isinstance(data, str):
                continue
            if data == "2":
                await self.ws.send_str("3")
            elif data.startswith('42["message"'):
                message = orjson.loads(data[2:])[1]
                step, _, sent_ns = message["client_id"].split("-")
                tally = tallies.get(int(step))
                if tally is not None:
                    tally.latencies.append((perf_counter_ns() - int(sent_ns)) / 1e6)
                    tally.last_delivery = time.perf_counter()
            elif data.startswith("43"):
                bracket = data.index("[")
                started, on_ack = self.acks.pop(int(data[2:bracket]))
                on_ack(orjson.loads(data[bracket:])[0], time.perf_counter() - started)
        self.dead = True


async def _open_sockets(
    spec: LoadSpec, session: Any, seats: list[tuple[str, str]]
) -> list[RawSocket]:
    url = f"ws://{LOOPBACK}:{spec.port}/socket.io/?EIO=4&transport=websocket"
    room_sizes: dict[str, int] = {}
    for _, course_id in spec.seats:
        room_sizes[course_id] = room_sizes.get(course_id, 0) + 1
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    tallies: dict[int, Tally] = _TALLIES

    async def one(token: str, course_id: str) -> RawSocket:
        async with gate:
            # autoping: aiohttp answers the websocket-level pings uvicorn sends every 20 s;
            # without it uvicorn closes every socket with 1011 after ~40 s.
            ws = await session.ws_connect(url, autoping=True, max_msg_size=0)
            sock = RawSocket(ws, room_sizes[course_id])
            await sock.handshake(token)
            sock.reader = asyncio.create_task(sock.read(tallies))
            joined: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            await sock.call(
                "join_room",
                {"course_id": course_id},
                lambda answer, _: joined.set_result(answer),
            )
            answer = await asyncio.wait_for(joined, 30)
            if not answer.get("ok"):
                raise BenchError(f"join_room refused: {answer}")
            sock.room_id = answer["room"]["id"]
            return sock

    return list(await asyncio.gather(*(one(token, course) for token, course in seats)))


async def _step(sockets: list[RawSocket], step: int, rate: int, seconds: float) -> StepResult:
    tally = _TALLIES[step] = Tally(step)
    result = StepResult(rate=rate)

    def on_ack(answer: Any, elapsed: float) -> None:
        if isinstance(answer, dict) and answer.get("ok"):
            tally.acked += 1
            tally.ack_latencies.append(elapsed * 1000)
        else:
            tally.ack_errors += 1
            if len(tally.error_samples) < 5:
                tally.error_samples.append(str(answer)[:200])

    cpu_started = time.process_time()
    started = time.perf_counter()
    sent = 0
    turn = itertools.cycle(sockets)
    while (elapsed := time.perf_counter() - started) < seconds:
        due = int(elapsed * rate) - sent
        for _ in range(due):
            sock = next(turn)
            client_id = f"{step}-{sent}-{time.perf_counter_ns()}"
            text = f"message {sent} {TEXT_PADDING}"
            payload = {"room_id": sock.room_id, "client_id": client_id, "text": text}
            if await sock.call("message", payload, on_ack):
                result.expected += sock.room_size
            else:
                result.send_failures += 1
            sent += 1
        await asyncio.sleep(0.002)
    result.send_seconds = time.perf_counter() - started
    result.sent = sent
    deadline = time.perf_counter() + DRAIN_SECONDS
    while time.perf_counter() < deadline:
        answered = tally.acked + tally.ack_errors + result.send_failures
        if len(tally.latencies) >= result.expected and answered >= sent:
            break
        await asyncio.sleep(0.05)
    result.loader_cpu = (time.process_time() - cpu_started) / (time.perf_counter() - started)
    result.delivered = len(tally.latencies)
    result.delivery_seconds = (tally.last_delivery or time.perf_counter()) - started
    latencies = sorted(tally.latencies)
    acks = sorted(tally.ack_latencies)
    result.p50_ms = percentile(latencies, 50)
    result.p99_ms = percentile(latencies, 99)
    result.max_ms = latencies[-1] if latencies else float("nan")
    result.ack_p50_ms = percentile(acks, 50)
    result.ack_p99_ms = percentile(acks, 99)
    result.acked = tally.acked
    result.ack_errors = tally.ack_errors
    result.error_samples = tally.error_samples
    result.sockets_lost = sum(sock.dead for sock in sockets)
    del _TALLIES[step]
    return result


async def _drive(spec: LoadSpec, control: Connection) -> list[StepResult]:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        sockets = await _open_sockets(spec, session, spec.seats[:1])
        control.send(("warm", None))
        control.recv()
        sockets += await _open_sockets(spec, session, spec.seats[1:])
        control.send(("connected", len(sockets)))
        control.recv()
        results = []
        for step, rate in enumerate(spec.rates):
            control.send(("step", rate))
            control.recv()
            result = await _step(sockets, step, rate, spec.step_seconds)
            control.send(("stepped", result))
            result.server_cpu = control.recv()
            results.append(result)
            if result.saturated:
                break  # higher rates would only pile up more
            await asyncio.sleep(1.0)
        for sock in sockets:
            await sock.ws.close()
            if sock.reader is not None:
                sock.reader.cancel()
        return results


def _load_main(spec: LoadSpec, control: Connection) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        try:
            import uvloop

            results = uvloop.run(_drive(spec, control))
        except ImportError:
            results = asyncio.run(_drive(spec, control))
        control.send(("done", results))
    except Exception as error:
        with contextlib.suppress(OSError):
            control.send(("error", f"{type(error).__name__}: {error}"))
        raise
    finally:
        control.close()


# Orchestration -----------------------------------------------------------------------


@dataclass
class TargetReport:
    name: str
    connections: int = 0
    rss_before_mb: float = 0.0
    rss_after_mb: float = 0.0
    steps: list[StepResult] = field(default_factory=list)

    @property
    def kib_per_connection(self) -> float:
        if self.connections <= 1:
            return float("nan")
        return (self.rss_after_mb - self.rss_before_mb) * 1024 / (self.connections - 1)


def _rss_mb(server: Server) -> float:
    return float(psutil.Process(server.pid).memory_info().rss) / (1024 * 1024)


def _receive(control: Connection, budget: float) -> tuple[str, Any]:
    if not control.poll(budget):
        raise BenchError(f"load generator went quiet for {budget:.0f}s")
    try:
        kind, payload = control.recv()
    except EOFError:
        raise BenchError("load generator exited without reporting") from None
    if kind == "error":
        raise BenchError(f"load generator failed: {payload}")
    return str(kind), payload


def _expect(control: Connection, kind: str, budget: float) -> Any:
    got, payload = _receive(control, budget)
    if got != kind:
        raise BenchError(f"load generator said {got!r}, expected {kind!r}")
    return payload


def measure(server: Server, spec: LoadSpec) -> TargetReport:
    report = TargetReport(server.name)
    context = multiprocessing.get_context("spawn")
    control, child = context.Pipe()
    process = context.Process(target=_load_main, args=(spec, child), name="bench-chat-load")
    process.start()
    child.close()
    try:
        _expect(control, "warm", 120)
        time.sleep(1.0)
        report.rss_before_mb = _rss_mb(server)
        control.send("go")
        report.connections = _expect(control, "connected", 300)
        time.sleep(2.0)
        report.rss_after_mb = _rss_mb(server)
        print(
            f"  {report.connections} sockets joined; server RSS {report.rss_before_mb:.0f} -> "
            f"{report.rss_after_mb:.0f} MiB ({report.kib_per_connection:.1f} KiB per socket)",
            flush=True,
        )
        control.send("go")
        while True:
            kind, payload = _receive(control, spec.step_seconds + DRAIN_SECONDS + 60)
            if kind == "done":
                report.steps = payload
                return report
            if kind != "step":
                raise BenchError(f"load generator said {kind!r}, expected a step")
            rate = payload
            cpu_before = server.cpu_seconds()
            started = time.perf_counter()
            control.send("go")
            result: StepResult = _expect(control, "stepped", spec.step_seconds + DRAIN_SECONDS + 60)
            cpu = (server.cpu_seconds() - cpu_before) / (time.perf_counter() - started)
            control.send(cpu)
            result.server_cpu = cpu
            print(f"  {rate:>5} msg/s: {_step_line(result)}", flush=True)
            if result.saturated:
                print("         saturated: higher rates skipped", flush=True)
    finally:
        process.join(30)
        if process.is_alive():
            process.kill()
            process.join(5)
        control.close()


def _step_line(step: StepResult) -> str:
    errors = f", {step.ack_errors} refused" if step.ack_errors else ""
    lost = f", {step.lost} deliveries LOST" if step.lost else ""
    dropped = f", {step.sockets_lost} sockets dropped" if step.sockets_lost else ""
    return (
        f"sent {step.sent_per_second:6.0f}/s, delivered {step.delivered_per_second:6.0f}/s, "
        f"p50 {step.p50_ms:7.1f} ms, p99 {step.p99_ms:7.1f} ms, ack p99 {step.ack_p99_ms:7.1f} "
        f"ms, CPU server {step.server_cpu:4.2f} load {step.loader_cpu:4.2f}"
        f"{errors}{lost}{dropped}"
    )


def prepare_database(
    temp: Path, rooms: int, per_room: int
) -> tuple[Any, str, list[tuple[str, str]], str]:
    """Embedded PostgreSQL, migrated and seeded: (server, url, seats, signing key)."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from lyceum.kit.db import sqlalchemy_url
    from lyceum.kit.security import TokenCodec
    from lyceum.models.courses import (
        Course,
        CourseInstructor,
        CourseLevel,
        CourseStatus,
        Enrollment,
    )
    from lyceum.models.identity import LoginSession, Role, User

    postgres, url = migrated_postgres(temp, DATABASE)
    started = time.perf_counter()
    try:
        engine = create_engine(sqlalchemy_url(url))
        now = dt.datetime.now(dt.UTC)
        secret = secrets.token_urlsafe(48)
        tokens = TokenCodec(secret, issuer="lyceum", audience="lyceum-api")
        seats: list[tuple[str, str]] = []
        with Session(engine) as session:
            teacher = User(
                email="bench-teacher@example.com", full_name="Bench Teacher", role=Role.instructor
            )
            session.add(teacher)
            session.flush()
            for room in range(rooms):
                course = Course(
                    slug=f"bench-chat-{room}",
                    title=f"Bench course {room}",
                    language="en",
                    level=CourseLevel.beginner,
                    category="bench",
                    status=CourseStatus.published,
                    owner_id=teacher.id,
                    published_at=now,
                )
                session.add(course)
                session.flush()
                session.add(CourseInstructor(course_id=course.id, user_id=teacher.id))
                for seat in range(per_room):
                    learner = User(
                        email=f"bench-{room}-{seat}@example.com",
                        full_name=f"Learner {room}.{seat}",
                        role=Role.student,
                        email_verified_at=now,  # chat needs a verified address
                    )
                    session.add(learner)
                    session.flush()
                    session.add(
                        Enrollment(course_id=course.id, user_id=learner.id, enrolled_at=now)
                    )
                    login = LoginSession(
                        id=uuid.uuid4(),
                        user_id=learner.id,
                        created_at=now,
                        last_used_at=now,
                        expires_at=now + dt.timedelta(days=1),
                    )
                    session.add(login)
                    token, _, _ = tokens.encode(
                        subject=learner.id,
                        role="student",
                        token_type="access",  # noqa: S106 (a JWT type, not a secret)
                        now=now,
                        lifetime=dt.timedelta(hours=3),
                        extra={"sid": str(login.id)},
                    )
                    seats.append((token, str(course.id)))
            session.commit()
        engine.dispose()
    except BaseException:
        postgres.stop()
        raise
    print(
        f"  ready, migrated and seeded ({rooms} courses x {per_room} learners) in "
        f"{time.perf_counter() - started:.1f}s",
        flush=True,
    )
    return postgres, url, seats, secret


def start_baseline(temp: Path) -> Server:
    return start_server(
        "baseline",
        lambda port: uvicorn_argv("bench.chat:baseline_app", port, "--factory"),
        log_path=temp / "baseline.log",
        env=os.environ,
        cwd=REPO_ROOT,  # so that `bench.chat` imports
        timeout=BASELINE_STARTUP_TIMEOUT,
    )


def start_lyceum(temp: Path, url: str, secret: str, redis_url: str | None = None) -> Server:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            part for part in (CHECKOUT_SRC, os.environ.get("PYTHONPATH")) if part
        ),
        "DATABASE_URL": url,
        "LYCEUM_DATA_DIR": str(temp / "data"),
        "LOG_LEVEL": "INFO",  # Lyceum's own access log stays on, as in a default install
        "ENVIRONMENT": "development",
        "SECRET_KEY": secret,
        "CHAT_RATE_LIMIT": BENCH_RATE_LIMIT,
    }
    # Without Redis: the in-memory Socket.IO manager, cache and rate limiter (a default
    # install). With it: what replicas use (Redis fan-out, presence, rate limits).
    env.pop("REDIS_URL", None)
    name = "lyceum"
    if redis_url is not None:
        env["REDIS_URL"] = redis_url
        name = "lyceum-redis"
    server = start_server(
        name,
        lambda port: uvicorn_argv("lyceum.app:create_app", port, "--factory"),
        log_path=temp / f"{name}.log",
        env=env,
        cwd=temp,  # away from the checkout, so a developer's `.env` does not leak in
        timeout=LYCEUM_STARTUP_TIMEOUT,
    )
    wait_until_settled(server)
    return server


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Course chat: Lyceum against bare python-socketio."
    )
    parser.add_argument("--rooms", type=int, default=50, help="rooms (courses), 50")
    parser.add_argument("--per-room", type=int, default=20, help="sockets per room, 20")
    parser.add_argument(
        "--rates",
        default="100,250,500,1000,1500,2000",
        help="messages/s sent, one step each (100,250,500,1000,1500,2000)",
    )
    parser.add_argument("--step-seconds", type=float, default=5.0, help="seconds per step (5)")
    parser.add_argument(
        "--redis",
        action="store_true",
        help="also measure Lyceum with REDIS_URL set (a throwaway redis-server)",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write results here")
    parser.add_argument(
        "--keep-temp", action="store_true", help="keep the temp dir (logs, data) afterwards"
    )
    args = parser.parse_args(argv)
    try:
        args.rate_list = [int(rate) for rate in args.rates.split(",") if rate.strip()]
    except ValueError:
        parser.error("--rates: comma-separated integers")
    if args.rooms < 1 or args.per_room < 1 or not args.rate_list or args.step_seconds <= 0:
        parser.error("need --rooms >= 1, --per-room >= 1, some --rates, --step-seconds > 0")
    return args


def print_summary(reports: dict[str, TargetReport], rates: list[int]) -> None:
    baseline = reports["baseline"]
    print()
    print(f"chat: {baseline.connections} sockets, one server process per target")
    for name, report in reports.items():
        if name == "baseline":
            continue
        print(f"{name} against baseline (bare python-socketio, no database):")
        print(
            f"  {'msg/s':>6} | {'base deliv/s':>12} {'p50 ms':>7} {'p99 ms':>7} | "
            f"{'deliv/s':>8} {'p50 ms':>7} {'p99 ms':>8} {'CPU':>5} | {'ratio':>5}"
        )
        base_by_rate = {step.rate: step for step in baseline.steps}
        for step in report.steps:
            base = base_by_rate.get(step.rate)
            if base is None:
                base_cells = f"{'(saturated)':>12} {'':>7} {'':>7}"
                ratio = float("nan")
            else:
                base_cells = (
                    f"{base.delivered_per_second:>12.0f} {base.p50_ms:>7.1f} {base.p99_ms:>7.1f}"
                )
                ratio = step.delivered_per_second / max(base.delivered_per_second, 1e-9)
            print(
                f"  {step.rate:>6} | {base_cells} | {step.delivered_per_second:>8.0f} "
                f"{step.p50_ms:>7.1f} {step.p99_ms:>8.1f} {step.server_cpu:>5.2f} | {ratio:>5.2f}"
            )
        print(
            f"  memory per idle socket: {report.kib_per_connection:.1f} KiB "
            f"(baseline {baseline.kib_per_connection:.1f} KiB, ratio "
            f"{report.kib_per_connection / baseline.kib_per_connection:.2f})"
        )
        target = f"  target ({TARGET_RATE} msg/s sent, p99 delivery < {TARGET_P99_MS:.0f} ms):"
        at_target = [step for step in report.steps if step.rate == TARGET_RATE]
        if at_target:
            step = at_target[0]
            met = (
                step.sent_per_second >= 0.95 * TARGET_RATE
                and step.p99_ms < TARGET_P99_MS
                and not step.lost
                and not step.ack_errors
            )
            print(
                f"{target} {'met' if met else 'NOT met'} "
                f"(sent {step.sent_per_second:.0f}/s, p99 {step.p99_ms:.1f} ms)"
            )
        elif TARGET_RATE in rates:
            print(f"{target} NOT met (saturated below it)")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs shared by the server, "
        "the load generator and PostgreSQL; "
        f"load average {load_average()}"
    )


def run(args: argparse.Namespace, temp: Path) -> dict[str, Any]:
    postgres, url, seats, secret = prepare_database(temp, args.rooms, args.per_room)
    reports: dict[str, TargetReport] = {}
    targets = ["baseline", "lyceum"]
    if args.redis:
        if shutil.which("redis-server") is None:
            raise BenchError("--redis needs a redis-server binary on PATH")
        targets.append("lyceum-redis")
    try:
        with contextlib.ExitStack() as stack:
            for name in targets:
                print(f"{name}: starting ...", flush=True)
                if name == "baseline":
                    server = start_baseline(temp)
                elif name == "lyceum":
                    server = start_lyceum(temp, url, secret)
                else:
                    from tests.support.servers import redis_server

                    redis_url = stack.enter_context(redis_server())
                    server = start_lyceum(temp, url, secret, redis_url)
                try:
                    print(f"  up in {server.started_in:.1f}s (pid {server.pid})", flush=True)
                    spec = LoadSpec(server.port, seats, args.rate_list, args.step_seconds)
                    reports[name] = measure(server, spec)
                finally:
                    stop_server(server)
    finally:
        postgres.stop()
    print_summary(reports, args.rate_list)
    return {
        "scenario": SCENARIO,
        "load_average": load_average(),
        # Lost deliveries and refused sends are figures of a saturated step, not
        # failures of the scenario: they are reported per step.
        "errors": 0,
        "targets": {
            name: {
                "connections": report.connections,
                "rss_before_mb": report.rss_before_mb,
                "rss_after_mb": report.rss_after_mb,
                "kib_per_connection": report.kib_per_connection,
                "steps": [
                    {
                        **asdict(step),
                        "sent_per_second": step.sent_per_second,
                        "delivered_per_second": step.delivered_per_second,
                        "lost": step.lost,
                    }
                    for step in report.steps
                ],
            }
            for name, report in reports.items()
        },
    }


def main(argv: Sequence[str] | None = None) -> int:
    return scenario_main(SCENARIO, parse_args(argv), run)


if __name__ == "__main__":
    sys.exit(main())
