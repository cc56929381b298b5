"""The rollups kept incrementally equal a from-scratch recomputation over the same
events: several batches through the real endpoint and the real services' facts, with
rollup runs between them, then every rollup table compared row for row.

The rollups read only events whose transactions have all finished (`analytics.cursor_repository`),
so this test works on committed data (its own users and courses, removed afterwards)."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from lyceum.analytics import repository
from lyceum.analytics.cursor_repository import position
from lyceum.analytics.repository import ROLLUPS
from lyceum.analytics.rollups import CURSOR, recompute_from_scratch, run_rollups
from lyceum.config import Settings
from lyceum.kit.db import unit_of_work
from lyceum.kit.runtime import Runtime
from lyceum.models.identity import Role
from tests.analytics.ingest_helpers import event, post
from tests.assessments.helpers import Member, member
from tests.conftest import client_for, make_app
from tests.courses.test_courses import published
from tests.support.clock import FrozenClock

API = "/api/v1"


@pytest.fixture
async def live(settings: Settings, runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    app = make_app(settings, runtime, None)
    app.state.clock = FrozenClock()
    async with client_for(app) as http:
        yield http


async def people(runtime: Runtime, count: int, role: Role = Role.student) -> list[Member]:
    async with runtime.database.engine.begin() as conn:
        return [await member(conn, runtime, role) for _ in range(count)]


async def roll_up_past(runtime: Runtime, user_ids: list[uuid.UUID]) -> None:
    """Run the rollups until their cursor has passed every event of these users (other
    tests' open transactions, in this cluster, may hold it back a moment)."""
    async with runtime.database.engine.connect() as conn:
        last = (
            await conn.execute(
                text(
                    "SELECT max(tx)::text FROM analytics_events"
                    " WHERE user_id = ANY(CAST(:users AS uuid[]))"
                ),
                {"users": user_ids},
            )
        ).scalar_one()
    deadline = time.monotonic() + 120
    while True:
        async with runtime.database.sessionmaker() as session, unit_of_work(session):
            await run_rollups(session)
            reached = await position(session, CURSOR)
        if reached is not None and last is not None and reached > int(last):
            return
        assert time.monotonic() < deadline, "the rollup cursor did not pass the test's events"
        await asyncio.sleep(0.2)


async def compare(
    runtime: Runtime, keys: dict[str, list[uuid.UUID]], users: list[uuid.UUID]
) -> dict[str, list[tuple[Any, ...]]]:
    stored_by_table = {}
    async with runtime.database.sessionmaker() as session:
        for rollup in ROLLUPS:
            stored = await repository.stored_rows(session, rollup, keys[rollup.key[0]])
            expected = await repository.recomputed_rows(session, rollup, users)
            assert stored == expected, rollup.table
            stored_by_table[rollup.table] = stored
    return stored_by_table


async def remove(runtime: Runtime, users: list[uuid.UUID], courses: list[uuid.UUID]) -> None:
    async with runtime.database.engine.begin() as conn:
        params = {"users": users, "courses": courses}
        await conn.execute(
            text("DELETE FROM analytics_events WHERE user_id = ANY(CAST(:users AS uuid[]))"), params
        )
        await conn.execute(
            text("DELETE FROM analytics_event_keys WHERE user_id = ANY(CAST(:users AS uuid[]))"),
            params,
        )
        for rollup in ROLLUPS:
            column = "course_id" if "course_id" in rollup.names else "user_id"
            ids = "courses" if column == "course_id" else "users"
            await conn.execute(
                text(f"DELETE FROM {rollup.table} WHERE {column} = ANY(CAST(:{ids} AS uuid[]))"),  # noqa: S608
                params,
            )


async def test_incremental_rollups_equal_a_recomputation(
    live: httpx.AsyncClient, runtime: Runtime
) -> None:
    (teacher,) = await people(runtime, 1, Role.instructor)
    learners = await people(runtime, 4)
    users = [learner.id for learner in learners]
    first, first_lessons = await published(live, teacher)  # type: ignore[arg-type]
    second, second_lessons = await published(live, teacher)  # type: ignore[arg-type]
    courses = [uuid.UUID(first["id"]), uuid.UUID(second["id"])]
    lessons = [uuid.UUID(lesson) for lesson in first_lessons + second_lessons]
    keys = {"course_id": courses, "lesson_id": lessons, "user_id": users}
    chooser = random.Random(19)
    now = dt.datetime.now(dt.UTC)
    try:
        for learner in learners:
            enrolled = await live.post(
                f"{API}/courses/{first['id']}/enrollments", headers=learner.headers
            )
            assert enrolled.status_code == 201, enrolled.text
        for round_number in range(4):
            for learner in learners:
                batch = []
                for _ in range(chooser.randint(3, 12)):
                    lesson = chooser.choice(first_lessons + second_lessons[:1])
                    kind = chooser.choice(["lesson", "lesson", "course"])
                    when = now - dt.timedelta(
                        days=chooser.randint(0, 9), minutes=chooser.randint(0, 600)
                    )
                    target = lesson if kind == "lesson" else first["id"]
                    batch.append(
                        event(
                            kind,
                            target,
                            verb=chooser.choice(["viewed", "viewed", "started", "paused"]),
                            at=when,
                            duration_ms=chooser.choice([None, chooser.randint(0, 600_000)]),
                        )
                    )
                batch.append(batch[0])  # a repeat, ignored
                response = await post(live, learner.headers, batch)
                assert response.status_code == 202, response.text
                assert response.json()["duplicates"] == 1
            # facts between batches: a lesson completed per learner and round
            for learner in learners[: round_number + 1]:
                done = await live.post(
                    f"{API}/lessons/{first_lessons[round_number % 3]}/complete",
                    headers=learner.headers,
                )
                assert done.status_code == 200, done.text
            if round_number % 2 == 0:
                await roll_up_past(runtime, users)
        await roll_up_past(runtime, users)
        tables = await compare(runtime, keys, users)

        # A hand check of what the columns count, on one learner.
        async with runtime.database.engine.connect() as conn:
            mine = (
                await conn.execute(
                    text(
                        "SELECT count(*) FILTER (WHERE verb = 'viewed'),"
                        " COALESCE(sum(duration_ms), 0), count(*),"
                        " count(*) FILTER (WHERE verb = 'completed' AND object_type = 'lesson')"
                        " FROM analytics_events WHERE user_id = :user AND course_id = :course"
                    ),
                    {"user": users[0], "course": courses[0]},
                )
            ).one()
        (row,) = [r for r in tables["analytics_learner_course"] if r[:2] == (users[0], courses[0])]
        names = ROLLUPS[2].names
        learner_course = dict(zip(names, row, strict=True))
        assert learner_course["events"] == mine[2]
        assert learner_course["time_ms"] == mine[1]
        assert learner_course["lessons_completed"] == mine[3] == 3
        course_days = [
            dict(zip(ROLLUPS[0].names, r, strict=True)) for r in tables["analytics_course_daily"]
        ]
        first_days = [day for day in course_days if day["course_id"] == courses[0]]
        assert sum(day["enrollments"] for day in first_days) == 4
        # rounds 0-2 complete a new lesson for 1, 2, 3 learners; round 3 the first lesson
        # again, new to 3 of the 4 (a lesson completes once)
        assert sum(day["completions"] for day in first_days) == 1 + 2 + 3 + 3

        # The from-scratch rebuild leaves the same numbers.
        async with runtime.database.sessionmaker() as session, unit_of_work(session):
            await recompute_from_scratch(session)
        assert await compare(runtime, keys, users) == tables
    finally:
        await remove(runtime, users, courses)
