"""The weekly progress digest: Monday 09:00 in each learner's own time zone, for learners
with an active enrollment who want it, once per week even when two workers run the
tick at the same time."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.kit.db import unit_of_work
from lyceum.kit.runtime import Runtime
from lyceum.models import notifications as models
from lyceum.models.courses import Course, EnrollmentStatus
from lyceum.models.identity import User
from lyceum.models.reminders import ReminderSent
from lyceum.notifications import service as service_module
from lyceum.reminders.service import ReminderService, digest_zones
from lyceum.reminders.tasks import run_tick
from tests.reminders import support
from tests.reminders.support import RecordingNotify

BASE = "http://lyceum.test"
UTC = dt.UTC
# Monday 7 December 2026, 09:00 local in each zone (no daylight saving in December).
HO_CHI_MINH_NINE = dt.datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
LONDON_NINE = dt.datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
NEW_YORK_NINE = dt.datetime(2026, 12, 7, 14, 0, tzinfo=UTC)


def service(session: AsyncSession, notify: RecordingNotify, **options: object) -> ReminderService:
    # `declined` reads the notifications domain's preferences; the tests below that do not
    # set it check the selection without them.
    options = {"declined": None, **options}
    return ReminderService(session, base_url=BASE, notify=notify, **options)  # type: ignore[arg-type]


async def learner_in(
    session: AsyncSession, zone: str, owner: User
) -> tuple[User, support.CourseRows]:
    learner = await support.user(session, time_zone=zone, name=f"Learner in {zone}")
    rows = await support.course(session, owner)
    await support.enroll(session, learner, rows)
    return learner, rows


def test_the_digest_window_is_monday_nine_to_noon_local() -> None:
    zones, monday = digest_zones(HO_CHI_MINH_NINE)
    assert "Asia/Ho_Chi_Minh" in zones and "Europe/London" not in zones
    assert monday == "2026-12-07"
    assert "Asia/Ho_Chi_Minh" not in digest_zones(HO_CHI_MINH_NINE - dt.timedelta(minutes=15))[0]
    assert (
        "Asia/Ho_Chi_Minh" in digest_zones(HO_CHI_MINH_NINE + dt.timedelta(hours=2, minutes=45))[0]
    )
    assert "Asia/Ho_Chi_Minh" not in digest_zones(HO_CHI_MINH_NINE + dt.timedelta(hours=3))[0]
    assert "Asia/Ho_Chi_Minh" not in digest_zones(HO_CHI_MINH_NINE + dt.timedelta(days=1))[0]


async def test_each_learner_gets_the_digest_at_nine_on_monday_in_their_own_zone(
    session: AsyncSession,
) -> None:
    owner = await support.user(session, name="Instructor")
    hanoi, _ = await learner_in(session, "Asia/Ho_Chi_Minh", owner)
    london, _ = await learner_in(session, "Europe/London", owner)
    new_york, _ = await learner_in(session, "America/New_York", owner)
    learners = (hanoi, london, new_york)
    notify = RecordingNotify()
    reminders = service(session, notify)

    def receivers() -> set[str]:
        return {learner.timezone for learner in learners if notify.to(learner, "weekly_progress")}

    # 08:45 in Ho Chi Minh City: nobody yet.
    await reminders.send_digests(HO_CHI_MINH_NINE - dt.timedelta(minutes=15))
    assert receivers() == set()
    await reminders.send_digests(HO_CHI_MINH_NINE)
    assert receivers() == {"Asia/Ho_Chi_Minh"}
    # 08:45 in London, then 09:00.
    await reminders.send_digests(LONDON_NINE - dt.timedelta(minutes=15))
    assert receivers() == {"Asia/Ho_Chi_Minh"}
    await reminders.send_digests(LONDON_NINE)
    assert receivers() == {"Asia/Ho_Chi_Minh", "Europe/London"}
    await reminders.send_digests(NEW_YORK_NINE - dt.timedelta(minutes=15))
    assert receivers() == {"Asia/Ho_Chi_Minh", "Europe/London"}
    await reminders.send_digests(NEW_YORK_NINE)
    assert receivers() == {"Asia/Ho_Chi_Minh", "Europe/London", "America/New_York"}

    # Later ticks that Monday morning, and Tuesday at nine, send nothing more.
    for tick in (
        HO_CHI_MINH_NINE + dt.timedelta(minutes=15),
        LONDON_NINE + dt.timedelta(hours=1),
        NEW_YORK_NINE + dt.timedelta(days=1),
        HO_CHI_MINH_NINE + dt.timedelta(days=1),
        LONDON_NINE + dt.timedelta(days=1),
    ):
        await reminders.send_digests(tick)
    assert all(len(notify.to(learner)) == 1 for learner in learners)

    # The next Monday is a new week.
    await reminders.send_digests(LONDON_NINE + dt.timedelta(days=7))
    assert len(notify.to(london)) == 2


async def test_the_digest_says_progress_next_lesson_and_this_weeks_work(
    session: AsyncSession,
) -> None:
    owner = await support.user(session, name="Instructor")
    learner = await support.user(session, time_zone="Europe/London", name="Lan Nguyen")
    botany = await support.course(session, owner, lessons=4, title="Botany")
    algebra = await support.course(session, owner, lessons=2, title="Algebra")
    await support.enroll(session, learner, botany, at=support.LONG_AGO)
    await support.enroll(session, learner, algebra, at=support.LONG_AGO + dt.timedelta(days=1))
    # One lesson long ago, one this week; Algebra untouched.
    await support.complete(session, learner, botany.lessons[0], support.LONG_AGO)
    await support.complete(session, learner, botany.lessons[1], LONDON_NINE - dt.timedelta(days=2))
    notify = RecordingNotify()

    assert await service(session, notify).send_digests(LONDON_NINE) >= 1

    (sent,) = notify.to(learner)
    assert sent.user_ids == [learner.id]
    assert (sent.category, sent.kind, sent.template) == (
        "weekly_digest",
        "weekly_progress",
        "weekly_progress",
    )
    assert sent.dedupe_key == "weekly_digest:2026-12-07"
    assert sent.context == {
        "full_name": "Lan Nguyen",
        "week_first": "2026-11-30",
        "week_last": "2026-12-06",
        "courses": [
            {
                "title": "Botany",
                "percent": 50.0,
                "next_lesson_title": "Lesson 3",
                "next_lesson_url": f"{BASE}/api/v1/lessons/{botany.lessons[2].id}",
                "lessons_completed_this_week": 1,
            },
            {
                "title": "Algebra",
                "percent": 0.0,
                "next_lesson_title": "Lesson 1",
                "next_lesson_url": f"{BASE}/api/v1/lessons/{algebra.lessons[0].id}",
                "lessons_completed_this_week": 0,
            },
        ],
    }
    assert sent.body == "1 lesson completed this week across 2 courses."


async def test_no_digest_without_an_active_enrollment_or_for_those_who_turned_it_off(
    session: AsyncSession,
) -> None:
    owner = await support.user(session, name="Instructor")
    rows = await support.course(session, owner)
    no_courses = await support.user(session, time_zone="Europe/London")
    finished = await support.user(session, time_zone="Europe/London")
    await support.enroll(session, finished, rows, status=EnrollmentStatus.completed)
    left = await support.user(session, time_zone="Europe/London")
    await support.enroll(session, left, rows, status=EnrollmentStatus.cancelled)
    declined = await support.user(session, time_zone="Europe/London")
    await support.enroll(session, declined, rows)
    inactive = await support.user(session, time_zone="Europe/London")
    inactive.is_active = False
    await support.enroll(session, inactive, rows)
    wants = await support.user(session, time_zone="Europe/London")
    await support.enroll(session, wants, rows)
    asked: list[str] = []

    def declined_users(category: str):  # type: ignore[no-untyped-def]
        asked.append(category)
        return select(User.id).where(User.id == declined.id)

    notify = RecordingNotify()
    await service(session, notify, declined=declined_users).send_digests(LONDON_NINE)

    assert asked == ["weekly_digest"]
    assert len(notify.to(wants)) == 1
    for nobody in (no_courses, finished, left, declined, inactive):
        assert notify.to(nobody) == []


@pytest.fixture
async def committed_learners(runtime: Runtime):  # type: ignore[no-untyped-def]
    """Three learners in Ho Chi Minh City, committed (the ticks below run on
    connections of their own), removed afterwards."""
    async with runtime.database.sessionmaker() as session, unit_of_work(session):
        owner = await support.user(session, name="Instructor")
        learners = [await learner_in(session, "Asia/Ho_Chi_Minh", owner) for _ in range(3)]
    yield [learner for learner, _ in learners]
    async with runtime.database.sessionmaker() as session, unit_of_work(session):
        await session.execute(delete(Course).where(Course.owner_id == owner.id))
        ids = [owner.id, *(learner.id for learner, _ in learners)]
        await session.execute(delete(User).where(User.id.in_(ids)))


async def test_two_workers_on_the_same_tick_send_each_digest_once(
    runtime: Runtime, committed_learners: list[User]
) -> None:
    notify = RecordingNotify()

    async def tick() -> int:
        async with runtime.database.sessionmaker() as session, unit_of_work(session):
            return await service(session, notify).send_digests(HO_CHI_MINH_NINE)

    await asyncio.gather(tick(), tick())

    for learner in committed_learners:
        assert len(notify.to(learner)) == 1
    async with runtime.database.sessionmaker() as session:
        claims = await session.scalars(
            select(ReminderSent.user_id).where(
                ReminderSent.user_id.in_([learner.id for learner in committed_learners])
            )
        )
        assert sorted(claims) == sorted(learner.id for learner in committed_learners)


async def test_two_whole_ticks_in_small_batches_at_once_send_each_digest_once(
    runtime: Runtime, committed_learners: list[User]
) -> None:
    notify = RecordingNotify()
    await asyncio.gather(
        *(
            run_tick(
                runtime,
                ReminderService.send_digests,
                HO_CHI_MINH_NINE,
                notify=notify,
                declined=None,
                batch_size=1,
            )
            for _ in range(2)
        )
    )
    for learner in committed_learners:
        assert len(notify.to(learner)) == 1


async def test_learners_who_turned_the_digest_off_on_every_channel_are_not_claimed(
    session: AsyncSession,
) -> None:
    """Through the notifications domain's preferences (the default `declined`)."""
    owner = await support.user(session, name="Instructor")
    rows = await support.course(session, owner)
    category = models.Category.weekly_digest
    on_by_default = [c for c in models.Channel if service_module.default_enabled(category, c)]
    everything_off = await support.user(session, time_zone="Europe/London")
    mail_off = await support.user(session, time_zone="Europe/London")
    for learner in (everything_off, mail_off):
        await support.enroll(session, learner, rows)
    session.add_all(
        [
            models.NotificationPreference(
                user_id=everything_off.id, category=category, channel=channel, enabled=False
            )
            for channel in on_by_default
        ]
        + [
            models.NotificationPreference(
                user_id=mail_off.id,
                category=category,
                channel=models.Channel.email,
                enabled=False,
            )
        ]
    )
    await session.flush()
    notify = RecordingNotify()

    await ReminderService(session, base_url=BASE, notify=notify).send_digests(LONDON_NINE)

    assert notify.to(everything_off) == []
    assert len(notify.to(mail_off)) == 1
