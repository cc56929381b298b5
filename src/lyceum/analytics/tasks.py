"""The analytics jobs, on the `maintenance` queue:

- `lyceum.analytics.rollups`: every minute, and deferred by ingest (a queueing lock
  keeps at most one waiting), folds the new events into the rollups (`rollups`);
- `lyceum.analytics.chat_activity`: every minute, copies the new messages of course chat
  rooms as `commented` events (the chat's send path is left alone);
- `lyceum.analytics.partitions`: every hour, makes the monthly partitions of
  `analytics_events` ANALYTICS_PARTITIONS_AHEAD months ahead (and back to the oldest
  month an event may still be posted for), drops those wholly older than
  ANALYTICS_RETENTION_MONTHS, and forgets the client event ids too old to come back.

Each is safe to run twice: the rollups and the chat copy move their cursors in the
transaction that does the work, and the partition DDL is idempotent.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import structlog
from procrastinate.exceptions import AlreadyEnqueued
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.analytics import partition_repository as partitions
from lyceum.analytics import repository
from lyceum.analytics.rollups import run_rollups
from lyceum.config import Settings
from lyceum.kit.db import raw_connection
from lyceum.kit.jobs import JobContext, Queue, job_app, resources, task, transaction

logger = structlog.get_logger("lyceum.analytics")

ROLLUPS_LOCK = "analytics_rollups"
CHAT_CURSOR = "chat_messages"
# A chat message's transaction is over in milliseconds; the copy reads again the last
# few minutes of messages each run (the keys skip those copied), so one that committed
# after a later one was copied is still found.
CHAT_SETTLE = dt.timedelta(minutes=5)
# Client ids are kept this much longer than an event may be late: a repeat of one
# forgotten would be refused as too old anyway.
KEY_MARGIN = dt.timedelta(days=1)


@job_app.periodic(cron="* * * * *", periodic_id="analytics-rollups")
@task(
    name="lyceum.analytics.rollups",
    queue=Queue.maintenance,
    pass_context=True,
    retry=False,
    queueing_lock=ROLLUPS_LOCK,
)
async def rollups(context: JobContext, timestamp: int = 0) -> int:
    """Fold the events written since the last run into the rollups; returns the width
    of the transaction-id window read."""
    async with transaction(resources(context)) as session:
        run = await run_rollups(session)
    return max(run.hi - run.lo, 0)


async def defer_rollups(session: AsyncSession) -> None:
    """Ask for a rollup run soon, in the session's transaction; nothing if one waits
    already (looked up first: under a stream of batches one nearly always does)."""
    if await repository.job_waiting(session, ROLLUPS_LOCK):
        return
    connection = await raw_connection(session)
    try:
        # A savepoint of psycopg's own: the unique violation of a job that started
        # waiting meanwhile must not abort the request's transaction.
        async with connection.transaction():
            await rollups.configure(connection=connection).defer_async()
    except AlreadyEnqueued:
        pass


async def copy_chat(session: AsyncSession, now: dt.datetime, *, max_age_days: int) -> int:
    """Copy the course chat messages not copied yet, of the last `max_age_days` (the
    events an app could still post; older ones have no partition); returns how many."""
    after = await repository.chat_watermark(session, CHAT_CURSOR)
    copied, settled = await repository.copy_chat_messages(
        session,
        after_seq=after,
        settled_before=now - CHAT_SETTLE,
        oldest=now - dt.timedelta(days=max_age_days),
    )
    if settled is not None and settled > after:
        await repository.move_chat_watermark(session, CHAT_CURSOR, settled)
    return copied


@job_app.periodic(cron="* * * * *", periodic_id="analytics-chat-activity")
@task(
    name="lyceum.analytics.chat_activity",
    queue=Queue.maintenance,
    pass_context=True,
    retry=False,
    queueing_lock="analytics_chat_activity",
)
async def chat_activity(context: JobContext, timestamp: int) -> int:
    runtime = resources(context)
    async with transaction(runtime) as session:
        copied = await copy_chat(
            session,
            dt.datetime.fromtimestamp(timestamp, dt.UTC),
            max_age_days=runtime.settings.analytics_max_event_age_days,
        )
    if copied:
        logger.info("chat_activity_copied", count=copied)
    return copied


@dataclass(frozen=True)
class StorageRun:
    made: list[str]
    dropped: list[str]
    keys_pruned: int


async def maintain_storage(
    session: AsyncSession, settings: Settings, now: dt.datetime
) -> StorageRun:
    """Partitions ahead and back as far as an event may still be posted, old months
    dropped, old client ids forgotten."""
    oldest_postable = now - dt.timedelta(days=settings.analytics_max_event_age_days)
    ahead = partitions.add_months(partitions.month_start(now), settings.analytics_partitions_ahead)
    made = await partitions.ensure_partitions(session, oldest_postable.date(), ahead)
    keep_from = partitions.add_months(
        partitions.month_start(now), -settings.analytics_retention_months
    )
    dropped = await partitions.drop_partitions_before(session, keep_from)
    pruned = await repository.prune_event_keys(session, oldest_postable - KEY_MARGIN)
    return StorageRun(made, dropped, pruned)


@job_app.periodic(cron="41 * * * *", periodic_id="analytics-partitions")
@task(
    name="lyceum.analytics.partitions",
    queue=Queue.maintenance,
    pass_context=True,
    retry=False,
    queueing_lock="analytics_partitions",
)
async def storage(context: JobContext, timestamp: int) -> int:
    runtime = resources(context)
    async with transaction(runtime) as session:
        run = await maintain_storage(
            session, runtime.settings, dt.datetime.fromtimestamp(timestamp, dt.UTC)
        )
    if run.made or run.dropped:
        logger.info("analytics_partitions", made=run.made, dropped=run.dropped)
    return len(run.made) + len(run.dropped)
