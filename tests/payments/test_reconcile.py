"""Reconciliation: a payment whose webhook never came still enrolls the buyer, and a
checkout past its time is closed at the provider and expired here."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from lyceum.config import Settings
from lyceum.kit.jobs import defer, job_app, transaction
from lyceum.kit.runtime import Runtime
from lyceum.models.courses import EnrollmentStatus
from lyceum.models.identity import Role
from lyceum.models.payments import Order
from lyceum.payments import registry
from lyceum.payments.providers.sandbox import SandboxProvider
from lyceum.payments.service import reconcile_order, stale_pending_orders
from lyceum.payments.tasks import reconcile_payments
from tests.conftest import client_for, make_app
from tests.content.helpers import person
from tests.identity.helpers import Account
from tests.payments.helpers import API, checkout, checkout_id_of, enrollment_status, priced_course
from tests.support.clock import FrozenClock
from tests.support.jobs import run_jobs


async def _reconcile(
    session: AsyncSession, settings: Settings, order_id: str, now: dt.datetime
) -> str:
    due = await stale_pending_orders(
        session, now=now, after_minutes=settings.payment_reconcile_after_minutes
    )
    assert uuid.UUID(order_id) in due
    return await reconcile_order(
        session,
        registry.providers(settings, session=session),
        uuid.UUID(order_id),
        now=now,
        refund_ends_access=True,
    )


async def test_a_lost_webhook_still_ends_in_an_enrollment(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    session: AsyncSession,
    settings: Settings,
    teacher: Account,
    buyer: Account,
) -> None:
    course = await priced_course(client, teacher)
    order = (await checkout(client, buyer, course["id"])).json()
    # The buyer pays at the sandbox, and its webhook is lost on the way.
    sandbox = SandboxProvider(settings, session=session)
    paid_checkout = await sandbox.checkout(checkout_id_of(order), for_update=True)
    assert paid_checkout is not None
    now = dt.datetime.now(dt.UTC)
    assert await sandbox.settle(paid_checkout, pay=True, now=now) is not None
    assert await enrollment_status(connection, course["id"], buyer.id) is None

    early = await stale_pending_orders(session, now=now, after_minutes=15)
    assert uuid.UUID(order["id"]) not in early  # not stale yet
    later = now + dt.timedelta(minutes=16)
    assert await _reconcile(session, settings, order["id"], later) == "paid"
    assert await enrollment_status(connection, course["id"], buyer.id) is EnrollmentStatus.active
    mine = await client.get(f"{API}/me/orders/{order['id']}", headers=buyer.headers)
    assert mine.json()["status"] == "paid"
    # A second run finds nothing to do.
    again = await reconcile_order(
        session,
        registry.providers(settings, session=session),
        uuid.UUID(order["id"]),
        now=later,
        refund_ends_access=True,
    )
    assert again == "not pending"


async def test_a_checkout_past_its_time_is_expired(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    session: AsyncSession,
    settings: Settings,
    teacher: Account,
    buyer: Account,
) -> None:
    course = await priced_course(client, teacher)
    order = (await checkout(client, buyer, course["id"])).json()
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=20)
    assert await _reconcile(session, settings, order["id"], soon) == "still open"
    late = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=61)
    assert await _reconcile(session, settings, order["id"], late) == "expired"
    mine = await client.get(f"{API}/me/orders/{order['id']}", headers=buyer.headers)
    assert mine.json()["status"] == "expired"
    page = await client.get(order["checkout_url"].removeprefix("http://lyceum.test"))
    assert "This checkout is expired" in page.text
    assert await enrollment_status(connection, course["id"], buyer.id) is None


@pytest.fixture
async def live(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """The app on committed data: the job runs in transactions of its own."""
    await runtime.rate_limiter.reset()
    app = make_app(runtime.settings, runtime, None)
    app.state.clock = FrozenClock()
    async with client_for(app) as client:
        yield client


def test_reconciliation_is_a_periodic_job() -> None:
    periodic = {
        task.task.name: task.cron for task in job_app.periodic_registry.periodic_tasks.values()
    }
    assert periodic[reconcile_payments.name] == "*/5 * * * *"


async def test_the_periodic_job_enrolls_after_a_lost_webhook(
    live: httpx.AsyncClient, runtime: Runtime
) -> None:
    teacher = await person(live, runtime, Role.instructor)
    buyer = await person(live, runtime)
    course = await priced_course(live, teacher)
    order = (await checkout(live, buyer, course["id"])).json()
    async with transaction(runtime) as session:
        sandbox = SandboxProvider(runtime.settings, session=session)
        found = await sandbox.checkout(checkout_id_of(order), for_update=True)
        assert found is not None
        await sandbox.settle(found, pay=True, now=dt.datetime.now(dt.UTC))  # webhook lost
        await session.execute(
            update(Order)
            .where(Order.id == uuid.UUID(order["id"]))
            .values(created_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=20))
        )
        # A worker started by an earlier test in this database may have queued the
        # periodic run (its queueing lock allows one): this test queues its own.
        await session.execute(
            text("DELETE FROM procrastinate_jobs WHERE task_name = :task AND status = 'todo'"),
            {"task": reconcile_payments.name},
        )
        await defer(session, reconcile_payments, timestamp=int(time.time()))
    await run_jobs(["maintenance"])
    mine = await live.get(f"{API}/me/orders/{order['id']}", headers=buyer.headers)
    assert mine.json()["status"] == "paid"
    progress = await live.get(f"{API}/courses/{course['id']}/progress", headers=buyer.headers)
    assert progress.status_code == 200
