"""The raw events' monthly partitions roll with the clock: the storage job makes the
months ahead (and back to the oldest month an event may still be posted for), drops the
months wholly older than the retention, keeps the data of the others, and forgets client
event ids too old to come back. Inside the test's transaction: DDL rolls back too."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.analytics.partition_repository import existing_partitions
from lyceum.analytics.tasks import maintain_storage
from lyceum.config import Settings
from lyceum.models.analytics import AnalyticsEvent, AnalyticsEventKey


def at(year: int, month: int, day: int = 15) -> dt.datetime:
    return dt.datetime(year, month, day, 12, tzinfo=dt.UTC)


async def add_event(session: AsyncSession, user_id: uuid.UUID, when: dt.datetime) -> None:
    await session.execute(
        insert(AnalyticsEvent).values(
            occurred_at=when,
            event_id=uuid.uuid4(),
            user_id=user_id,
            source="client",
            client_event_id=uuid.uuid4().hex,
            verb="viewed",
            object_type="catalog",
        )
    )


async def events_of(session: AsyncSession, user_id: uuid.UUID) -> list[dt.datetime]:
    rows = await session.execute(
        select(AnalyticsEvent.occurred_at)
        .where(AnalyticsEvent.user_id == user_id)
        .order_by(AnalyticsEvent.occurred_at)
    )
    return list(rows.scalars())


async def test_partitions_roll_with_the_months(session: AsyncSession, settings: Settings) -> None:
    rules = settings.model_copy(
        update={
            "analytics_partitions_ahead": 2,
            "analytics_retention_months": 3,
            "analytics_max_event_age_days": 30,
        }
    )
    user = uuid.uuid4()
    # A year from now, so the months are all the test's own.
    year = dt.datetime.now(dt.UTC).year + 1
    first = await maintain_storage(session, rules, at(year, 5))
    months = await existing_partitions(session)
    # April (an event may be 30 days late) to July (two months ahead) exist ...
    for month in (4, 5, 6, 7):
        assert dt.date(year, month, 1) in months
    assert f"analytics_events_p{year}07" in first.made
    assert dt.date(year, 8, 1) not in months
    # ... and nothing before February (three months kept before May).
    assert all(month >= dt.date(year, 2, 1) for month in months)
    await add_event(session, user, at(year, 4, 30))
    await add_event(session, user, at(year, 6, 1))
    await add_event(session, user, at(year, 7, 31))

    second = await maintain_storage(session, rules, at(year, 8, 10))
    months = await existing_partitions(session)
    assert [m for m in months if m.year == year] == [
        dt.date(year, month, 1) for month in (5, 6, 7, 8, 9, 10)
    ]
    assert f"analytics_events_p{year}04" in second.dropped
    assert {f"analytics_events_p{year}09", f"analytics_events_p{year}10"} <= set(second.made)
    # April's event went with its month; the kept months' data is intact.
    assert await events_of(session, user) == [at(year, 6, 1), at(year, 7, 31)]

    # Running again on the same tick changes nothing.
    again = await maintain_storage(session, rules, at(year, 8, 10))
    assert (again.made, again.dropped) == ([], [])


async def test_old_client_ids_are_forgotten(session: AsyncSession, settings: Settings) -> None:
    user = uuid.uuid4()
    now = dt.datetime.now(dt.UTC)
    for name, age in (("fresh", 3), ("late", 30), ("old", 32)):
        await session.execute(
            insert(AnalyticsEventKey).values(
                user_id=user, client_event_id=name, received_at=now - dt.timedelta(days=age)
            )
        )
    rules = settings.model_copy(update={"analytics_max_event_age_days": 30})
    run = await maintain_storage(session, rules, now)
    assert run.keys_pruned >= 1
    kept = await session.execute(
        select(AnalyticsEventKey.client_event_id)
        .where(AnalyticsEventKey.user_id == user)
        .order_by(AnalyticsEventKey.client_event_id)
    )
    # 30 days (the oldest an event may be) plus a day's margin
    assert list(kept.scalars()) == ["fresh", "late"]
    count = await session.execute(select(func.count()).select_from(AnalyticsEventKey))
    assert count.scalar_one() >= 2
