"""Notification jobs: the channel deliveries `notify` queues in batches, scheduled
announcements, and the retention of old notifications."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.kit.db import raw_connection
from lyceum.kit.jobs import JobContext, Queue, Resources, job_app, resources, task, transaction
from lyceum.models.notifications import Channel
from lyceum.notifications.delivery import DELIVERY_RETRY, deliver_batch
from lyceum.notifications.repository import NotificationRepository
from lyceum.notifications.service import DELIVER_EMAIL_TASK, DELIVER_TASK, publish_due

logger = structlog.get_logger("lyceum.notifications")


@task(name=DELIVER_EMAIL_TASK, queue=Queue.mail, pass_context=True, retry=DELIVERY_RETRY)
async def deliver_email(
    context: JobContext,
    notification_ids: list[str],
    channel: str,
    template: str,
    mail_context: dict[str, Any],
) -> None:
    """Mail a batch of notifications (queued by `notify`, one job per batch)."""
    await deliver_batch(
        resources(context), notification_ids, Channel(channel), template, mail_context
    )


@task(name=DELIVER_TASK, queue=Queue.notifications, pass_context=True, retry=DELIVERY_RETRY)
async def deliver(
    context: JobContext,
    notification_ids: list[str],
    channel: str,
    template: str,
    mail_context: dict[str, Any],
) -> None:
    """Send a batch of notifications by SMS or push (held until quiet hours end)."""
    await deliver_batch(
        resources(context), notification_ids, Channel(channel), template, mail_context
    )


@task(
    name="lyceum.notifications.publish_announcement", queue=Queue.notifications, pass_context=True
)
async def publish_announcement(context: JobContext, announcement_id: str) -> None:
    """Publish a scheduled announcement at its time (once, however often it runs)."""
    runtime = resources(context)
    async with transaction(runtime) as session:
        await publish_due(
            session,
            uuid.UUID(announcement_id),
            settings=runtime.settings,
            now=dt.datetime.now(dt.UTC),
        )


async def schedule_publication(
    session: AsyncSession, announcement_id: uuid.UUID, at: dt.datetime
) -> None:
    """Publish the announcement at `at`, in a job written in the caller's transaction."""
    connection = await raw_connection(session)
    await publish_announcement.configure(connection=connection, schedule_at=at).defer_async(
        announcement_id=str(announcement_id)
    )


async def delete_old_notifications(runtime: Resources, now: dt.datetime) -> tuple[int, int]:
    before = now - dt.timedelta(days=runtime.settings.notification_retention_days)
    async with transaction(runtime) as session:
        return await NotificationRepository(session).delete_old(before)


@job_app.periodic(cron="23 3 * * *", periodic_id="notification-retention")
@task(
    name="lyceum.notifications.retention",
    queue=Queue.maintenance,
    pass_context=True,
    retry=False,
    queueing_lock="notification_retention",
)
async def notification_retention(context: JobContext, timestamp: int) -> None:
    """Daily: delete read notifications and finished deliveries past the retention."""
    notifications, deliveries = await delete_old_notifications(
        resources(context), dt.datetime.fromtimestamp(timestamp, dt.UTC)
    )
    logger.info("notifications_pruned", notifications=notifications, deliveries=deliveries)
