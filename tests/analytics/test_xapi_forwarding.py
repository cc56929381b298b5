"""Forwarding to an external LRS (a fake one over real HTTP that validates every
statement): each event is sent once across runs, a failing LRS moves no watermark and
the retry sends what was left, known ids count as sent, and a statement the LRS
refuses is logged and skipped.

The job reads committed rows in transactions of its own, so these tests write their
events in committed transactions (and delete them afterwards) and never write through
the test transaction (an open transaction holds the watermark's horizon back)."""

from __future__ import annotations

import collections
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence

import httpx
import pytest
import structlog
from pydantic import AnyHttpUrl, SecretStr, ValidationError
from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.analytics.cursor_repository import advance, position
from lyceum.analytics.partition_repository import ensure_partitions
from lyceum.analytics.xapi import statement
from lyceum.analytics.xapi_tasks import (
    CURSOR,
    Forwarded,
    forward,
    forward_statements,
    schedule_forwarding,
)
from lyceum.config import Settings
from lyceum.kit.delivery import TransientDeliveryError
from lyceum.kit.jobs import DEFAULT_RETRY, Queue, RequeueOnShutdown, defer, job_app, transaction
from lyceum.kit.runtime import Runtime
from lyceum.models.analytics import AnalyticsEvent
from tests.analytics.test_xapi_endpoints import event_values, horizon_past, insert_events
from tests.support.fake_lrs import FakeLRS
from tests.support.jobs import run_jobs, with_settings

BATCH = 3


@pytest.fixture
def lrs() -> Iterator[FakeLRS]:
    with FakeLRS() as server:
        yield server


@pytest.fixture
async def forwarding(runtime: Runtime, lrs: FakeLRS) -> AsyncIterator[Runtime]:
    """A runtime whose settings point at the fake LRS, the cursor moved past every
    event already in the database, and this test's events deleted afterwards."""
    configured = with_settings(
        runtime,
        xapi_lrs_url=AnyHttpUrl(lrs.base_url),
        xapi_lrs_username=lrs.username,
        xapi_lrs_password=SecretStr(lrs.password),
        xapi_forward_batch=BATCH,
    )
    async with transaction(runtime) as session:
        await advance(session, CURSOR)
    yield configured
    async with runtime.database.engine.begin() as db:
        await db.execute(delete(AnalyticsEvent).where(AnalyticsEvent.user_id.in_(LEARNERS)))


LEARNERS: set[uuid.UUID] = set()


async def committed_events(
    runtime: Runtime, count: int, *, one_transaction: bool = False
) -> list[uuid.UUID]:
    """`count` events of a new learner, committed one transaction each (as separate
    ingest requests would) or all in one; returns once the forwarding horizon is past
    them."""
    learner = uuid.uuid4()
    LEARNERS.add(learner)
    rows = [event_values(learner, uuid.uuid4(), second=index) for index in range(count)]
    engine = runtime.database.engine
    async with engine.begin() as db:
        await ensure_partitions(db, rows[0]["occurred_at"].date(), rows[-1]["occurred_at"].date())
    ids: list[uuid.UUID] = []
    for group in [rows] if one_transaction else [[row] for row in rows]:
        async with engine.begin() as db:
            ids += await insert_events(db, group, finished=False, partitions=False)
    async with AsyncSession(engine) as session:
        await horizon_past(session, ids)
    return ids


async def run(runtime: Runtime) -> Forwarded:
    async with httpx.AsyncClient() as http:
        return await forward(runtime, runtime.settings, http)


def sent(lrs: FakeLRS, ids: Sequence[uuid.UUID]) -> collections.Counter[str]:
    """How often each of `ids` reached the LRS in an accepted batch."""
    wanted = {str(i) for i in ids}
    return collections.Counter(i for i in lrs.received_ids() if i in wanted)


async def cursor_position(runtime: Runtime) -> int | None:
    async with transaction(runtime) as session:
        return await position(session, CURSOR)


async def test_every_event_is_sent_once_across_runs(forwarding: Runtime, lrs: FakeLRS) -> None:
    first = await committed_events(forwarding, 7)
    outcome = await run(forwarding)
    assert sent(lrs, first) == {str(i): 1 for i in first}
    assert outcome.batches >= 3 and outcome.refused == 0
    assert all(len(batch.statements) <= BATCH for batch in lrs.batches)
    second = await committed_events(forwarding, 2)
    await run(forwarding)
    assert sent(lrs, first + second) == {str(i): 1 for i in first + second}
    await run(forwarding)  # nothing new: nothing sent again
    assert sent(lrs, first + second) == {str(i): 1 for i in first + second}
    # What the LRS stored is the statement the feed serves (without `stored`, the LRS's).
    stored = lrs.stored[str(first[0])]
    assert stored["actor"]["account"]["homePage"] == "http://lyceum.test"
    assert "stored" not in stored and stored["version"] == "1.0.0"


async def test_a_transaction_larger_than_a_batch_is_sent_whole_once(
    forwarding: Runtime, lrs: FakeLRS
) -> None:
    ids = await committed_events(forwarding, 8, one_transaction=True)
    await run(forwarding)
    assert sent(lrs, ids) == {str(i): 1 for i in ids}


async def test_a_failing_lrs_moves_no_watermark_and_the_retry_sends_the_rest(
    forwarding: Runtime, lrs: FakeLRS
) -> None:
    ids = await committed_events(forwarding, 7)
    before = await cursor_position(forwarding)
    lrs.fail(1)
    with pytest.raises(TransientDeliveryError, match="503"):
        await run(forwarding)
    assert await cursor_position(forwarding) == before
    assert sent(lrs, ids) == {}
    # Down after the first batch: that batch's move sticks, the others wait.
    lrs.fail(1, after=1)
    with pytest.raises(TransientDeliveryError):
        await run(forwarding)
    assert sum(sent(lrs, ids).values()) == BATCH
    moved = await cursor_position(forwarding)
    assert moved is not None and before is not None and moved > before
    await run(forwarding)
    assert sent(lrs, ids) == {str(i): 1 for i in ids}


async def test_an_unreachable_lrs_fails_the_run(forwarding: Runtime, lrs: FakeLRS) -> None:
    await committed_events(forwarding, 1)
    before = await cursor_position(forwarding)
    nowhere = with_settings(forwarding, xapi_lrs_url=AnyHttpUrl("http://127.0.0.1:9"))
    with pytest.raises(TransientDeliveryError, match="unreachable"):
        await run(nowhere)
    wrong_key = with_settings(forwarding, xapi_lrs_password=SecretStr("wrong"))
    with pytest.raises(TransientDeliveryError, match="401"):
        await run(wrong_key)
    assert await cursor_position(forwarding) == before


async def test_ids_the_lrs_already_has_count_as_sent(forwarding: Runtime) -> None:
    with FakeLRS(conflict_on_known=True) as strict:
        configured = with_settings(forwarding, xapi_lrs_url=AnyHttpUrl(strict.base_url))
        ids = await committed_events(configured, BATCH)
        # An earlier run's batch got through but its answer was lost: the LRS has two.
        async with httpx.AsyncClient() as http:
            known = [
                statement(event, base_url="http://lyceum.test", stored=False)
                for event in await _events(configured, ids[:2])
            ]
            answer = await http.post(
                strict.statements_url,
                json=known,
                headers={"X-Experience-API-Version": "1.0.3"},
                auth=(strict.username, strict.password),
            )
            assert answer.status_code == 200, answer.text
        outcome = await run(configured)
        assert (outcome.sent, outcome.known, outcome.refused) == (1, 2, 0)
        assert set(strict.stored) >= {str(i) for i in ids}
        assert 409 in strict.answers


async def _events(runtime: Runtime, ids: Sequence[uuid.UUID]) -> list[AnalyticsEvent]:
    async with AsyncSession(runtime.database.engine) as session:
        found = await session.scalars(
            select(AnalyticsEvent)
            .where(AnalyticsEvent.event_id.in_(ids))
            .order_by(AnalyticsEvent.id)
        )
        return list(found)


async def test_a_refused_statement_is_logged_and_skipped(forwarding: Runtime, lrs: FakeLRS) -> None:
    ids = await committed_events(forwarding, 5)
    lrs.refuse(str(ids[1]))
    with structlog.testing.capture_logs() as logs:
        outcome = await run(forwarding)
    assert (outcome.sent, outcome.refused) == (4, 1)
    assert sent(lrs, ids) == {str(i): 1 for i in ids if i != ids[1]}
    refused = [entry for entry in logs if entry["event"] == "xapi_statement_refused"]
    assert [entry["statement_id"] for entry in refused] == [str(ids[1])]
    assert "profile" in refused[0]["answer"] and refused[0]["status"] == 400
    # The watermark moved past it: the next run does not send it again.
    await run(forwarding)
    assert str(ids[1]) not in lrs.stored


async def test_nothing_is_forwarded_without_an_lrs(runtime: Runtime, lrs: FakeLRS) -> None:
    assert runtime.settings.xapi_lrs_url is None
    assert await run(runtime) == Forwarded()
    assert lrs.answers == []


def test_forwarding_is_queued_every_minute_and_retried_with_backoff() -> None:
    periodic = {
        task.task.name: task.cron for task in job_app.periodic_registry.periodic_tasks.values()
    }
    assert periodic[schedule_forwarding.name] == "* * * * *"
    assert forward_statements.name not in periodic
    assert forward_statements.queue == Queue.maintenance.value
    assert own_retry_strategy(forward_statements.retry_strategy) == DEFAULT_RETRY
    assert own_retry_strategy(schedule_forwarding.retry_strategy) is None


def own_retry_strategy(strategy: object) -> object:
    """A task's own retry strategy: a worker started in this process wraps every task's in
    `RequeueOnShutdown` (jobs cut by a shutdown go back to their queue at once)."""
    return strategy.base if isinstance(strategy, RequeueOnShutdown) else strategy


async def _jobs(runtime: Runtime, task_name: str) -> list[tuple[int, str, int]]:
    async with transaction(runtime) as session:
        found = await session.execute(
            text(
                "SELECT id, status::text, attempts FROM procrastinate_jobs"
                " WHERE task_name = :task AND status IN ('todo', 'doing') ORDER BY id"
            ),
            {"task": task_name},
        )
        return [(row[0], row[1], row[2]) for row in found]


async def _tick(runtime: Runtime) -> None:
    async with transaction(runtime) as session:
        await session.execute(
            text("DELETE FROM procrastinate_jobs WHERE task_name = :task AND status = 'todo'"),
            {"task": schedule_forwarding.name},
        )
        await defer(session, schedule_forwarding, timestamp=0)
    await run_jobs([Queue.maintenance.value], runtime=runtime)


async def test_a_failed_run_is_retried_by_the_job_system_and_never_doubled(
    forwarding: Runtime, lrs: FakeLRS
) -> None:
    ids = await committed_events(forwarding, 2)
    lrs.fail(100)
    async with transaction(forwarding) as session:  # an earlier test's leftovers
        await session.execute(
            text("DELETE FROM procrastinate_jobs WHERE task_name = :task"),
            {"task": forward_statements.name},
        )
    try:
        await _tick(forwarding)
        # The tick queued a run; it failed once and waits for its retry (backoff).
        [(job_id, status, attempts)] = await _jobs(forwarding, forward_statements.name)
        assert (status, attempts) == ("todo", 1)
        assert sent(lrs, ids) == {}
        # The next tick sees it waiting and queues no second run.
        await _tick(forwarding)
        assert await _jobs(forwarding, forward_statements.name) == [(job_id, "todo", 1)]
        # The LRS is back: the retry (made due now) sends everything.
        lrs.fail(0)
        async with transaction(forwarding) as session:
            await session.execute(
                text("UPDATE procrastinate_jobs SET scheduled_at = now() WHERE id = :id"),
                {"id": job_id},
            )
        await run_jobs([Queue.maintenance.value], runtime=forwarding)
        assert sent(lrs, ids) == {str(i): 1 for i in ids}
        assert await _jobs(forwarding, forward_statements.name) == []
    finally:
        async with transaction(forwarding) as session:
            await session.execute(
                text("DELETE FROM procrastinate_jobs WHERE task_name IN (:a, :b)"),
                {"a": forward_statements.name, "b": schedule_forwarding.name},
            )


def test_an_lrs_password_needs_its_username() -> None:
    with pytest.raises(ValidationError, match="XAPI_LRS_USERNAME"):
        Settings(database_url=None, xapi_lrs_password=SecretStr("secret"))
    assert Settings(database_url=None, xapi_lrs_username="lyceum").xapi_lrs_password is None
