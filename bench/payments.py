"""Scenario: payment webhooks arriving in a burst, half of them duplicates, against one
`lyceum serve`: every paid order enrolls its learner exactly once.

    python bench/payments.py [--orders N] [--concurrency C] [--rounds R]
                             [--json PATH] [--keep-temp]

1. Starts its own embedded PostgreSQL in a temp dir (fresh database, migrated), seeds
   an instructor and `--orders` learners with COPY (their access tokens are minted with
   the server's SECRET_KEY, as a login would mint them), and starts Lyceum (uvicorn, one
   process, access log on, the built-in sandbox payment provider as with nothing
   configured).
2. Through the API, for each round: the instructor creates and publishes a priced
   course; every learner asks for a checkout (`POST /courses/{id}/checkout` with an
   `Idempotency-Key`), which opens a pending order at the sandbox provider.
3. Each round, in alternating order:
   * **webhooks**: one signed `payment.succeeded` sandbox webhook per order, each sent
     twice (so half of the `2 x --orders` deliveries are duplicates, shuffled), POSTed to
     `/api/v1/payments/webhooks/sandbox` with `--concurrency` requests in flight. Each
     one verifies the signature on the raw body, records the provider event under its
     unique id (a duplicate stops there), locks the order, checks amount and currency,
     marks it paid, enrolls the learner and emits `order.paid`, in one transaction.
   * **baseline**: as many `GET /api/v1/users/me` with the learners' tokens, at the
     same concurrency: the cheapest authenticated endpoint.
4. Prints p50/p99 latency and throughput per kind (median of rounds), the
   `webhooks/baseline throughput ratio`, and checks the database: exactly one
   enrollment, one paid order and one `order.paid` event per learner and course.

Exit code 0 whatever the figures; 1 if a server fails to start, a request fails, or a
learner is enrolled other than exactly once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import random
import secrets
import sys
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psycopg

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.assessments import fmt, mint_tokens, seed_accounts, start_lyceum
from bench.harness import (
    LOOPBACK,
    BenchError,
    Server,
    load_average,
    median,
    migrated_postgres,
    percentile,
    scenario_main,
    stop_server,
)

SCENARIO = "payments"
DATABASE = "lyceum_bench_payments"
REQUEST_TIMEOUT = 120.0
BASELINE_PATH = "/api/v1/users/me"
WEBHOOK_PATH = "/api/v1/payments/webhooks/sandbox"
PRICE = 1999  # minor units
CURRENCY = "USD"


# The load generator process -----------------------------------------------------------


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes | None = None


@dataclass
class BurstResult:
    statuses: list[int]
    latencies: list[float]  # seconds, in request order
    wall: float  # first request written -> last response read
    errors: list[str]


async def _burst(port: int, calls: Sequence[Call], concurrency: int) -> BurstResult:
    import httpx

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    statuses = [0] * len(calls)
    latencies = [0.0] * len(calls)
    errors: list[str] = []
    slots = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(
        base_url=f"http://{LOOPBACK}:{port}",
        limits=limits,
        timeout=httpx.Timeout(REQUEST_TIMEOUT),
        trust_env=False,
    ) as client:

        async def one(index: int, call: Call) -> None:
            async with slots:
                started = time.perf_counter()
                try:
                    response = await client.request(
                        call.method, call.path, content=call.body, headers=call.headers
                    )
                    await response.aread()
                except httpx.HTTPError as error:
                    errors.append(f"{call.method} {call.path}: {type(error).__name__}: {error}")
                    return
                latencies[index] = time.perf_counter() - started
                statuses[index] = response.status_code
                if response.status_code >= 400:
                    errors.append(f"{call.path} -> {response.status_code}: {response.text[:200]}")

        started = time.perf_counter()
        await asyncio.gather(*(one(i, call) for i, call in enumerate(calls)))
        wall = time.perf_counter() - started
    return BurstResult(statuses, latencies, wall, errors)


def run_burst(port: int, calls: Sequence[Call], concurrency: int) -> BurstResult:
    """Entry point in the load generator process."""
    return asyncio.run(_burst(port, calls, concurrency))


# Setup through the API ----------------------------------------------------------------


def _api(port: int, token: str) -> Any:
    import httpx

    return httpx.Client(
        base_url=f"http://{LOOPBACK}:{port}/api/v1",
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
        trust_env=False,
    )


def priced_course(port: int, teacher: str, number: int) -> str:
    with _api(port, teacher) as http:
        response = http.post(
            "/courses",
            json={
                "title": f"Bench paid course {number}",
                "language": "en",
                "price": {"amount_cents": PRICE, "currency": CURRENCY},
            },
        )
        if response.status_code != 201:
            raise BenchError(f"create course -> {response.status_code} {response.text[:300]}")
        course_id = str(response.json()["id"])
        module = http.post(f"/courses/{course_id}/modules", json={"title": "Start"}).json()
        http.post(
            f"/courses/{course_id}/modules/{module['id']}/lessons",
            json={"title": "Welcome", "content": "Welcome to the course."},
        )
        published = http.post(f"/courses/{course_id}/publish")
        if published.status_code != 200:
            raise BenchError(f"publish -> {published.status_code} {published.text[:300]}")
    return course_id


async def _checkouts(
    port: int, course_id: str, tokens: Sequence[str], concurrency: int
) -> list[dict[str, Any]]:
    import httpx

    slots = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(
        base_url=f"http://{LOOPBACK}:{port}/api/v1", timeout=REQUEST_TIMEOUT, trust_env=False
    ) as client:

        async def one(token: str) -> dict[str, Any]:
            async with slots:
                response = await client.post(
                    f"/courses/{course_id}/checkout",
                    json={},
                    headers={
                        "Authorization": f"Bearer {token}",
                        "Idempotency-Key": str(uuid.uuid4()),
                    },
                )
            if response.status_code != 201:
                raise BenchError(f"checkout -> {response.status_code} {response.text[:300]}")
            order: dict[str, Any] = response.json()
            return order

        return await asyncio.gather(*(one(token) for token in tokens))


def signed_deliveries(secret: str, orders: Sequence[dict[str, Any]]) -> list[Call]:
    """Two identical deliveries per order (the second a provider's redelivery), shuffled,
    signed the way the sandbox provider signs them."""
    from lyceum.config import Settings
    from lyceum.payments.providers.sandbox import sign_webhook

    settings = Settings(secret_key=secret, database_url=None)
    now = int(time.time())
    calls = []
    for order in orders:
        event_id = f"evt_{uuid.uuid4().hex}"
        body = json.dumps(
            {
                "id": event_id,
                "type": "payment.succeeded",
                "data": {
                    # The sandbox's checkout id ends its checkout URL.
                    "checkout_id": order["checkout_url"].rsplit("/", 1)[-1],
                    "order_id": order["id"],
                    "payment_id": f"pay_{uuid.uuid4().hex}",
                    "amount": order["amount"],
                    "currency": order["currency"],
                },
            }
        ).encode()
        headers = {
            "Content-Type": "application/json",
            **sign_webhook(settings, body, event_id, now),
        }
        call = Call("POST", WEBHOOK_PATH, headers, body)
        calls += [call, call]
    random.Random(len(calls)).shuffle(calls)
    return calls


# Measuring ----------------------------------------------------------------------------


@dataclass
class Figures:
    name: str
    round: int
    requests: int
    ok: int
    wall_s: float
    throughput: float
    p50_ms: float
    p99_ms: float
    server_cpu_ms_per_request: float


def figures(name: str, index: int, result: BurstResult, cpu: float) -> Figures:
    latencies = sorted(latency for latency in result.latencies if latency > 0)
    return Figures(
        name=name,
        round=index,
        requests=len(result.statuses),
        ok=sum(1 for status in result.statuses if status == 200),
        wall_s=result.wall,
        throughput=len(result.statuses) / result.wall if result.wall else 0.0,
        p50_ms=percentile(latencies, 50) * 1000,
        p99_ms=percentile(latencies, 99) * 1000,
        server_cpu_ms_per_request=cpu / len(result.statuses) * 1000,
    )


def exactly_once(url: str, courses: Sequence[str], learners: int) -> list[str]:
    """What the database says about each course's buyers: one enrollment, one paid order
    and one `order.paid` event each, no more and no fewer."""
    problems = []
    with psycopg.connect(url) as conn:
        for course_id in courses:
            enrolled, distinct = conn.execute(
                "SELECT count(*), count(DISTINCT user_id) FROM enrollments "
                "WHERE course_id = %s AND status <> 'cancelled'",
                (course_id,),
            ).fetchone() or (0, 0)
            paid = conn.execute(
                "SELECT count(*) FROM orders WHERE course_id = %s AND status = 'paid'",
                (course_id,),
            ).fetchone()
            events = conn.execute(
                "SELECT count(*) FROM events WHERE type = 'order.paid' "
                "AND payload->>'course_id' = %s",
                (course_id,),
            ).fetchone()
            got = (enrolled, distinct, paid[0] if paid else 0, events[0] if events else 0)
            if got != (learners, learners, learners, learners):
                problems.append(
                    f"course {course_id}: {got[0]} enrollments of {got[1]} learners, "
                    f"{got[2]} paid orders, {got[3]} order.paid events (expected {learners} each)"
                )
    return problems


def run(args: argparse.Namespace, temp: Path) -> dict[str, Any]:
    load_before = load_average()
    postgres, url = migrated_postgres(temp, DATABASE)
    secret = secrets.token_urlsafe(48)
    server: Server | None = None
    errors: list[str] = []
    measured: list[Figures] = []
    courses: list[str] = []
    context = multiprocessing.get_context("spawn")
    try:
        teacher_id, learner_ids = seed_accounts(url, args.orders)
        teacher_token, *tokens = mint_tokens(
            secret,
            [(teacher_id, "instructor"), *((learner, "student") for learner in learner_ids)],
        )
        print(f"seeded 1 instructor and {len(tokens)} learners", flush=True)
        server = start_lyceum(temp, url, secret, args.db_pool_size)
        print(
            f"lyceum pid {server.pid} port {server.port}, ready in {server.started_in:.1f}s",
            flush=True,
        )
        with ProcessPoolExecutor(max_workers=1, mp_context=context) as load:

            def burst(calls: list[Call]) -> tuple[BurstResult, float]:
                assert server is not None
                cpu_before = server.cpu_seconds()
                result = load.submit(run_burst, server.port, calls, args.concurrency).result()
                errors.extend(result.errors)
                return result, server.cpu_seconds() - cpu_before

            me = [
                Call("GET", BASELINE_PATH, {"Authorization": f"Bearer {token}"}) for token in tokens
            ]
            burst(me[:50])  # warm-up
            for index in range(1, args.rounds + 1):
                course_id = priced_course(server.port, teacher_token, index)
                courses.append(course_id)
                orders = asyncio.run(_checkouts(server.port, course_id, tokens, args.concurrency))
                deliveries = signed_deliveries(secret, orders)
                baseline = me * 2  # as many requests as deliveries
                order = ("webhooks", "baseline") if index % 2 else ("baseline", "webhooks")
                for name in order:
                    result, cpu = burst(deliveries if name == "webhooks" else baseline)
                    measured.append(figures(name, index, result, cpu))
                print(
                    f"  round {index}: "
                    + "  ".join(
                        f"{f.name} {fmt(f.throughput, 0)} req/s p50 {fmt(f.p50_ms, 0)} ms "
                        f"p99 {fmt(f.p99_ms, 0)} ms"
                        for f in measured
                        if f.round == index
                    ),
                    flush=True,
                )
        errors.extend(exactly_once(url, courses, args.orders))
    finally:
        if server is not None:
            code = stop_server(server)
            if code not in (0, None):
                print(f"  lyceum exited with code {code}; log {server.log_path}")
        postgres.stop()

    def summary(name: str) -> dict[str, float]:
        rows = [f for f in measured if f.name == name]
        return {
            key: median([getattr(f, key) for f in rows])
            for key in ("throughput", "p50_ms", "p99_ms", "server_cpu_ms_per_request", "wall_s")
        }

    results = {name: summary(name) for name in ("webhooks", "baseline")}
    baseline = results["baseline"]["throughput"]
    ratio = results["webhooks"]["throughput"] / baseline if baseline else 0.0
    load_after = load_average()
    deliveries = 2 * args.orders

    print()
    header = (
        f"{str(deliveries) + ' requests, ' + str(args.concurrency) + ' in flight':<40} "
        f"{'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'wall s':>7} {'srv CPU ms/req':>14}"
    )
    print(header)
    print("-" * len(header))
    labels = {
        "webhooks": "sandbox webhooks (half duplicates)",
        "baseline": f"baseline GET {BASELINE_PATH}",
    }
    for name, row in results.items():
        print(
            f"{labels[name]:<40} {fmt(row['throughput'], 0):>8} {fmt(row['p50_ms'], 0):>8} "
            f"{fmt(row['p99_ms'], 0):>8} {fmt(row['wall_s'], 2):>7} "
            f"{fmt(row['server_cpu_ms_per_request'], 2):>14}"
        )
    print()
    print(f"load average before/after: {load_before} / {load_after}")
    print(f"errors: {len(errors)}")
    for error in errors[:10]:
        print(f"  {error}")
    print(
        f"exactly-once enrollments: {'yes' if not any('enrollments' in e for e in errors) else 'NO'}"
        f" ({args.orders} learners x {args.rounds} courses)"
    )
    print(f"webhooks/baseline throughput ratio: {ratio:.2f}")
    return {
        "scenario": SCENARIO,
        "settings": {
            "orders": args.orders,
            "deliveries": deliveries,
            "concurrency": args.concurrency,
            "rounds": args.rounds,
            "db_pool_size": args.db_pool_size,
        },
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_before": load_before,
            "load_average_after": load_after,
        },
        "median": results,
        "ratio": ratio,
        "rounds": [asdict(row) for row in measured],
        "errors": len(errors),
        "error_samples": errors[:20],
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--orders", type=int, default=250, help="orders, each paid by two deliveries (250)"
    )
    parser.add_argument("--concurrency", type=int, default=50, help="requests in flight (50)")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds (3)")
    parser.add_argument("--db-pool-size", type=int, default=20, help="DB_POOL_SIZE (20)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write results here")
    parser.add_argument("--keep-temp", action="store_true", help="keep the temp dir afterwards")
    args = parser.parse_args(argv)
    if min(args.orders, args.concurrency, args.rounds, args.db_pool_size) < 1:
        parser.error("need --orders, --concurrency, --rounds and --db-pool-size >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    return scenario_main(SCENARIO, parse_args(argv), run)


if __name__ == "__main__":
    sys.exit(main())
