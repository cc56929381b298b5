"""Refunds: full or partial through the provider, idempotent by key, ending access on a
full refund (REFUND_ENDS_ACCESS), and no certificate for a refunded purchase."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from lyceum.kit.runtime import Runtime
from lyceum.learning.certificates import issue_for
from lyceum.models.courses import Enrollment, EnrollmentStatus
from tests.conftest import client_for
from tests.identity.helpers import Account
from tests.payments.helpers import API, bought, enrollment_status, events_of, priced_course
from tests.payments.test_checkout import app_with


async def refund(
    client: httpx.AsyncClient, who: Account, order_id: str, key: str, **body: Any
) -> httpx.Response:
    return await client.post(
        f"{API}/payments/orders/{order_id}/refunds",
        json=body,
        headers={**who.headers, "Idempotency-Key": key},
    )


async def test_partial_then_full_refund_ends_access(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    teacher: Account,
    buyer: Account,
    admin: Account,
) -> None:
    course = await priced_course(client, teacher, 2900)
    order = await bought(client, buyer, course["id"])

    part = await refund(client, admin, order["id"], "r1", amount=900, reason="late start")
    assert part.status_code == 201, part.text
    assert part.json()["status"] == "succeeded" and part.json()["amount"] == 900
    same = await refund(client, admin, order["id"], "r1", amount=900, reason="late start")
    assert same.status_code == 200 and same.json()["id"] == part.json()["id"]
    other_amount = await refund(client, admin, order["id"], "r1", amount=100)
    assert other_amount.status_code == 422
    mine = (await client.get(f"{API}/me/orders/{order['id']}", headers=buyer.headers)).json()
    assert mine["status"] == "partially_refunded" and mine["refunded_amount"] == 900
    assert await enrollment_status(connection, course["id"], buyer.id) is EnrollmentStatus.active

    too_much = await refund(client, admin, order["id"], "r2", amount=2001)
    assert too_much.status_code == 409
    rest = await refund(client, admin, order["id"], "r3")
    assert rest.status_code == 201 and rest.json()["amount"] == 2000
    mine = (await client.get(f"{API}/me/orders/{order['id']}", headers=buyer.headers)).json()
    assert mine["status"] == "refunded" and mine["refunded_amount"] == 2900
    assert await enrollment_status(connection, course["id"], buyer.id) is (
        EnrollmentStatus.cancelled
    )
    progress = await client.get(f"{API}/courses/{course['id']}/progress", headers=buyer.headers)
    assert progress.status_code == 403
    # Refunded, the course is not free again: it is bought anew.
    back = await client.post(f"{API}/courses/{course['id']}/enrollments", headers=buyer.headers)
    assert back.status_code == 402
    nothing = await refund(client, admin, order["id"], "r4")
    assert nothing.status_code == 409
    assert await events_of(connection, "order.refunded", order["id"]) == 2
    listed = await client.get(f"{API}/payments/orders/{order['id']}/refunds", headers=admin.headers)
    # (one test transaction: both share its time, so their order is not asserted)
    assert sorted(r["amount"] for r in listed.json()["items"]) == [900, 2000]


async def test_only_admins_refund_unless_instructors_may(
    client: httpx.AsyncClient,
    runtime: Runtime,
    connection: AsyncConnection,
    teacher: Account,
    buyer: Account,
) -> None:
    course = await priced_course(client, teacher)
    order = await bought(client, buyer, course["id"])
    assert (await refund(client, teacher, order["id"], "t1")).status_code == 403
    assert (await refund(client, buyer, order["id"], "b1")).status_code == 403
    app = app_with(runtime, connection, refunds_by_instructors=True)
    async with client_for(app) as allowed:
        assert (await refund(allowed, teacher, order["id"], "t1", amount=100)).status_code == 201
        made_up = str(uuid.uuid4())
        assert (await refund(allowed, teacher, made_up, "t2")).status_code == 404


@pytest.fixture
async def keeps_access(
    runtime: Runtime, connection: AsyncConnection
) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app_with(runtime, connection, refund_ends_access=False)) as client:
        yield client


async def test_a_refunded_purchase_earns_no_certificate(
    keeps_access: httpx.AsyncClient,
    connection: AsyncConnection,
    session: AsyncSession,
    runtime: Runtime,
    teacher: Account,
    buyer: Account,
    admin: Account,
) -> None:
    client = keeps_access
    course = await priced_course(client, teacher)
    order = await bought(client, buyer, course["id"])
    assert (await refund(client, admin, order["id"], "all")).status_code == 201
    # REFUND_ENDS_ACCESS is off here: the learner keeps studying...
    assert await enrollment_status(connection, course["id"], buyer.id) is EnrollmentStatus.active
    lessons = await client.get(f"{API}/courses/{course['id']}/progress", headers=buyer.headers)
    for lesson in lessons.json()["lessons"]:
        done = await client.post(f"{API}/lessons/{lesson['id']}/complete", headers=buyer.headers)
        assert done.status_code == 200, done.text
    assert done.json()["status"] == "completed"
    # ...but completing the course makes no certificate.
    enrollment_id = await session.scalar(
        select(Enrollment.id).where(
            Enrollment.user_id == buyer.id, Enrollment.course_id == uuid.UUID(course["id"])
        )
    )
    assert enrollment_id is not None
    made = await issue_for(
        session, enrollment_id, settings=runtime.settings, storage=runtime.storage
    )
    assert made is None


async def test_a_refund_report_without_its_id_settles_the_pending_refund_it_covers(
    client: httpx.AsyncClient,
    session: AsyncSession,
    teacher: Account,
    buyer: Account,
    admin: Account,
) -> None:
    """A provider that accepts a refund as pending, then reports the payment's refunded
    total without naming the refund (Stripe's charge.refunded, found by the payment's
    id): the pending refund is the one settled, nothing is counted twice, and the rest
    of the order can still be refunded."""
    import datetime as dt

    from lyceum.models.payments import Order, Refund, RefundStatus
    from lyceum.payments.providers.base import EventKind, ProviderEvent
    from lyceum.payments.service import apply_events

    course = await priced_course(client, teacher, 2900)
    order = await bought(client, buyer, course["id"])
    row = await session.get(Order, uuid.UUID(order["id"]))
    assert row is not None and row.payment_ref
    pending = Refund(
        order_id=row.id,
        amount=900,
        currency=row.currency,
        status=RefundStatus.pending,
        requested_by=admin.id,
        idempotency_key="asked",
    )
    session.add(pending)
    await session.flush()

    report = ProviderEvent(
        event_id=f"evt_{uuid.uuid4().hex}",
        kind=EventKind.refunded,
        raw_type="charge.refunded",
        payment_ref=row.payment_ref,  # neither the order's nor the checkout's id
        refunded_total=900,
    )
    now = dt.datetime.now(dt.UTC)
    assert await apply_events(session, "sandbox", [report], now=now) == ["partially refunded"]
    refunds = (await session.scalars(select(Refund).where(Refund.order_id == row.id))).all()
    assert [(r.amount, r.status) for r in refunds] == [(900, RefundStatus.succeeded)]

    rest = await refund(client, admin, order["id"], "rest")
    assert rest.status_code == 201, rest.text
    assert rest.json()["amount"] == 2000


async def test_a_second_purchase_is_flagged_and_its_refund_keeps_access(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    teacher: Account,
    buyer: Account,
    admin: Account,
) -> None:
    """Two tabs, two checkouts, both paid: the second payment is flagged (an admin
    refunds it) rather than silently charging twice; refunding it in full leaves the
    learner enrolled through the first purchase."""
    from tests.payments.helpers import checkout, pay_on_page

    course = await priced_course(client, teacher, 2900)
    first = (await checkout(client, buyer, course["id"])).json()
    second = (await checkout(client, buyer, course["id"])).json()  # replaces the first
    for order in (first, second):
        assert (await pay_on_page(client, order["checkout_url"])).status_code == 303
    mine = {
        o["id"]: o
        for o in (await client.get(f"{API}/me/orders", headers=buyer.headers)).json()["items"]
    }
    assert mine[first["id"]]["status"] == "paid" and mine[first["id"]]["flagged_reason"] is None
    assert mine[second["id"]]["status"] == "paid"
    assert "already bought" in mine[second["id"]]["flagged_reason"]
    assert await events_of(connection, "order.paid", second["id"]) == 0

    back = await refund(client, admin, second["id"], "double")
    assert back.status_code == 201, back.text
    assert await enrollment_status(connection, course["id"], buyer.id) is EnrollmentStatus.active


def test_a_refund_is_asked_of_the_provider_under_the_client_s_key() -> None:
    """The provider's idempotency key comes from the order and the client's key, so a
    retry after a timeout (whose refund row rolled back) is the same refund there."""
    from lyceum.payments.service import refund_key

    order = uuid.uuid4()
    assert refund_key(order, "r1") == refund_key(order, "r1")
    assert refund_key(order, "r1") != refund_key(order, "r2")
    assert refund_key(order, "r1") != refund_key(uuid.uuid4(), "r1")
    assert len(refund_key(order, "k" * 255)) <= 64
