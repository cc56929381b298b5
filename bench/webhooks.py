"""Scenario: webhook deliveries per second to a local receiver, against bare httpx
POSTs of the same signed bodies to the same receiver, measured in the same run.

    python bench/webhooks.py [--deliveries N] [--concurrency C] [--rounds R]
                             [--json PATH] [--keep-temp]

1. Starts its own embedded PostgreSQL in a temp dir (fresh database, migrated), a
   Lyceum runtime on it with WEBHOOK_ALLOW_PRIVATE_NETWORKS=true, and a receiver in a
   separate process: a small asyncio HTTP/1.1 server on 127.0.0.1 that reads each
   request and answers 200 (keep-alive).
2. Registers one webhook endpoint (subscribed to `user.registered`) on the receiver.
3. Each round, in alternating order:
   * **webhooks**: `--deliveries` events are emitted in one transaction (each records
     the event, a delivery row and a job); then a Lyceum worker on the `webhooks` queue
     with `--concurrency` slots runs every job: load the delivery, open the secret,
     resolve and check the address, sign, POST, record the outcome. Timed from the
     worker's start until every delivery is `succeeded`.
   * **baseline**: the same number of bodies, signed the same way, POSTed by one httpx
     client with `--concurrency` requests in flight (no database, no job queue).
4. Prints deliveries/s per round and the median, and `webhooks/baseline`.

Exit code 0 whatever the figures; 1 if a delivery or a request fails.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import sys
import time
import uuid
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (
    LOOPBACK,
    free_port,
    load_average,
    median,
    migrated_postgres,
    scenario_main,
)

SCENARIO = "webhooks"
ANSWER = (
    b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{"ok":true}'
)


async def _serve_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            if length:
                await reader.readexactly(length)
            writer.write(ANSWER)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


def _receiver_main(port: int, ready: Connection) -> None:
    async def main() -> None:
        server = await asyncio.start_server(_serve_connection, LOOPBACK, port, backlog=1024)
        ready.send(True)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


async def _webhooks_round(runtime: Any, endpoint_url: str, count: int, concurrency: int) -> float:
    from sqlalchemy import func, select

    from lyceum.kit.db import unit_of_work
    from lyceum.kit.events import emit
    from lyceum.kit.jobs import run_worker
    from lyceum.models.webhooks import WebhookDelivery, WebhookDeliveryStatus

    async with runtime.database.sessionmaker() as session, unit_of_work(session):
        for _ in range(count):
            await emit(session, "user.registered", user_id=str(uuid.uuid4()))
    started = time.perf_counter()
    await run_worker(
        runtime,
        wait=False,
        install_signal_handlers=False,
        concurrency=concurrency,
        queues=["webhooks"],
    )
    elapsed = time.perf_counter() - started
    async with runtime.database.sessionmaker() as session:
        left = await session.scalar(
            select(func.count())
            .select_from(WebhookDelivery)
            .where(WebhookDelivery.status != WebhookDeliveryStatus.succeeded)
        )
    if left:
        raise RuntimeError(f"{left} deliveries did not succeed")
    return count / elapsed


async def _baseline_round(endpoint_url: str, secret: str, count: int, concurrency: int) -> float:
    import httpx

    from lyceum.webhooks.service import encode, headers

    bodies = []
    for _ in range(count):
        event_id = str(uuid.uuid4())
        body = encode(
            {
                "id": event_id,
                "type": "user.registered",
                "version": "v1",
                "occurred_at": "2026-12-04T12:00:00Z",
                "data": {"user_id": str(uuid.uuid4())},
            }
        )
        bodies.append((event_id, body))
    limit = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(
        limits=httpx.Limits(max_connections=concurrency), trust_env=False
    ) as client:

        async def send(event_id: str, body: str) -> None:
            async with limit:
                response = await client.post(
                    endpoint_url,
                    content=body.encode(),
                    headers=headers(secret, event_id, int(time.time()), body),
                )
                if response.status_code != 200:
                    raise RuntimeError(f"baseline answer {response.status_code}")

        started = time.perf_counter()
        await asyncio.gather(*(send(event_id, body) for event_id, body in bodies))
        return count / (time.perf_counter() - started)


async def _run(args: argparse.Namespace, temp: Path, url: str) -> dict[str, Any]:
    port = free_port()
    parent, child = multiprocessing.get_context("spawn").Pipe()
    receiver = multiprocessing.get_context("spawn").Process(
        target=_receiver_main, args=(port, child), daemon=True
    )
    receiver.start()
    try:
        if not parent.poll(30):
            raise RuntimeError("the receiver did not start")
        os.environ.update(
            {
                "ENVIRONMENT": "development",
                "DATABASE_URL": url,
                "LYCEUM_DATA_DIR": str(temp / "data"),
                "LOG_LEVEL": "WARNING",
                "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",
            }
        )
        from lyceum.config import get_settings
        from lyceum.kit.db import unit_of_work
        from lyceum.kit.logging import configure_logging
        from lyceum.kit.runtime import Runtime
        from lyceum.models.webhooks import WebhookEndpoint
        from lyceum.webhooks.service import new_secret

        configure_logging("WARNING")
        get_settings.cache_clear()
        runtime = await Runtime.start(get_settings(), database_url=url, migrate=False)
        try:
            endpoint_url = f"http://{LOOPBACK}:{port}/hooks"
            secret = new_secret()
            async with runtime.database.sessionmaker() as session, unit_of_work(session):
                session.add(
                    WebhookEndpoint(
                        url=endpoint_url,
                        description="bench",
                        event_types=["user.registered"],
                        secret=runtime.secret_box.seal(secret),
                    )
                )
            rounds: list[dict[str, float]] = []
            for number in range(args.rounds):
                figures: dict[str, float] = {}
                order = ["webhooks", "baseline"] if number % 2 == 0 else ["baseline", "webhooks"]
                for kind in order:
                    if kind == "webhooks":
                        figures[kind] = await _webhooks_round(
                            runtime, endpoint_url, args.deliveries, args.concurrency
                        )
                    else:
                        figures[kind] = await _baseline_round(
                            endpoint_url, secret, args.deliveries, args.concurrency
                        )
                figures["ratio"] = figures["webhooks"] / figures["baseline"]
                rounds.append(figures)
                print(
                    f"round {number + 1}: webhooks {figures['webhooks']:.0f}/s, "
                    f"baseline {figures['baseline']:.0f}/s, ratio {figures['ratio']:.3f}",
                    flush=True,
                )
        finally:
            await runtime.stop()
    finally:
        receiver.terminate()
        receiver.join(10)
    summary = {kind: median([r[kind] for r in rounds]) for kind in ("webhooks", "baseline")}
    ratio = summary["webhooks"] / summary["baseline"]
    print(
        f"median: webhooks {summary['webhooks']:.0f} deliveries/s, baseline "
        f"{summary['baseline']:.0f} POSTs/s; webhooks/baseline {ratio:.3f} "
        f"(load average {load_average()})"
    )
    return {
        "scenario": SCENARIO,
        "deliveries": args.deliveries,
        "concurrency": args.concurrency,
        "rounds": rounds,
        "median": summary,
        "ratio": ratio,
        "errors": 0,
    }


def run(args: argparse.Namespace, temp: Path) -> dict[str, Any]:
    postgres, url = migrated_postgres(temp, "lyceum_bench_webhooks")
    try:
        return asyncio.run(_run(args, temp, url))
    finally:
        postgres.stop()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--deliveries", type=int, default=1000, help="per round (1000)")
    parser.add_argument("--concurrency", type=int, default=8, help="jobs / requests at once (8)")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds (3)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write results here")
    parser.add_argument("--keep-temp", action="store_true", help="keep the temp dir afterwards")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    return scenario_main(SCENARIO, parse_args(argv), run)


if __name__ == "__main__":
    raise SystemExit(main())
