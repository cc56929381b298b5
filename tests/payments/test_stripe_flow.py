"""Stripe end to end through the app, with PAYMENT_PROVIDERS=stripe against the fake
Stripe: checkout opens a Checkout Session, Stripe's signed webhook enrolls the buyer
once, forged or stale deliveries change nothing, an amount mismatch is flagged, a lost
webhook is made good by reconciliation, and a refund ends access and is announced."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from pydantic import AnyHttpUrl, SecretStr
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from lyceum.kit.runtime import Runtime
from lyceum.models.courses import Enrollment, EnrollmentStatus
from lyceum.models.payments import PaymentEvent
from lyceum.payments import registry
from lyceum.payments.service import reconcile_order
from tests.conftest import client_for, make_app
from tests.identity.helpers import Account
from tests.payments.helpers import API, checkout, enrollment_status, events_of, priced_course
from tests.support.clock import FrozenClock
from tests.support.jobs import with_settings
from tests.support.payment_fakes.stripe import SECRET_KEY, WEBHOOK_SECRET, FakeStripe

WEBHOOK = f"{API}/payments/webhooks/stripe"


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    with FakeStripe() as server:
        yield server


@pytest.fixture
def stripe_runtime(runtime: Runtime, fake: FakeStripe) -> Runtime:
    return with_settings(
        runtime,
        payment_providers=["stripe"],
        stripe_secret_key=SecretStr(SECRET_KEY),
        stripe_webhook_secret=SecretStr(WEBHOOK_SECRET),
        stripe_api_base=AnyHttpUrl(fake.base_url),
    )


@pytest.fixture
async def client(
    stripe_runtime: Runtime, connection: AsyncConnection, clock: FrozenClock
) -> AsyncIterator[httpx.AsyncClient]:
    """The app with Stripe as its only provider (the teacher, buyer and admin fixtures
    sign up through it too)."""
    app = make_app(stripe_runtime.settings, stripe_runtime, connection)
    app.state.clock = clock
    async with client_for(app) as http:
        yield http
    payment_http = getattr(app.state, "payment_http", None)
    if payment_http is not None:
        await payment_http.aclose()


async def pending_order(
    client: httpx.AsyncClient, fake: FakeStripe, teacher: Account, buyer: Account
) -> tuple[dict[str, Any], dict[str, Any], str]:
    """A priced course, the buyer's pending order, and its Checkout Session's id."""
    course = await priced_course(client, teacher, amount=2900, currency="USD")
    response = await checkout(client, buyer, course["id"])
    assert response.status_code == 201, response.text
    order = response.json()
    (session_id,) = [
        sid for sid, s in fake.sessions.items() if s["client_reference_id"] == order["id"]
    ]
    assert order["checkout_url"] == fake.sessions[session_id]["url"]
    return course, order, session_id


async def deliver(
    client: httpx.AsyncClient, fake: FakeStripe, event: dict[str, Any], **signing: Any
) -> httpx.Response:
    body, headers, query = fake.signed_webhook(event, **signing)
    return await client.post(WEBHOOK, content=body, headers=headers, params=query)


async def order_of(client: httpx.AsyncClient, who: Account, order_id: str) -> dict[str, Any]:
    response = await client.get(f"{API}/me/orders/{order_id}", headers=who.headers)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def recorded_events(connection: AsyncConnection) -> int:
    return int(await connection.scalar(select(func.count(PaymentEvent.id))) or 0)


async def test_checkout_then_stripes_webhook_enrolls_the_buyer(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    fake: FakeStripe,
    teacher: Account,
    buyer: Account,
) -> None:
    course, order, session_id = await pending_order(client, fake, teacher, buyer)
    (created,) = fake.calls("POST", "/v1/checkout/sessions")
    assert created.params["client_reference_id"] == order["id"]
    assert created.params["line_items"][0]["price_data"] == {
        "currency": "usd",
        "unit_amount": "2900",
        "product_data": {"name": course["title"]},
    }
    assert created.headers["idempotency-key"]

    response = await deliver(client, fake, fake.pay(session_id))
    assert response.status_code == 200, response.text
    assert response.json()["outcomes"] == ["paid"]
    paid = await order_of(client, buyer, order["id"])
    assert paid["status"] == "paid"
    assert await enrollment_status(connection, course["id"], buyer.id) is EnrollmentStatus.active
    assert await events_of(connection, "order.paid", order["id"]) == 1


async def test_the_same_webhook_twice_enrolls_once(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    fake: FakeStripe,
    teacher: Account,
    buyer: Account,
) -> None:
    course, order, session_id = await pending_order(client, fake, teacher, buyer)
    event = fake.pay(session_id)
    first = await deliver(client, fake, event)
    again = await deliver(client, fake, event)  # Stripe retries with the same event id
    assert first.json()["outcomes"] == ["paid"]
    assert again.status_code == 200 and again.json()["outcomes"] == ["duplicate"]
    enrollments = await connection.scalar(
        select(func.count(Enrollment.id)).where(
            Enrollment.user_id == buyer.id, Enrollment.course_id == uuid.UUID(course["id"])
        )
    )
    assert enrollments == 1
    assert await events_of(connection, "order.paid", order["id"]) == 1


async def test_forged_stale_or_tampered_deliveries_are_400_and_change_nothing(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    fake: FakeStripe,
    teacher: Account,
    buyer: Account,
) -> None:
    course, order, session_id = await pending_order(client, fake, teacher, buyer)
    event = fake.pay(session_id)
    before = await recorded_events(connection)
    body, headers, _ = fake.signed_webhook(event)
    attempts = [
        fake.signed_webhook(event, secret="whsec_not_the_endpoints_secret")[:2],
        fake.signed_webhook(event, timestamp=int(time.time()) - 600)[:2],
        (body.replace(b'"amount_total": 2900', b'"amount_total": 29'), headers),
        (body, {"content-type": "application/json"}),
    ]
    for attempt_body, attempt_headers in attempts:
        response = await client.post(WEBHOOK, content=attempt_body, headers=attempt_headers)
        assert response.status_code == 400, response.text
    assert await recorded_events(connection) == before
    assert (await order_of(client, buyer, order["id"]))["status"] == "pending"
    assert await enrollment_status(connection, course["id"], buyer.id) is None


async def test_an_amount_mismatch_is_flagged_and_enrolls_nobody(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    fake: FakeStripe,
    teacher: Account,
    buyer: Account,
) -> None:
    course, order, session_id = await pending_order(client, fake, teacher, buyer)
    event = fake.pay(session_id)
    event["data"]["object"]["amount_total"] = 100  # paid less than the order's price
    response = await deliver(client, fake, event)
    assert response.json()["outcomes"] == ["flagged: amount or currency mismatch"]
    flagged = await order_of(client, buyer, order["id"])
    assert flagged["status"] == "pending"
    assert "expected 2900 USD" in flagged["flagged_reason"]
    assert await enrollment_status(connection, course["id"], buyer.id) is None


async def test_a_delayed_payment_enrolls_when_it_clears_and_fails_otherwise(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    fake: FakeStripe,
    teacher: Account,
    buyer: Account,
) -> None:
    course, order, session_id = await pending_order(client, fake, teacher, buyer)
    waiting = await deliver(client, fake, fake.pay_later(session_id))
    assert waiting.json()["outcomes"] == ["ignored"]
    assert await enrollment_status(connection, course["id"], buyer.id) is None
    cleared = await deliver(client, fake, fake.settle(session_id, succeeded=True))
    assert cleared.json()["outcomes"] == ["paid"]
    assert (await order_of(client, buyer, order["id"]))["status"] == "paid"
    assert await enrollment_status(connection, course["id"], buyer.id) is EnrollmentStatus.active

    other = await priced_course(client, teacher, amount=1500, currency="USD")
    response = await checkout(client, buyer, other["id"])
    second = response.json()
    (second_session,) = [
        sid for sid, s in fake.sessions.items() if s["client_reference_id"] == second["id"]
    ]
    fake.pay_later(second_session)
    failed = await deliver(client, fake, fake.settle(second_session, succeeded=False))
    assert failed.json()["outcomes"] == ["failed"]
    assert (await order_of(client, buyer, second["id"]))["status"] == "failed"
    assert await events_of(connection, "order.failed", second["id"]) == 1
    assert await enrollment_status(connection, other["id"], buyer.id) is None


async def test_an_expired_session_expires_the_order(
    client: httpx.AsyncClient, fake: FakeStripe, teacher: Account, buyer: Account
) -> None:
    _, order, session_id = await pending_order(client, fake, teacher, buyer)
    response = await deliver(client, fake, fake.expire(session_id))
    assert response.json()["outcomes"] == ["expired"]
    assert (await order_of(client, buyer, order["id"]))["status"] == "expired"


async def test_a_lost_webhook_is_made_good_by_reconciliation(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    session: AsyncSession,
    stripe_runtime: Runtime,
    fake: FakeStripe,
    teacher: Account,
    buyer: Account,
) -> None:
    course, order, session_id = await pending_order(client, fake, teacher, buyer)
    late_event = fake.pay(session_id)  # paid at Stripe; the webhook never arrives
    settings = stripe_runtime.settings
    later = dt.datetime.now(dt.UTC) + dt.timedelta(
        minutes=settings.payment_reconcile_after_minutes + 1
    )
    async with httpx.AsyncClient() as http:
        outcome = await reconcile_order(
            session,
            registry.providers(settings, http=http, session=session),
            uuid.UUID(order["id"]),
            now=later,
            refund_ends_access=settings.refund_ends_access,
        )
    assert outcome == "paid"
    assert (await order_of(client, buyer, order["id"]))["status"] == "paid"
    assert await enrollment_status(connection, course["id"], buyer.id) is EnrollmentStatus.active
    # The webhook that finally arrives changes nothing.
    response = await deliver(client, fake, late_event)
    assert response.status_code == 200
    assert response.json()["outcomes"] == ["ignored: already paid"]
    assert await events_of(connection, "order.paid", order["id"]) == 1


async def test_an_expired_checkout_is_closed_at_stripe_by_reconciliation(
    client: httpx.AsyncClient,
    session: AsyncSession,
    stripe_runtime: Runtime,
    fake: FakeStripe,
    teacher: Account,
    buyer: Account,
) -> None:
    _, order, session_id = await pending_order(client, fake, teacher, buyer)
    settings = stripe_runtime.settings
    past_expiry = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    async with httpx.AsyncClient() as http:
        outcome = await reconcile_order(
            session,
            registry.providers(settings, http=http, session=session),
            uuid.UUID(order["id"]),
            now=past_expiry,
            refund_ends_access=settings.refund_ends_access,
        )
    assert outcome == "expired"
    assert fake.sessions[session_id]["status"] == "expired"
    assert (await order_of(client, buyer, order["id"]))["status"] == "expired"


async def test_a_refund_through_stripe_ends_access_and_is_announced(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    fake: FakeStripe,
    teacher: Account,
    buyer: Account,
    admin: Account,
) -> None:
    course, order, session_id = await pending_order(client, fake, teacher, buyer)
    await deliver(client, fake, fake.pay(session_id))
    intent = fake.sessions[session_id]["payment_intent"]

    refund = await client.post(
        f"{API}/payments/orders/{order['id']}/refunds",
        json={"reason": "course not as described"},
        headers={**admin.headers, "Idempotency-Key": "refund-1"},
    )
    assert refund.status_code == 201, refund.text
    (made,) = fake.refunds.values()
    assert (made["payment_intent"], made["amount"]) == (intent, 2900)
    assert made["metadata"]["order_id"] == order["id"]
    # Asked again with the same key: the same refund, Stripe not asked twice.
    again = await client.post(
        f"{API}/payments/orders/{order['id']}/refunds",
        json={"reason": "course not as described"},
        headers={**admin.headers, "Idempotency-Key": "refund-1"},
    )
    assert again.status_code == 200
    assert len(fake.refunds) == 1

    assert (await order_of(client, buyer, order["id"]))["status"] == "refunded"
    status = await enrollment_status(connection, course["id"], buyer.id)
    assert status is EnrollmentStatus.cancelled
    assert await events_of(connection, "order.refunded", order["id"]) == 1
    # Stripe's charge.refunded for the same refund adds nothing.
    echoed = await deliver(client, fake, fake.latest_event("charge.refunded"))
    assert echoed.json()["outcomes"] == ["ignored: refund already applied"]
    assert await events_of(connection, "order.refunded", order["id"]) == 1


async def test_refunds_made_in_the_dashboard_arrive_as_charge_refunded(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    fake: FakeStripe,
    teacher: Account,
    buyer: Account,
) -> None:
    course, order, session_id = await pending_order(client, fake, teacher, buyer)
    await deliver(client, fake, fake.pay(session_id))

    partial = await deliver(client, fake, fake.refund_in_dashboard(session_id, 900))
    assert partial.json()["outcomes"] == ["partially refunded"]
    assert (await order_of(client, buyer, order["id"]))["status"] == "partially_refunded"
    assert await enrollment_status(connection, course["id"], buyer.id) is EnrollmentStatus.active

    rest = await deliver(client, fake, fake.refund_in_dashboard(session_id))
    assert rest.json()["outcomes"] == ["refunded"]
    assert (await order_of(client, buyer, order["id"]))["status"] == "refunded"
    status = await enrollment_status(connection, course["id"], buyer.id)
    assert status is EnrollmentStatus.cancelled
    assert await events_of(connection, "order.refunded", order["id"]) == 2
