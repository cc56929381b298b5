"""Capacity under a realistic mix: two `lyceum serve` processes and one `lyceum worker` on
PostgreSQL run as an external server and a real Redis, driven by locust (headless).

    python bench/load.py                       # 600 s at 10,000 requests/minute, then the steps
    python bench/load.py --duration 60 --step-seconds 20     # a trial run
    python bench/load.py --json bench/results/load.json

Phase 1 holds a constant arrival rate (`--rate-per-minute`, 10,000 by default: ~167
requests/s) for `--duration` seconds and reports the requests, the errors (target 0) and
p50/p99 per route. Phase 2 steps the rate up (`--step-rps` every `--step-seconds`)
against ONE API process, then against TWO, and reports the highest rate each held with
p99 < 500 ms, no error and at least 95 % of the asked rate delivered: the ratio two/one
and the scale-out efficiency (ratio / 2). The CPU each process group used in each
window (the two API processes, the worker, PostgreSQL, Redis, locust) is measured with
psutil, so the reader can see where the cores went, and each API process's event loop
lag over the window from its /metrics. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness
from harness import REPO_ROOT, BenchError, Server

ACCOUNTS = 10_000
ACCOUNT_DOMAIN = "load.lyceum.dev"
# Every seeded learner has this password (one argon2id hash, computed once).
PASSWORD = "load learner passphrase"  # noqa: S105 (a bench account's password)
P99_LIMIT_MS = 500.0
LYCEUM = [sys.executable, "-m", "lyceum"]


# Processes -----------------------------------------------------------------------------


def lyceum_env(temp: Path, database_url: str, redis_url: str, secret_key: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "PYTHONPATH": os.pathsep.join(
                part for part in (str(REPO_ROOT / "src"), os.environ.get("PYTHONPATH")) if part
            ),
            "ENVIRONMENT": "development",
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "SECRET_KEY": secret_key,
            "LYCEUM_DATA_DIR": str(temp / "data"),
            "LOG_LEVEL": "INFO",
            # Jobs run in the standalone worker, not in the API processes.
            "EMBEDDED_WORKER": "false",
            "PAYMENT_PROVIDERS": "sandbox",
            # Every locust user connects from 127.0.0.1: the per-address sign-in limit
            # (5 per 15 minutes) would refuse all but the first few. The per-account limit
            # and the tutor's 20/hour/user stay as shipped: the accounts rotate (a visit
            # per account), so no account comes near them.
            "LOGIN_RATE_LIMIT": "1000000/minute",
        }
    )
    return env


def start_redis(temp: Path) -> tuple[subprocess.Popen[bytes], int]:
    redis = shutil.which("redis-server")
    if redis is None:
        raise BenchError("redis-server is not installed (apt-get install redis-server)")
    port = harness.free_port()
    log = (temp / "redis.log").open("ab")
    process = subprocess.Popen(
        [redis, "--port", str(port), "--bind", harness.LOOPBACK, "--save", "", "--appendonly",
         "no", "--dir", str(temp)],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with (
            contextlib.suppress(OSError),
            socket.create_connection((harness.LOOPBACK, port), 1) as sock,
        ):
            sock.sendall(b"PING\r\n")
            if sock.recv(16).startswith(b"+PONG"):
                return process, port
        time.sleep(0.2)
    process.kill()
    raise BenchError("redis-server did not answer PING")


def run_cli(args: list[str], env: dict[str, str], temp: Path, what: str) -> None:
    started = time.perf_counter()
    done = subprocess.run(
        [*LYCEUM, *args], env=env, cwd=temp, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise BenchError(f"lyceum {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    print(f"  {what} in {time.perf_counter() - started:.1f}s", flush=True)


def start_worker(env: dict[str, str], temp: Path) -> subprocess.Popen[bytes]:
    log = (temp / "worker.log").open("ab")
    return subprocess.Popen(
        [*LYCEUM, "worker"], env=env, cwd=temp, stdout=log, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip


def stop_process(process: subprocess.Popen[bytes], name: str) -> None:
    harness.stop_server(Server(name=name, port=0, process=process, log_path=Path(os.devnull)))


# Seeding -------------------------------------------------------------------------------


def seed(database_url: str) -> dict[str, Any]:
    """10,000 learners (one precomputed argon2id hash), each enrolled in every free demo
    course, in set-based SQL; then the catalog the locust users need. The hash is made
    by Lyceum's own hasher, as registration makes it: a hash of other parameters would
    make every sign-in verify at those and then rehash and store the password."""
    import asyncio

    import psycopg

    from lyceum.demo.loader import STUDENT_EMAIL
    from lyceum.kit.security import hash_password

    started = time.perf_counter()
    password_hash = asyncio.run(hash_password(PASSWORD))
    with psycopg.connect(database_url) as conn:
        template = conn.execute(
            "SELECT id FROM users WHERE email = %s", (STUDENT_EMAIL,)
        ).fetchone()
        if template is None:
            raise BenchError("the demo student is missing: did `lyceum demo` run?")
        conn.execute(
            """
            INSERT INTO users (id, email, password_hash, full_name, role, is_active,
                               email_verified_at, locale, timezone, preferences,
                               created_at, updated_at)
            SELECT gen_random_uuid(), 'learner' || n || %s, %s, 'Load Learner ' || n,
                   s.role, true, now(), s.locale, s.timezone, s.preferences, now(), now()
            FROM generate_series(1, %s) AS n, users AS s WHERE s.email = %s
            """,
            (f"@{ACCOUNT_DOMAIN}", password_hash, ACCOUNTS, STUDENT_EMAIL),
        )
        conn.execute(
            """
            INSERT INTO enrollments (id, course_id, user_id, status, enrolled_at, last_activity_at)
            SELECT gen_random_uuid(), c.id, u.id, 'active', now(), now()
            FROM users AS u CROSS JOIN courses AS c
            WHERE u.email LIKE %s AND c.status = 'published' AND c.price_cents = 0
            """,
            (f"%@{ACCOUNT_DOMAIN}",),
        )
        enrolled = conn.execute(
            "SELECT count(*) FROM enrollments e JOIN users u ON u.id = e.user_id "
            "WHERE u.email LIKE %s",
            (f"%@{ACCOUNT_DOMAIN}",),
        ).fetchone()
        courses = conn.execute(
            "SELECT id::text, slug, price_cents FROM courses WHERE status = 'published' "
            "ORDER BY slug"
        ).fetchall()
        lessons = conn.execute(
            "SELECT course_id::text, id::text FROM lessons ORDER BY course_id, position"
        ).fetchall()
        quiz = conn.execute(
            "SELECT id::text, max_attempts FROM quizzes WHERE published ORDER BY created_at LIMIT 1"
        ).fetchone()
        conn.commit()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")
    by_course: dict[str, list[str]] = {}
    for course_id, lesson_id in lessons:
        by_course.setdefault(course_id, []).append(lesson_id)
    free = [
        {"id": cid, "slug": slug, "lessons": by_course.get(cid, [])}
        for cid, slug, price in courses
        if price == 0 and by_course.get(cid)
    ]
    catalog = {
        "all": [{"id": cid, "slug": slug} for cid, slug, _ in courses],
        "free": free,
        "paid": [{"id": cid, "slug": slug} for cid, slug, price in courses if price > 0],
        "quiz": {"id": quiz[0], "max_attempts": quiz[1] or 1000} if quiz else None,
    }
    print(
        f"  {ACCOUNTS:,} learners, {enrolled[0] if enrolled else 0:,} enrollments in "
        f"{time.perf_counter() - started:.1f}s",
        flush=True,
    )
    return catalog


# CPU per process group ----------------------------------------------------------------


class Sampler:
    """A thread that takes a reading every `every` seconds into `samples` (time,
    reading) until stopped; `around(t0, t1)` gives the last sample at or before t0 and
    the first at or after t1 (waiting a little for the latter)."""

    def __init__(self, every: float) -> None:
        self.every = every
        self.samples: list[tuple[float, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def read(self) -> Any:
        raise NotImplementedError

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.time()
            self.samples.append((now, self.read()))
            self._stop.wait(self.every)

    def wait_past(self, moment: float, timeout: float = 15.0) -> None:
        """Wait until a sample taken at or after `moment` exists (sampling takes a while
        on a busy machine)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._thread.is_alive():
            if self.samples and self.samples[-1][0] >= moment:
                return
            time.sleep(0.2)

    def around(
        self, start: float, end: float
    ) -> tuple[tuple[float, Any], tuple[float, Any]] | None:
        self.wait_past(end, timeout=self.every + 10)
        before = [s for s in self.samples if s[0] <= start]
        after = [s for s in self.samples if s[0] >= end]
        return (before[-1], after[0]) if before and after else None


class CpuSampler(Sampler):
    """Every second, the CPU seconds (user + system) used so far by each group of
    processes; `between(t0, t1)` gives each group's cores (CPU seconds / wall seconds)."""

    def __init__(self, groups: dict[str, Any]) -> None:
        super().__init__(every=1.0)
        self.groups = groups  # name -> callable returning root pids
        self._seen: dict[str, dict[int, float]] = {}

    @staticmethod
    def _cpu(pid: int) -> float | None:
        """CPU seconds of `pid` and its descendants so far; None once it has exited."""
        try:
            root = psutil.Process(pid)
            times = root.cpu_times()
        except psutil.Error:
            return None
        # children_*: the reaped children (PostgreSQL backends that exited).
        total = times.user + times.system + times.children_user + times.children_system
        for child in root.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                child_times = child.cpu_times()
                total += child_times.user + child_times.system
        return total

    def _group(self, name: str, pids: list[int]) -> float:
        """A group's CPU seconds so far, counting the last reading of each process it
        ever had: a process that exits (a locust run ending before the window's closing
        sample) keeps what it used instead of taking it out of the window."""
        seen = self._seen.setdefault(name, {})
        for pid in pids:
            used = self._cpu(pid)
            if used is not None:
                seen[pid] = used
        return sum(seen.values())

    def read(self) -> dict[str, float]:
        return {name: self._group(name, pids()) for name, pids in self.groups.items()}

    def recent_cores(self, names: list[str], seconds: float) -> float:
        """Cores the named groups used over the last `seconds` (or NaN, too few samples)."""
        now = time.time()
        return (
            sum(
                self.between(now - seconds, self.samples[-1][0]).get(name, math.nan)
                for name in names
            )
            if self.samples
            else math.nan
        )

    def between(self, start: float, end: float) -> dict[str, float]:
        window = self.around(start, end)
        if window is None:
            return {}
        (t0, first), (t1, last) = window
        return {name: (last[name] - first[name]) / (t1 - t0) for name in first}


class LagSampler(Sampler):
    """Every `every` seconds (as often as a Prometheus scrape), each API process's
    `lyceum_event_loop_lag_seconds` histogram from its /metrics; `between(t0, t1)` gives
    each process's lag p50 / p99 / max bucket over a window: how long ready work waited
    for the process's event loop, which is in every route's latency at once."""

    def __init__(self, urls: dict[str, str], every: float = 5.0) -> None:
        super().__init__(every)
        self.urls = urls

    @staticmethod
    def _buckets(url: str) -> dict[float, float]:
        """Cumulative counts by upper bound (`le`), or {} if the scrape failed."""
        from prometheus_client.parser import text_string_to_metric_families

        try:
            with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310 (loopback)
                text = answer.read().decode()
        except OSError:
            return {}
        for family in text_string_to_metric_families(text):
            if family.name == "lyceum_event_loop_lag_seconds":
                return {
                    float(sample.labels["le"]): sample.value
                    for sample in family.samples
                    if sample.name.endswith("_bucket")
                }
        return {}

    def read(self) -> dict[str, dict[float, float]]:
        return {name: self._buckets(url) for name, url in self.urls.items()}

    def between(self, start: float, end: float) -> dict[str, dict[str, float]]:
        window = self.around(start, end)
        if window is None:
            return {}
        (_, first), (_, last) = window
        figures: dict[str, dict[str, float]] = {}
        for name in self.urls:
            if not first.get(name) or not last.get(name):
                continue
            bounds = sorted(last[name])
            counts = [last[name][b] - first[name].get(b, 0.0) for b in bounds]
            total = counts[-1] if counts else 0.0
            if total <= 0:
                continue

            held = {share: _bucket_holding(bounds, counts, share) for share in (0.5, 0.99, 1.0)}
            figures[name] = {"probes": total, "p50_s": held[0.5], "p99_s": held[0.99],
                             "max_bucket_s": held[1.0]}  # fmt: skip
        return figures


def _bucket_holding(bounds: list[float], counts: list[float], share: float) -> float:
    """The upper bound of the first histogram bucket (cumulative `counts`) that holds
    `share` of the observations."""
    return next(b for b, c in zip(bounds, counts, strict=True) if c >= share * counts[-1])


def lag_line(step: dict[str, Any]) -> str:
    lag = step.get("event_loop_lag") or {}
    if not lag:
        return "  event loop lag: no samples"
    return "  event loop lag (bucket upper bounds), " + ", ".join(
        f"{name}: p50 <= {figures['p50_s'] * 1000:g} ms, p99 <= {figures['p99_s'] * 1000:g} ms"
        for name, figures in lag.items()
    )


# Locust runs ----------------------------------------------------------------------------


def run_locust(
    temp: Path,
    name: str,
    base: dict[str, Any],
    hosts: list[str],
    steps: list[dict[str, Any]],
    *,
    stop_when_failing: bool,
    locust_pids: list[int],
) -> list[dict[str, Any]]:
    config = dict(base, hosts=hosts, steps=steps, stop_when_failing=stop_when_failing)
    config_path, result_path = temp / f"{name}.config.json", temp / f"{name}.result.json"
    config_path.write_text(json.dumps(config))
    log_path = temp / f"{name}.locust.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("load_locust.py")), str(config_path),
             str(result_path)],
            stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL,
            env=dict(os.environ, PYTHONPATH=str(REPO_ROOT / "src")),
        )  # fmt: skip
        locust_pids.append(process.pid)
        assert process.stdout is not None
        for line in process.stdout:
            print(line.decode("utf-8", "replace"), end="", flush=True)
        code = process.wait()
        locust_pids.remove(process.pid)
    if code != 0 or not result_path.exists():
        raise BenchError(f"locust exited with {code}; log {log_path}:\n{harness.tail(log_path)}")
    result: list[dict[str, Any]] = json.loads(result_path.read_text())["steps"]
    base["account_offset"] += sum(int(step["requests"]) for step in result) // 40 + 500
    return result


def jobs_waiting(database_url: str) -> int:
    import psycopg

    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')"
            " AND (scheduled_at IS NULL OR scheduled_at <= now())"
        ).fetchone()
    return int(row[0]) if row else 0


def wait_until_idle(sampler: CpuSampler, database_url: str, timeout: float = 600.0) -> None:
    """Wait until the API processes and the worker are idle (under 0.1 core each over
    5 s) and no job is due: after an overloaded window the API may still be working
    through requests their clients gave up on, and before the first window the worker is
    still indexing what `lyceum demo` loaded; either would be charged to the window."""
    started = time.monotonic()
    time.sleep(6)
    while time.monotonic() - started < timeout:
        api = sampler.recent_cores(["api-a", "api-b"], 5.0)
        worker = sampler.recent_cores(["worker"], 5.0)
        if api < 0.1 and worker < 0.1 and jobs_waiting(database_url) == 0:
            print(
                f"  (API processes and worker idle after {time.monotonic() - started:.0f}s)",
                flush=True,
            )
            return
        time.sleep(2)
    print(f"  (still busy after {timeout:.0f}s: going on)", flush=True)


def held(step: dict[str, Any]) -> bool:
    return bool(
        step["failures"] == 0
        and step["p99_ms"] < P99_LIMIT_MS
        and step["achieved_rps"] >= 0.95 * step["rate"]
    )


def route_table(step: dict[str, Any]) -> str:
    lines = [
        f"{'route':<44} {'requests':>9} {'errors':>6} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7}"
    ]
    for route, figures in step["routes"].items():
        if route == "Aggregated":
            continue
        lines.append(
            f"{route:<44} {figures['requests']:>9,} {figures['failures']:>6} "
            f"{figures['p50_ms']:>7.0f} {figures['p99_ms']:>7.0f} {figures['max_ms']:>7.0f}"
        )
    lines.append(
        f"{'all':<44} {step['requests']:>9,} {step['failures']:>6} {step['p50_ms']:>7.0f} "
        f"{step['p99_ms']:>7.0f}"
    )
    return "\n".join(lines)


def cpu_figures(step: dict[str, Any], sampler: CpuSampler) -> None:
    """Each group's cores over the step's window and its CPU milliseconds per request;
    and how many requests/s the machine's cores would serve if the whole system (locust
    included) had them to itself at that cost: a figure that moves much less than the
    delivered rate when other work competes for the cores."""
    sampler.wait_past(step["ended"])
    cores = sampler.between(step["started"], step["ended"])
    step["cpu_cores"] = cores
    requests_per_second = step["requests"] / step["seconds"] if step["seconds"] else 0.0
    per_request = {
        name: value * 1000 / requests_per_second if requests_per_second else math.nan
        for name, value in cores.items()
    }
    step["cpu_ms_per_request"] = per_request
    total = sum(per_request.values())
    step["cpu_bound_rps"] = (psutil.cpu_count() or 1) * 1000 / total if total else math.nan


def cpu_line(step: dict[str, Any]) -> str:
    cores, per_request = step.get("cpu_cores") or {}, step.get("cpu_ms_per_request") or {}
    if not cores:
        return "  CPU: no samples"
    used = ", ".join(f"{name} {value:.2f}" for name, value in cores.items())
    costs = ", ".join(f"{name} {value:.1f}" for name, value in per_request.items())
    return (
        f"  CPU (cores): {used}; total {sum(cores.values()):.2f} of {psutil.cpu_count()}\n"
        f"  CPU ms per request: {costs}; total {sum(per_request.values()):.1f} "
        f"-> {step['cpu_bound_rps']:.0f} requests/s if these cores were the system's alone"
    )


# The run --------------------------------------------------------------------------------


def jobs_by_task(database_url: str) -> dict[str, int]:
    """The jobs the worker has run so far, by task: the difference over a window is the
    worker's share of the mix, to read its CPU per request against."""
    import psycopg

    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT task_name, count(*) FROM procrastinate_jobs"
            " WHERE status IN ('succeeded', 'failed') GROUP BY task_name ORDER BY 2 DESC"
        ).fetchall()
    return {str(name): int(count) for name, count in rows}


def jobs_line(jobs: dict[str, int]) -> str:
    done = ", ".join(f"{name.rsplit('.', 1)[-1]} {count}" for name, count in jobs.items())
    return f"  jobs run by the worker: {sum(jobs.values())} ({done or 'none'})"


def step_plan(args: argparse.Namespace) -> list[dict[str, Any]]:
    rates = range(args.start_rps, args.max_rps + 1, args.step_rps)
    return [{"rate": rate, "seconds": args.step_seconds} for rate in rates]


def run(args: argparse.Namespace, temp: Path) -> dict[str, Any]:
    from lyceum.kit.embedded_pg import EmbeddedPostgres

    report: dict[str, Any] = {
        "machine": machine(),
        "uptime_before": uptime(),
        "errors": 0,
        "settings": vars(args) | {"json": str(args.json)},
    }
    print(f"machine: {report['machine']}\nuptime before: {report['uptime_before']}", flush=True)
    with contextlib.ExitStack() as stack:
        print("PostgreSQL (the embedded binaries as a server), Redis, migrate, demo, seed:")
        postgres = EmbeddedPostgres(temp / "pg")
        postgres.start()
        stack.callback(postgres.stop)
        database_url = postgres.ensure_database("lyceum", fresh=True)
        redis, redis_port = start_redis(temp)
        stack.callback(stop_process, redis, "redis")
        env = lyceum_env(
            temp,
            database_url,
            f"redis://{harness.LOOPBACK}:{redis_port}/0",
            secrets.token_urlsafe(48),
        )
        run_cli(["migrate"], env, temp, "lyceum migrate")
        run_cli(["demo"], env, temp, "lyceum demo")
        catalog = seed(database_url)

        servers: list[Server] = []
        for name in ("api-a", "api-b"):
            server = harness.start_server(
                name,
                lambda port: [*LYCEUM, "serve", "--port", str(port)],
                log_path=temp / f"{name}.log",
                env=env,
                cwd=temp,
                timeout=120,
            )
            stack.callback(harness.stop_server, server)
            servers.append(server)
        worker = start_worker(env, temp)
        stack.callback(stop_process, worker, "worker")
        for server in servers:
            waited = harness.wait_until_settled(server, timeout=300)
            print(f"  {server.name} on :{server.port}, settled after {waited:.0f}s", flush=True)
        if worker.poll() is not None:
            raise BenchError(f"the worker exited: {harness.tail(temp / 'worker.log')}")

        postmaster = int((temp / "pg" / "postmaster.pid").read_text().split()[0])
        locust_pids: list[int] = []
        sampler = CpuSampler(
            {
                "api-a": lambda: [servers[0].pid],
                "api-b": lambda: [servers[1].pid],
                "worker": lambda: [worker.pid],
                "postgres": lambda: [postmaster],
                "redis": lambda: [redis.pid],
                "locust": lambda: list(locust_pids),
            }
        )
        sampler.start()
        stack.callback(sampler.stop)
        hosts = [f"http://{harness.LOOPBACK}:{server.port}" for server in servers]
        lags = LagSampler(
            {server.name: f"{host}/metrics" for server, host in zip(servers, hosts, strict=True)}
        )
        lags.start()
        stack.callback(lags.stop)
        base = {
            "accounts": [f"learner{n}@{ACCOUNT_DOMAIN}" for n in range(1, ACCOUNTS + 1)],
            "account_offset": 0,
            "password": PASSWORD,
            "catalog": catalog,
            "secret_key": env["SECRET_KEY"],
            "warmup": args.warmup,
            "spawn_rate": args.spawn_rate,
            "p99_limit_ms": P99_LIMIT_MS,
        }

        wait_until_idle(sampler, database_url)
        jobs_before = jobs_by_task(database_url)
        rate = round(args.rate_per_minute / 60)
        print(
            f"\nphase 1: {rate} requests/s ({args.rate_per_minute:,}/minute) for {args.duration:.0f}s over both processes"
        )
        (phase1,) = run_locust(
            temp, "phase1", base, hosts, [{"rate": rate, "seconds": args.duration}],
            stop_when_failing=False, locust_pids=locust_pids,
        )  # fmt: skip
        cpu_figures(phase1, sampler)
        phase1["event_loop_lag"] = lags.between(phase1["started"], phase1["ended"])
        phase1["jobs"] = {
            name: count - jobs_before.get(name, 0)
            for name, count in jobs_by_task(database_url).items()
            if count > jobs_before.get(name, 0)
        }
        report["phase1"] = phase1
        report["errors"] += phase1["failures"]
        print(route_table(phase1))
        print(cpu_line(phase1))
        print(lag_line(phase1))
        print(jobs_line(phase1["jobs"]))
        for error in phase1["errors"]:
            print(
                f"  ERROR {error['count']} x {error['method']} {error['route']}: {error['error']}"
            )

        if not args.skip_steps:
            report["steps"] = {}
            for label, targets in (("one", hosts[:1]), ("two", hosts)):
                wait_until_idle(sampler, database_url)
                print(
                    f"\nphase 2, {label} API process(es): +{args.step_rps} rps every {args.step_seconds:.0f}s"
                )
                steps = run_locust(
                    temp, f"steps-{label}", base, targets, step_plan(args),
                    stop_when_failing=True, locust_pids=locust_pids,
                )  # fmt: skip
                for step in steps:
                    cpu_figures(step, sampler)
                    step["event_loop_lag"] = lags.between(step["started"], step["ended"])
                    step["held"] = held(step)
                    print(f"  {step['rate']} rps:", "held" if step["held"] else "NOT held")
                    print(cpu_line(step))
                    print(lag_line(step))
                best = max((step["rate"] for step in steps if step["held"]), default=0)
                report["steps"][label] = {"steps": steps, "highest_held_rps": best}
            one = report["steps"]["one"]["highest_held_rps"]
            two = report["steps"]["two"]["highest_held_rps"]
            report["ratio_two_one"] = two / one if one else math.nan
    report["uptime_after"] = uptime()
    print_summary(report)
    return report


def print_summary(report: dict[str, Any]) -> None:
    phase1 = report["phase1"]
    print("\nsummary")
    print(f"  machine: {report['machine']}")
    print(f"  uptime before: {report['uptime_before']}")
    print(f"  uptime after:  {report['uptime_after']}")
    print(
        f"  phase 1: {phase1['requests']:,} requests in {phase1['seconds']:.0f}s "
        f"({phase1['achieved_rps'] * 60:,.0f}/minute, asked "
        f"{report['settings']['rate_per_minute']:,}), "
        f"{phase1['failures']} errors, p50 {phase1['p50_ms']:.0f} ms, p99 {phase1['p99_ms']:.0f} ms"
    )
    if "steps" in report:
        one = report["steps"]["one"]["highest_held_rps"]
        two = report["steps"]["two"]["highest_held_rps"]
        ratio = report["ratio_two_one"]
        print(
            f"  highest rate held (p99 < {P99_LIMIT_MS:.0f} ms, 0 errors): one process {one} rps, two {two} rps"
        )
        if math.isnan(ratio):
            print("load ratio two/one processes: n/a (one process held no step)")
        else:
            print(
                f"load ratio two/one processes: {ratio:.2f} "
                f"(scale-out efficiency {ratio / 2:.2f}, ideal 1.00)"
            )


def machine() -> str:
    model = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        for line in subprocess.run(
            ["lscpu"], capture_output=True, text=True, check=False
        ).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    memory = psutil.virtual_memory().total / 2**30
    return f"{psutil.cpu_count()} cores, {model}, {memory:.0f} GiB, {platform.platform()}"


def uptime() -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        return subprocess.run(
            ["uptime"], capture_output=True, text=True, check=False
        ).stdout.strip()
    return f"load average {harness.load_average()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=600.0, help="phase 1 seconds")
    parser.add_argument("--rate-per-minute", type=int, default=10_000, help="phase 1 rate")
    parser.add_argument(
        "--warmup", type=float, default=20.0,
        help="unmeasured seconds before each window, after the users have started",
    )  # fmt: skip
    parser.add_argument(
        "--spawn-rate", type=float, default=5.0,
        help="locust users started per second (each signs in as it starts)",
    )  # fmt: skip
    parser.add_argument("--start-rps", type=int, default=25, help="phase 2's first step")
    parser.add_argument("--step-rps", type=int, default=25, help="phase 2's increment")
    parser.add_argument("--max-rps", type=int, default=1000, help="phase 2's last step")
    parser.add_argument("--step-seconds", type=float, default=60.0, help="phase 2 seconds per step")
    parser.add_argument("--skip-steps", action="store_true", help="phase 1 only")
    parser.add_argument("--json", type=Path, default=REPO_ROOT / "bench/results/load.json")
    parser.add_argument("--keep-temp", action="store_true", help="keep logs and data afterwards")
    args = parser.parse_args(argv)
    return harness.scenario_main("load", args, run)


if __name__ == "__main__":
    sys.exit(main())
