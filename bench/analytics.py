"""Scenario: learning-event ingest through the real endpoint against a bare COPY of the
same rows, the rollup job over everything, and the reports' p95, on one `lyceum serve`.

    python bench/analytics.py [--events N] [--learners L] [--courses C] [--http-events H]
                              [--concurrency K] [--report-requests R] [--seed S]
                              [--json PATH] [--keep-temp]

1. Starts its own embedded PostgreSQL in a temp dir (fresh database, migrated: the
   migration makes the event partitions of the months around today), seeds an
   instructor and `--learners` learners with COPY (tokens minted with the server's
   SECRET_KEY), and starts Lyceum (uvicorn, one process, access log on, no job worker:
   the rollup run the ingest asks for waits, as the minute's run would).
2. Through the API, the instructor makes `--courses` published courses of 8 lessons;
   learners are enrolled (COPY) in 1-6 courses each, chosen with a Zipf-like skew
   (a few popular courses, a long tail).
3. Generates `--events` events (seeded): each learner's activity is lognormal (a few
   very active learners, many light ones), about their own courses' pages and lessons
   (viewed / started / paused / resumed with durations, searches), timestamps spread over
   the last 60 days. A learner's events go in batches of up to 500, as an app would send
   them.
4. **HTTP**: `--http-events` of them (whole 500-event batches), POSTed to
   `/api/v1/analytics/events` with `--concurrency` requests in flight: each checks every
   field, the objects' visibility (one query) and stores the batch with its dedupe keys
   (one statement). **COPY**: the same rows, pre-rendered, written with one
   `COPY analytics_events FROM STDIN` in the same database (then removed again, so the
   HTTP rows are the ones kept). The ratio is HTTP events/s over COPY events/s. Beside
   the rates: the CPU the server process and every PostgreSQL process spent per batch
   during the HTTP burst, and PostgreSQL's CPU per 500 rows during the COPY.
5. The rest of the events are loaded with COPY (not measured; said in the output), then
   the rollup job (`analytics.rollups.run_rollups`) runs once over everything: its time.
6. Each report route of the analytics reports (`--report-requests` GETs each, the
   course routes over the most popular courses): p50 and p95. A route the app does not
   have (404 for the route itself) is printed "not available".

Exit code 0 whatever the figures; 1 if the server fails to start or a request fails.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.assessments import fmt, mint_tokens, seed_accounts
from bench.harness import (
    LOOPBACK,
    BenchError,
    Server,
    database_cpu_seconds,
    load_average,
    migrated_postgres,
    percentile,
    postmaster_of,
    scenario_main,
    start_server,
    stop_server,
    uvicorn_argv,
    wait_until_settled,
)

SCENARIO = "analytics"
DATABASE = "lyceum_bench_analytics"
REQUEST_TIMEOUT = 300.0
EVENTS_PATH = "/api/v1/analytics/events"
BATCH = 500
LESSONS_PER_COURSE = 8
DAYS = 60
LYCEUM_STARTUP_TIMEOUT = 180.0
# The rows' columns, in COPY order.
COLUMNS = (
    "occurred_at",
    "event_id",
    "user_id",
    "course_id",
    "lesson_id",
    "source",
    "client_event_id",
    "verb",
    "object_type",
    "object_id",
    "duration_ms",
    "context",
)


@dataclass(frozen=True)
class Course:
    id: str
    lessons: list[str]


@dataclass(frozen=True)
class Event:
    user: uuid.UUID
    client_id: str
    verb: str
    object_type: str
    object_id: str | None
    course_id: str | None
    lesson_id: str | None
    at: dt.datetime
    duration_ms: int | None
    query: str | None

    def body(self) -> dict[str, Any]:
        event: dict[str, Any] = {
            "id": self.client_id,
            "verb": self.verb,
            "object": {"type": self.object_type}
            | ({"id": self.object_id} if self.object_id else {}),
            "timestamp": self.at.isoformat(),
        }
        if self.duration_ms is not None:
            event["duration_ms"] = self.duration_ms
        if self.query is not None:
            event["context"] = {"query": self.query, "platform": "web"}
        else:
            event["context"] = {"platform": "web"}
        return event

    def copy_line(self) -> str:
        from lyceum.analytics.ingest import statement_id

        context = {"platform": "web"} | ({"query": self.query} if self.query else {})
        fields = [
            self.at.isoformat(),
            str(statement_id(self.user, self.client_id)),
            str(self.user),
            self.course_id or "\\N",
            self.lesson_id or "\\N",
            "client",
            self.client_id,
            self.verb,
            self.object_type,
            self.object_id or "\\N",
            "\\N" if self.duration_ms is None else str(self.duration_ms),
            json.dumps(context, separators=(",", ":")),
        ]
        return "\t".join(fields) + "\n"


# Generating ------------------------------------------------------------------------------


def enrollments(
    learners: Sequence[uuid.UUID], courses: Sequence[Course], rng: random.Random
) -> dict[uuid.UUID, list[Course]]:
    """1-6 courses per learner, course k chosen with weight 1/(k+1) (Zipf-like)."""
    weights = [1 / (rank + 1) for rank in range(len(courses))]
    taken = {}
    for learner in learners:
        count = min(len(courses), 1 + int(rng.expovariate(1 / 1.5)) % 6)
        chosen: dict[str, Course] = {}
        while len(chosen) < count:
            course = rng.choices(courses, weights)[0]
            chosen[course.id] = course
        taken[learner] = list(chosen.values())
    return taken


def generate(
    taken: dict[uuid.UUID, list[Course]], total: int, rng: random.Random, now: dt.datetime
) -> dict[uuid.UUID, list[Event]]:
    """`total` events, each learner's share lognormal, in time order per learner."""
    learners = list(taken)
    activity = [rng.lognormvariate(0, 1.2) for _ in learners]
    scale = total / sum(activity)
    counts = [max(1, int(a * scale)) for a in activity]
    # Adjust the rounding so the total is exact.
    difference = total - sum(counts)
    order = sorted(range(len(learners)), key=lambda i: -counts[i])
    index = 0
    while difference != 0:
        i = order[index % len(order)]
        step = 1 if difference > 0 else -1
        if counts[i] + step >= 1:
            counts[i] += step
            difference -= step
        index += 1
    events: dict[uuid.UUID, list[Event]] = {}
    for learner, count in zip(learners, counts, strict=True):
        courses = taken[learner]
        mine = []
        for n in range(count):
            course = rng.choice(courses)
            at = now - dt.timedelta(seconds=rng.uniform(60, DAYS * 86400 - 3600))
            roll = rng.random()
            if roll < 0.12:
                verb, kind, object_id, lesson = "viewed", "course", course.id, None
            elif roll < 0.15:
                verb, kind, object_id, lesson = "searched", "catalog", None, None
            else:
                lesson = rng.choice(course.lessons)
                verb = rng.choices(["viewed", "started", "paused", "resumed"], [6, 2, 1, 1])[0]
                kind, object_id = "lesson", lesson
            duration = int(rng.expovariate(1 / 90_000)) if verb in ("viewed", "paused") else None
            mine.append(
                Event(
                    user=learner,
                    client_id=f"{learner.hex[:8]}-{n}",
                    verb=verb,
                    object_type=kind,
                    object_id=object_id,
                    course_id=None if kind == "catalog" else course.id,
                    lesson_id=lesson,
                    at=min(at, now - dt.timedelta(seconds=60)),
                    duration_ms=None if duration is None else min(duration, 86_400_000),
                    query="photosynthesis" if kind == "catalog" else None,
                )
            )
        mine.sort(key=lambda event: event.at)
        events[learner] = mine
    return events


def batches(events: dict[uuid.UUID, list[Event]]) -> list[list[Event]]:
    """Each learner's events in chunks of up to 500, as an app sends them."""
    found = []
    for mine in events.values():
        for start in range(0, len(mine), BATCH):
            found.append(mine[start : start + BATCH])
    return found


# Setup ---------------------------------------------------------------------------------


def with_workers(argv: list[str], workers: int) -> list[str]:
    """The uvicorn command line with `workers` processes instead of one."""
    changed = list(argv)
    changed[changed.index("--workers") + 1] = str(workers)
    return changed


def start_lyceum(temp: Path, url: str, secret: str, pool: int, workers: int = 1) -> Server:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "LYCEUM_DATA_DIR": str(temp / "data"),
        "LOG_LEVEL": "INFO",
        "ENVIRONMENT": "development",
        "SECRET_KEY": secret,
        "DB_POOL_SIZE": str(pool),
        "DB_MAX_OVERFLOW": str(pool),
        # The generated events reach 60 days back.
        "ANALYTICS_MAX_EVENT_AGE_DAYS": "90",
    }
    server = start_server(
        "lyceum",
        lambda port: with_workers(
            uvicorn_argv("lyceum.app:create_app", port, "--factory"), workers
        ),
        log_path=temp / "lyceum.log",
        env=env,
        cwd=temp,
        timeout=LYCEUM_STARTUP_TIMEOUT,
    )
    wait_until_settled(server)
    return server


def author_courses(port: int, teacher: str, count: int) -> list[Course]:
    import httpx

    courses = []
    with httpx.Client(
        base_url=f"http://{LOOPBACK}:{port}/api/v1",
        headers={"Authorization": f"Bearer {teacher}"},
        timeout=60,
        trust_env=False,
    ) as http:

        def post(path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
            response = http.post(path, json=body)
            if response.status_code not in (200, 201):
                raise BenchError(f"POST {path} -> {response.status_code} {response.text[:300]}")
            result: dict[str, Any] = response.json()
            return result

        for number in range(count):
            course = post("/courses", {"title": f"Bench course {number}", "language": "en"})
            module = post(f"/courses/{course['id']}/modules", {"title": "Basics"})
            lessons = [
                post(
                    f"/courses/{course['id']}/modules/{module['id']}/lessons",
                    {"title": f"Lesson {n}", "content": f"Lesson {n} of course {number}."},
                )["id"]
                for n in range(LESSONS_PER_COURSE)
            ]
            post(f"/courses/{course['id']}/publish")
            courses.append(Course(course["id"], lessons))
    return courses


def seed_enrollments(url: str, taken: dict[uuid.UUID, list[Course]], now: dt.datetime) -> int:
    rows = 0
    with (
        psycopg.connect(url) as conn,
        conn.cursor() as cursor,
        cursor.copy(
            "COPY enrollments (id, course_id, user_id, status, enrolled_at) FROM STDIN"
        ) as copy,
    ):
        for learner, courses in taken.items():
            for course in courses:
                copy.write_row(
                    (uuid.uuid4(), course.id, learner, "active", now - dt.timedelta(days=70))
                )
                rows += 1
    return rows


# Measuring ----------------------------------------------------------------------------


@dataclass
class BurstResult:
    statuses: list[int]
    latencies: list[float]
    wall: float
    errors: list[str]
    accepted: int


async def _post_batches(
    port: int, bodies: Sequence[tuple[str, bytes]], concurrency: int
) -> BurstResult:
    import httpx

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    statuses = [0] * len(bodies)
    latencies = [0.0] * len(bodies)
    errors: list[str] = []
    accepted = 0
    slots = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(
        base_url=f"http://{LOOPBACK}:{port}",
        limits=limits,
        timeout=httpx.Timeout(REQUEST_TIMEOUT),
        trust_env=False,
    ) as client:

        async def one(index: int, token: str, body: bytes) -> None:
            nonlocal accepted
            async with slots:
                started = time.perf_counter()
                try:
                    response = await client.post(
                        EVENTS_PATH,
                        content=body,
                        headers={
                            "Authorization": f"Bearer {token}",
                            "Content-Type": "application/json",
                        },
                    )
                except httpx.HTTPError as error:
                    errors.append(f"POST {EVENTS_PATH}: {type(error).__name__}: {error}")
                    return
                latencies[index] = time.perf_counter() - started
                statuses[index] = response.status_code
                if response.status_code != 202:
                    errors.append(f"{response.status_code}: {response.text[:300]}")
                else:
                    accepted += int(response.json()["accepted"])

        started = time.perf_counter()
        await asyncio.gather(*(one(i, token, body) for i, (token, body) in enumerate(bodies)))
        wall = time.perf_counter() - started
    return BurstResult(statuses, latencies, wall, errors, accepted)


def post_batches(port: int, bodies: Sequence[tuple[str, bytes]], concurrency: int) -> BurstResult:
    """Entry point in the load generator process."""
    return asyncio.run(_post_batches(port, bodies, concurrency))


@dataclass(frozen=True)
class Copied:
    seconds: float
    first_id: int
    postgres_cpu: float  # CPU seconds of every PostgreSQL process, COPY and commit


def copy_rows(url: str, lines: Sequence[str]) -> Copied:
    """COPY the pre-rendered rows into analytics_events."""
    buffer = "".join(lines).encode()
    with psycopg.connect(url) as conn, conn.cursor() as cursor:
        first = cursor.execute("SELECT nextval('analytics_events_id_seq')").fetchone()
        postmaster = postmaster_of(url)
        cpu_before = database_cpu_seconds(postmaster)
        started = time.perf_counter()
        with cursor.copy(f"COPY analytics_events ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for offset in range(0, len(buffer), 1 << 20):
                copy.write(buffer[offset : offset + (1 << 20)])
        conn.commit()
        elapsed = time.perf_counter() - started
        cpu = database_cpu_seconds(postmaster) - cpu_before
    return Copied(elapsed, int(first[0]) if first else 0, cpu)


async def run_rollup_job(url: str) -> float:
    from lyceum.analytics.rollups import run_rollups
    from lyceum.kit.db import create_engine, unit_of_work

    engine = create_engine(url)
    try:
        from sqlalchemy.ext.asyncio import async_sessionmaker

        sessions = async_sessionmaker(engine, expire_on_commit=False)
        started = time.perf_counter()
        async with sessions() as session, unit_of_work(session):
            await run_rollups(session)
        return time.perf_counter() - started
    finally:
        await engine.dispose()


REPORT_ROUTES = [
    ("course overview", "/api/v1/analytics/courses/{course}/overview", "teacher"),
    ("lesson funnel", "/api/v1/analytics/courses/{course}/lessons", "teacher"),
    ("tutor insights", "/api/v1/analytics/courses/{course}/tutor", "teacher"),
    ("learners at risk", "/api/v1/analytics/courses/{course}/at-risk", "teacher"),
    ("quiz items", "/api/v1/analytics/quizzes/{quiz}/items", "teacher"),
    ("essay rubric", "/api/v1/analytics/assignments/{assignment}/rubric", "teacher"),
    ("learner dashboard", "/api/v1/me/analytics", "learner"),
]


def assessments_of(port: int, teacher: str, course: Course) -> tuple[str | None, str | None]:
    """A quiz and an assignment in the course, for the routes that take their ids."""
    import httpx

    with httpx.Client(
        base_url=f"http://{LOOPBACK}:{port}/api/v1",
        headers={"Authorization": f"Bearer {teacher}"},
        timeout=60,
        trust_env=False,
    ) as http:
        question = http.post(
            f"/courses/{course.id}/questions",
            json={
                "kind": "true_false",
                "prompt": "Water boils at 100 degrees Celsius at sea level.",
                "correct": True,
            },
        )
        quiz_id = None
        if question.status_code == 201:
            quiz = http.post(
                f"/courses/{course.id}/quizzes",
                json={
                    "title": "Checkpoint",
                    "published": True,
                    "sections": [{"question_id": question.json()["id"]}],
                },
            )
            quiz_id = quiz.json()["id"] if quiz.status_code == 201 else None
        assignment = http.post(
            f"/courses/{course.id}/assignments",
            json={
                "title": "Essay",
                "prompt": "Explain why the sky is blue.",
                "points": 10,
                "published": True,
                "rubric": {
                    "criteria": [
                        {
                            "id": "content",
                            "title": "Content",
                            "levels": [
                                {"title": "Missing", "descriptor": "No reason.", "points": 0},
                                {"title": "Complete", "descriptor": "Scattering.", "points": 10},
                            ],
                        }
                    ]
                },
            },
        )
        assignment_id = assignment.json()["id"] if assignment.status_code == 201 else None
        if assignment_id is None:
            print(f"could not create the essay assignment: {assignment.text[:300]}")
    return quiz_id, assignment_id


def time_reports(
    port: int, tokens: dict[str, str], ids: dict[str, list[str]], requests: int
) -> dict[str, dict[str, float] | str]:
    import httpx

    results: dict[str, dict[str, float] | str] = {}
    with httpx.Client(base_url=f"http://{LOOPBACK}:{port}", timeout=120, trust_env=False) as http:
        for name, template, who in REPORT_ROUTES:
            headers = {"Authorization": f"Bearer {tokens[who]}"}
            latencies = []
            status_seen: set[int] = set()
            available = True
            for n in range(requests):
                names = {key: values[n % len(values)] for key, values in ids.items() if values}
                try:
                    path = template.format(**names)
                except KeyError:
                    available = False
                    break
                started = time.perf_counter()
                response = http.get(path, headers=headers)
                elapsed = time.perf_counter() - started
                if response.status_code == 404 and "No route matches" in response.text:
                    available = False
                    break
                status_seen.add(response.status_code)
                latencies.append(elapsed)
            if not available:
                results[name] = "not available"
                continue
            latencies.sort()
            results[name] = {
                "p50_ms": percentile(latencies, 50) * 1000,
                "p95_ms": percentile(latencies, 95) * 1000,
                "status": float(max(status_seen)),
            }
    return results


def run(args: argparse.Namespace, temp: Path) -> dict[str, Any]:
    load_before = load_average()
    rng = random.Random(args.seed)
    postgres, url = migrated_postgres(temp, DATABASE)
    secret = secrets.token_urlsafe(48)
    server: Server | None = None
    errors: list[str] = []
    figures: dict[str, Any] = {}
    context = multiprocessing.get_context("spawn")
    try:
        teacher_id, learner_ids = seed_accounts(url, args.learners)
        teacher_token, *learner_tokens = mint_tokens(
            secret, [(teacher_id, "instructor"), *((learner, "student") for learner in learner_ids)]
        )
        token_of = dict(zip(learner_ids, learner_tokens, strict=True))
        print(f"seeded 1 instructor and {len(learner_ids)} learners", flush=True)
        server = start_lyceum(temp, url, secret, args.db_pool_size, args.server_workers)
        print(f"lyceum pid {server.pid} port {server.port}, ready in {server.started_in:.1f}s")
        courses = author_courses(server.port, teacher_token, args.courses)
        now = dt.datetime.now(dt.UTC)
        taken = enrollments(learner_ids, courses, rng)
        enrolled = seed_enrollments(url, taken, now)
        print(f"{len(courses)} courses of {LESSONS_PER_COURSE} lessons, {enrolled} enrollments")

        started = time.perf_counter()
        events = generate(taken, args.events, rng, now)
        all_batches = batches(events)
        print(
            f"generated {sum(len(b) for b in all_batches)} events in {len(all_batches)} batches "
            f"({time.perf_counter() - started:.1f}s)",
            flush=True,
        )
        full = [batch for batch in all_batches if len(batch) == BATCH]
        rng.shuffle(full)
        http_batches = full[: max(1, args.http_events // BATCH)]
        chosen = {id(batch) for batch in http_batches}
        rest = [batch for batch in all_batches if id(batch) not in chosen]
        http_events = sum(len(batch) for batch in http_batches)
        bodies = [
            (token_of[batch[0].user], json.dumps({"events": [e.body() for e in batch]}).encode())
            for batch in http_batches
        ]
        lines = [event.copy_line() for batch in http_batches for event in batch]

        # Warm-up: a few small batches of other events (not part of the measured set).
        warm = [
            (
                token_of[batch[0].user],
                json.dumps({"events": [e.body() for e in batch[:20]]}).encode(),
            )
            for batch in rest[:20]
        ]
        with ProcessPoolExecutor(max_workers=1, mp_context=context) as load:
            load.submit(post_batches, server.port, warm, args.concurrency).result()
            database = postmaster_of(url)
            cpu_before = server.cpu_seconds()
            database_before = database_cpu_seconds(database)
            result = load.submit(post_batches, server.port, bodies, args.concurrency).result()
            cpu = server.cpu_seconds() - cpu_before
            database_cpu = database_cpu_seconds(database) - database_before
        errors.extend(result.errors[:20])
        if result.accepted != http_events:
            errors.append(f"HTTP accepted {result.accepted} of {http_events} events")
        http_rate = http_events / result.wall if result.wall else 0.0
        latencies = sorted(latency for latency in result.latencies if latency > 0)
        print(
            f"HTTP ingest: {http_events} events in {len(bodies)} batches of {BATCH}, "
            f"{args.concurrency} in flight: {result.wall:.2f}s, {fmt(http_rate, 0)} events/s "
            f"(p50 {fmt(percentile(latencies, 50) * 1000, 0)} ms, "
            f"p95 {fmt(percentile(latencies, 95) * 1000, 0)} ms per batch, "
            f"server CPU {fmt(cpu / max(len(bodies), 1) * 1000, 1)} ms per batch, "
            f"PostgreSQL CPU {fmt(database_cpu / max(len(bodies), 1) * 1000, 1)} ms per batch)",
            flush=True,
        )

        copied = copy_rows(url, lines)
        copy_seconds, first_copied = copied.seconds, copied.first_id
        copy_rate = http_events / copy_seconds if copy_seconds else 0.0
        with psycopg.connect(url) as conn:
            conn.execute("DELETE FROM analytics_events WHERE id >= %s", (first_copied,))
        ratio = http_rate / copy_rate if copy_rate else 0.0
        print(
            f"bare COPY of the same {http_events} rows: {copy_seconds:.2f}s, "
            f"{fmt(copy_rate, 0)} events/s (PostgreSQL CPU "
            f"{fmt(copied.postgres_cpu / max(len(bodies), 1) * 1000, 1)} ms per 500 rows)",
            flush=True,
        )
        print(f"HTTP/COPY ratio: {ratio:.2f} (target >= 0.3)", flush=True)

        # The warm-up stored the first 20 events of 20 batches already.
        rest_lines = [
            event.copy_line()
            for index, batch in enumerate(rest)
            for event in (batch[20:] if index < 20 else batch)
        ]
        rest_seconds = copy_rows(url, rest_lines).seconds
        print(
            f"the other {len(rest_lines)} events loaded with COPY (not measured as ingest): "
            f"{rest_seconds:.1f}s",
            flush=True,
        )
        with psycopg.connect(url) as conn:
            conn.execute("ANALYZE analytics_events")
            total = conn.execute("SELECT count(*) FROM analytics_events").fetchone()
        print(f"events stored: {total[0] if total else 0}", flush=True)

        rollup_seconds = asyncio.run(run_rollup_job(url))
        print(f"rollup job over everything: {rollup_seconds:.1f}s", flush=True)

        popular = sorted(courses, key=lambda c: -sum(c in t for t in taken.values()))[:5]
        quiz_id, assignment_id = assessments_of(server.port, teacher_token, popular[0])
        busiest = max(events, key=lambda learner: len(events[learner]))
        tokens = {"teacher": teacher_token, "learner": token_of[busiest]}
        ids = {
            "course": [course.id for course in popular],
            "quiz": [quiz_id] if quiz_id else [],
            "assignment": [assignment_id] if assignment_id else [],
        }
        reports = time_reports(server.port, tokens, ids, args.report_requests)
        print()
        print(
            f"{'report (' + str(args.report_requests) + ' GETs)':<28} {'p50 ms':>8} {'p95 ms':>8}"
        )
        for name, row in reports.items():
            if isinstance(row, str):
                print(f"{name:<28} {row}")
            else:
                note = f"  (answered {int(row['status'])})" if row["status"] != 200 else ""
                print(f"{name:<28} {fmt(row['p50_ms'], 0):>8} {fmt(row['p95_ms'], 0):>8}{note}")
        figures = {
            "http": {
                "events": http_events,
                "batches": len(bodies),
                "wall_s": result.wall,
                "events_per_s": http_rate,
                "batch_p50_ms": percentile(latencies, 50) * 1000,
                "batch_p95_ms": percentile(latencies, 95) * 1000,
                "server_cpu_ms_per_batch": cpu / max(len(bodies), 1) * 1000,
                "postgres_cpu_ms_per_batch": database_cpu / max(len(bodies), 1) * 1000,
            },
            "copy": {
                "events": http_events,
                "seconds": copy_seconds,
                "events_per_s": copy_rate,
                "postgres_cpu_ms_per_500": copied.postgres_cpu / max(len(bodies), 1) * 1000,
            },
            "ratio": ratio,
            "rest_copied": len(rest_lines),
            "rollup_seconds": rollup_seconds,
            "reports": reports,
        }
    finally:
        if server is not None:
            code = stop_server(server)
            if code not in (0, None):
                print(f"  lyceum exited with code {code}; log {server.log_path}")
        postgres.stop()
    load_after = load_average()
    print()
    print(f"load average before/after: {load_before} / {load_after}")
    print(f"errors: {len(errors)}")
    for error in errors[:10]:
        print(f"  {error}")
    return {
        "scenario": SCENARIO,
        "settings": {
            "events": args.events,
            "learners": args.learners,
            "courses": args.courses,
            "http_events": args.http_events,
            "concurrency": args.concurrency,
            "server_workers": args.server_workers,
            "seed": args.seed,
        },
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_before": load_before,
            "load_average_after": load_after,
        },
        **figures,
        "errors": len(errors),
        "error_samples": errors[:20],
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events (1,000,000)")
    parser.add_argument("--learners", type=int, default=10_000, help="learners (10,000)")
    parser.add_argument("--courses", type=int, default=50, help="courses (50)")
    parser.add_argument(
        "--http-events", type=int, default=100_000, help="events ingested over HTTP (100,000)"
    )
    parser.add_argument("--concurrency", type=int, default=8, help="batches in flight (8)")
    parser.add_argument("--report-requests", type=int, default=40, help="GETs per report (40)")
    parser.add_argument("--db-pool-size", type=int, default=20, help="DB_POOL_SIZE (20)")
    parser.add_argument(
        "--server-workers",
        type=int,
        default=1,
        help="uvicorn worker processes (1; with more, the server CPU figure is the parent's)",
    )
    parser.add_argument("--seed", type=int, default=19, help="random seed (19)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write results here")
    parser.add_argument("--keep-temp", action="store_true", help="keep the temp dir afterwards")
    args = parser.parse_args(argv)
    if min(args.events, args.learners, args.courses, args.http_events, args.concurrency) < 1:
        parser.error("every count must be >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    return scenario_main(SCENARIO, parse_args(argv), run)


if __name__ == "__main__":
    sys.exit(main())
