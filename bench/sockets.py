"""Scenario: 10,000 idle Socket.IO connections and chat at 1,000 messages/s across two
processes sharing a Redis and a PostgreSQL.

    python bench/sockets.py [--sockets 10000] [--per-room 20] [--active-rooms 50]
                            [--rates 500,1000] [--step-seconds 10] [--rest-seconds 60]
                            [--loaders 2] [--official 100] [--json PATH] [--keep-temp]

1. An embedded PostgreSQL started as a server in a temp dir (the harness's way: the
   servers get its DATABASE_URL), migrated, seeded by `bench.chat.prepare_database`:
   `--sockets / --per-room` published courses with `--per-room` verified, enrolled
   learners each, one signed access token (and login session) per learner. A
   throwaway redis-server (REDIS_URL).
2. Targets, one after the other, each as two processes A and B on the same Redis:
   * **baseline**: the chat benchmark's bare python-socketio server
     (`bench.chat.baseline_app`, no database, no auth), given an AsyncRedisManager
     (`bench/_sockets_baseline.py`) so that its rooms span both processes;
   * **lyceum**: two `python -m lyceum serve` processes on the bench database and the
     Redis (Redis manager, presence, rate limits, caches), CHAT_RATE_LIMIT raised.
3. Against each, `--loaders` load generator processes (raw Engine.IO v4 / Socket.IO v5
   frames over aiohttp websockets, uvloop: `bench/_sockets_client.py`) open one socket per
   learner, alternately on A and B (so every room has members on both), authenticate
   with the access token (`40{"token": ...}`) and join the course's room, answering the
   servers' pings. Reported: RSS of each server before (one warm-up socket each) and
   after, memory per connection (delta RSS / sockets), the connection set-up rate
   (connected and joined sockets / wall time), the servers' CPU at rest over
   `--rest-seconds` with every socket open (psutil), and sockets dropped.
4. Chat: at each rate of `--rates` for `--step-seconds`, messages are sent round robin
   over the sockets of the first `--active-rooms` rooms (senders on A and on B), each
   carrying its send time (`perf_counter_ns`, CLOCK_MONOTONIC, the same in every process
   of the machine); every socket of the room, on either process, records send -> receive
   latency. Reported: sent/s, delivered count against expected (no loss), p50/p99
   delivery, and the ratio Lyceum / baseline at the same rate.
5. The lean client is checked against the official python-socketio AsyncClient in the
   same run (`--official`): in a process of its own, an official client on A and a lean
   socket on B join the same room and exchange a message each way; then `--official`
   official clients are opened (idle, joined) to compare their client-side memory per
   connection with the lean client's.

Exit code 0 whatever the figures; 1 if a server fails to start, a loader fails, or the
lean client fails the check against the official one.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import platform
import resource
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import psutil

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from bench._sockets_client import (
    DRAIN_SECONDS,
    LoaderSpec,
    OfficialSpec,
    Seat,
    StepTally,
    loader_main,
    official_main,
)
from bench.chat import BENCH_RATE_LIMIT, prepare_database
from bench.harness import (
    REPO_ROOT,
    BenchError,
    Server,
    load_average,
    percentile,
    scenario_main,
    start_lyceum_serve,
    start_server,
    stop_server,
    uvicorn_argv,
)

SCENARIO = "sockets"
CHECKOUT_SRC = str(REPO_ROOT / "src")
STARTUP_TIMEOUT = 180.0
CONNECT_BUDGET = 1800.0


def raise_nofile() -> tuple[int, int]:
    """The soft open-files limit up to the hard one, for this process and the servers and
    loaders it starts (they inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def _env(**extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            part for part in (CHECKOUT_SRC, str(REPO_ROOT), os.environ.get("PYTHONPATH")) if part
        ),
    }
    env.update(extra)
    return env


def start_baseline(temp: Path, name: str, redis_url: str) -> Server:
    return start_server(
        name,
        lambda port: uvicorn_argv("bench._sockets_baseline:app", port, "--factory"),
        log_path=temp / f"{name}.log",
        env=_env(SOCKETS_BASELINE_REDIS_URL=redis_url),
        cwd=REPO_ROOT,
        timeout=60.0,
    )


def start_lyceum(temp: Path, name: str, url: str, secret: str, redis_url: str) -> Server:
    env = _env(
        DATABASE_URL=url,
        REDIS_URL=redis_url,
        LYCEUM_DATA_DIR=str(temp / f"data-{name}"),
        LOG_LEVEL="INFO",  # Lyceum's access log on, as in a default install
        ENVIRONMENT="development",
        SECRET_KEY=secret,
        CHAT_RATE_LIMIT=BENCH_RATE_LIMIT,
        DB_POOL_SIZE="20",
        DB_MAX_OVERFLOW="10",
    )
    return start_lyceum_serve(temp, name, env, timeout=STARTUP_TIMEOUT)


def rss_mib(pid: int) -> float:
    return float(psutil.Process(pid).memory_info().rss) / (1024 * 1024)


def cpu_s(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


@dataclass
class StepReport:
    rate: int
    sent: int = 0
    send_seconds: float = 0.0
    expected: int = 0
    delivered: int = 0
    acked: int = 0
    refused: int = 0
    send_failures: int = 0
    p50_ms: float = float("nan")
    p99_ms: float = float("nan")
    max_ms: float = float("nan")
    ack_p99_ms: float = float("nan")
    server_cpu: list[float] = field(default_factory=list)  # cores, A and B
    loader_cpu: list[float] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return self.expected - self.delivered

    @property
    def sent_per_second(self) -> float:
        return self.sent / self.send_seconds if self.send_seconds else 0.0


@dataclass
class TargetReport:
    name: str
    pids: list[int] = field(default_factory=list)
    sockets: int = 0
    connect_seconds: float = 0.0
    rss_before_mib: list[float] = field(default_factory=list)
    rss_after_mib: list[float] = field(default_factory=list)
    sockets_per_server: list[int] = field(default_factory=list)
    rest_seconds: float = 0.0
    rest_cpu_percent: list[float] = field(default_factory=list)
    redis_rss_before_mib: float = float("nan")
    redis_rss_after_mib: float = float("nan")
    loader_rss_per_socket_kib: float = float("nan")
    loader_rest_cpu_percent: float = float("nan")
    dropped_at_rest: int = 0
    dropped_end: int = 0
    connect_errors: list[str] = field(default_factory=list)
    steps: list[StepReport] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.sockets / self.connect_seconds if self.connect_seconds else 0.0

    def kib_per_connection(self, index: int) -> float:
        count = self.sockets_per_server[index]
        delta = self.rss_after_mib[index] - self.rss_before_mib[index]
        return delta * 1024 / count if count else float("nan")

    @property
    def kib_per_connection_all(self) -> float:
        delta = sum(self.rss_after_mib) - sum(self.rss_before_mib)
        return delta * 1024 / max(sum(self.sockets_per_server), 1)


class Loaders:
    """The load generator processes and their control pipes."""

    def __init__(self, specs: list[LoaderSpec]) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipes: list[Connection] = []
        self.processes: list[Any] = []
        for index, spec in enumerate(specs):
            mine, theirs = context.Pipe()
            process = context.Process(
                target=loader_main, args=(spec, theirs), name=f"bench-sockets-load-{index}"
            )
            process.start()
            theirs.close()
            self.pipes.append(mine)
            self.processes.append(process)

    def send(self, message: Any) -> None:
        for pipe in self.pipes:
            pipe.send(message)

    def expect(self, kind: str, budget: float) -> list[Any]:
        payloads = []
        deadline = time.monotonic() + budget
        for index, pipe in enumerate(self.pipes):
            if not pipe.poll(max(0.0, deadline - time.monotonic())):
                raise BenchError(f"loader {index} went quiet for {budget:.0f}s (waiting {kind})")
            try:
                got, payload = pipe.recv()
            except EOFError:
                raise BenchError(f"loader {index} exited without reporting") from None
            if got == "error":
                raise BenchError(f"loader {index} failed: {payload}")
            if got != kind:
                raise BenchError(f"loader {index} said {got!r}, expected {kind!r}")
            payloads.append(payload)
        return payloads

    def close(self) -> None:
        with contextlib.suppress(OSError, BrokenPipeError):
            self.send(("quit", None))
        for process in self.processes:
            process.join(30)
            if process.is_alive():
                process.kill()
                process.join(5)
        for pipe in self.pipes:
            pipe.close()


def measure_target(
    name: str,
    servers: list[Server],
    redis_pid: int | None,
    seats: list[tuple[str, str]],
    args: argparse.Namespace,
) -> TargetReport:
    report = TargetReport(name, pids=[server.pid for server in servers])
    ports = [server.port for server in servers]
    per_room = args.per_room
    active = args.active_rooms * per_room
    # Seat i: loader i % loaders, server (i // loaders) % 2: each room has members on
    # both servers, and each loader sockets on both.
    all_seats = [
        Seat(index, ports[(index // args.loaders) % 2], token, course, index < active)
        for index, (token, course) in enumerate(seats)
    ]
    room_sizes = {course: 0 for _, course in seats}
    for _, course in seats:
        room_sizes[course] += 1
    specs = [
        LoaderSpec(
            seats=[seat for seat in all_seats if seat.index % args.loaders == loader],
            room_sizes=room_sizes,
            connect_concurrency=args.connect_concurrency,
            step_seconds=args.step_seconds,
            rate_share=1.0 / args.loaders,
            warm=loader == 0,
            warm_ports=ports,
        )
        for loader in range(args.loaders)
    ]
    loaders = Loaders(specs)
    try:
        loaders.expect("ready", 120)
        loaders.send(("warm", None))
        loaders.expect("warm", 120)
        time.sleep(2.0)
        report.rss_before_mib = [rss_mib(pid) for pid in report.pids]
        if redis_pid is not None:
            report.redis_rss_before_mib = rss_mib(redis_pid)
        print(
            "  RSS before (one warm-up socket each): "
            + ", ".join(f"{rss:.0f} MiB" for rss in report.rss_before_mib),
            flush=True,
        )
        started = time.perf_counter()
        loaders.send(("connect", None))
        connected = loaders.expect("connected", CONNECT_BUDGET)
        report.connect_seconds = time.perf_counter() - started
        report.sockets = sum(c["sockets"] for c in connected)
        report.connect_errors = [e for c in connected for e in c["errors"]][:5]
        report.sockets_per_server = [
            sum(c["per_port"].get(port, 0) for c in connected) for port in ports
        ]
        print(
            f"  {report.sockets} sockets connected and joined in {report.connect_seconds:.1f}s "
            f"({report.rate:.0f}/s); per server {report.sockets_per_server}",
            flush=True,
        )
        for error in report.connect_errors:
            print(f"    connect error: {error}", flush=True)
        time.sleep(5.0)
        report.rss_after_mib = [rss_mib(pid) for pid in report.pids]
        if redis_pid is not None:
            report.redis_rss_after_mib = rss_mib(redis_pid)
        # At rest: every socket open, nothing sent but the Engine.IO pings.
        loaders.send(("rest", None))
        loader_cpu_before = loaders.expect("cpu", 30)
        cpu_before = [cpu_s(pid) for pid in report.pids]
        rest_started = time.perf_counter()
        time.sleep(args.rest_seconds)
        report.rest_seconds = time.perf_counter() - rest_started
        cpu_after = [cpu_s(pid) for pid in report.pids]
        loaders.send(("rest", None))
        loader_cpu_after = loaders.expect("cpu", 30)
        report.rest_cpu_percent = [
            (after - before) / report.rest_seconds * 100
            for before, after in zip(cpu_before, cpu_after, strict=True)
        ]
        report.loader_rest_cpu_percent = (
            sum(
                a["cpu"] - b["cpu"]
                for a, b in zip(loader_cpu_after, loader_cpu_before, strict=True)
            )
            / report.rest_seconds
            * 100
        )
        report.dropped_at_rest = sum(a["dead"] for a in loader_cpu_after)
        report.loader_rss_per_socket_kib = sum(a["rss_delta_kib"] for a in loader_cpu_after) / max(
            report.sockets, 1
        )
        print(
            f"  RSS after: {', '.join(f'{rss:.0f} MiB' for rss in report.rss_after_mib)}; "
            f"per connection {report.kib_per_connection_all:.1f} KiB; CPU at rest over "
            f"{report.rest_seconds:.0f}s: "
            + ", ".join(f"{cpu:.1f}%" for cpu in report.rest_cpu_percent)
            + f" (loaders {report.loader_rest_cpu_percent:.1f}%); dropped "
            f"{report.dropped_at_rest}",
            flush=True,
        )
        for step_index, rate in enumerate(args.rate_list):
            loaders.send(("step", (rate, step_index)))
            step_cpu_before = [cpu_s(pid) for pid in report.pids]
            step_started = time.perf_counter()
            tallies: list[StepTally] = loaders.expect(
                "stepped", args.step_seconds + DRAIN_SECONDS + 120
            )
            elapsed = time.perf_counter() - step_started
            step = merge_step(rate, tallies)
            step.server_cpu = [
                (cpu_s(pid) - before) / elapsed
                for pid, before in zip(report.pids, step_cpu_before, strict=True)
            ]
            report.steps.append(step)
            print(f"  {rate:>5} msg/s: {step_line(step)}", flush=True)
        loaders.send(("count", None))
        report.dropped_end = sum(loaders.expect("counted", 30))
    finally:
        loaders.close()
    return report


def merge_step(rate: int, tallies: list[StepTally]) -> StepReport:
    latencies = sorted(ms for tally in tallies for ms in tally.latencies_ms)
    acks = sorted(ms for tally in tallies for ms in tally.ack_ms)
    step = StepReport(rate=rate)
    step.sent = sum(t.sent for t in tallies)
    step.send_seconds = max(t.send_seconds for t in tallies)
    step.expected = sum(t.expected for t in tallies)
    step.delivered = len(latencies)
    step.acked = sum(t.acked for t in tallies)
    step.refused = sum(t.refused for t in tallies)
    step.send_failures = sum(t.send_failures for t in tallies)
    step.p50_ms = percentile(latencies, 50)
    step.p99_ms = percentile(latencies, 99)
    step.max_ms = latencies[-1] if latencies else float("nan")
    step.ack_p99_ms = percentile(acks, 99)
    step.loader_cpu = [t.cpu for t in tallies]
    step.refusals = [r for t in tallies for r in t.refusals][:5]
    return step


def step_line(step: StepReport) -> str:
    extra = f", {step.refused} refused {step.refusals[:2]}" if step.refused else ""
    return (
        f"sent {step.sent_per_second:.0f}/s ({step.sent}), delivered {step.delivered}/"
        f"{step.expected} (lost {step.lost}), p50 {step.p50_ms:.1f} ms, p99 {step.p99_ms:.1f} "
        f"ms, max {step.max_ms:.0f} ms, ack p99 {step.ack_p99_ms:.1f} ms, CPU servers "
        + "/".join(f"{cpu:.2f}" for cpu in step.server_cpu)
        + " loaders "
        + "/".join(f"{cpu:.2f}" for cpu in step.loader_cpu)
        + extra
    )


def check_official(
    servers: list[Server], seats: list[tuple[str, str]], args: argparse.Namespace
) -> dict[str, Any]:
    """The lean client against python-socketio's AsyncClient, in a process of its own."""
    per_room = args.per_room
    # The last room's seats: idle in the chat steps.
    room = seats[-per_room:]
    spread = seats[args.active_rooms * per_room :]
    spec = OfficialSpec(
        ports=[server.port for server in servers],
        pair=(room[0], room[1]),
        idle=[spread[i % len(spread)] for i in range(args.official)],
    )
    context = multiprocessing.get_context("spawn")
    mine, theirs = context.Pipe()
    process = context.Process(target=official_main, args=(spec, theirs), name="bench-official")
    process.start()
    theirs.close()
    try:
        if not mine.poll(300):
            raise BenchError("the official-client check did not report within 300 s")
        kind, payload = mine.recv()
    finally:
        process.join(30)
        if process.is_alive():
            process.kill()
        mine.close()
    if kind != "ok":
        raise BenchError(f"official-client check failed: {payload}")
    result: dict[str, Any] = payload
    return result


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="10,000 idle Socket.IO connections and 1,000 chat messages/s across two "
        "processes on Redis, Lyceum against bare python-socketio."
    )
    parser.add_argument("--sockets", type=int, default=10_000, help="sockets (= learners)")
    parser.add_argument("--per-room", type=int, default=20, help="sockets per room (20)")
    parser.add_argument(
        "--active-rooms", type=int, default=50, help="rooms that chat in the message steps (50)"
    )
    parser.add_argument("--rates", default="500,1000", help="messages/s, one step each")
    parser.add_argument("--step-seconds", type=float, default=10.0, help="seconds per step")
    parser.add_argument("--rest-seconds", type=float, default=60.0, help="CPU at rest window")
    parser.add_argument("--loaders", type=int, default=2, help="load generator processes (2)")
    parser.add_argument(
        "--connect-concurrency", type=int, default=32, help="connects in flight per loader"
    )
    parser.add_argument(
        "--official", type=int, default=100, help="official AsyncClients opened to compare"
    )
    parser.add_argument(
        "--targets", default="baseline,lyceum", help="comma-separated: baseline, lyceum"
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write results here")
    parser.add_argument("--keep-temp", action="store_true", help="keep the temp dir afterwards")
    args = parser.parse_args(argv)
    try:
        args.rate_list = [int(rate) for rate in args.rates.split(",") if rate.strip()]
    except ValueError:
        parser.error("--rates: comma-separated integers")
    args.target_list = [t.strip() for t in args.targets.split(",") if t.strip()]
    if not set(args.target_list) <= {"baseline", "lyceum"}:
        parser.error("--targets: baseline and/or lyceum")
    if (
        args.per_room < 2
        or args.sockets < 2 * args.per_room
        or args.sockets % args.per_room
        or args.active_rooms < 1
        or args.active_rooms >= args.sockets // args.per_room
        or args.loaders < 1
    ):
        parser.error(
            "need --per-room >= 2, --sockets a multiple of it with more rooms than "
            "--active-rooms >= 1, and --loaders >= 1"
        )
    return args


def print_summary(reports: dict[str, TargetReport], nofile: tuple[int, int]) -> None:
    print()
    print("idle connections, two processes A/B on one Redis:")
    for name, report in reports.items():
        print(
            f"  {name:<9} {report.sockets} sockets ({report.sockets_per_server[0]}/"
            f"{report.sockets_per_server[1]}), set-up {report.rate:.0f}/s; RSS A "
            f"{report.rss_before_mib[0]:.0f} -> {report.rss_after_mib[0]:.0f} MiB, B "
            f"{report.rss_before_mib[1]:.0f} -> {report.rss_after_mib[1]:.0f} MiB; "
            f"{report.kib_per_connection_all:.1f} KiB per connection; CPU at rest "
            + " / ".join(f"{cpu:.2f}%" for cpu in report.rest_cpu_percent)
            + f"; redis RSS {report.redis_rss_before_mib:.0f} -> "
            f"{report.redis_rss_after_mib:.0f} MiB; dropped {report.dropped_at_rest} at rest, "
            f"{report.dropped_end} by the end; lean client {report.loader_rss_per_socket_kib:.1f}"
            " KiB per socket"
        )
    if "baseline" in reports and "lyceum" in reports:
        base, ours = reports["baseline"], reports["lyceum"]
        print(
            f"  memory per connection lyceum/baseline: "
            f"{ours.kib_per_connection_all / base.kib_per_connection_all:.2f}"
        )
        print("chat across the two processes (senders and receivers on both):")
        base_steps = {step.rate: step for step in base.steps}
        for step in ours.steps:
            b = base_steps.get(step.rate)
            if b is None:
                continue
            print(
                f"  {step.rate:>5} msg/s: baseline p50/p99 {b.p50_ms:.1f}/{b.p99_ms:.1f} ms "
                f"(lost {b.lost}); lyceum p50/p99 {step.p50_ms:.1f}/{step.p99_ms:.1f} ms "
                f"(delivered {step.delivered}/{step.expected}, lost {step.lost}); p99 ratio "
                f"lyceum/baseline {step.p99_ms / b.p99_ms:.1f}"
            )
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs shared by both servers, Redis, "
        f"PostgreSQL and the loaders (and other work); load average {load_average()}; "
        f"RLIMIT_NOFILE {nofile[0]}"
    )


def run(args: argparse.Namespace, temp: Path) -> dict[str, Any]:
    if shutil.which("redis-server") is None:
        raise BenchError("needs a redis-server binary on PATH")
    from tests.support.servers import redis_server

    nofile = raise_nofile()
    load_before = load_average()
    rooms = args.sockets // args.per_room
    print(f"seeding {rooms} courses x {args.per_room} learners ...", flush=True)
    postgres, url, seats, secret = prepare_database(temp, rooms, args.per_room)
    reports: dict[str, TargetReport] = {}
    official: dict[str, Any] = {}
    try:
        for name in args.target_list:
            with redis_server() as redis_url:
                redis_pid = _redis_pid(redis_url)
                print(f"{name}: starting two processes on {redis_url} ...", flush=True)
                servers: list[Server] = []
                try:
                    for side in ("a", "b"):
                        if name == "baseline":
                            servers.append(start_baseline(temp, f"{name}-{side}", redis_url))
                        else:
                            servers.append(
                                start_lyceum(temp, f"{name}-{side}", url, secret, redis_url)
                            )
                    print(
                        "  up: "
                        + ", ".join(f"{s.name} pid {s.pid} port {s.port}" for s in servers),
                        flush=True,
                    )
                    if name == "lyceum" and args.official:
                        official = check_official(servers, seats, args)
                        print(
                            f"  official client check: {official['check']}; official "
                            f"AsyncClient {official['kib_per_client']:.1f} KiB and "
                            f"{official['connect_cpu_ms']:.1f} ms CPU per connection "
                            f"(lean, this process: {official['lean_kib_per_socket']:.1f} KiB, "
                            f"{official['lean_connect_cpu_ms']:.1f} ms)",
                            flush=True,
                        )
                    reports[name] = measure_target(name, servers, redis_pid, seats, args)
                finally:
                    for server in servers:
                        stop_server(server)
    finally:
        postgres.stop()
    print_summary(reports, nofile)
    return {
        "scenario": SCENARIO,
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "rlimit_nofile": list(nofile),
        "official": official,
        "errors": 0,
        "targets": {
            name: {
                **{k: v for k, v in asdict(report).items() if k != "steps"},
                "kib_per_connection": report.kib_per_connection_all,
                "connect_rate": report.rate,
                "steps": [
                    {**asdict(step), "lost": step.lost, "sent_per_second": step.sent_per_second}
                    for step in report.steps
                ],
            }
            for name, report in reports.items()
        },
    }


def _redis_pid(redis_url: str) -> int | None:
    port = redis_url.rsplit(":", 1)[1].split("/", 1)[0]
    for process in psutil.process_iter(["name", "cmdline"]):
        with contextlib.suppress(psutil.Error):
            cmdline = process.info["cmdline"] or []
            if "redis-server" in (process.info["name"] or "") and port in " ".join(cmdline):
                return int(process.pid)
    return None


def main(argv: Sequence[str] | None = None) -> int:
    return scenario_main(SCENARIO, parse_args(argv), run)


if __name__ == "__main__":
    sys.exit(main())
