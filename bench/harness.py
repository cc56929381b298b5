"""Reusable benchmark pieces: server processes, a load generator process, statistics.

* `start_server` / `stop_server`: run an ASGI server as a subprocess on a free loopback
  port, wait until it answers, and stop it with SIGINT (then SIGTERM, then SIGKILL).
* `run_load`: drive one target with N keep-alive HTTP/1.1 connections from a separate
  OS process (multiprocessing, spawn) and return a `LoadResult`.
* `percentile`, `median`: the statistics used in the reports.
* `scenario_main`: the shared `main()` of a scenario: a temp dir, the run, the JSON
  report, the exit code; `load_average` for the report's context.

The load generator is a small asyncio client on raw `asyncio.open_connection` streams:
each connection sends its requests back to back and reads status line, headers and a
Content-Length (or chunked) body. Every loop is bounded by time and by count, and only
127.0.0.1 is ever targeted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import math
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil
import psycopg

if TYPE_CHECKING:
    from lyceum.kit.embedded_pg import EmbeddedPostgres

LOOPBACK = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parent.parent
# In-process uses too (migrations, seeding): this checkout's `lyceum` first.
if str(REPO_ROOT / "src") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "src"))

MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 16 * 1024 * 1024
MAX_CHUNKS = 10_000
MAX_ERROR_SAMPLES = 5


class BenchError(Exception):
    """A server did not start, or the load generator did not report."""


# Statistics ---------------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) of already sorted values, linearly interpolated."""
    if not sorted_values:
        return math.nan
    if len(sorted_values) == 1:
        return sorted_values[0]
    rank = (len(sorted_values) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low)


def median(values: Sequence[float]) -> float:
    return percentile(sorted(values), 50.0)


# Servers ------------------------------------------------------------------------------


def free_port() -> int:
    """A port the kernel considers free on the loopback interface right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    started_in: float = 0.0

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process itself (not its children)."""
        try:
            times = psutil.Process(self.pid).cpu_times()
        except psutil.Error:
            return math.nan
        return float(times.user + times.system)

    def log_tail(self, lines: int = 40) -> str:
        return tail(self.log_path, lines)


def postmaster_of(url: str) -> int | None:
    """The pid of the PostgreSQL server (the postmaster) that `url` reaches on this
    machine, found through a backend of its own (the parent of every backend)."""
    with psycopg.connect(url) as conn:  # its backend looked up while it lives
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
        try:
            parent = psutil.Process(int(row[0])).parent() if row else None
        except psutil.Error:
            return None
    return parent.pid if parent is not None else None


def database_cpu_seconds(postmaster: int | None) -> float:
    """User + system CPU seconds of the whole PostgreSQL server: the postmaster, its
    live children (backends, WAL writer, checkpointer) and the children it has reaped
    (a pool's overflow connection closed after a burst still counts)."""
    if postmaster is None:
        return math.nan
    try:
        server = psutil.Process(postmaster)
        times = server.cpu_times()
        children = server.children(recursive=True)
    except psutil.Error:
        return math.nan
    total = times.user + times.system + times.children_user + times.children_system
    for child in children:
        try:
            child_times = child.cpu_times()
        except psutil.Error:
            continue  # reaped since: counted in the postmaster's children times next time
        total += child_times.user + child_times.system
    return float(total)


def tail(path: Path, lines: int = 40) -> str:
    try:
        data = path.read_bytes()[-64 * 1024 :]
    except OSError as error:
        return f"(cannot read {path}: {error})"
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])


def probe(port: int, path: str, timeout: float = 2.0) -> tuple[int, bytes]:
    """One GET on a fresh connection: (status, body)."""
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read(MAX_BODY_BYTES)
    finally:
        connection.close()


def wait_until_settled(server: Server, timeout: float = 120.0) -> float:
    """Wait until Lyceum's start-up work is over: the embedding model, which the API
    server loads in a background thread as it starts (10-25 s of CPU), reports `ready`
    (or `failed`) in /health/ready. Measuring before that charges the load to the
    requests. Returns the seconds waited."""
    started = time.monotonic()
    state = "unknown"
    while time.monotonic() - started < timeout:
        with contextlib.suppress(OSError, http.client.HTTPException, ValueError):
            _, body = probe(server.port, "/health/ready", timeout=5.0)
            check = json.loads(body).get("checks", {}).get("embedding_model", {})
            state = check.get("state") or ("ready" if check.get("ok") else "unknown")
            if state in {"ready", "failed", "idle"} and check:
                return time.monotonic() - started
        time.sleep(0.5)
    raise BenchError(f"{server.name}: embedding model still {state} after {timeout:.0f}s")


def start_server(
    name: str,
    build_argv: Callable[[int], Sequence[str]],
    *,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path = REPO_ROOT,
    ready_path: str = "/health/live",
    timeout: float = 30.0,
) -> Server:
    """Start `build_argv(port)` on a free loopback port and wait until GET `ready_path`
    answers 200. Output goes to `log_path` (a file, so it can never block the server).
    Raises BenchError, with the log's tail, if it exits or does not answer in time."""
    port = free_port()
    argv = list(build_argv(port))
    # This checkout's code, not whichever checkout the virtualenv installed `lyceum` from
    # (a second worktree would otherwise benchmark the first one's code).
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join(
        part for part in (str(REPO_ROOT / "src"), env.get("PYTHONPATH")) if part
    )
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            # Its own session: a Ctrl-C in the terminal reaches only the harness, which
            # then stops the server in order (SIGINT once, so lifespans shut down cleanly).
            start_new_session=True,
        )
    server = Server(name=name, port=port, process=process, log_path=log_path)
    deadline = started + timeout
    last_problem = "no answer yet"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(
                f"{name} exited with code {process.returncode} before answering "
                f"{ready_path}; log {log_path}:\n{server.log_tail()}"
            )
        try:
            status, _ = probe(port, ready_path, timeout=1.0)
        except (OSError, http.client.HTTPException) as error:
            last_problem = f"{type(error).__name__}: {error}"
        else:
            if status == 200:
                server.started_in = time.monotonic() - started
                return server
            last_problem = f"HTTP {status}"
        time.sleep(0.2)
    stop_server(server)
    raise BenchError(
        f"{name} did not answer 200 on {ready_path} within {timeout:.0f}s ({last_problem}); "
        f"log {log_path}:\n{server.log_tail()}"
    )


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return list(psutil.Process(pid).children(recursive=True))
    except psutil.Error:
        return []


def start_lyceum_serve(
    temp: Path, name: str, env: dict[str, str], timeout: float = 180.0
) -> Server:
    """`python -m lyceum serve` (the production entry point) on a free loopback port,
    run from `temp` (away from the checkout, so a developer's `.env` does not leak in),
    once its start-up work has settled."""
    server = start_server(
        name,
        lambda port: [
            sys.executable,
            "-m",
            "lyceum",
            "serve",
            "--host",
            LOOPBACK,
            "--port",
            str(port),
        ],
        log_path=temp / f"{name}.log",
        env=env,
        cwd=temp,
        timeout=timeout,
    )
    wait_until_settled(server)
    return server


def stop_server(server: Server, timeout: float = 30.0) -> int | None:
    """SIGINT, then SIGTERM, then SIGKILL, each after `timeout` (SIGKILL after 5 s).
    Descendants left behind (e.g. an embedded PostgreSQL) get SIGTERM and a warning.
    Returns the exit code (None if it could not be reaped)."""
    process = server.process
    children = _descendants(process.pid)
    for sig, wait_for in ((signal.SIGINT, timeout), (signal.SIGTERM, timeout), (None, 5.0)):
        if process.poll() is not None:
            break
        try:
            if sig is None:
                process.kill()
            else:
                process.send_signal(sig)
        except ProcessLookupError:
            break
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(wait_for)
        if process.poll() is None and sig is not None:
            print(f"  {server.name}: still running {wait_for:.0f}s after {sig.name}", flush=True)
    leftovers = [child for child in children if _alive(child)]
    if leftovers:
        pids = ", ".join(str(child.pid) for child in leftovers)
        print(f"  {server.name}: left processes behind ({pids}); sending SIGTERM", flush=True)
        for child in leftovers:
            with contextlib.suppress(psutil.Error):
                child.terminate()
        psutil.wait_procs(leftovers, timeout=10.0)
    return process.poll()


def _alive(process: psutil.Process) -> bool:
    try:
        return bool(process.is_running() and process.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


@contextlib.contextmanager
def running(server: Server, timeout: float = 30.0) -> Iterator[Server]:
    try:
        yield server
    finally:
        stop_server(server, timeout)


# Load generator -----------------------------------------------------------------------


@dataclass(frozen=True)
class LoadSpec:
    port: int
    path: str = "/health/live"
    concurrency: int = 32
    duration: float = 5.0
    # Upper bound on requests per connection, so no loop depends on the clock alone.
    max_requests_per_connection: int = 10_000_000
    connect_timeout: float = 5.0
    # How long after `duration` in-flight requests may take before they count as errors.
    grace: float = 10.0
    # Extra request headers, e.g. (("Authorization", "Bearer ..."),).
    headers: tuple[tuple[str, str], ...] = ()

    def request_bytes(self) -> bytes:
        extra = "".join(f"{name}: {value}\r\n" for name, value in self.headers)
        return (
            f"GET {self.path} HTTP/1.1\r\n"
            f"Host: {LOOPBACK}:{self.port}\r\n"
            "User-Agent: lyceum-bench\r\n"
            "Accept: application/json\r\n"
            f"{extra}"
            "\r\n"
        ).encode("ascii")


@dataclass
class LoadResult:
    requests: int  # responses received (any status)
    ok: int  # responses with status 200
    errors: int  # non-200 responses + transport failures + timeouts
    elapsed: float  # seconds from the first request to the last response
    rps: float  # ok / elapsed
    p50_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    client_cpu: float  # load generator CPU seconds / elapsed (1.0 = one core saturated)
    loop: str
    error_samples: list[str] = field(default_factory=list)
    server_cpu_us_per_request: float = math.nan  # filled in by the caller if measured

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Tally:
    __slots__ = ("error_samples", "errors", "latencies", "ok", "responses")

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.responses = 0
        self.ok = 0
        self.errors = 0
        self.error_samples: list[str] = []

    def error(self, what: str) -> None:
        self.errors += 1
        if len(self.error_samples) < MAX_ERROR_SAMPLES:
            self.error_samples.append(what)


async def _read_chunked(reader: asyncio.StreamReader) -> None:
    total = 0
    for _ in range(MAX_CHUNKS):
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            for _ in range(100):  # trailer section, ends with an empty line
                if await reader.readuntil(b"\r\n") == b"\r\n":
                    return
            raise ValueError("too many trailer lines")
        total += size
        if total > MAX_BODY_BYTES:
            raise ValueError("chunked body too large")
        await reader.readexactly(size + 2)
    raise ValueError("too many chunks")


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one HTTP/1.x response: (status, connection stays open)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    version, _, rest = lines[0].partition(b" ")
    if not version.startswith(b"HTTP/1."):
        raise ValueError(f"bad status line {lines[0][:80]!r}")
    status = int(rest[:3])
    keep_alive = version == b"HTTP/1.1"
    length: int | None = None
    chunked = False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif name == b"connection":
            token = value.strip().lower()
            if token == b"close":
                keep_alive = False
            elif token == b"keep-alive":
                keep_alive = True
    if chunked:
        await _read_chunked(reader)
    elif length is not None:
        if length > MAX_BODY_BYTES:
            raise ValueError(f"body too large ({length} bytes)")
        await reader.readexactly(length)
    else:
        await reader.read(MAX_BODY_BYTES)  # body delimited by the connection closing
        keep_alive = False
    return status, keep_alive


async def _connection(spec: LoadSpec, deadline: float, tally: _Tally) -> None:
    """One connection slot: connects (again, if the server closed), then requests."""
    request = spec.request_bytes()
    budget = spec.max_requests_per_connection
    while budget > 0 and time.perf_counter() < deadline:
        budget -= 1  # a connection attempt counts against the budget too
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(LOOPBACK, spec.port, limit=MAX_HEAD_BYTES),
                spec.connect_timeout,
            )
        except (OSError, TimeoutError) as error:
            tally.error(f"connect: {type(error).__name__}: {error}")
            await asyncio.sleep(0.05)
            continue
        try:
            budget = await _requests(reader, writer, request, deadline, tally, budget)
        finally:
            writer.close()


async def _requests(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    request: bytes,
    deadline: float,
    tally: _Tally,
    budget: int,
) -> int:
    """Requests back to back on one open connection until the deadline, the end of the
    budget, an error or the server closing it. Returns what is left of the budget."""
    perf_counter = time.perf_counter
    latencies = tally.latencies
    while budget > 0 and perf_counter() < deadline:
        budget -= 1
        started = perf_counter()
        try:
            writer.write(request)
            status, keep_alive = await read_response(reader)
        except (OSError, EOFError, ValueError, asyncio.LimitOverrunError) as error:
            tally.error(f"{type(error).__name__}: {error}"[:200])
            return budget
        latencies.append(perf_counter() - started)
        tally.responses += 1
        if status == 200:
            tally.ok += 1
        else:
            tally.error(f"HTTP {status}")
        if not keep_alive:
            return budget
    return budget


async def _drive(spec: LoadSpec) -> LoadResult:
    tally = _Tally()
    cpu_started = time.process_time()
    started = time.perf_counter()
    deadline = started + spec.duration
    tasks = [
        asyncio.create_task(_connection(spec, deadline, tally)) for _ in range(spec.concurrency)
    ]
    done, pending = await asyncio.wait(tasks, timeout=spec.duration + spec.grace)
    elapsed = time.perf_counter() - started
    for task in pending:
        task.cancel()
        tally.error("timeout: request still in flight after the grace period")
    if pending:
        await asyncio.wait(pending, timeout=5.0)
    for task in done:
        if not task.cancelled() and task.exception() is not None:
            tally.error(f"connection task failed: {task.exception()!r}"[:200])
    client_cpu = (time.process_time() - cpu_started) / elapsed
    latencies = sorted(tally.latencies)
    ms = 1000.0
    return LoadResult(
        requests=tally.responses,
        ok=tally.ok,
        errors=tally.errors,
        elapsed=elapsed,
        rps=tally.ok / elapsed if elapsed > 0 else 0.0,
        p50_ms=percentile(latencies, 50.0) * ms,
        p99_ms=percentile(latencies, 99.0) * ms,
        mean_ms=(sum(latencies) / len(latencies) * ms) if latencies else math.nan,
        max_ms=(latencies[-1] * ms) if latencies else math.nan,
        client_cpu=client_cpu,
        loop=type(asyncio.get_running_loop()).__module__.split(".")[0],
        error_samples=tally.error_samples,
    )


def _load_process_main(spec: LoadSpec, results: Connection) -> None:
    """Entry point of the load generator process: run, send the result, exit."""
    # Ctrl-C is the parent's to handle: it terminates this process if it must.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        try:
            import uvloop  # optional; a cheaper event loop leaves more CPU to the server

            result = uvloop.run(_drive(spec))
        except ImportError:
            result = asyncio.run(_drive(spec))
        results.send(("ok", result))
    except Exception as error:
        with contextlib.suppress(OSError):
            results.send(("error", f"{type(error).__name__}: {error}"))
        raise
    finally:
        results.close()


def run_load(spec: LoadSpec) -> LoadResult:
    """Run one load round from a separate OS process and return its result."""
    if spec.concurrency < 1 or spec.duration <= 0:
        raise ValueError("concurrency must be >= 1 and duration > 0")
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(
        target=_load_process_main, args=(spec, sender), name="bench-load", daemon=True
    )
    process.start()
    sender.close()
    try:
        # Spawning + importing takes a moment; the run itself is bounded by duration + grace.
        budget = spec.duration + spec.grace + 30.0
        if not receiver.poll(budget):
            raise BenchError(f"load generator did not report within {budget:.0f}s")
        try:
            kind, payload = receiver.recv()
        except EOFError:
            raise BenchError(
                f"load generator died without reporting (exit code {process.exitcode})"
            ) from None
        if kind != "ok":
            raise BenchError(f"load generator failed: {payload}")
        result: LoadResult = payload
        return result
    except BaseException:
        process.terminate()  # interrupted or failed: do not wait for the round to end
        raise
    finally:
        receiver.close()
        process.join(10.0)
        if process.is_alive():
            process.kill()
            process.join(5.0)


def measure(server: Server, spec: LoadSpec) -> LoadResult:
    """`run_load` against `server`, plus the server's CPU time per request."""
    cpu_before = server.cpu_seconds()
    result = run_load(spec)
    cpu_used = server.cpu_seconds() - cpu_before
    if result.requests:
        result.server_cpu_us_per_request = cpu_used / result.requests * 1e6
    return result


def uvicorn_argv(app: str, port: int, *extra: str) -> list[str]:
    """`python -m uvicorn APP` on 127.0.0.1:PORT, one worker, no uvicorn access log."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        *extra,
        "--host",
        LOOPBACK,
        "--port",
        str(port),
        "--workers",
        "1",
        "--log-level",
        "warning",
        "--no-access-log",
    ]


# Running a scenario -------------------------------------------------------------------


def migrated_postgres(temp: Path, database: str) -> tuple[EmbeddedPostgres, str]:
    """An embedded PostgreSQL under `temp`/pg with a fresh `database` migrated to head:
    (server, URL). The caller stops the server; if the migration fails it is stopped
    here."""
    from alembic import command

    from lyceum.kit.db import alembic_config
    from lyceum.kit.embedded_pg import EmbeddedPostgres

    print("starting embedded PostgreSQL ...", flush=True)
    started = time.perf_counter()
    postgres = EmbeddedPostgres(temp / "pg")
    postgres.start()
    try:
        url = postgres.ensure_database(database, fresh=True)
        command.upgrade(alembic_config(url), "head")
    except BaseException:
        postgres.stop()
        raise
    print(f"  ready and migrated in {time.perf_counter() - started:.1f}s", flush=True)
    return postgres, url


@contextlib.contextmanager
def sampled(pid: int, output: Path) -> Iterator[None]:
    """py-spy sampling process `pid` while the block runs, writing collapsed stacks
    (`frame;frame;... count`) to `output`. Only the thread holding the GIL is sampled,
    so idle pool threads and the event loop waiting in epoll are left out: the profile
    is Python's CPU."""
    recorder = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("py-spy")),
            "record",
            "--pid",
            str(pid),
            "--rate",
            "200",
            "--gil",
            "--format",
            "raw",
            "--output",
            str(output),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    time.sleep(0.5)  # attached before the block's first request
    try:
        yield
    finally:
        recorder.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
        try:
            recorder.wait(timeout=60)
        except subprocess.TimeoutExpired:
            recorder.kill()


def print_profile(title: str, paths: Sequence[Path], top: int = 25) -> None:
    """Top frames by own samples and by inclusive samples, summed over py-spy's
    collapsed stacks in `paths`."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for path in paths:
        if not path.exists():
            print(f"  (no samples in {path}: is py-spy allowed to attach?)")
            continue
        for line in path.read_text().splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not stack:
                continue
            count = int(count_text)
            frames = [_short_frame(frame) for frame in stack.split(";")]
            total += count
            own[frames[-1]] += count
            for frame in set(frames):
                inclusive[frame] += count
    print(f"\n{title}: {total} samples ({', '.join(str(path) for path in paths)})")
    if not total:
        return
    for kind, counter in (("own", own), ("inclusive", inclusive)):
        print(f"top {top} frames by {kind} samples:")
        for frame, count in counter.most_common(top):
            print(f"  {100 * count / total:5.1f}%  {frame}")


def frame_parts(frame: str) -> tuple[str, str]:
    """A py-spy frame `function (path/to/module.py:line)` as (function, package path):
    the path from the package on, without the line."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "/src/", "/lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return name, path


def _short_frame(frame: str) -> str:
    """`function (path/to/module.py:line)` -> `function (package/module.py)`."""
    name, path = frame_parts(frame)
    return f"{name} ({path})"


def load_average() -> str:
    try:
        return " ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "n/a"


def finite(value: Any) -> Any:
    """NaN (no sample) becomes null, so the file is strict JSON."""
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [finite(item) for item in value]
    return value


def scenario_main(
    name: str,
    args: argparse.Namespace,
    run: Callable[[argparse.Namespace, Path], dict[str, Any]],
    *,
    errors_are: str = "request errors",
    keep_temp: bool = False,
) -> int:
    """Run `run(args, temp)` in a fresh temp dir (removed afterwards unless the run
    failed or `--keep-temp`/`keep_temp` asks to keep it), write `--json` if given, and
    return the exit code: 0, or 1 if the report counts errors or the scenario failed."""
    temp = Path(tempfile.mkdtemp(prefix=f"lyceum-bench-{name}-"))
    print(f"temp dir (logs, PostgreSQL data): {temp}")
    ok = False
    try:
        report = run(args, temp)
        ok = report["errors"] == 0
    except BenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        if ok and not args.keep_temp and not keep_temp:
            shutil.rmtree(temp, ignore_errors=True)
        else:
            print(f"kept {temp}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(finite(report), indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    if not ok:
        print(f"error: {report['errors']} {errors_are}", file=sys.stderr)
        return 1
    return 0
