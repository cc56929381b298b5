"""MyFatoorah end to end through the app (PAYMENT_PROVIDERS=myfatoorah, a course priced
in KWD), against the MyFatoorah-shaped fake: checkout -> signed webhook -> enrolled; the
same webhook again (and in the other webhook version) -> one enrollment; a forged or
unconfirmed webhook -> nothing changes; an amount that disagrees -> flagged, not
enrolled; a lost webhook -> reconciliation enrolls; a refund -> access ended."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from lyceum.kit.runtime import Runtime
from lyceum.models.courses import EnrollmentStatus
from lyceum.payments import registry
from lyceum.payments.service import reconcile_order, stale_pending_orders
from tests.conftest import make_app
from tests.identity.helpers import Account
from tests.payments.helpers import API, checkout, enrollment_status, events_of, priced_course
from tests.support.clock import FrozenClock
from tests.support.jobs import with_settings
from tests.support.payment_fakes.myfatoorah import FakeMyFatoorah, Invoice

TOKEN = "mf-flow-token"
SECRET = "mf-flow-webhook-secret"
WEBHOOK = f"{API}/payments/webhooks/myfatoorah"
PRICE = 12345  # 12.345 KWD


@pytest.fixture
def myfatoorah() -> Iterator[FakeMyFatoorah]:
    with FakeMyFatoorah(TOKEN, SECRET, base_currency="KWD") as fake:
        yield fake


@pytest.fixture
def configured(runtime: Runtime, myfatoorah: FakeMyFatoorah) -> Runtime:
    return with_settings(
        runtime,
        payment_providers=["myfatoorah"],
        myfatoorah_api_key=SecretStr(TOKEN),
        myfatoorah_webhook_secret=SecretStr(SECRET),
        myfatoorah_base_url=myfatoorah.base_url,
    )


@pytest.fixture
def app(configured: Runtime, connection: AsyncConnection, clock: FrozenClock) -> FastAPI:
    application = make_app(configured.settings, configured, connection)
    application.state.clock = clock
    return application


async def bought_at_myfatoorah(
    client: httpx.AsyncClient, myfatoorah: FakeMyFatoorah, teacher: Account, buyer: Account
) -> tuple[dict[str, Any], dict[str, Any], Invoice]:
    """A KWD course, its checkout at MyFatoorah: the course, the order, the invoice."""
    course = await priced_course(client, teacher, PRICE, "KWD")
    response = await checkout(client, buyer, course["id"])
    assert response.status_code == 201, response.text
    order = response.json()
    assert order["provider"] == "myfatoorah"
    [invoice] = [i for i in myfatoorah.invoices.values() if i.customer_reference == order["id"]]
    assert (invoice.display_value, invoice.display_currency) == (Decimal("12.345"), "KWD")
    assert order["checkout_url"].endswith(f"/ie/{invoice.reference}")
    return course, order, invoice


async def order_now(client: httpx.AsyncClient, who: Account, order_id: str) -> dict[str, Any]:
    response = await client.get(f"{API}/me/orders/{order_id}", headers=who.headers)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def deliver(
    client: httpx.AsyncClient, signed: tuple[bytes, dict[str, str], dict[str, str]]
) -> httpx.Response:
    body, headers, query = signed
    return await client.post(WEBHOOK, content=body, headers=headers, params=query)


async def test_a_paid_invoice_enrolls_once_whatever_the_redeliveries(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    myfatoorah: FakeMyFatoorah,
    teacher: Account,
    buyer: Account,
) -> None:
    course, order, invoice = await bought_at_myfatoorah(client, myfatoorah, teacher, buyer)
    myfatoorah.pay(invoice.invoice_id)

    first = await deliver(client, myfatoorah.signed_webhook(invoice_id=invoice.invoice_id))
    assert first.status_code == 200, first.text
    assert await enrollment_status(connection, course["id"], buyer.id) is EnrollmentStatus.active
    paid = await order_now(client, buyer, order["id"])
    assert paid["status"] == "paid"
    assert paid["flagged_reason"] is None

    # The same webhook again, and the same payment in webhook v1: one payment, one event.
    for again in (
        myfatoorah.signed_webhook(invoice_id=invoice.invoice_id),
        myfatoorah.signed_webhook(invoice_id=invoice.invoice_id, version=1),
    ):
        response = await deliver(client, again)
        assert response.status_code == 200, response.text
    assert await events_of(connection, "order.paid", order["id"]) == 1
    assert (await order_now(client, buyer, order["id"]))["paid_at"] == paid["paid_at"]


async def test_forged_and_unconfirmed_webhooks_change_nothing(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    myfatoorah: FakeMyFatoorah,
    teacher: Account,
    buyer: Account,
) -> None:
    course, order, invoice = await bought_at_myfatoorah(client, myfatoorah, teacher, buyer)
    myfatoorah.start_attempt(invoice.invoice_id)

    forged = await deliver(
        client,
        myfatoorah.signed_webhook(
            invoice_id=invoice.invoice_id, transaction_status="SUCCESS", secret="guessed"
        ),
    )
    assert forged.status_code == 400, forged.text
    unsigned_body, _, _ = myfatoorah.signed_webhook(invoice_id=invoice.invoice_id)
    unsigned = await client.post(
        WEBHOOK, content=unsigned_body, headers={"Content-Type": "application/json"}
    )
    assert unsigned.status_code == 400, unsigned.text

    # Correctly signed, but MyFatoorah's GetPaymentStatus does not show a payment.
    claimed = await deliver(
        client,
        myfatoorah.signed_webhook(invoice_id=invoice.invoice_id, transaction_status="SUCCESS"),
    )
    assert claimed.status_code == 200, claimed.text

    assert (await order_now(client, buyer, order["id"]))["status"] == "pending"
    assert await enrollment_status(connection, course["id"], buyer.id) is None
    assert await events_of(connection, "order.paid", order["id"]) == 0


async def test_an_amount_that_disagrees_is_flagged_not_enrolled(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    myfatoorah: FakeMyFatoorah,
    teacher: Account,
    buyer: Account,
) -> None:
    course, order, invoice = await bought_at_myfatoorah(client, myfatoorah, teacher, buyer)
    # The invoice was edited at MyFatoorah before it was paid: 1.000 KWD instead.
    invoice.display_value = invoice.base_value = Decimal("1.000")
    myfatoorah.pay(invoice.invoice_id)

    response = await deliver(client, myfatoorah.signed_webhook(invoice_id=invoice.invoice_id))
    assert response.status_code == 200, response.text
    flagged = await order_now(client, buyer, order["id"])
    assert flagged["status"] == "pending"
    assert flagged["flagged_reason"] and "1000" in flagged["flagged_reason"]
    assert await enrollment_status(connection, course["id"], buyer.id) is None


async def test_a_lost_webhook_is_found_by_reconciliation(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    session: AsyncSession,
    configured: Runtime,
    myfatoorah: FakeMyFatoorah,
    teacher: Account,
    buyer: Account,
) -> None:
    course, order, invoice = await bought_at_myfatoorah(client, myfatoorah, teacher, buyer)
    payment = myfatoorah.pay(invoice.invoice_id)  # and the webhook never arrives
    settings = configured.settings
    later = dt.datetime.now(dt.UTC) + dt.timedelta(
        minutes=settings.payment_reconcile_after_minutes + 1
    )
    due = await stale_pending_orders(
        session, now=later, after_minutes=settings.payment_reconcile_after_minutes
    )
    assert uuid.UUID(order["id"]) in due
    async with httpx.AsyncClient(timeout=10) as http:
        providers = registry.providers(settings, http=http, session=session)
        outcome = await reconcile_order(
            session, providers, uuid.UUID(order["id"]), now=later, refund_ends_access=True
        )
    assert outcome == "paid"
    assert myfatoorah.bodies("GetPaymentStatus")[-1] == {
        "Key": str(invoice.invoice_id),
        "KeyType": "InvoiceId",
    }
    assert await enrollment_status(connection, course["id"], buyer.id) is EnrollmentStatus.active

    # The webhook arriving late is the same event: nothing more happens.
    late = await deliver(client, myfatoorah.signed_webhook(invoice_id=invoice.invoice_id))
    assert late.status_code == 200, late.text
    assert await events_of(connection, "order.paid", order["id"]) == 1
    assert (await order_now(client, buyer, order["id"]))["status"] == "paid"
    assert payment.status == "Succss"


async def test_a_full_refund_ends_access(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    myfatoorah: FakeMyFatoorah,
    teacher: Account,
    buyer: Account,
    admin: Account,
) -> None:
    course, order, invoice = await bought_at_myfatoorah(client, myfatoorah, teacher, buyer)
    myfatoorah.pay(invoice.invoice_id)
    assert (
        await deliver(client, myfatoorah.signed_webhook(invoice_id=invoice.invoice_id))
    ).status_code == 200

    key = uuid.uuid4().hex
    refund = await client.post(
        f"{API}/payments/orders/{order['id']}/refunds",
        json={"reason": "asked for it back"},
        headers={**admin.headers, "Idempotency-Key": key},
    )
    assert refund.status_code in {200, 201}, refund.text
    [made] = myfatoorah.bodies("MakeRefund")
    assert made["Key"] == str(invoice.invoice_id)
    assert Decimal(str(made["Amount"])) == Decimal("12.345")
    assert b'"Amount":12.345' in myfatoorah.raw_bodies("MakeRefund")[0]
    # Pending MyFatoorah's review: access stays until the refund is done.
    assert await enrollment_status(connection, course["id"], buyer.id) is EnrollmentStatus.active

    # The same key again does not ask MyFatoorah twice.
    again = await client.post(
        f"{API}/payments/orders/{order['id']}/refunds",
        json={"reason": "asked for it back"},
        headers={**admin.headers, "Idempotency-Key": key},
    )
    assert again.status_code == 200, again.text
    assert len(myfatoorah.bodies("MakeRefund")) == 1

    [pending] = myfatoorah.refunds.values()
    myfatoorah.settle_refund(pending.refund_id)
    done = await deliver(client, myfatoorah.signed_webhook(refund_id=pending.refund_id))
    assert done.status_code == 200, done.text
    refunded = await order_now(client, buyer, order["id"])
    assert refunded["status"] == "refunded"
    assert refunded["refunded_amount"] == PRICE
    assert (
        await enrollment_status(connection, course["id"], buyer.id) is not EnrollmentStatus.active
    )
    assert await events_of(connection, "order.refunded", order["id"]) == 1


async def test_a_partial_refund_made_in_the_portal_arrives_by_webhook(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    myfatoorah: FakeMyFatoorah,
    teacher: Account,
    buyer: Account,
) -> None:
    course, order, invoice = await bought_at_myfatoorah(client, myfatoorah, teacher, buyer)
    myfatoorah.pay(invoice.invoice_id)
    paid = await deliver(client, myfatoorah.signed_webhook(invoice_id=invoice.invoice_id))
    assert paid.status_code == 200

    refund = myfatoorah.refund_in_portal(invoice.invoice_id, "2.345")
    for version in (1, 2):  # either webhook version, once
        response = await deliver(
            client, myfatoorah.signed_webhook(refund_id=refund.refund_id, version=version)
        )
        assert response.status_code == 200, response.text
    partly = await order_now(client, buyer, order["id"])
    assert (partly["status"], partly["refunded_amount"]) == ("partially_refunded", 2345)
    assert await enrollment_status(connection, course["id"], buyer.id) is EnrollmentStatus.active
    assert await events_of(connection, "order.refunded", order["id"]) == 1
