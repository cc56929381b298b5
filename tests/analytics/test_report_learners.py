"""Learners at risk (each rule triggering with its reason, and not just inside its
threshold) and the learner's own dashboard, against cases worked out by hand."""

from __future__ import annotations

import datetime as dt
import uuid

import httpx
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from lyceum.analytics import risk
from lyceum.analytics.insights import streak
from lyceum.models.analytics import LearnerCourse, LearnerDaily
from lyceum.models.assessments import (
    Assignment,
    AttemptStatus,
    EssaySubmission,
    Quiz,
    QuizAttempt,
    ReviewPolicy,
    SubmissionStatus,
)
from lyceum.models.courses import EnrollmentStatus
from tests.analytics.report_fixtures import (
    NOW,
    TODAY,
    add_course,
    add_rows,
    add_user,
    ago,
    complete,
    enroll,
    get_csv,
    get_json,
    taught_course,
)
from tests.identity.helpers import account
from tests.support.clock import FrozenClock

API = "/api/v1/analytics"
MINUTE = 1 / (24 * 60)


async def _quiz_percents(
    session: AsyncSession, quiz: Quiz, learner: uuid.UUID, percents: list[float]
) -> None:
    for number, percent in enumerate(percents, start=1):
        await add_rows(
            session,
            QuizAttempt(
                quiz_id=quiz.id,
                course_id=quiz.course_id,
                user_id=learner,
                number=number,
                status=AttemptStatus.graded,
                started_at=ago(days=20 - number),
                graded_at=ago(days=20 - number),
                max_score=100,
                score=percent,
                percent=percent,
            ),
        )


async def test_at_risk_rules_each_with_its_reason(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    session: AsyncSession,
    clock: FrozenClock,
) -> None:
    world = await taught_course(client, connection, session, clock)  # 3 lessons
    course = world.course_id
    l1, l2, _ = world.lesson_ids
    quiz = Quiz(course_id=course, title="Weekly", pass_percent=50, published=True)
    await add_rows(session, quiz)
    learners: dict[str, uuid.UUID] = {}

    async def learner(
        name: str,
        *,
        enrolled_days: float = 30,
        last_activity_days: float | None = 1,
        completions: tuple[float, ...] = (1, 1),
        percents: tuple[float, ...] = (),
        status: EnrollmentStatus = EnrollmentStatus.active,
    ) -> uuid.UUID:
        user = await add_user(session, name)
        learners[name] = user
        await enroll(
            session,
            course,
            user,
            enrolled_at=ago(enrolled_days),
            status=status,
            last_activity_at=None if last_activity_days is None else ago(last_activity_days),
        )
        for lesson, days in zip((l1, l2), completions, strict=False):
            await complete(session, course, user, lesson, ago(days))
        await _quiz_percents(session, quiz, user, list(percents))
        return user

    # inactive: last activity exactly 14 days ago (yes), 14 days less a minute (no).
    await learner("inactive_yes", last_activity_days=14)
    quiet = await learner("inactive_no", last_activity_days=None)
    await add_rows(
        session,
        LearnerCourse(user_id=quiet, course_id=course, first_at=ago(30), last_at=ago(14 - MINUTE)),
    )
    # Never active since enrolling 20 days ago (and no completions: stalled too).
    await learner("never_seen", enrolled_days=20, last_activity_days=None, completions=())
    # falling scores: three strictly decreasing; a drop of 20 below the earlier mean.
    await learner("falling_three", percents=(90, 80, 70))
    await learner("not_strictly", percents=(90, 80, 80))  # drop 5 below 85
    await learner("drop_exact", percents=(80, 80, 60))  # 20 below 80
    await learner("drop_short", percents=(80, 80, 60.5))  # 19.5 below 80
    # stalled: enrolled 14 days ago, 1 of 3 lessons, the last one 14 days ago.
    await learner("stalled_yes", enrolled_days=14, completions=(14,))
    await learner("stalled_recent", enrolled_days=20, completions=(14 - MINUTE,))
    await learner("stalled_new", enrolled_days=14 - MINUTE, completions=())
    await learner("stalled_half", enrolled_days=20, completions=(20, 20))  # 2 of 3: not < 50 %
    # Completed enrollments are never at risk.
    await learner(
        "done", status=EnrollmentStatus.completed, last_activity_days=60, percents=(90, 50)
    )
    await session.commit()

    path = f"{API}/courses/{course}/at-risk"
    body = await get_json(client, path, world.teacher, size=100)
    found = {row["user_id"]: [reason["code"] for reason in row["reasons"]] for row in body["items"]}
    names = {str(user): name for name, user in learners.items()}
    assert {names[user]: codes for user, codes in found.items()} == {
        "inactive_yes": ["inactive"],
        "never_seen": ["inactive", "stalled"],
        "falling_three": ["falling_scores"],
        "drop_exact": ["falling_scores"],
        "stalled_yes": ["stalled"],
    }
    assert body["total"] == 5
    # Most reasons first.
    assert names[body["items"][0]["user_id"]] == "never_seen"
    first = body["items"][0]
    assert first["lessons_completed"] == 0 and first["lessons_total"] == 3
    assert "20 days" in first["reasons"][0]["detail"]

    page = await get_json(client, path, world.teacher, size=2, page=3)
    assert (page["total"], page["pages"], len(page["items"])) == (5, 3, 1)

    rows = await get_csv(client, path, world.teacher, size=100)
    assert rows[0][0] == "user_id"
    assert [(row[0], row[7]) for row in rows[1:]] == [
        (item["user_id"], "; ".join(reason["code"] for reason in item["reasons"]))
        for item in body["items"]
    ]


def test_the_inactivity_threshold_is_a_setting() -> None:
    state = risk.LearnerState(
        enrolled_at=NOW - dt.timedelta(days=60),
        last_activity_at=NOW - dt.timedelta(days=10),
        lessons_completed=3,
        last_completion_at=NOW - dt.timedelta(days=10),
        quiz_percents=[],
    )
    assert risk.reasons(state, NOW, lesson_count=3, inactive_days=14) == []
    assert [r.code for r in risk.reasons(state, NOW, lesson_count=3, inactive_days=10)] == [
        "inactive"
    ]


def test_streak_ends_today_or_yesterday() -> None:
    days = [TODAY - dt.timedelta(days=n) for n in (1, 2, 3, 5)]
    assert streak(days, TODAY) == 3  # yesterday and the two days before
    assert streak([TODAY, *days], TODAY) == 4
    assert streak([TODAY - dt.timedelta(days=2)], TODAY) == 0
    assert streak([], TODAY) == 0


async def test_learner_dashboard(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    session: AsyncSession,
    clock: FrozenClock,
) -> None:
    world = await taught_course(client, connection, session, clock)
    me = await account(client, connection, prefix="learner")
    other = await account(client, connection, prefix="other")
    course = world.course_id
    l1, l2, _ = world.lesson_ids
    await enroll(session, course, me.id, enrolled_at=ago(20))
    await complete(session, course, me.id, l1, ago(5))
    await complete(session, course, me.id, l2, ago(4))
    dropped, _, _ = await add_course(session, world.teacher.id)
    await enroll(session, dropped, me.id, enrolled_at=ago(30), status=EnrollmentStatus.cancelled)
    await add_rows(
        session,
        *(
            LearnerDaily(
                user_id=me.id, day=TODAY - dt.timedelta(days=n), events=events, time_ms=time_ms
            )
            for n, events, time_ms in (
                (0, 3, 60_000),
                (1, 2, 30_000),
                (2, 1, 10_000),
                (4, 5, 50_000),
                (10, 1, 100_000),
            )
        ),
    )
    shown = Quiz(course_id=course, title="Shown", pass_percent=50, published=True)
    hidden = Quiz(
        course_id=course,
        title="Hidden",
        pass_percent=50,
        published=True,
        review_policy=ReviewPolicy.none,
    )
    assignment = Assignment(
        course_id=course, title="Essay", prompt="Argue.", rubric={}, points=10, pass_percent=50
    )
    await add_rows(session, shown, hidden, assignment)
    for quiz in (shown, hidden):
        await add_rows(
            session,
            QuizAttempt(
                quiz_id=quiz.id,
                course_id=course,
                user_id=me.id,
                number=1,
                status=AttemptStatus.graded,
                started_at=ago(2),
                graded_at=ago(2),
                max_score=4,
                score=3,
                percent=75,
            ),
        )
    released = EssaySubmission(
        assignment_id=assignment.id,
        course_id=course,
        user_id=me.id,
        text="words",
        word_count=1,
        source="text",
        submitted_at=ago(3),
        status=SubmissionStatus.released,
        points=8,
        percent=80,
        released_at=ago(1),
    )
    await add_rows(session, released)
    await session.commit()

    body = await get_json(client, "/api/v1/me/analytics", me)
    assert body["time_ms_total"] == 250_000
    assert body["time_ms_7d"] == 150_000  # days 0, 1, 2 and 4
    assert body["streak_days"] == 3
    assert [
        (c["course_id"], c["lessons_completed"], c["lessons_total"]) for c in body["courses"]
    ] == [(str(course), 2, 3)]
    assert body["courses"][0]["percent"] == 66.67
    assert [
        (s["kind"], s["title"], s["score"], s["max_score"], s["percent"])
        for s in body["recent_scores"]
    ] == [
        ("essay", "Essay", 8, 10, 80),
        ("quiz", "Shown", 3, 4, 75),
    ]
    rows = await get_csv(client, "/api/v1/me/analytics", me)
    assert rows[1:4] == [
        ["time_ms_total", "", "", "250000", ""],
        ["time_ms_7d", "", "", "150000", ""],
        ["streak_days", "", "", "3", ""],
    ]
    # Another learner reads only their own dashboard: there is no way to name someone else.
    theirs = await get_json(client, "/api/v1/me/analytics", other)
    assert (theirs["time_ms_total"], theirs["courses"], theirs["recent_scores"]) == (0, [], [])
    assert (await client.get("/api/v1/me/analytics")).status_code == 401
