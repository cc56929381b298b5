"""Login under load, against the cost of the password hash itself.

Starts Lyceum (one uvicorn worker, embedded PostgreSQL), registers one account per
client, then drives `POST /api/v1/auth/login` from a separate process with N
concurrent clients and reports logins/s and p50/p99 latency. In the same run, another
process measures raw argon2id verification throughput with Lyceum's own parameters on
as many threads as the machine has cores. The ratio login/s : verify/s says how much
of the machine's hashing capacity a login gets (the rest is HTTP, JSON, SQL, JWT).

Usage: python bench/login.py [--duration S] [--concurrency 1,2,20] [--json PATH]

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
    Server,
    median,
    percentile,
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

    def loop() -> int:
        count = 0
        while time.perf_counter() < deadline and count < 1_000_000:
            _password_hash.verify(PASSWORD, stored)
            count += 1
        return count

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        total = sum(pool.map(lambda _: loop(), range(threads)))
    results.put({"verifies": total, "elapsed": time.perf_counter() - started, "threads": threads})


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


async def _client(base: str, email: str, deadline: float, latencies: list[float]) -> int:
    errors = 0
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        for _ in range(1_000_000):
            if time.perf_counter() >= deadline:
                break
            started = time.perf_counter()
            response = await http.post(
                "/api/v1/auth/login", json={"email": email, "password": PASSWORD}
            )
            if response.status_code == 200:
                latencies.append(time.perf_counter() - started)
            else:
                errors += 1
    return errors


async def _drive(base: str, emails: list[str], duration: float) -> dict[str, float]:
    latencies: list[float] = []
    started = time.perf_counter()
    deadline = started + duration
    errors = sum(
        await asyncio.gather(*(_client(base, email, deadline, latencies) for email in emails))
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
    }


def _load_worker(base: str, emails: list[str], duration: float, results: Any) -> None:
    results.put(asyncio.run(_drive(base, emails, duration)))


def login_load(base: str, emails: list[str], duration: float) -> dict[str, float]:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_load_worker, args=(base, emails, duration, queue))
    process.start()
    result: dict[str, float] = queue.get(timeout=duration + 120)
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
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per scenario")
    parser.add_argument(
        "--concurrency", default="1,20", help="comma-separated client counts (default 1,20)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    levels = [int(level) for level in args.concurrency.split(",") if level.strip()]
    report: dict[str, Any] = {"scenarios": []}
    with (
        tempfile.TemporaryDirectory(prefix="lyceum-bench-login-") as temp,
        running(start_lyceum(Path(temp))) as server,
    ):
        base = f"http://{LOOPBACK}:{server.port}"
        emails = register_accounts(base, max(levels))
        login_load(base, emails[:2], 2.0)  # warm up
        verify_before = raw_verify_rate(args.duration / 2)
        for level in levels:
            report["scenarios"].append(login_load(base, emails[:level], args.duration))
        verify_after = raw_verify_rate(args.duration / 2)
    verify_rate = median([verify_before["per_second"], verify_after["per_second"]])
    report["raw_verify_per_second"] = verify_rate
    report["raw_verify_threads"] = verify_before["threads"]

    print(f"raw argon2id verify: {verify_rate:,.1f}/s on {verify_before['threads']} threads")
    print(f"{'clients':>8} {'logins/s':>10} {'p50 ms':>9} {'p99 ms':>9} {'errors':>7} {'ratio':>7}")
    for scenario in report["scenarios"]:
        ratio = scenario["per_second"] / verify_rate
        scenario["ratio_to_raw_verify"] = ratio
        print(
            f"{scenario['clients']:>8} {scenario['per_second']:>10,.1f} "
            f"{scenario['p50_ms']:>9.1f} {scenario['p99_ms']:>9.1f} "
            f"{scenario['errors']:>7} {ratio:>7.2f}"
        )
    top = max(report["scenarios"], key=lambda s: s["clients"])
    print(
        f"login throughput / raw verify throughput at {top['clients']} clients: "
        f"{top['ratio_to_raw_verify']:.2f} (target >= 0.7); p50 {top['p50_ms']:.0f} ms "
        "(target < 100 ms)"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))
    return 1 if any(s["errors"] for s in report["scenarios"]) else 0


if __name__ == "__main__":
    sys.exit(main())
