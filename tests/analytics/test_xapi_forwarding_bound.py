"""The forwarding job holds no transaction open while it waits for the LRS: an open
transaction with an id (the cursor's row lock taken by `advance`) would hold back the
cluster's oldest-transaction bound, and with it every rollup and the feed, for as long
as the LRS takes to answer. And a run overtaken by another (the watermark moved
meanwhile) stops without moving it back."""

from __future__ import annotations

import httpx
from sqlalchemy import text

from lyceum.analytics.cursor_repository import move, peek
from lyceum.analytics.xapi_tasks import CURSOR, forward
from lyceum.kit.jobs import transaction
from lyceum.kit.runtime import Runtime
from tests.analytics.test_xapi_forwarding import (
    committed_events,
    cursor_position,
    forwarding,
    lrs,
    sent,
)
from tests.support.fake_lrs import FakeLRS

__all__ = ["forwarding", "lrs"]


async def test_no_transaction_is_held_open_during_the_lrs_call(
    forwarding: Runtime, lrs: FakeLRS
) -> None:
    ids = await committed_events(forwarding, 5)
    seen: list[tuple[bool, int]] = []

    async def inspect(request: httpx.Request) -> None:
        # Another connection, while the POST is on its way: the cursor's row is not
        # locked, and no transaction holding an id sits idle on the cursor's queries.
        async with forwarding.database.engine.connect() as other:
            async with other.begin():
                await other.execute(text("SET LOCAL lock_timeout = '100ms'"))
                locked = False
                try:
                    await other.execute(
                        text(
                            "SELECT 1 FROM analytics_cursors WHERE name = :name FOR UPDATE NOWAIT"
                        ),
                        {"name": CURSOR},
                    )
                except Exception:
                    locked = True
            idle = (
                await other.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity"
                        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                        " AND state LIKE 'idle in transaction%'"
                        " AND backend_xid IS NOT NULL AND query ILIKE '%analytics_cursors%'"
                    )
                )
            ).scalar_one()
        seen.append((locked, int(idle)))

    async with httpx.AsyncClient(event_hooks={"request": [inspect]}) as http:
        outcome = await forward(forwarding, forwarding.settings, http)
    assert sent(lrs, ids) == {str(i): 1 for i in ids}
    assert outcome.batches >= 2
    assert seen and all(entry == (False, 0) for entry in seen), seen


async def test_a_run_overtaken_by_another_does_not_move_the_watermark_back(
    forwarding: Runtime, lrs: FakeLRS
) -> None:
    await committed_events(forwarding, 2)
    async with transaction(forwarding) as session:
        window = await peek(session, CURSOR)
    assert not window.empty
    async with transaction(forwarding) as session:
        assert await move(session, CURSOR, window.lo, window.hi)
    async with transaction(forwarding) as session:
        # A second run that read the same window loses the compare and set.
        assert not await move(session, CURSOR, window.lo, window.hi)
    assert await cursor_position(forwarding) == window.hi
