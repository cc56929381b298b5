"""The periodic jobs of the scheduled learner messages: every 15 minutes the digest,
due-soon and inactivity ticks (each a loop of short claim-and-send transactions), and
every night the retention sweep of `reminders_sent`.

Each tick's time is the periodic job's `timestamp`, so a tick run late, or twice by two
workers, decides exactly as it would have on time; the claims make it send once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable

import structlog

from lyceum.kit.jobs import JobContext, Queue, Resources, job_app, resources, task, transaction
from lyceum.notifications.service import notify
from lyceum.reminders.service import (
    BATCH_SIZE,
    DeclinedUsers,
    Notify,
    ReminderService,
    declined_in_preferences,
)

logger = structlog.get_logger("lyceum.reminders")

EVERY_15_MINUTES = "*/15 * * * *"

Send = Callable[[ReminderService, dt.datetime], Awaitable[int]]


def tick_of(timestamp: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC)


async def run_tick(
    runtime: Resources,
    send: Send,
    tick: dt.datetime,
    *,
    notify: Notify = notify,
    declined: DeclinedUsers | None = declined_in_preferences,
    batch_size: int = BATCH_SIZE,
) -> int:
    """Claim and send in batches, one transaction each, until a batch comes back short
    (nothing more is due, or another worker holds the rest)."""
    total = 0
    while True:
        async with transaction(runtime) as session:
            service = ReminderService(
                session,
                base_url=runtime.settings.base_url(),
                notify=notify,
                declined=declined,
                batch_size=batch_size,
            )
            claimed = await send(service, tick)
        total += claimed
        if claimed < batch_size:
            return total


@job_app.periodic(cron=EVERY_15_MINUTES, periodic_id="send-weekly-digests")
@task(
    name="lyceum.reminders.send_weekly_digests",
    queue=Queue.notifications,
    retry=False,
    queueing_lock="send_weekly_digests",
    pass_context=True,
)
async def send_weekly_digests(context: JobContext, timestamp: int) -> int:
    """The weekly progress digest to learners for whom it is Monday 09:00 (or up to three
    hours after) in their own time zone."""
    sent = await run_tick(resources(context), ReminderService.send_digests, tick_of(timestamp))
    if sent:
        logger.info("weekly_digests_sent", count=sent)
    return sent


@job_app.periodic(cron=EVERY_15_MINUTES, periodic_id="send-due-soon-reminders")
@task(
    name="lyceum.reminders.send_due_soon_reminders",
    queue=Queue.notifications,
    retry=False,
    queueing_lock="send_due_soon_reminders",
    pass_context=True,
)
async def send_due_soon_reminders(context: JobContext, timestamp: int) -> int:
    """Reminders of quizzes and assignments closing within 24 hours, to enrolled learners
    who have not submitted them."""
    sent = await run_tick(resources(context), ReminderService.send_due_soon, tick_of(timestamp))
    if sent:
        logger.info("due_soon_reminders_sent", count=sent)
    return sent


@job_app.periodic(cron=EVERY_15_MINUTES, periodic_id="send-inactivity-nudges")
@task(
    name="lyceum.reminders.send_inactivity_nudges",
    queue=Queue.notifications,
    retry=False,
    queueing_lock="send_inactivity_nudges",
    pass_context=True,
)
async def send_inactivity_nudges(context: JobContext, timestamp: int) -> int:
    """A nudge per active enrollment idle for 7 days, at most once a week."""
    sent = await run_tick(resources(context), ReminderService.send_nudges, tick_of(timestamp))
    if sent:
        logger.info("inactivity_nudges_sent", count=sent)
    return sent


@job_app.periodic(cron="40 3 * * *", periodic_id="forget-old-reminders")
@task(
    name="lyceum.reminders.forget_old_reminders",
    queue=Queue.maintenance,
    retry=False,
    queueing_lock="forget_old_reminders",
    pass_context=True,
)
async def forget_old_reminders(context: JobContext, timestamp: int) -> int:
    """Every night: delete the sent-reminder claims older than
    REMINDERS_RETENTION_DAYS."""
    runtime = resources(context)
    cutoff = tick_of(timestamp) - dt.timedelta(days=runtime.settings.reminders_retention_days)
    async with transaction(runtime) as session:
        deleted = await ReminderService(
            session, base_url=runtime.settings.base_url()
        ).forget_sent_before(cutoff)
    if deleted:
        logger.info("old_reminders_forgotten", count=deleted)
    return deleted
