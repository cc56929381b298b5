"""The course overview and the lesson funnel against small cases worked out by hand, as
JSON and as CSV (the same numbers)."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from lyceum.models.analytics import CourseDaily, LearnerCourse, LearnerLesson
from lyceum.models.courses import EnrollmentStatus
from tests.analytics.report_fixtures import (
    TODAY,
    add_rows,
    add_user,
    ago,
    complete,
    enroll,
    get_csv,
    get_json,
    taught_course,
)
from tests.support.clock import FrozenClock

API = "/api/v1/analytics"
DAY = 86400.0


async def test_overview_counts_enrollments_activity_completion_and_days(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    session: AsyncSession,
    clock: FrozenClock,
) -> None:
    world = await taught_course(client, connection, session, clock)
    course = world.course_id
    a, b, c, d, e = [await add_user(session, name) for name in ("A", "B", "C", "D", "E")]
    # A: active, last event 2 days ago (rollup) -> active over 7 and 30 days.
    await enroll(session, course, a, enrolled_at=ago(40))
    # B: active, no rollup row, progress 10 days ago -> active over 30 days only.
    await enroll(session, course, b, enrolled_at=ago(40), last_activity_at=ago(10))
    # C: completed in 15 days, last seen 35 days ago -> not active.
    await enroll(
        session,
        course,
        c,
        enrolled_at=ago(50),
        status=EnrollmentStatus.completed,
        completed_at=ago(35),
        last_activity_at=ago(35),
    )
    # D: completed in 5 days; progress 15 days ago but an event 6 days ago -> active.
    await enroll(
        session,
        course,
        d,
        enrolled_at=ago(20),
        status=EnrollmentStatus.completed,
        completed_at=ago(15),
        last_activity_at=ago(15),
    )
    # E: cancelled (active yesterday, but cancelled enrollments are not counted active).
    await enroll(
        session,
        course,
        e,
        enrolled_at=ago(10),
        status=EnrollmentStatus.cancelled,
        last_activity_at=ago(1),
    )

    def seen(user: object, days: float) -> LearnerCourse:
        return LearnerCourse(user_id=user, course_id=course, first_at=ago(40), last_at=ago(days))

    await add_rows(
        session,
        seen(a, 2),
        seen(d, 6),
        CourseDaily(
            course_id=course,
            day=TODAY - dt.timedelta(days=2),
            events=10,
            time_ms=60_000,
            views=6,
            completions=2,
            enrollments=1,
            tutor_questions=3,
            chat_messages=0,
        ),
        CourseDaily(
            course_id=course,
            day=TODAY,
            events=4,
            time_ms=5_000,
            views=1,
            completions=0,
            enrollments=0,
            tutor_questions=1,
            chat_messages=0,
        ),
        # Outside the window.
        CourseDaily(
            course_id=course,
            day=TODAY - dt.timedelta(days=5),
            events=99,
            time_ms=1,
            views=1,
            completions=1,
            enrollments=1,
            tutor_questions=1,
            chat_messages=0,
        ),
    )
    await session.commit()
    window = {"from": (TODAY - dt.timedelta(days=2)).isoformat(), "to": TODAY.isoformat()}
    path = f"{API}/courses/{course}/overview"
    body = await get_json(client, path, world.teacher, **window)
    assert body["enrollments"] == {"total": 5, "active": 2, "completed": 2, "cancelled": 1}
    assert body["active_learners_7d"] == 2  # A, D
    assert body["active_learners_30d"] == 3  # A, B, D
    assert body["completion_rate"] == pytest.approx(2 / 4)  # C, D of the 4 not cancelled
    assert body["median_seconds_to_complete"] == pytest.approx(10 * DAY)  # median(15 d, 5 d)
    days = [(x["day"], x["events"], x["time_ms"], x["tutor_questions"]) for x in body["days"]]
    assert days == [
        ((TODAY - dt.timedelta(days=2)).isoformat(), 10, 60_000, 3),
        ((TODAY - dt.timedelta(days=1)).isoformat(), 0, 0, 0),
        (TODAY.isoformat(), 4, 5_000, 1),
    ]
    rows = await get_csv(client, path, world.teacher, **window)
    assert rows[0] == ["metric", "day", "value"]
    cells = {(metric, day): value for metric, day, value in rows[1:]}
    assert cells[("enrollments_total", "")] == "5"
    assert cells[("active_learners_7d", "")] == "2"
    assert cells[("active_learners_30d", "")] == "3"
    assert float(cells[("completion_rate", "")]) == body["completion_rate"]
    assert float(cells[("median_seconds_to_complete", "")]) == pytest.approx(10 * DAY)
    assert cells[("events", (TODAY - dt.timedelta(days=2)).isoformat())] == "10"
    assert cells[("time_ms", TODAY.isoformat())] == "5000"
    # Accept: text/csv asks for the same CSV.
    by_header = await client.get(
        path, params=window, headers={**world.teacher.headers, "Accept": "text/csv"}
    )
    assert by_header.headers["content-type"].startswith("text/csv")


async def test_overview_window_is_checked(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    session: AsyncSession,
    clock: FrozenClock,
) -> None:
    world = await taught_course(client, connection, session, clock)
    path = f"{API}/courses/{world.course_id}/overview"
    for params in ({"from": "2026-06-10", "to": "2026-06-01"}, {"from": "2025-01-01"}):
        response = await client.get(path, params=params, headers=world.teacher.headers)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert "from" in response.text


async def test_lesson_funnel_in_syllabus_order(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    session: AsyncSession,
    clock: FrozenClock,
) -> None:
    world = await taught_course(client, connection, session, clock)
    course = world.course_id
    l1, l2, l3 = world.lesson_ids  # module 1: l1, l2; module 2: l3
    a, b, c, d, e, outsider = [
        await add_user(session, name) for name in ("A", "B", "C", "D", "E", "Outsider")
    ]
    for user in (a, c, d):
        await enroll(session, course, user, enrolled_at=ago(30))
    await enroll(
        session,
        course,
        b,
        enrolled_at=ago(30),
        status=EnrollmentStatus.completed,
        completed_at=ago(2),
    )
    await enroll(session, course, e, enrolled_at=ago(30), status=EnrollmentStatus.cancelled)

    def worked(user: object, lesson: object, time_ms: int, done: bool = False) -> LearnerLesson:
        return LearnerLesson(
            user_id=user,
            lesson_id=lesson,
            course_id=course,
            first_at=ago(20),
            last_at=ago(10),
            completed_at=ago(10) if done else None,
            views=1,
            time_ms=time_ms,
        )

    await add_rows(
        session,
        worked(a, l1, 60_000, done=True),
        worked(a, l2, 120_000),
        worked(b, l1, 30_000),
        worked(b, l2, 30_000),
        worked(b, l3, 90_000),
        worked(d, l1, 40_000),
        worked(d, l3, 20_000),  # D skipped lesson 2
        worked(e, l2, 10_000),
        worked(outsider, l1, 500_000),  # not enrolled: not counted
    )
    await complete(session, course, a, l1, ago(10))
    for lesson in (l1, l2, l3):
        await complete(session, course, b, lesson, ago(5))
    await complete(session, course, c, l1, ago(9))  # C: a completion, no events
    await session.commit()

    path = f"{API}/courses/{course}/lessons"
    body = await get_json(client, path, world.teacher)
    assert body["learners"] == 5
    got = [
        (
            row["lesson_id"],
            row["module_position"],
            row["lesson_position"],
            row["reached"],
            row["completed"],
            row["dropped"],
        )
        for row in body["items"]
    ]
    # Furthest reached, enrollment not completed: A -> l2, C -> l1, D -> l3, E -> l2.
    assert got == [
        (str(l1), 1, 1, 4, 3, 1),  # A, B, C, D reached; A, B, C completed; C dropped
        (str(l2), 1, 2, 3, 1, 2),  # A, B, E; B; A and E
        (str(l3), 2, 1, 2, 1, 1),  # B, D; B; D
    ]
    times = [(row["median_time_ms"], row["mean_time_ms"]) for row in body["items"]]
    assert times[0] == (40_000, pytest.approx(130_000 / 3))  # 60 000, 30 000, 40 000
    assert times[1] == (30_000, pytest.approx(160_000 / 3))  # 120 000, 30 000, 10 000
    assert times[2] == (55_000, 55_000)  # 90 000, 20 000

    rows = await get_csv(client, path, world.teacher)
    assert rows[0][:3] == ["module_position", "module_title", "lesson_position"]
    as_json = [
        [
            str(row["module_position"]),
            row["module_title"],
            str(row["lesson_position"]),
            row["lesson_id"],
            row["lesson_title"],
            str(row["reached"]),
            str(row["completed"]),
            str(row["dropped"]),
        ]
        for row in body["items"]
    ]
    assert [row[:8] for row in rows[1:]] == as_json
    assert [float(row[8]) for row in rows[1:]] == [40_000, 30_000, 55_000]
