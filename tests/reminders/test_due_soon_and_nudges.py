"""Due-soon reminders (24 h before a quiz or assignment closes, once per learner and
item, only to enrolled learners who have not submitted) and inactivity nudges (7 days
idle on an active enrollment, at most once a week), on frozen ticks."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.models.assessments import AttemptStatus
from lyceum.models.courses import EnrollmentStatus
from lyceum.models.identity import User
from lyceum.reminders.service import ReminderService
from tests.reminders import support
from tests.reminders.support import RecordingNotify

BASE = "http://lyceum.test"
TICK = dt.datetime(2026, 12, 9, 10, 0, tzinfo=dt.UTC)  # a Wednesday
HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)


def service(session: AsyncSession, notify: RecordingNotify) -> ReminderService:
    return ReminderService(session, base_url=BASE, notify=notify, declined=None)


def items(notify: RecordingNotify, learner: User) -> list[str]:
    return sorted(sent.context["item_title"] for sent in notify.to(learner, "due_soon"))


async def test_due_soon_reminds_each_enrolled_learner_once_per_item_until_they_submit(
    session: AsyncSession,
) -> None:
    owner = await support.user(session, name="Instructor")
    rows = await support.course(session, owner, title="Botany")
    quiz = await support.quiz(session, rows, due_at=TICK + 20 * HOUR)
    quiz.title = "Leaves quiz"
    window_quiz = await support.quiz(session, rows, available_until=TICK + 23 * HOUR)
    window_quiz.title = "Roots quiz"
    essay = await support.assignment(
        session, rows, due_at=TICK + 23 * HOUR + 59 * 60 * dt.timedelta(seconds=1)
    )
    # Not due soon: too late, already closed, unpublished.
    later = await support.assignment(session, rows, due_at=TICK + 25 * HOUR)
    later.title = "Later essay"
    past = await support.quiz(session, rows, due_at=TICK - HOUR)
    past.title = "Past quiz"
    draft = await support.quiz(session, rows, due_at=TICK + 2 * HOUR, published=False)
    draft.title = "Draft quiz"
    await session.flush()

    pending = await support.user(session, name="Pending")
    await support.enroll(session, pending, rows)
    done = await support.user(session, name="Done")
    await support.enroll(session, done, rows)
    await support.attempt(session, done, quiz, status=AttemptStatus.graded, at=TICK - DAY)
    await support.attempt(
        session, done, window_quiz, status=AttemptStatus.needs_review, at=TICK - DAY
    )
    await support.submit(session, done, essay, TICK - DAY)
    started = await support.user(session, name="Started")
    await support.enroll(session, started, rows)
    await support.attempt(session, started, quiz, status=AttemptStatus.in_progress, at=TICK - HOUR)
    await support.submit(session, started, essay, TICK - DAY)
    outsider = await support.user(session, name="Outsider")
    left = await support.user(session, name="Left")
    await support.enroll(session, left, rows, status=EnrollmentStatus.cancelled)
    notify = RecordingNotify()
    reminders = service(session, notify)

    await reminders.send_due_soon(TICK)

    assert items(notify, pending) == ["Leaves quiz", "Photosynthesis essay", "Roots quiz"]
    assert items(notify, done) == []
    # An attempt still in progress is not a submission.
    assert items(notify, started) == ["Leaves quiz", "Roots quiz"]
    assert items(notify, outsider) == [] and items(notify, left) == []
    # One call per item, for every learner it reminds.
    (leaves,) = [sent for sent in notify.sent if sent.context["item_title"] == "Leaves quiz"]
    assert sorted(leaves.user_ids) == sorted([pending.id, started.id])
    assert (leaves.category, leaves.kind, leaves.template) == ("reminders", "due_soon", "due_soon")
    assert leaves.context == {
        "item_title": "Leaves quiz",
        "course_title": "Botany",
        "due_at": "2026-12-10T06:00:00+00:00",
        "url": f"{BASE}/api/v1/quizzes/{quiz.id}",
    }
    assert leaves.url == leaves.context["url"]

    # Later ticks remind nobody twice; an item entering the window is reminded then.
    for tick in (TICK + dt.timedelta(minutes=15), TICK + HOUR + dt.timedelta(minutes=15)):
        await reminders.send_due_soon(tick)
    assert items(notify, pending) == [
        "Later essay",
        "Leaves quiz",
        "Photosynthesis essay",
        "Roots quiz",
    ]
    assert len(notify.to(pending)) == 4

    # A moved deadline is a new one: who has not submitted hears of it again; who has
    # submitted meanwhile does not.
    quiz.due_at = TICK + 22 * HOUR
    window_quiz.available_until = TICK + 21 * HOUR
    await support.attempt(session, started, window_quiz, status=AttemptStatus.graded, at=TICK)
    await reminders.send_due_soon(TICK + 2 * HOUR)
    assert items(notify, pending) == [
        "Later essay",
        "Leaves quiz",
        "Leaves quiz",
        "Photosynthesis essay",
        "Roots quiz",
        "Roots quiz",
    ]
    assert items(notify, started) == ["Later essay", "Leaves quiz", "Leaves quiz", "Roots quiz"]


async def test_an_idle_enrollment_is_nudged_after_seven_days_and_at_most_once_a_week(
    session: AsyncSession,
) -> None:
    owner = await support.user(session, name="Instructor")
    rows = await support.course(session, owner, lessons=3, title="Botany")
    idle = await support.user(session, name="Idle")
    await support.enroll(session, idle, rows, last_activity_at=TICK - 8 * DAY)
    await support.complete(session, idle, rows.lessons[0], TICK - 8 * DAY)
    never_started = await support.user(session, name="Never started")
    await support.enroll(session, never_started, rows, at=TICK - 10 * DAY)
    busy = await support.user(session, name="Busy")
    busy_enrollment = await support.enroll(session, busy, rows, last_activity_at=TICK - 6 * DAY)
    finished = await support.user(session, name="Finished")
    await support.enroll(
        session, finished, rows, status=EnrollmentStatus.completed, last_activity_at=TICK - 30 * DAY
    )
    notify = RecordingNotify()
    reminders = service(session, notify)

    await reminders.send_nudges(TICK)

    (nudge,) = notify.to(idle)
    assert (nudge.category, nudge.kind, nudge.template) == (
        "reminders",
        "inactivity_nudge",
        "inactivity_nudge",
    )
    assert nudge.user_ids == [idle.id]
    assert nudge.context == {
        "full_name": "Idle",
        "course_title": "Botany",
        "next_lesson_title": "Lesson 2",
        "url": f"{BASE}/api/v1/lessons/{rows.lessons[1].id}",
    }
    assert len(notify.to(never_started)) == 1
    assert notify.to(busy) == [] and notify.to(finished) == []

    # Still idle: nothing more during the week, every tick of it...
    for hours in range(1, 7 * 24, 5):
        await reminders.send_nudges(TICK + hours * HOUR)
    assert len(notify.to(idle)) == 1
    # ...but the busy learner, idle for 7 days by now, was nudged once.
    assert len(notify.to(busy)) == 1
    # A week after the first nudge, still idle: the second one.
    busy_enrollment.last_activity_at = TICK + 6 * DAY  # active again meanwhile
    await session.flush()
    await reminders.send_nudges(TICK + 7 * DAY)
    assert len(notify.to(idle)) == 2 and len(notify.to(never_started)) == 2
    assert len(notify.to(busy)) == 1


async def test_the_retention_sweep_forgets_old_claims_only(session: AsyncSession) -> None:
    owner = await support.user(session, name="Instructor")
    rows = await support.course(session, owner)
    idle = await support.user(session, name="Idle")
    await support.enroll(session, idle, rows, last_activity_at=TICK - 30 * DAY)
    notify = RecordingNotify()
    reminders = service(session, notify)
    await reminders.send_nudges(TICK - 20 * DAY)
    await reminders.send_nudges(TICK)
    assert len(notify.to(idle)) == 2

    assert await reminders.forget_sent_before(TICK - 10 * DAY) >= 1
    # The recent claim still guards its week.
    await reminders.send_nudges(TICK + DAY)
    assert len(notify.to(idle)) == 2
