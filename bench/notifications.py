"""Scenario: an announcement to a course with 10,000 enrolled learners.

    python bench/notifications.py [--learners 10000] [--rounds 5] [--json PATH] [--keep-temp]

1. Starts its own embedded PostgreSQL in a temp dir, creates a fresh database, migrates
   it, and seeds one published course with `--learners` enrolled learners (COPY), a
   tenth of them with preferences of their own (mail off for announcements) and a
   tenth with quiet hours, and a fifth with the mobile app (a push device), so the
   preference, quiet-hour and destination lookups have rows to find. Push jobs are for
   that fifth only: a learner with nowhere to push to gets none.
2. Each round, in this order, each in a transaction of its own, timed until committed:
   * **lyceum**: `notifications.service.publish` of a new announcement: the
     announcement row, `announcement.published`, and `notify` to every enrolled
     learner (a SELECT, not a list): every in-app notification written and every
     channel job (mail, push) queued in batches of NOTIFICATION_BATCH_SIZE;
   * **baseline**: a bare `INSERT INTO notifications ... SELECT ... FROM enrollments`
     of the same rows (no preferences, no quiet hours, no jobs).
   Both rounds' rows are deleted afterwards (and vacuumed), so each round starts alike.
3. Prints the median of each and the ratio baseline / lyceum (target: at least 0.5).

Exit code 0 whatever the figures; 1 if a round writes the wrong number of rows.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import statistics
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import load_average, migrated_postgres, scenario_main

SCENARIO = "notifications"
DATABASE = "bench_notifications"
BASELINE = """
INSERT INTO notifications (id, user_id, category, kind, title, body, url, data, created_at)
SELECT gen_random_uuid(), e.user_id, 'announcements', 'announcement', %(title)s, %(body)s,
       %(url)s, %(data)s::jsonb, now()
FROM enrollments e WHERE e.course_id = %(course)s AND e.status = 'active'
"""


def seed(url: str, learners: int) -> uuid.UUID:
    teacher, course = uuid.uuid4(), uuid.uuid4()
    now = dt.datetime.now(dt.UTC)
    with psycopg.connect(url) as conn, conn.cursor() as cursor:
        columns = "id, email, full_name, role, is_active, email_verified_at, locale, timezone, preferences"
        zones = ("UTC", "Asia/Ho_Chi_Minh", "Europe/Paris", "America/New_York")
        with cursor.copy(f"COPY users ({columns}) FROM STDIN") as copy:
            copy.write_row(
                (teacher, "t@bench.test", "Teacher", "instructor", True, now, "en", "UTC", "{}")
            )
            for number in range(learners):
                copy.write_row(
                    (
                        uuid.uuid4(),
                        f"learner{number}@bench.test",
                        f"Learner {number}",
                        "student",
                        True,
                        now,
                        "vi" if number % 3 == 0 else "en",
                        zones[number % len(zones)],
                        "{}",
                    )
                )
        cursor.execute(
            "INSERT INTO courses (id, slug, title, language, level, category, status, owner_id, "
            "published_at, subtitle, description, tags, tags_text, lesson_titles, price_cents, "
            "currency) VALUES (%s, 'bench', 'Bench course', 'en', 'beginner', 'general', "
            "'published', %s, now(), '', '', '{}', '', '', 0, 'USD')",
            (course, teacher),
        )
        cursor.execute(
            "INSERT INTO enrollments (id, course_id, user_id, status, enrolled_at) "
            "SELECT gen_random_uuid(), %s, id, 'active', now() FROM users WHERE role = 'student'",
            (course,),
        )
        cursor.execute(
            "INSERT INTO notification_preferences (user_id, category, channel, enabled) "
            "SELECT id, 'announcements', 'email', false FROM users "
            "WHERE role = 'student' AND right(email, 13) LIKE '%%0@bench.test'"
        )
        cursor.execute(
            "INSERT INTO notification_quiet_hours (user_id, starts, ends) "
            "SELECT id, '22:00', '07:00' FROM users "
            "WHERE role = 'student' AND right(email, 13) LIKE '%%1@bench.test'"
        )
        cursor.execute(
            "INSERT INTO push_devices (id, user_id, token, platform) "
            "SELECT gen_random_uuid(), id, 'fcm-' || id, 'android' FROM users "
            "WHERE role = 'student' AND right(email, 13) SIMILAR TO '%%(2|3)@bench.test'"
        )
        conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return course


def clean(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM notifications")
        conn.execute("DELETE FROM announcements")
        conn.execute("DELETE FROM procrastinate_jobs")
        conn.execute("VACUUM ANALYZE notifications")
        conn.execute("VACUUM ANALYZE procrastinate_jobs")


def baseline_round(url: str, course: uuid.UUID) -> tuple[float, int]:
    with psycopg.connect(url) as conn:
        started = time.perf_counter()
        cursor = conn.execute(
            BASELINE,
            {
                "title": "Exam moved",
                "body": "The exam moves to Friday.",
                "url": f"/api/v1/courses/{course}/announcements",
                "data": json.dumps({"course_id": str(course)}),
                "course": course,
            },
        )
        conn.commit()
        return time.perf_counter() - started, cursor.rowcount


async def lyceum_round(database: Any, settings: Any, course: uuid.UUID) -> tuple[float, int, int]:
    from lyceum.kit.db import unit_of_work
    from lyceum.models.notifications import Announcement
    from lyceum.notifications.service import publish

    started = time.perf_counter()
    async with database.sessionmaker() as session, unit_of_work(session):
        announcement = Announcement(
            id=uuid.uuid4(),
            course_id=course,
            author_id=None,
            title="Exam moved",
            body_markdown="The exam moves to Friday.",
            body_html="<p>The exam moves to Friday.</p>",
            publish_at=dt.datetime.now(dt.UTC),
        )
        session.add(announcement)
        await session.flush()
        written = await publish(
            session, announcement, settings=settings, now=dt.datetime.now(dt.UTC)
        )
    elapsed = time.perf_counter() - started
    with psycopg.connect(database.url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM procrastinate_jobs WHERE task_name LIKE 'lyceum.notifications.%%'"
        ).fetchone()
        jobs = int(row[0]) if row else 0
    return elapsed, written, jobs


async def measure(
    url: str, course: uuid.UUID, rounds: int, learners: int, errors: list[str]
) -> list[dict[str, float]]:
    """Warm-up, then `rounds` of each, in one process with one engine, as a server runs
    (its compiled-statement cache and connection pool warm)."""
    from lyceum.config import Settings
    from lyceum.kit.db import Database

    settings = Settings(database_url=url, public_base_url="http://bench.test")
    database = Database(url, pool_size=2)
    measured: list[dict[str, float]] = []
    try:
        await lyceum_round(database, settings, course)
        clean(url)
        baseline_round(url, course)
        clean(url)
        for number in range(rounds):
            lyceum_seconds, written, jobs = await lyceum_round(database, settings, course)
            clean(url)
            baseline_seconds, baseline_rows = baseline_round(url, course)
            clean(url)
            if written != learners or baseline_rows != learners:
                errors.append(f"round {number}: wrote {written} / {baseline_rows} rows")
            measured.append(
                {
                    "lyceum_seconds": lyceum_seconds,
                    "baseline_seconds": baseline_seconds,
                    "jobs": jobs,
                }
            )
            print(
                f"round {number + 1}: lyceum {lyceum_seconds * 1000:.0f} ms "
                f"({written} notifications, {jobs} jobs), "
                f"bare INSERT ... SELECT {baseline_seconds * 1000:.0f} ms",
                flush=True,
            )
    finally:
        await database.dispose()
    return measured


def run(args: argparse.Namespace, temp: Path) -> dict[str, Any]:
    load_before = load_average()
    postgres, url = migrated_postgres(temp, DATABASE)
    errors: list[str] = []
    rounds: list[dict[str, float]] = []
    try:
        course = seed(url, args.learners)
        print(f"seeded a course with {args.learners} enrolled learners", flush=True)
        rounds = asyncio.run(measure(url, course, args.rounds, args.learners, errors))
    finally:
        postgres.stop()
    lyceum = statistics.median(r["lyceum_seconds"] for r in rounds) if rounds else float("nan")
    baseline = statistics.median(r["baseline_seconds"] for r in rounds) if rounds else float("nan")
    ratio = baseline / lyceum if rounds else float("nan")
    print(
        f"\nmedian: lyceum {lyceum * 1000:.0f} ms, baseline {baseline * 1000:.0f} ms, "
        f"ratio baseline/lyceum {ratio:.2f} (target >= 0.5)"
    )
    return {
        "scenario": SCENARIO,
        "config": {"learners": args.learners, "rounds": args.rounds},
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_before": load_before,
            "load_average_after": load_average(),
        },
        "median": {"lyceum_seconds": lyceum, "baseline_seconds": baseline},
        "ratio": ratio,
        "rounds": rounds,
        "errors": len(errors),
        "error_samples": errors,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--learners", type=int, default=10_000, help="enrolled learners (10000)")
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds (5)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write results here")
    parser.add_argument("--keep-temp", action="store_true", help="keep the temp dir afterwards")
    args = parser.parse_args(argv)
    if args.learners < 1 or args.rounds < 1:
        parser.error("need --learners and --rounds >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    return scenario_main(SCENARIO, parse_args(argv), run)


if __name__ == "__main__":
    sys.exit(main())
