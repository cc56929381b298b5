"""Scenario: GET /health/live, Lyceum against a bare FastAPI app.

    python bench/health.py [--duration S] [--concurrency N] [--rounds R] [--json PATH]

Starts both servers (uvicorn, one worker, one process each), warms each up, then
alternates measurement rounds (bare, lyceum, bare, lyceum, ...) driven by a load
generator in a separate process, and reports the median of each target's rounds and
the ratio of the medians (Lyceum rps / bare rps). The target is a ratio >= 0.8.

Exit code 0 whatever the ratio; 1 if a server fails to start or any request errors.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness import (
    REPO_ROOT,
    LoadResult,
    LoadSpec,
    Server,
    load_average,
    measure,
    median,
    probe,
    scenario_main,
    start_server,
    stop_server,
    uvicorn_argv,
    wait_until_settled,
)

SCENARIO = "health/live"
PATH = "/health/live"
TARGET_RATIO = 0.8
LYCEUM_STARTUP_TIMEOUT = 90.0
BARE_STARTUP_TIMEOUT = 30.0
TARGETS = ("bare", "lyceum")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="GET /health/live: Lyceum against a bare FastAPI app (ratio of req/s)."
    )
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per round (5)")
    parser.add_argument("--concurrency", type=int, default=32, help="connections (32)")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds per target (3)")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds per target")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write results here")
    parser.add_argument(
        "--keep-temp", action="store_true", help="keep the temp dir (logs, data) afterwards"
    )
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.warmup < 0 or args.concurrency < 1 or args.rounds < 1:
        parser.error("need --duration > 0, --warmup >= 0, --concurrency >= 1, --rounds >= 1")
    return args


def start_bare(temp: Path) -> Server:
    return start_server(
        "bare",
        lambda port: uvicorn_argv("bench.bare_app:app", port),
        log_path=temp / "bare.log",
        env=os.environ,
        cwd=REPO_ROOT,  # so that `bench.bare_app` imports
        timeout=BARE_STARTUP_TIMEOUT,
    )


def start_lyceum(temp: Path) -> Server:
    env = {
        **os.environ,
        "LYCEUM_DATA_DIR": str(temp / "data"),
        "LOG_LEVEL": "INFO",  # Lyceum's own access log stays on, as in a default install
        "ENVIRONMENT": "development",
    }
    server = start_server(
        "lyceum",
        lambda port: uvicorn_argv("lyceum.app:create_app", port, "--factory"),
        log_path=temp / "lyceum.log",
        env=env,
        cwd=temp,  # away from the checkout, so a developer's `.env` does not leak in
        timeout=LYCEUM_STARTUP_TIMEOUT,
    )
    wait_until_settled(server)
    return server


def fmt(value: float, digits: int = 2) -> str:
    return "-" if value != value else f"{value:,.{digits}f}"  # NaN -> "-"


def print_rounds(rounds: list[tuple[str, int, LoadResult]]) -> None:
    header = (
        f"{'target':<8} {'round':>5} {'requests':>9} {'errors':>6} {'req/s':>9} "
        f"{'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'srv CPU us/req':>14} {'client CPU':>10}"
    )
    print(header)
    print("-" * len(header))
    for name, index, r in rounds:
        print(
            f"{name:<8} {index:>5} {r.requests:>9,} {r.errors:>6} {fmt(r.rps, 0):>9} "
            f"{fmt(r.p50_ms):>7} {fmt(r.p99_ms):>7} {fmt(r.max_ms):>7} "
            f"{fmt(r.server_cpu_us_per_request, 0):>14} {r.client_cpu:>9.0%}"
        )


def summarize(results: dict[str, list[LoadResult]]) -> dict[str, dict[str, float]]:
    return {
        name: {
            "rps": median([r.rps for r in rounds]),
            "p50_ms": median([r.p50_ms for r in rounds]),
            "p99_ms": median([r.p99_ms for r in rounds]),
            "server_cpu_us_per_request": median([r.server_cpu_us_per_request for r in rounds]),
            "errors": float(sum(r.errors for r in rounds)),
        }
        for name, rounds in results.items()
    }


def print_summary(summary: dict[str, dict[str, float]], rounds: int) -> None:
    header = (
        f"{'median of ' + str(rounds):<12} {'req/s':>9} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'srv CPU us/req':>14} {'errors':>6}"
    )
    print(header)
    print("-" * len(header))
    for name, s in summary.items():
        print(
            f"{name:<12} {fmt(s['rps'], 0):>9} {fmt(s['p50_ms']):>7} {fmt(s['p99_ms']):>7} "
            f"{fmt(s['server_cpu_us_per_request'], 0):>14} {int(s['errors']):>6}"
        )


def count_lines(path: Path) -> int:
    try:
        with path.open("rb") as handle:
            return sum(1 for _ in handle)
    except OSError:
        return 0


def run(args: argparse.Namespace, temp: Path) -> dict[str, Any]:
    servers: dict[str, Server] = {}
    load_before = load_average()
    try:
        print("starting servers ...", flush=True)
        servers["bare"] = start_bare(temp)
        servers["lyceum"] = start_lyceum(temp)
        for server in servers.values():
            status, body = probe(server.port, PATH)
            print(
                f"  {server.name:<7} pid {server.pid:<7} port {server.port:<5} "
                f"ready in {server.started_in:4.1f}s  GET {PATH} -> {status} {body.decode()}",
                flush=True,
            )

        def spec(server: Server, duration: float) -> LoadSpec:
            return LoadSpec(
                port=server.port, path=PATH, concurrency=args.concurrency, duration=duration
            )

        warmup_errors = 0
        if args.warmup > 0:
            print(f"warming up ({args.warmup:g}s each) ...", flush=True)
            for name in TARGETS:
                warm = measure(servers[name], spec(servers[name], args.warmup))
                warmup_errors += warm.errors
                print(
                    f"  {name:<7} {fmt(warm.rps, 0):>7} req/s, {warm.errors} errors "
                    f"(discarded; client loop: {warm.loop})",
                    flush=True,
                )

        print(
            f"measuring: {args.rounds} rounds x {args.duration:g}s per target, "
            f"{args.concurrency} connections, alternating {' / '.join(TARGETS)} ...",
            flush=True,
        )
        rounds: list[tuple[str, int, LoadResult]] = []
        results: dict[str, list[LoadResult]] = {name: [] for name in TARGETS}
        for index in range(1, args.rounds + 1):
            for name in TARGETS:
                result = measure(servers[name], spec(servers[name], args.duration))
                rounds.append((name, index, result))
                results[name].append(result)
                print(
                    f"  round {index} {name:<7} {fmt(result.rps, 0):>7} req/s  "
                    f"p50 {fmt(result.p50_ms)} ms  p99 {fmt(result.p99_ms)} ms  "
                    f"errors {result.errors}",
                    flush=True,
                )
                for sample in result.error_samples:
                    print(f"    error: {sample}", flush=True)
    finally:
        for server in reversed(servers.values()):
            code = stop_server(server)
            if code not in (0, None):
                print(f"  {server.name} exited with code {code}; log {server.log_path}")

    summary = summarize(results)
    ratio = summary["lyceum"]["rps"] / summary["bare"]["rps"] if summary["bare"]["rps"] else 0.0
    lyceum_cpu = summary["lyceum"]["server_cpu_us_per_request"]
    cpu_ratio = summary["bare"]["server_cpu_us_per_request"] / lyceum_cpu if lyceum_cpu else 0.0
    load_after = load_average()
    lyceum_log_lines = count_lines(temp / "lyceum.log")

    print()
    print_rounds(rounds)
    print()
    print_summary(summary, args.rounds)
    print()
    lyceum_requests = sum(r.requests for name, _, r in rounds if name == "lyceum")
    print(
        f"lyceum log: {lyceum_log_lines:,} lines for {lyceum_requests:,} measured requests "
        "(its access log is on)"
    )
    print(
        f"CPU per request bare/lyceum: {cpu_ratio:.2f} (the same ratio from server CPU time; "
        "less sensitive to a busy machine)"
    )
    print(f"load average before/after: {load_before} / {load_after}")
    print(f"{SCENARIO} ratio lyceum/bare: {ratio:.2f} (target >= {TARGET_RATIO})")

    return {
        "scenario": SCENARIO,
        "path": PATH,
        "ratio": ratio,
        "cpu_ratio": cpu_ratio,
        "target_ratio": TARGET_RATIO,
        "meets_target": ratio >= TARGET_RATIO,
        "settings": {
            "duration": args.duration,
            "concurrency": args.concurrency,
            "rounds": args.rounds,
            "warmup": args.warmup,
        },
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_before": load_before,
            "load_average_after": load_after,
        },
        "median": summary,
        "rounds": [
            {"target": name, "round": index, **result.to_dict()} for name, index, result in rounds
        ],
        "warmup_errors": warmup_errors,
        "errors": warmup_errors + sum(r.errors for _, _, r in rounds),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return scenario_main("health", args, run)


if __name__ == "__main__":
    sys.exit(main())
