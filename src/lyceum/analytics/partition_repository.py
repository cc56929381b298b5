"""The monthly partitions of `analytics_events`: `analytics_events_pYYYYMM` holds the
events that occurred in that UTC month. Partitions are made ahead of time (a periodic
job, and the migration for the months around its run), and whole months older than
the retention period are dropped (a DROP TABLE, not a DELETE: no bloat, no vacuum).
An event whose month has no partition cannot be written, which ingest prevents by
bounding how old or how far ahead an event may be.
"""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

PARENT = "analytics_events"
_NAME = re.compile(r"^analytics_events_p(\d{4})(\d{2})$")
# Serialises the partition DDL of concurrent callers (a transaction-scoped advisory lock).
_LOCK_KEY = 0x4C59_4341_4E50  # "LYCANP"


def month_start(day: dt.date | dt.datetime) -> dt.date:
    return dt.date(day.year, day.month, 1)


def add_months(month: dt.date, months: int) -> dt.date:
    index = month.year * 12 + (month.month - 1) + months
    return dt.date(index // 12, index % 12 + 1, 1)


def partition_name(month: dt.date) -> str:
    return f"{PARENT}_p{month.year:04d}{month.month:02d}"


def partition_month(name: str) -> dt.date | None:
    """The month a partition's name stands for, or None for another table."""
    found = _NAME.match(name)
    return dt.date(int(found[1]), int(found[2]), 1) if found else None


def partition_ddl(month: dt.date) -> str:
    """CREATE TABLE of one month's partition (UTC bounds), idempotent."""
    month = month_start(month)
    upper = add_months(month, 1)
    return (
        f"CREATE TABLE IF NOT EXISTS {partition_name(month)} PARTITION OF {PARENT}"
        f" FOR VALUES FROM ('{month.isoformat()} 00:00:00+00') TO ('{upper.isoformat()} 00:00:00+00')"
    )


async def existing_partitions(db: AsyncSession | AsyncConnection) -> list[dt.date]:
    """The months that have a partition, oldest first."""
    names = (
        await db.execute(
            text(
                "SELECT c.relname FROM pg_inherits AS i"
                " JOIN pg_class AS c ON c.oid = i.inhrelid"
                " WHERE i.inhparent = CAST(:parent AS regclass)"
            ),
            {"parent": PARENT},
        )
    ).scalars()
    months = [partition_month(str(name)) for name in names]
    return sorted(month for month in months if month is not None)


async def ensure_partitions(
    db: AsyncSession | AsyncConnection, first: dt.date, last: dt.date
) -> list[str]:
    """Make the partitions of every month from `first`'s to `last`'s (both included)
    that are missing; returns the names made. Takes a transaction-scoped lock only
    when one is missing (DDL: keep the transaction short)."""
    wanted: list[dt.date] = []
    month = month_start(first)
    while month <= month_start(last):
        wanted.append(month)
        month = add_months(month, 1)
    if not set(wanted) - set(await existing_partitions(db)):
        return []
    await db.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
    have = set(await existing_partitions(db))
    made: list[str] = []
    for month in wanted:
        if month not in have:
            await db.execute(text(partition_ddl(month)))
            made.append(partition_name(month))
    return made


async def drop_partitions_before(db: AsyncSession | AsyncConnection, month: dt.date) -> list[str]:
    """Drop every partition whose whole month is before `month`; returns the names."""
    await db.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
    dropped: list[str] = []
    for old in await existing_partitions(db):
        if old < month_start(month):
            name = partition_name(old)
            await db.execute(text(f"DROP TABLE IF EXISTS {name}"))
            dropped.append(name)
    return dropped
