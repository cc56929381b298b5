"""Scenario: the cost of a request, Lyceum against a minimal FastAPI + SQLAlchemy app.

    python bench/request_cost.py [--duration S] [--concurrency N] [--rounds R]
                                 [--enrollments N] [--json PATH]

1. Starts an embedded PostgreSQL in a temp dir, creates a fresh database migrated to
   head, and starts two servers on it (uvicorn, one worker, one process each):
   Lyceum, and bench/template_app.py, an app in the shape of the FastAPI project
   template (decode the JWT, read the user row by id, return it; a list of the caller's
   rows with its count), with no middleware at all.
2. Through Lyceum's API: an instructor publishes `--enrollments` courses and a learner
   enrolls in every one; the learner signs in, and the same access token is sent to
   both servers (the template app checks its signature, audience and issuer).
3. Three pairs of routes, each measured in alternating rounds (template, lyceum, ...)
   by the same load generator (bench/harness.py) at `--concurrency` connections:
   * `GET /api/v1/users/me` against the template's `GET /users/me`;
   * `GET /api/v1/me/enrollments?size=N` against the template's `GET /items?limit=N`
     (the same N rows, the caller's enrollments with their course titles);
   * `GET /health/live` on both (no database, no token).
4. Reports, per route, the median req/s and the server CPU time per request of each
   app and the ratios: `req/s lyceum/template` (target >= 1.0 on the two
   authenticated routes) and `CPU/request lyceum/template` (target <= 1.0).

Exit code 0 whatever the figures; 1 if a server fails to start or any request errors.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import secrets
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (
    LOOPBACK,
    REPO_ROOT,
    BenchError,
    LoadResult,
    LoadSpec,
    Server,
    load_average,
    measure,
    median,
    migrated_postgres,
    print_profile,
    probe,
    sampled,
    scenario_main,
    start_server,
    stop_server,
    uvicorn_argv,
    wait_until_settled,
)

SCENARIO = "request cost"
DATABASE = "lyceum_bench_request_cost"
TARGET_RPS_RATIO = 1.0
STARTUP_TIMEOUT = 90.0
TARGETS = ("template", "lyceum")
PASSWORD = "bench request cost passphrase"  # noqa: S105 (a throwaway bench account)


@dataclass(frozen=True)
class Route:
    name: str
    lyceum: str
    template: str
    authenticated: bool


def routes(enrollments: int) -> list[Route]:
    return [
        Route("users/me", "/api/v1/users/me", "/users/me", True),
        Route(
            "per-user list",
            f"/api/v1/me/enrollments?size={enrollments}",
            f"/items?limit={enrollments}",
            True,
        ),
        Route("no database", "/health/live", "/health/live", False),
    ]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Authenticated request cost: Lyceum against a minimal FastAPI app."
    )
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per round (5)")
    parser.add_argument("--concurrency", type=int, default=32, help="connections (32)")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds per target (3)")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds per target")
    parser.add_argument(
        "--enrollments", type=int, default=20, help="courses the learner is enrolled in (20)"
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write results here")
    parser.add_argument(
        "--keep-temp", action="store_true", help="keep the temp dir (logs, data) afterwards"
    )
    parser.add_argument(
        "--profile",
        metavar="ROUTE",
        help="load only ROUTE (e.g. users/me), sample Lyceum with py-spy during its "
        "rounds and print the top frames by own and inclusive samples",
    )
    args = parser.parse_args(argv)
    if (
        args.duration <= 0
        or args.warmup < 0
        or args.concurrency < 1
        or args.rounds < 1
        or not 1 <= args.enrollments <= 100
    ):
        parser.error("need --duration > 0, --concurrency/--rounds >= 1, 1 <= --enrollments <= 100")
    return args


def start_apps(temp: Path, url: str, secret: str, profile: Path | None = None) -> dict[str, Server]:
    common = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": secret, "DB_POOL_SIZE": "10"}
    servers: dict[str, Server] = {}
    servers["template"] = start_server(
        "template",
        lambda port: uvicorn_argv("bench.template_app:app", port),
        log_path=temp / "template.log",
        env=common,
        cwd=REPO_ROOT,  # so that `bench.template_app` imports
        timeout=STARTUP_TIMEOUT,
    )
    servers["lyceum"] = start_server(
        "lyceum",
        lambda port: uvicorn_argv("lyceum.app:create_app", port, "--factory"),
        log_path=temp / "lyceum.log",
        env={
            **common,
            "LYCEUM_DATA_DIR": str(temp / "data"),
            "LOG_LEVEL": "INFO",  # Lyceum's own access log stays on, as in a default install
            "ENVIRONMENT": "development",
            "DB_MAX_OVERFLOW": "10",
        },
        cwd=temp,  # away from the checkout, so a developer's `.env` does not leak in
        timeout=STARTUP_TIMEOUT,
    )
    wait_until_settled(servers["lyceum"])
    return servers


def seed(url: str, port: int, enrollments: int) -> str:
    """An instructor's published courses and a learner enrolled in all of them, through
    the API; returns the learner's access token."""
    base = f"http://{LOOPBACK}:{port}/api/v1"
    with httpx.Client(base_url=base, timeout=60.0) as http:

        def account(email: str, name: str, role: str) -> str:
            registered = http.post(
                "/auth/register", json={"email": email, "password": PASSWORD, "full_name": name}
            )
            if registered.status_code != 201:
                raise BenchError(f"register {email}: {registered.status_code} {registered.text}")
            with psycopg.connect(url) as conn:
                conn.execute(
                    "UPDATE users SET role = %s, email_verified_at = now() WHERE email = %s",
                    (role, email),
                )
            login = http.post("/auth/login", json={"email": email, "password": PASSWORD})
            if login.status_code != 200:
                raise BenchError(f"login {email}: {login.status_code} {login.text}")
            token: str = login.json()["access_token"]
            return token

        teacher = {"Authorization": f"Bearer {account('teacher@bench.test', 'T', 'instructor')}"}
        token = account("learner@bench.test", "Bench Learner", "student")
        learner = {"Authorization": f"Bearer {token}"}
        for index in range(enrollments):
            course = http.post(
                "/courses", json={"title": f"Course {index + 1}"}, headers=teacher
            ).json()
            module = http.post(
                f"/courses/{course['id']}/modules", json={"title": "One"}, headers=teacher
            ).json()
            http.post(
                f"/courses/{course['id']}/modules/{module['id']}/lessons",
                json={"title": "Welcome", "content": "Hello."},
                headers=teacher,
            )
            published = http.post(f"/courses/{course['id']}/publish", headers=teacher)
            enrolled = http.post(f"/courses/{course['id']}/enrollments", headers=learner)
            if published.status_code != 200 or enrolled.status_code != 201:
                raise BenchError(f"course {index}: {published.text} / {enrolled.text}")
        return token


def fmt(value: float, digits: int = 2) -> str:
    return "-" if value != value else f"{value:,.{digits}f}"  # NaN -> "-"


def summarize(rounds: list[LoadResult]) -> dict[str, float]:
    return {
        "rps": median([r.rps for r in rounds]),
        "p50_ms": median([r.p50_ms for r in rounds]),
        "p99_ms": median([r.p99_ms for r in rounds]),
        "server_cpu_us_per_request": median([r.server_cpu_us_per_request for r in rounds]),
        "errors": float(sum(r.errors for r in rounds)),
    }


def run(args: argparse.Namespace, temp: Path) -> dict[str, Any]:
    load_before = load_average()
    postgres, url = migrated_postgres(temp, DATABASE)
    servers: dict[str, Server] = {}
    measured: dict[str, dict[str, list[LoadResult]]] = {}
    errors = 0
    try:
        print("starting servers ...", flush=True)
        servers = start_apps(temp, url, secrets.token_urlsafe(48))
        for server in servers.values():
            print(
                f"  {server.name:<8} pid {server.pid:<7} port {server.port:<5} "
                f"ready in {server.started_in:4.1f}s",
                flush=True,
            )
        print(f"seeding {args.enrollments} courses and enrollments ...", flush=True)
        token = seed(url, servers["lyceum"].port, args.enrollments)
        auth = (("Authorization", f"Bearer {token}"),)

        for route in routes(args.enrollments):
            if args.profile and route.name != args.profile:
                continue
            paths = {"lyceum": route.lyceum, "template": route.template}
            headers = auth if route.authenticated else ()
            for name in TARGETS:
                status, body = probe_with(servers[name].port, paths[name], headers)
                if status != 200:
                    raise BenchError(f"{name}: GET {paths[name]} -> {status} {body[:300]!r}")

            def spec(name: str, duration: float, route: Route = route) -> LoadSpec:
                path = route.lyceum if name == "lyceum" else route.template
                return LoadSpec(
                    port=servers[name].port,
                    path=path,
                    concurrency=args.concurrency,
                    duration=duration,
                    headers=auth if route.authenticated else (),
                )

            print(f"{route.name}: warming up, then {args.rounds} rounds ...", flush=True)
            if args.warmup > 0:
                for name in TARGETS:
                    errors += measure(servers[name], spec(name, args.warmup)).errors
            measured[route.name] = {name: [] for name in TARGETS}
            for index in range(1, args.rounds + 1):
                for name in TARGETS:
                    with (
                        sampled(servers[name].pid, temp / f"lyceum-{index}.stacks")
                        if args.profile and name == "lyceum"
                        else contextlib.nullcontext()
                    ):
                        result = measure(servers[name], spec(name, args.duration))
                    measured[route.name][name].append(result)
                    errors += result.errors
                    print(
                        f"  round {index} {name:<8} {fmt(result.rps, 0):>7} req/s  "
                        f"CPU {fmt(result.server_cpu_us_per_request, 0)} us/req  "
                        f"p99 {fmt(result.p99_ms)} ms  errors {result.errors}",
                        flush=True,
                    )
                    for sample in result.error_samples:
                        print(f"    error: {sample}", flush=True)
    finally:
        for server in reversed(list(servers.values())):
            code = stop_server(server)
            if code not in (0, None):
                print(f"  {server.name} exited with code {code}; log {server.log_path}")
        postgres.stop()
    if args.profile:
        print_profile("Lyceum sampled by py-spy", sorted(temp.glob("lyceum-*.stacks")), top=25)
        raise SystemExit(0)

    report_routes: dict[str, Any] = {}
    print()
    header = (
        f"{'route':<14} {'template req/s':>14} {'lyceum req/s':>12} {'ratio':>6} "
        f"{'template CPU us':>15} {'lyceum CPU us':>13} {'CPU ratio':>9}"
    )
    print(header)
    print("-" * len(header))
    for route in routes(args.enrollments):
        template = summarize(measured[route.name]["template"])
        lyceum = summarize(measured[route.name]["lyceum"])
        rps_ratio = lyceum["rps"] / template["rps"] if template["rps"] else 0.0
        cpu_ratio = (
            lyceum["server_cpu_us_per_request"] / template["server_cpu_us_per_request"]
            if template["server_cpu_us_per_request"]
            else 0.0
        )
        print(
            f"{route.name:<14} {fmt(template['rps'], 0):>14} {fmt(lyceum['rps'], 0):>12} "
            f"{rps_ratio:>6.2f} {fmt(template['server_cpu_us_per_request'], 0):>15} "
            f"{fmt(lyceum['server_cpu_us_per_request'], 0):>13} {cpu_ratio:>9.2f}"
        )
        report_routes[route.name] = {
            "lyceum_path": route.lyceum,
            "template_path": route.template,
            "template": template,
            "lyceum": lyceum,
            "rps_ratio": rps_ratio,
            "cpu_ratio": cpu_ratio,
            "rounds": {
                name: [r.to_dict() for r in results]
                for name, results in measured[route.name].items()
            },
        }
    load_after = load_average()
    print()
    print(f"load average before/after: {load_before} / {load_after}")
    for route in routes(args.enrollments):
        if route.authenticated:
            ratio = report_routes[route.name]["rps_ratio"]
            cpu = report_routes[route.name]["cpu_ratio"]
            print(
                f"{route.name} req/s lyceum/template: {ratio:.2f} (target >= "
                f"{TARGET_RPS_RATIO}); CPU/request lyceum/template: {cpu:.2f} (target <= 1.0)"
            )
    return {
        "scenario": SCENARIO,
        "routes": report_routes,
        "target_rps_ratio": TARGET_RPS_RATIO,
        "settings": {
            "duration": args.duration,
            "concurrency": args.concurrency,
            "rounds": args.rounds,
            "warmup": args.warmup,
            "enrollments": args.enrollments,
        },
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_before": load_before,
            "load_average_after": load_after,
        },
        "errors": errors,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def probe_with(port: int, path: str, headers: tuple[tuple[str, str], ...]) -> tuple[int, bytes]:
    if not headers:
        return probe(port, path, timeout=30.0)
    response = httpx.get(f"http://{LOOPBACK}:{port}{path}", headers=dict(headers), timeout=30.0)
    return response.status_code, response.content


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return scenario_main("request-cost", args, run)


if __name__ == "__main__":
    sys.exit(main())
