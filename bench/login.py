"""Login under load, against the cost of the password hash itself.

Starts Lyceum (one uvicorn worker, embedded PostgreSQL), registers one account per
client, then drives `POST /api/v1/auth/login` from a separate process with N
concurrent clients and reports logins/s and p50/p99 latency. In the same run, another
process measures raw argon2id verification throughput with Lyceum's own parameters on
as many threads as the machine has cores. The ratio login/s : verify/s says how much
of the machine's hashing capacity a login gets (the rest is HTTP, JSON, SQL, JWT).

Usage: python bench/login.py [--duration S] [--concurrency 1,2,20] [--rounds R] [--json PATH]

The registration limit (REGISTRATION_RATE_LIMIT) is raised for the run: one address
registers every client's account. Successful sign-ins count toward no limit; the login
limits (LOGIN_RATE_LIMIT, LOGIN_ACCOUNT_RATE_LIMIT) are raised only so that a stray
failure under load cannot turn the rest of a run into 429s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (
    LOOPBACK,
    MAX_HEAD_BYTES,
    Server,
    load_average,
    median,
    percentile,
    read_response,
    running,
    start_server,
    uvicorn_argv,
    wait_until_settled,
)

PASSWORD = "benchmark passphrase 2026"  # noqa: S105 (a throwaway benchmark account)
STARTUP_TIMEOUT = 120.0


def start_lyceum(temp: Path) -> Server:
    env = {
        **os.environ,
        "LYCEUM_DATA_DIR": str(temp / "data"),
        "LOG_LEVEL": "INFO",
        "ENVIRONMENT": "development",
        "LOGIN_RATE_LIMIT": "1000000/minute",
        "LOGIN_ACCOUNT_RATE_LIMIT": "1000000/minute",
        "REGISTRATION_RATE_LIMIT": "1000000/minute",
    }
    server = start_server(
        "lyceum",
        lambda port: uvicorn_argv("lyceum.app:create_app", port, "--factory"),
        log_path=temp / "lyceum.log",
        env=env,
        cwd=temp,
        timeout=STARTUP_TIMEOUT,
    )
    wait_until_settled(server)
    return server


# Raw argon2id ---------------------------------------------------------------------------


def _verify_worker(duration: float, results: Any) -> None:
    from lyceum.kit.security import _password_hash

    stored = _password_hash.hash(PASSWORD)
    threads = os.cpu_count() or 1
    deadline = time.perf_counter() + duration

    def loop() -> tuple[int, float]:
        count = 0
        cpu = time.thread_time()
        while time.perf_counter() < deadline and count < 1_000_000:
            _password_hash.verify(PASSWORD, stored)
            count += 1
        return count, time.thread_time() - cpu

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        runs = list(pool.map(lambda _: loop(), range(threads)))
    total = sum(count for count, _ in runs)
    results.put(
        {
            "verifies": total,
            "elapsed": time.perf_counter() - started,
            "threads": threads,
            "cpu_ms_per_verify": sum(cpu for _, cpu in runs) / max(1, total) * 1000,
        }
    )


def raw_verify_rate(duration: float) -> dict[str, float]:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_verify_worker, args=(duration, queue))
    process.start()
    result: dict[str, float] = queue.get(timeout=duration + 60)
    process.join(timeout=30)
    result["per_second"] = result["verifies"] / result["elapsed"]
    return result


# Login load -------------------------------------------------------------------------------
#
# Each client is one keep-alive HTTP/1.1 connection on raw asyncio streams (the harness's
# response reader), sending its next login as soon as the last answer is read. The load
# generator shares the machine's cores with the server and PostgreSQL, while the raw
# verify baseline has them to itself, so it has to be cheap: httpx spent ~1.7 ms of CPU
# per login here (about a tenth of a hash), this client spends a fraction of that.


def _login_request(port: int, email: str) -> bytes:
    body = json.dumps({"email": email, "password": PASSWORD}).encode()
    head = (
        "POST /api/v1/auth/login HTTP/1.1\r\n"
        f"Host: {LOOPBACK}:{port}\r\n"
        "User-Agent: lyceum-bench\r\n"
        "Accept: application/json\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "\r\n"
    )
    return head.encode("ascii") + body


async def _client(port: int, email: str, deadline: float, latencies: list[float]) -> int:
    errors = 0
    request = _login_request(port, email)
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(LOOPBACK, port, limit=MAX_HEAD_BYTES), 10
    )
    try:
        for _ in range(1_000_000):
            if time.perf_counter() >= deadline:
                break
            started = time.perf_counter()
            writer.write(request)
            try:
                status, keep_alive = await asyncio.wait_for(read_response(reader), 30)
            except (OSError, EOFError, ValueError, TimeoutError, asyncio.LimitOverrunError):
                return errors + 1
            if status == 200:
                latencies.append(time.perf_counter() - started)
            else:
                errors += 1
            if not keep_alive:
                return errors + 1
    finally:
        writer.close()
    return errors


async def _drive(port: int, emails: list[str], duration: float) -> dict[str, float]:
    latencies: list[float] = []
    cpu = time.process_time()
    started = time.perf_counter()
    deadline = started + duration
    errors = sum(
        await asyncio.gather(*(_client(port, email, deadline, latencies) for email in emails))
    )
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "clients": len(emails),
        "logins": len(ordered),
        "errors": errors,
        "per_second": len(ordered) / elapsed,
        "p50_ms": percentile(ordered, 50) * 1000,
        "p99_ms": percentile(ordered, 99) * 1000,
        "client_cpu_ms_per_login": (time.process_time() - cpu) / max(1, len(ordered)) * 1000,
    }


def _load_worker(port: int, emails: list[str], duration: float, results: Any) -> None:
    results.put(asyncio.run(_drive(port, emails, duration)))


def login_load(server: Server, emails: list[str], duration: float) -> dict[str, float]:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_load_worker, args=(server.port, emails, duration, queue))
    cpu = server.cpu_seconds()
    process.start()
    result: dict[str, float] = queue.get(timeout=duration + 120)
    result["server_cpu_ms_per_login"] = (
        (server.cpu_seconds() - cpu) / max(1, result["logins"]) * 1000
    )
    process.join(timeout=30)
    return result


def register_accounts(base: str, count: int) -> list[str]:
    emails = []
    with httpx.Client(base_url=base, timeout=30) as http:
        for index in range(count):
            email = f"bench-{index}-{os.getpid()}@example.com"
            response = http.post(
                "/api/v1/auth/register",
                json={"email": email, "password": PASSWORD, "full_name": f"Bench {index}"},
            )
            if response.status_code != 201:
                raise RuntimeError(f"register failed: {response.status_code} {response.text}")
            emails.append(email)
    return emails


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--duration", type=float, default=8.0, help="seconds per login measurement (8)"
    )
    parser.add_argument(
        "--concurrency", default="1,20", help="comma-separated client counts (default 1,20)"
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds of raw verify + logins, alternated (3)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.duration <= 0:
        parser.error("need --rounds >= 1 and --duration > 0")
    return args


def summarise(rounds: list[dict[str, Any]], level: int) -> dict[str, float]:
    """Median over the rounds of one concurrency level; each round's ratio is against
    the raw verify rate measured just before it."""
    rows = [next(s for s in r["scenarios"] if s["clients"] == level) for r in rounds]
    summary = {
        key: median([row[key] for row in rows])
        for key in (
            "per_second",
            "p50_ms",
            "p99_ms",
            "server_cpu_ms_per_login",
            "client_cpu_ms_per_login",
        )
    }
    summary["clients"] = level
    summary["errors"] = sum(row["errors"] for row in rows)
    summary["ratio_to_raw_verify"] = median(
        [row["per_second"] / r["verify"]["per_second"] for row, r in zip(rows, rounds, strict=True)]
    )
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    levels = [int(level) for level in args.concurrency.split(",") if level.strip()]
    rounds: list[dict[str, Any]] = []
    with (
        tempfile.TemporaryDirectory(prefix="lyceum-bench-login-") as temp,
        running(start_lyceum(Path(temp))) as server,
    ):
        base = f"http://{LOOPBACK}:{server.port}"
        emails = register_accounts(base, max(levels))
        login_load(server, emails[:2], 2.0)  # warm up
        # Alternating the raw verify with the logins spreads drifting background load on
        # a shared machine over both, instead of penalising whichever runs second.
        for _ in range(args.rounds):
            verify = raw_verify_rate(args.duration / 2)
            scenarios = [login_load(server, emails[:level], args.duration) for level in levels]
            rounds.append({"verify": verify, "scenarios": scenarios})
    verify_rate = median([r["verify"]["per_second"] for r in rounds])
    verify_cpu = median([r["verify"]["cpu_ms_per_verify"] for r in rounds])
    summaries = [summarise(rounds, level) for level in levels]
    report: dict[str, Any] = {
        "raw_verify_per_second": verify_rate,
        "raw_verify_threads": rounds[0]["verify"]["threads"],
        "raw_verify_cpu_ms": verify_cpu,
        "scenarios": summaries,
        "rounds": rounds,
        "load_average_after": load_average(),
    }

    print(
        f"raw argon2id verify: {verify_rate:,.1f}/s on {report['raw_verify_threads']} threads, "
        f"{verify_cpu:.1f} ms CPU each (median of {args.rounds} rounds)"
    )
    print(
        f"{'clients':>8} {'logins/s':>10} {'p50 ms':>9} {'p99 ms':>9} {'errors':>7} {'ratio':>7} "
        f"{'srv CPU ms':>10} {'client CPU ms':>13}"
    )
    for scenario in summaries:
        print(
            f"{scenario['clients']:>8} {scenario['per_second']:>10,.1f} "
            f"{scenario['p50_ms']:>9.1f} {scenario['p99_ms']:>9.1f} "
            f"{scenario['errors']:>7} {scenario['ratio_to_raw_verify']:>7.2f} "
            f"{scenario['server_cpu_ms_per_login']:>10.1f} "
            f"{scenario['client_cpu_ms_per_login']:>13.2f}"
        )
    top = max(summaries, key=lambda s: s["clients"])
    hash_share = verify_cpu / top["server_cpu_ms_per_login"]
    report["hash_share_of_server_cpu"] = hash_share
    print(
        f"per round ratios at {top['clients']} clients: "
        + ", ".join(
            f"{next(s for s in r['scenarios'] if s['clients'] == top['clients'])['per_second'] / r['verify']['per_second']:.2f}"
            for r in rounds
        )
    )
    print(f"load average after: {report['load_average_after']}")
    print(
        f"hash CPU / server CPU per login at {top['clients']} clients: {hash_share:.2f} "
        "(the rest is the server's non-hash work)"
    )
    print(
        f"login throughput / raw verify throughput at {top['clients']} clients: "
        f"{top['ratio_to_raw_verify']:.2f} (target >= 0.7); p50 {top['p50_ms']:.0f} ms "
        "(target < 100 ms)"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))
    return 1 if any(s["errors"] for s in summaries) else 0


if __name__ == "__main__":
    sys.exit(main())
