"""Scenario: what a learner's progress page costs, against `GET /users/me` in the same run.

    python bench/progress.py [--lessons N] [--quizzes N] [--duration S] [--concurrency N]
                             [--rounds R] [--json PATH] [--keep-temp]

`GET /courses/{id}/progress` is read on every course page and answered by every
completed lesson (`POST /lessons/{id}/complete`), the commonest write of a course: the
course's lessons in order with the learner's completions, and where they stand on its
published quizzes and assignments.

1. An embedded PostgreSQL in a temp dir, migrated; Lyceum (uvicorn, one worker, its own
   access log on, as installed).
2. Through the API: an instructor publishes a course of `--lessons` lessons (each with
   a ~3.7 KB body, as a real lesson has) and `--quizzes` published quizzes; a learner
   enrolls, completes half the lessons and takes every quiz once.
3. Alternating rounds of `--duration` seconds at `--concurrency` connections (the
   harness's load generator, a process of its own): `GET /api/v1/courses/{id}/progress`
   and the baseline `GET /api/v1/users/me` (token check, one user row), same token.
4. Prints, per route, the median req/s and Lyceum's CPU per request, and the ratio
   progress / baseline of each (CPU: lower is better; the progress read does more: its
   course, enrollment, lessons and standing).

Exit code 0 whatever the figures; 1 if the server fails to start or a request fails.
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import psycopg

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (
    LOOPBACK,
    BenchError,
    LoadResult,
    LoadSpec,
    Server,
    load_average,
    measure,
    median,
    migrated_postgres,
    scenario_main,
    start_server,
    stop_server,
    uvicorn_argv,
    wait_until_settled,
)

SCENARIO = "progress"
DATABASE = "lyceum_bench_progress"
PASSWORD = "bench progress passphrase"  # noqa: S105 (a throwaway bench account)
LESSON_BODY = "A paragraph of lesson text about cells and their organelles. " * 60


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--lessons", type=int, default=20, help="lessons in the course (20)")
    parser.add_argument("--quizzes", type=int, default=3, help="published quizzes (3)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per round (5)")
    parser.add_argument("--concurrency", type=int, default=16, help="connections (16)")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds per route (3)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write results here")
    parser.add_argument("--keep-temp", action="store_true", help="keep the temp dir afterwards")
    args = parser.parse_args(argv)
    if args.lessons < 1 or args.quizzes < 0 or args.duration <= 0 or args.rounds < 1:
        parser.error("need --lessons >= 1, --quizzes >= 0, --duration > 0, --rounds >= 1")
    return args


def seed(url: str, port: int, lessons: int, quizzes: int) -> tuple[str, str]:
    """The course and the learner, through the API: (course id, learner's token)."""
    with httpx.Client(base_url=f"http://{LOOPBACK}:{port}/api/v1", timeout=60.0) as http:

        def call(method: str, path: str, headers: dict[str, str], **body: Any) -> Any:
            response = http.request(method, path, headers=headers, json=body or None)
            if response.status_code not in (200, 201):
                raise BenchError(f"{method} {path}: {response.status_code} {response.text[:300]}")
            return response.json()

        def account(email: str, role: str) -> dict[str, str]:
            call("POST", "/auth/register", {}, email=email, password=PASSWORD, full_name="B")
            with psycopg.connect(url) as conn:
                conn.execute(
                    "UPDATE users SET role = %s, email_verified_at = now() WHERE email = %s",
                    (role, email),
                )
            login = call("POST", "/auth/login", {}, email=email, password=PASSWORD)
            return {"Authorization": f"Bearer {login['access_token']}"}

        teacher = account("teacher@bench.test", "instructor")
        learner = account("learner@bench.test", "student")
        course = call("POST", "/courses", teacher, title="The Living Cell")
        module = call("POST", f"/courses/{course['id']}/modules", teacher, title="Cells")
        lesson_ids = [
            call(
                "POST",
                f"/courses/{course['id']}/modules/{module['id']}/lessons",
                teacher,
                title=f"Lesson {n + 1}",
                content=LESSON_BODY,
            )["id"]
            for n in range(lessons)
        ]
        question = call(
            "POST",
            f"/courses/{course['id']}/questions",
            teacher,
            kind="true_false",
            prompt="Cells have membranes.",
            correct=True,
        )
        quiz_ids = [
            call(
                "POST",
                f"/courses/{course['id']}/quizzes",
                teacher,
                title=f"Check {n + 1}",
                published=True,
                sections=[{"question_id": question["id"]}],
            )["id"]
            for n in range(quizzes)
        ]
        call("POST", f"/courses/{course['id']}/publish", teacher)
        call("POST", f"/courses/{course['id']}/enrollments", learner)
        for lesson_id in lesson_ids[: lessons // 2]:
            call("POST", f"/lessons/{lesson_id}/complete", learner)
        for quiz_id in quiz_ids:
            sheet = call("POST", f"/quizzes/{quiz_id}/attempts", learner)
            call(
                "POST",
                f"/attempts/{sheet['id']}/submit",
                learner,
                answers=[{"question_id": question["id"], "value": True}],
            )
        return course["id"], learner["Authorization"]


def run(args: argparse.Namespace, temp: Path) -> dict[str, Any]:
    load_before = load_average()
    postgres, url = migrated_postgres(temp, DATABASE)
    server: Server | None = None
    errors = 0
    try:
        server = start_server(
            "lyceum",
            lambda port: uvicorn_argv("lyceum.app:create_app", port, "--factory"),
            log_path=temp / "lyceum.log",
            env={
                **os.environ,
                "DATABASE_URL": url,
                "SECRET_KEY": secrets.token_urlsafe(48),
                "LYCEUM_DATA_DIR": str(temp / "data"),
                "LOG_LEVEL": "INFO",
                "ENVIRONMENT": "development",
                "DB_POOL_SIZE": "10",
                "DB_MAX_OVERFLOW": "10",
            },
            cwd=temp,
            timeout=90.0,
        )
        wait_until_settled(server)
        print(f"lyceum pid {server.pid} port {server.port}", flush=True)
        course_id, authorization = seed(url, server.port, args.lessons, args.quizzes)
        print(f"seeded a course of {args.lessons} lessons and {args.quizzes} quizzes", flush=True)
        paths = {
            "progress": f"/api/v1/courses/{course_id}/progress",
            "baseline": "/api/v1/users/me",
        }

        def spec(path: str, duration: float) -> LoadSpec:
            return LoadSpec(
                port=server.port,  # type: ignore[union-attr]
                path=path,
                concurrency=args.concurrency,
                duration=duration,
                headers=(("Authorization", authorization),),
            )

        for path in paths.values():  # warm-up
            errors += measure(server, spec(path, 2.0)).errors
        rounds: dict[str, list[LoadResult]] = {name: [] for name in paths}
        for index in range(args.rounds):
            order = list(paths) if index % 2 == 0 else list(reversed(paths))
            for name in order:
                result = measure(server, spec(paths[name], args.duration))
                errors += result.errors
                rounds[name].append(result)
                print(
                    f"  round {index + 1} {name}: {result.rps:,.0f} req/s, "
                    f"{result.server_cpu_us_per_request / 1000:.2f} ms CPU/request",
                    flush=True,
                )
    finally:
        if server is not None:
            stop_server(server)
        postgres.stop()
    summary = {
        name: {
            "rps": median([r.rps for r in results]),
            "server_cpu_ms_per_request": median(
                [r.server_cpu_us_per_request / 1000 for r in results]
            ),
            "p99_ms": median([r.p99_ms for r in results]),
        }
        for name, results in rounds.items()
    }
    progress, baseline = summary["progress"], summary["baseline"]
    rps_ratio = progress["rps"] / baseline["rps"] if baseline["rps"] else 0.0
    cpu_ratio = (
        progress["server_cpu_ms_per_request"] / baseline["server_cpu_ms_per_request"]
        if baseline["server_cpu_ms_per_request"]
        else 0.0
    )
    print()
    print(f"{'median of ' + str(args.rounds) + ' rounds':<34} {'req/s':>8} {'CPU ms/req':>11}")
    for name, label in (("progress", "GET /courses/{id}/progress"), ("baseline", "GET /users/me")):
        row = summary[name]
        print(f"{label:<34} {row['rps']:>8,.0f} {row['server_cpu_ms_per_request']:>11.2f}")
    print(f"progress/baseline: req/s {rps_ratio:.2f}, CPU per request {cpu_ratio:.2f}")
    print(f"load average before/after: {load_before} / {load_average()}")
    print(f"errors: {errors}")
    return {
        "scenario": SCENARIO,
        "routes": summary,
        "rps_ratio": rps_ratio,
        "cpu_ratio": cpu_ratio,
        "settings": {
            "lessons": args.lessons,
            "quizzes": args.quizzes,
            "duration": args.duration,
            "concurrency": args.concurrency,
            "rounds": args.rounds,
        },
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "errors": errors,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def main(argv: Sequence[str] | None = None) -> int:
    return scenario_main(SCENARIO, parse_args(argv), run)


if __name__ == "__main__":
    sys.exit(main())
