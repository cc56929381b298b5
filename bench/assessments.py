"""Scenario: 500 learners submit a quiz at the same moment, and every submission is
auto-graded in its request.

    python bench/assessments.py [--learners N] [--questions N] [--rounds R]
                                [--db-pool-size N] [--db-max-overflow N]
                                [--json PATH] [--keep-temp]

1. Starts its own embedded PostgreSQL in a temp dir, creates a fresh database and
   migrates it, then seeds an instructor and `--learners` learner accounts directly
   (COPY; no password hashing: the learners' access tokens are minted with the
   server's SECRET_KEY, exactly as a login would mint them).
2. Starts Lyceum (uvicorn, one worker, `LOG_LEVEL=INFO` so the access log is on, a
   database pool of `--db-pool-size` + `--db-max-overflow` connections).
3. Through the API: the instructor creates a course with a lesson and publishes it,
   adds `--questions` questions of every auto-graded kind (single choice, multiple
   choice with partial credit, true/false, short answer exact / case-insensitive /
   regex / numeric with tolerance) and a published quiz with all of them, questions
   and options shuffled, a one-hour limit; every learner enrolls.
4. Each round: every learner starts an attempt (a burst of N concurrent requests:
   the server draws and snapshots the questions), then saves all its answers (a
   burst of N concurrent `PUT /attempts/{id}/answers`, an exam's autosave: the server
   checks every answer against the attempt and stores it), then the two bursts the
   ratio compares, in alternating order across rounds:
   * **submit**: N concurrent `POST /attempts/{id}/submit` carrying all the answers
     (a quarter of the learners get one wrong); the server checks every answer
     against the attempt, stores it, grades each item, totals, and answers the result.
     Every response must be 200, `graded`, with the expected score.
   * **baseline**: N concurrent `GET /api/v1/users/me` with the same tokens: the
     cheapest authenticated endpoint (token check, user lookup, serialization).
   A burst is N requests sent at once from a separate process, each on its own
   connection; its wall time runs from the first request written to the last
   response read; throughput = N / wall time.
5. Prints per round and the median of the rounds: p50/p99 latency, throughput, CPU per
   request of the Lyceum process and of the whole PostgreSQL server (its backends, the
   reaped ones included), and `submit/baseline throughput ratio`. Then checks the database:
   exactly one graded attempt per learner per round, none left in progress.

Exit code 0 whatever the figures; 1 if a server fails to start or any request fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import multiprocessing
import os
import platform
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

from bench.harness import (
    LOOPBACK,
    BenchError,
    Server,
    database_cpu_seconds,
    load_average,
    median,
    migrated_postgres,
    percentile,
    postmaster_of,
    print_profile,
    sampled,
    scenario_main,
    start_server,
    stop_server,
    uvicorn_argv,
    wait_until_settled,
)

SCENARIO = "assessments"
DATABASE = "lyceum_bench_assessments"
LYCEUM_STARTUP_TIMEOUT = 90.0
REQUEST_TIMEOUT = 120.0
BASELINE_PATH = "/api/v1/users/me"


# Questions the bench authors, with the answer a learner who knows it gives ---------------


def question_bank(count: int) -> list[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]]:
    """(question body, right answer, wrong answer), cycling through every auto-graded
    kind and match mode."""
    kinds: list[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]] = [
        (
            {
                "kind": "single_choice",
                "prompt": "Which organelle makes most of a cell's ATP?",
                "options": [
                    {"id": "a", "text": "Ribosome"},
                    {"id": "b", "text": "Mitochondrion"},
                    {"id": "c", "text": "Golgi apparatus"},
                    {"id": "d", "text": "Lysosome"},
                ],
                "correct": "b",
                "points": 2,
            },
            {"choice": "b"},
            {"choice": "a"},
        ),
        (
            {
                "kind": "multiple_choice",
                "prompt": "Which of these are prime?",
                "options": [{"id": str(n), "text": str(n)} for n in (2, 3, 4, 9, 11)],
                "correct": ["2", "3", "11"],
                "partial_credit": True,
                "points": 3,
            },
            {"choices": ["11", "2", "3"]},
            {"choices": ["2", "4"]},
        ),
        (
            {"kind": "true_false", "prompt": "Light is faster than sound.", "correct": True},
            {"value": True},
            {"value": False},
        ),
        (
            {
                "kind": "short_answer",
                "prompt": "The capital of France?",
                "match": "case_insensitive",
                "accepted": ["Paris"],
            },
            {"text": "paris"},
            {"text": "Lyon"},
        ),
        (
            {
                "kind": "short_answer",
                "prompt": "Name the powerhouse of the cell.",
                "match": "regex",
                "accepted": [r"(the\s)?mitochondri(on|a)"],
            },
            {"text": "The mitochondria"},
            {"text": "nucleus"},
        ),
        (
            {
                "kind": "short_answer",
                "prompt": "g, in m/s^2, to two decimals?",
                "match": "numeric",
                "number": 9.81,
                "tolerance": 0.01,
            },
            {"text": "9,81"},
            {"text": "10"},
        ),
        (
            {
                "kind": "short_answer",
                "prompt": "H2O is the formula of?",
                "match": "exact",
                "accepted": ["water"],
            },
            {"text": "water"},
            {"text": "Water!"},
        ),
    ]
    bank = []
    for index in range(count):
        body, right, wrong = kinds[index % len(kinds)]
        bank.append(({**body, "prompt": f"{index + 1}. {body['prompt']}"}, right, wrong))
    return bank


# The load generator process -----------------------------------------------------------


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    token: str
    body: dict[str, Any] | None = None


@dataclass
class BurstResult:
    statuses: list[int]
    latencies: list[float]  # seconds, in request order
    wall: float  # first request written -> last response read
    bodies: list[Any]  # parsed JSON, when asked for
    client_cpu: float
    errors: list[str]


async def _burst(port: int, calls: Sequence[Call], keep_bodies: bool) -> BurstResult:
    import httpx

    limits = httpx.Limits(max_connections=len(calls) + 10, max_keepalive_connections=0)
    timeout = httpx.Timeout(REQUEST_TIMEOUT)
    statuses = [0] * len(calls)
    latencies = [0.0] * len(calls)
    bodies: list[Any] = [None] * len(calls)
    errors: list[str] = []
    async with httpx.AsyncClient(
        base_url=f"http://{LOOPBACK}:{port}", limits=limits, timeout=timeout
    ) as client:
        gate = asyncio.Event()

        async def one(index: int, call: Call) -> None:
            await gate.wait()
            started = time.perf_counter()
            try:
                response = await client.request(
                    call.method,
                    call.path,
                    json=call.body,
                    headers={"Authorization": f"Bearer {call.token}"},
                )
                await response.aread()
            except httpx.HTTPError as error:
                errors.append(f"{call.method} {call.path}: {type(error).__name__}: {error}"[:200])
                return
            latencies[index] = time.perf_counter() - started
            statuses[index] = response.status_code
            if keep_bodies or response.status_code >= 400:
                bodies[index] = response.json() if response.content else None

        tasks = [asyncio.create_task(one(i, call)) for i, call in enumerate(calls)]
        await asyncio.sleep(0.05)  # every task is waiting at the gate
        cpu = time.process_time()
        started = time.perf_counter()
        gate.set()
        await asyncio.gather(*tasks)
        wall = time.perf_counter() - started
        client_cpu = (time.process_time() - cpu) / wall if wall else 0.0
    return BurstResult(statuses, latencies, wall, bodies, client_cpu, errors)


def run_burst(port: int, calls: Sequence[Call], keep_bodies: bool) -> BurstResult:
    """Entry point in the load generator process."""
    return asyncio.run(_burst(port, calls, keep_bodies))


# Setup --------------------------------------------------------------------------------


def seed_accounts(url: str, learners: int) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """An instructor and the learners, written with COPY (no passwords: tokens are minted)."""
    teacher = uuid.uuid4()
    learner_ids = [uuid.uuid4() for _ in range(learners)]
    with psycopg.connect(url) as conn, conn.cursor() as cursor:
        columns = (
            "id, email, full_name, role, is_active, email_verified_at, locale, timezone, "
            "preferences"
        )
        with cursor.copy(f"COPY users ({columns}) FROM STDIN") as copy:
            now = dt.datetime.now(dt.UTC)
            copy.write_row(
                (
                    teacher,
                    "teacher@bench.test",
                    "Bench Teacher",
                    "instructor",
                    True,
                    now,
                    "en",
                    "UTC",
                    "{}",
                )
            )
            for index, user_id in enumerate(learner_ids):
                copy.write_row(
                    (
                        user_id,
                        f"learner{index}@bench.test",
                        f"Learner {index}",
                        "student",
                        True,
                        now,
                        "en",
                        "UTC",
                        "{}",
                    )
                )
        # Every access token belongs to a login session: one each, as signing in makes.
        login_columns = "id, user_id, created_at, last_used_at, expires_at"
        with cursor.copy(f"COPY login_sessions ({login_columns}) FROM STDIN") as copy:
            for user_id in (teacher, *learner_ids):
                copy.write_row((user_id, user_id, now, now, now + dt.timedelta(days=1)))
    return teacher, learner_ids


def mint_tokens(secret: str, users: Sequence[tuple[uuid.UUID, str]]) -> list[str]:
    from lyceum.kit.security import TokenCodec

    codec = TokenCodec(secret, issuer="lyceum", audience="lyceum-api")
    now = dt.datetime.now(dt.UTC)
    return [
        codec.encode(
            subject=user_id,
            role=role,
            token_type="access",  # noqa: S106 (a JWT type)
            now=now,
            lifetime=dt.timedelta(hours=6),
            # seed_accounts gives each account a login session with the account's id.
            extra={"sid": str(user_id)},
        )[0]
        for user_id, role in users
    ]


def start_lyceum(temp: Path, url: str, secret: str, pool: int, overflow: int) -> Server:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "LYCEUM_DATA_DIR": str(temp / "data"),
        "LOG_LEVEL": "INFO",  # Lyceum's own access log stays on, as in a default install
        "ENVIRONMENT": "development",
        "SECRET_KEY": secret,
        "DB_POOL_SIZE": str(pool),
        "DB_MAX_OVERFLOW": str(overflow),
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


def author(
    port: int, teacher: str, questions: int
) -> tuple[str, str, dict[str, tuple[dict[str, Any], dict[str, Any]]]]:
    """Course, questions and quiz through the API. Returns (course id, quiz id,
    question id -> (right answer, wrong answer))."""
    import httpx

    headers = {"Authorization": f"Bearer {teacher}"}
    with httpx.Client(
        base_url=f"http://{LOOPBACK}:{port}/api/v1", headers=headers, timeout=60
    ) as http:

        def post(path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
            response = http.post(path, json=body)
            if response.status_code not in (200, 201):
                raise BenchError(f"POST {path} -> {response.status_code} {response.text[:300]}")
            result: dict[str, Any] = response.json()
            return result

        course = post("/courses", {"title": "Bench biology", "language": "en"})
        module = post(f"/courses/{course['id']}/modules", {"title": "Cells"})
        post(
            f"/courses/{course['id']}/modules/{module['id']}/lessons",
            {"title": "The cell", "content": "Cells are the units of life."},
        )
        post(f"/courses/{course['id']}/publish")
        answers = {}
        for body, right, wrong in question_bank(questions):
            made = post(f"/courses/{course['id']}/questions", body)
            answers[made["id"]] = (right, wrong)
        quiz = post(
            f"/courses/{course['id']}/quizzes",
            {
                "title": "Checkpoint",
                "published": True,
                "shuffle_questions": True,
                "shuffle_options": True,
                "time_limit_seconds": 3600,
                "pass_percent": 60,
                "sections": [{"question_id": question_id} for question_id in answers],
            },
        )
    return str(course["id"]), str(quiz["id"]), answers


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
    max_ms: float
    server_cpu_ms_per_request: float
    database_cpu_ms_per_request: float
    client_cpu: float


def figures(name: str, index: int, result: BurstResult, cpu: float, database_cpu: float) -> Figures:
    ok = sum(1 for status in result.statuses if status == 200)
    latencies = sorted(latency for latency in result.latencies if latency > 0)
    return Figures(
        name=name,
        round=index,
        requests=len(result.statuses),
        ok=ok,
        wall_s=result.wall,
        throughput=len(result.statuses) / result.wall if result.wall else 0.0,
        p50_ms=percentile(latencies, 50) * 1000,
        p99_ms=percentile(latencies, 99) * 1000,
        max_ms=(latencies[-1] * 1000) if latencies else float("nan"),
        server_cpu_ms_per_request=cpu / len(result.statuses) * 1000,
        database_cpu_ms_per_request=database_cpu / len(result.statuses) * 1000,
        client_cpu=result.client_cpu,
    )


def fmt(value: float, digits: int = 1) -> str:
    return "-" if value != value else f"{value:,.{digits}f}"


def run(args: argparse.Namespace, temp: Path) -> dict[str, Any]:
    load_before = load_average()
    postgres, url = migrated_postgres(temp, DATABASE)
    secret = secrets.token_urlsafe(48)
    server: Server | None = None
    errors: list[str] = []
    measured: list[Figures] = []
    context = multiprocessing.get_context("spawn")
    try:
        teacher_id, learner_ids = seed_accounts(url, args.learners)
        teacher_token, *tokens = mint_tokens(
            secret,
            [(teacher_id, "instructor"), *((learner, "student") for learner in learner_ids)],
        )
        print(f"seeded 1 instructor and {len(tokens)} learners", flush=True)
        server = start_lyceum(temp, url, secret, args.db_pool_size, args.db_max_overflow)
        print(
            f"lyceum pid {server.pid} port {server.port}, ready in {server.started_in:.1f}s",
            flush=True,
        )
        postmaster = postmaster_of(url)
        course_id, quiz_id, answers = author(server.port, teacher_token, args.questions)
        print(f"authored a course, {len(answers)} questions and a quiz through the API", flush=True)
        with ProcessPoolExecutor(max_workers=1, mp_context=context) as load:

            def burst(
                calls: list[Call], keep_bodies: bool = False
            ) -> tuple[BurstResult, float, float]:
                assert server is not None
                cpu_before = server.cpu_seconds()
                database_before = database_cpu_seconds(postmaster)
                result = load.submit(run_burst, server.port, calls, keep_bodies).result()
                errors.extend(result.errors)
                return (
                    result,
                    server.cpu_seconds() - cpu_before,
                    database_cpu_seconds(postmaster) - database_before,
                )

            # Set-up, not measured: in slices of 50, so that a machine busy with other
            # work does not keep an enrollment waiting for a connection past the pool
            # timeout (503) before the measured bursts even start.
            statuses: list[int] = []
            for first in range(0, len(tokens), ENROLL_SLICE):
                enrolled, _, _ = burst(
                    [
                        Call("POST", f"/api/v1/courses/{course_id}/enrollments", token)
                        for token in tokens[first : first + ENROLL_SLICE]
                    ]
                )
                statuses.extend(enrolled.statuses)
            bad = [s for s in statuses if s != 201]
            if bad:
                raise BenchError(f"{len(bad)} enrollments failed: {sorted(set(bad))}")
            burst([Call("GET", BASELINE_PATH, token) for token in tokens[:50]])  # warm-up
            print(f"{len(tokens)} learners enrolled; warm-up done", flush=True)

            for index in range(1, args.rounds + 1):
                with (
                    sampled(server.pid, temp / f"start-{index}.stacks")
                    if args.profile
                    else contextlib.nullcontext()
                ):
                    started, start_cpu, start_database = burst(
                        [
                            Call("POST", f"/api/v1/quizzes/{quiz_id}/attempts", token)
                            for token in tokens
                        ],
                        keep_bodies=True,
                    )
                start_figures = figures("start", index, started, start_cpu, start_database)
                measured.append(start_figures)
                saves: list[Call] = []
                submits: list[Call] = []
                expected: list[float] = []
                for learner, (token, status, sheet) in enumerate(
                    zip(tokens, started.statuses, started.bodies, strict=True)
                ):
                    if status != 201:
                        errors.append(f"start attempt -> {status}: {str(sheet)[:200]}")
                        continue
                    chosen = []
                    score = 0.0
                    for position, item in enumerate(sheet["questions"]):
                        right, wrong = answers[item["question_id"]]
                        missed = learner % 4 == 0 and position == 0
                        chosen.append(
                            {"question_id": item["question_id"], **(wrong if missed else right)}
                        )
                        # Every wrong answer earns 0 (the partial-credit one has one
                        # right and one wrong choice: +1 -1).
                        score += 0.0 if missed else item["points"]
                    saves.append(
                        Call(
                            "PUT",
                            f"/api/v1/attempts/{sheet['id']}/answers",
                            token,
                            {"answers": chosen},
                        )
                    )
                    submits.append(
                        Call(
                            "POST",
                            f"/api/v1/attempts/{sheet['id']}/submit",
                            token,
                            {"answers": chosen},
                        )
                    )
                    expected.append(score)
                with (
                    sampled(server.pid, temp / f"answers-{index}.stacks")
                    if args.profile
                    else contextlib.nullcontext()
                ):
                    saved, save_cpu, save_database = burst(saves)
                for status in saved.statuses:
                    if status != 200:
                        errors.append(f"save answers -> {status}")
                measured.append(figures("answers", index, saved, save_cpu, save_database))
                order = ("submit", "baseline") if index % 2 else ("baseline", "submit")
                for name in order:
                    profiled = (
                        sampled(server.pid, temp / f"{name}-{index}.stacks")
                        if args.profile
                        else contextlib.nullcontext()
                    )
                    if name == "submit":
                        with profiled:
                            result, cpu, database = burst(submits, keep_bodies=True)
                        for body, status, score in zip(
                            result.bodies, result.statuses, expected, strict=True
                        ):
                            if status != 200:
                                errors.append(f"submit -> {status}: {str(body)[:200]}")
                            elif body["status"] != "graded" or abs(body["score"] - score) > 0.01:
                                errors.append(
                                    f"submit graded {body['status']} {body['score']}, expected {score}"
                                )
                    else:
                        with profiled:
                            result, cpu, database = burst(
                                [Call("GET", BASELINE_PATH, token) for token in tokens]
                            )
                        for status in result.statuses:
                            if status != 200:
                                errors.append(f"baseline -> {status}")
                    row = figures(name, index, result, cpu, database)
                    measured.append(row)
                print(
                    "  round "
                    + f"{index}: "
                    + "  ".join(
                        f"{f.name} {fmt(f.throughput, 0)} req/s p50 {fmt(f.p50_ms, 0)} ms "
                        f"p99 {fmt(f.p99_ms, 0)} ms"
                        for f in measured
                        if f.round == index
                    ),
                    flush=True,
                )
        with psycopg.connect(url) as conn:
            graded, open_attempts, per_learner = conn.execute(
                "SELECT count(*) FILTER (WHERE status = 'graded'), "
                "count(*) FILTER (WHERE status = 'in_progress'), "
                "count(DISTINCT (user_id, number)) FROM quiz_attempts"
            ).fetchone() or (0, 0, 0)
        if graded != args.learners * args.rounds or open_attempts or per_learner != graded:
            errors.append(
                f"database: {graded} graded, {open_attempts} in progress, {per_learner} distinct "
                f"(expected {args.learners * args.rounds} graded, once each)"
            )
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
            for key in (
                "throughput",
                "p50_ms",
                "p99_ms",
                "max_ms",
                "server_cpu_ms_per_request",
                "database_cpu_ms_per_request",
                "wall_s",
            )
        }

    results = {name: summary(name) for name in ("start", "answers", "submit", "baseline")}
    baseline = results["baseline"]["throughput"]
    ratio = results["submit"]["throughput"] / baseline if baseline else 0.0
    load_after = load_average()

    print()
    header = (
        f"{'burst of ' + str(args.learners) + ' (median of ' + str(args.rounds) + ')':<34} "
        f"{'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'wall s':>7} {'srv CPU ms/req':>14}"
        f" {'DB CPU ms/req':>13}"
    )
    print(header)
    print("-" * len(header))
    labels = {
        "start": "start attempt (draw + snapshot)",
        "answers": "save answers (autosave)",
        "submit": "submit + auto-grade",
        "baseline": f"baseline GET {BASELINE_PATH}",
    }
    for name, summary_row in results.items():
        print(
            f"{labels[name]:<34} {fmt(summary_row['throughput'], 0):>8} {fmt(summary_row['p50_ms'], 0):>8} "
            f"{fmt(summary_row['p99_ms'], 0):>8} {fmt(summary_row['max_ms'], 0):>8} {fmt(summary_row['wall_s'], 2):>7} "
            f"{fmt(summary_row['server_cpu_ms_per_request'], 2):>14}"
            f" {fmt(summary_row['database_cpu_ms_per_request'], 2):>13}"
        )
    print()
    print(f"load average before/after: {load_before} / {load_after}")
    print(f"errors: {len(errors)}")
    for error in errors[:10]:
        print(f"  {error}")
    print(
        f"submit/baseline throughput ratio: {ratio:.2f} "
        f"({args.learners} concurrent submissions of {args.questions} questions, each graded "
        "in its request)"
    )
    if args.profile:
        for name in ("start", "answers", "submit", "baseline"):
            print_profile(
                f"{labels[name]}, sampled by py-spy",
                sorted(temp.glob(f"{name}-*.stacks")),
                top=30,
            )
    return {
        "scenario": SCENARIO,
        "settings": {
            "learners": args.learners,
            "questions": args.questions,
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


ENROLL_SLICE = 50


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--learners", type=int, default=500, help="concurrent learners (500)")
    parser.add_argument("--questions", type=int, default=10, help="questions in the quiz (10)")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds (3)")
    parser.add_argument("--db-pool-size", type=int, default=20, help="DB_POOL_SIZE (20)")
    parser.add_argument("--db-max-overflow", type=int, default=20, help="DB_MAX_OVERFLOW (20)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write results here")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample Lyceum with py-spy (--gil) during every burst (start, answers, submit, "
        "baseline) and print each one's top frames (the sampler's own CPU counts in the figures)",
    )
    parser.add_argument("--keep-temp", action="store_true", help="keep the temp dir afterwards")
    args = parser.parse_args(argv)
    if args.learners < 1 or args.questions < 1 or args.rounds < 1 or args.db_pool_size < 1:
        parser.error("need --learners, --questions, --rounds and --db-pool-size >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    return scenario_main(SCENARIO, parse_args(argv), run)


if __name__ == "__main__":
    sys.exit(main())
