"""The event store's watermark: a window never hands out a row whose transaction is
still running, never hands out a row twice, and loses none that commits late."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.analytics.cursor_repository import Window, advance
from lyceum.analytics.partition_repository import ensure_partitions
from lyceum.kit.db import unit_of_work
from lyceum.kit.runtime import Runtime
from lyceum.models.analytics import AnalyticsEvent


async def _write(session: AsyncSession, user_id: uuid.UUID, marker: str) -> None:
    now = dt.datetime.now(dt.UTC)
    await session.execute(
        text(
            "INSERT INTO analytics_events (occurred_at, event_id, user_id, source, verb,"
            " object_type, client_event_id) VALUES (:at, :event_id, :user_id, 'client',"
            " 'viewed', 'catalog', :marker)"
        ),
        {"at": now, "event_id": uuid.uuid4(), "user_id": user_id, "marker": marker},
    )


async def _take(runtime: Runtime, name: str, user_id: uuid.UUID) -> tuple[Window, list[str]]:
    async with runtime.database.sessionmaker() as session, unit_of_work(session):
        window = await advance(session, name)
        markers = await session.scalars(
            select(AnalyticsEvent.client_event_id)
            .where(window.clause(), AnalyticsEvent.user_id == user_id)
            .order_by(AnalyticsEvent.id)
        )
        return window, [marker for marker in markers if marker is not None]


async def test_a_row_of_a_running_transaction_waits_and_is_handed_out_once(
    runtime: Runtime,
) -> None:
    name = f"test-{uuid.uuid4()}"
    user_id = uuid.uuid4()
    today = dt.datetime.now(dt.UTC).date()
    async with runtime.database.sessionmaker() as session, unit_of_work(session):
        await ensure_partitions(session, today, today)
    async with runtime.database.sessionmaker() as session, unit_of_work(session):
        await _write(session, user_id, "first")

    async with runtime.database.sessionmaker() as slow:
        # A transaction that wrote an event and has not committed yet...
        await _write(slow, user_id, "late")
        async with runtime.database.sessionmaker() as session, unit_of_work(session):
            await _write(session, user_id, "after")
        window, seen = await _take(runtime, name, user_id)
        # ...holds the window back: "after" committed, but behind the open one.
        assert seen == ["first"]
        assert not window.empty
        await slow.commit()

    _, seen = await _take(runtime, name, user_id)
    assert sorted(seen) == ["after", "late"]
    _, seen = await _take(runtime, name, user_id)
    assert seen == []


async def test_a_rolled_back_window_is_handed_out_again(runtime: Runtime) -> None:
    name = f"test-{uuid.uuid4()}"
    user_id = uuid.uuid4()
    async with runtime.database.sessionmaker() as session, unit_of_work(session):
        await _write(session, user_id, "only")
    async with runtime.database.sessionmaker() as session:
        window = await advance(session, name)
        assert not window.empty
        await session.rollback()
    _, seen = await _take(runtime, name, user_id)
    assert seen == ["only"]
