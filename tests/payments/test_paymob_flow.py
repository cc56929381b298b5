"""Buying a course priced in Egyptian pounds through Paymob, end to end: Lyceum opens the
intention at a fake Paymob, the fake's signed transaction callbacks come back to the
app's webhook endpoint, reconciliation asks the fake when a callback is lost, and refunds
go through its refund API (or arrive from its dashboard)."""

from __future__ import annotations

import datetime as dt
import json
import urllib.parse
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import AnyHttpUrl, SecretStr
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from lyceum.config import Settings
from lyceum.models.courses import Enrollment, EnrollmentStatus
from lyceum.models.payments import PaymentEvent
from lyceum.payments import registry
from lyceum.payments.service import reconcile_order
from tests.identity.helpers import Account, account
from tests.payments.helpers import API, checkout, enrollment_status, events_of, priced_course
from tests.support.payment_fakes.paymob import FakeOrder, FakePaymob

WEBHOOK = f"{API}/payments/webhooks/paymob"
PRICE = 149_900  # 1,499.00 EGP in piasters


@pytest.fixture(scope="module")
def fake_paymob() -> Iterator[FakePaymob]:
    with FakePaymob() as server:
        yield server


@pytest.fixture
def paymob(
    settings: Settings, fake_paymob: FakePaymob, monkeypatch: pytest.MonkeyPatch
) -> FakePaymob:
    """PAYMENT_PROVIDERS=paymob, with the fake's keys, for one test."""
    configured: dict[str, object] = {
        "payment_providers": ["paymob"],
        "paymob_secret_key": SecretStr(fake_paymob.secret_key),
        "paymob_public_key": fake_paymob.public_key,
        "paymob_hmac_secret": SecretStr(fake_paymob.hmac_secret),
        "paymob_api_key": SecretStr(fake_paymob.api_key),
        "paymob_integration_ids": list(fake_paymob.integration_ids),
        "paymob_base_url": AnyHttpUrl(fake_paymob.base_url),
        "paymob_currencies": ["EGP"],
    }
    for name, value in configured.items():
        monkeypatch.setattr(settings, name, value)
    return fake_paymob


async def _buy(
    client: httpx.AsyncClient, paymob: FakePaymob, teacher: Account, buyer: Account
) -> tuple[dict[str, Any], dict[str, Any], FakeOrder]:
    """A course in EGP, the buyer's checkout, and the intention Paymob holds for it."""
    course = await priced_course(client, teacher, amount=PRICE, currency="EGP")
    response = await checkout(client, buyer, course["id"])
    assert response.status_code == 201, response.text
    order = response.json()
    url = urllib.parse.urlsplit(order["checkout_url"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{paymob.base_url}/unifiedcheckout/"
    query = urllib.parse.parse_qs(url.query)
    assert query["publicKey"] == [paymob.public_key]
    return course, order, paymob.order_for(query["clientSecret"][0])


async def _callback(
    client: httpx.AsyncClient, paymob: FakePaymob, transaction: dict[str, Any]
) -> httpx.Response:
    body, headers, query = paymob.signed_webhook(transaction)
    return await client.post(WEBHOOK, params=query, content=body, headers=headers)


async def _order(client: httpx.AsyncClient, who: Account, order_id: str) -> dict[str, Any]:
    response = await client.get(f"{API}/me/orders/{order_id}", headers=who.headers)
    result: dict[str, Any] = response.json()
    return result


async def _recorded(connection: AsyncConnection) -> int:
    return int(await connection.scalar(select(func.count(PaymentEvent.id))) or 0)


async def test_checkout_then_the_signed_callback_enrolls(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    paymob: FakePaymob,
    teacher: Account,
    buyer: Account,
) -> None:
    course, order, intention = await _buy(client, paymob, teacher, buyer)
    assert order["provider"] == "paymob"
    assert (intention.amount, intention.currency) == (PRICE, "EGP")
    assert intention.merchant_order_id == order["id"]
    assert intention.notification_url is not None
    assert intention.notification_url.endswith("/api/v1/payments/webhooks/paymob")

    response = await _callback(client, paymob, paymob.pay(intention))
    assert response.status_code == 200, response.text
    assert response.json()["outcomes"] == ["paid"]
    assert (await _order(client, buyer, order["id"]))["status"] == "paid"
    assert await enrollment_status(connection, course["id"], buyer.id) is EnrollmentStatus.active
    assert await events_of(connection, "order.paid", order["id"]) == 1


async def test_the_same_callback_twice_enrolls_once(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    paymob: FakePaymob,
    teacher: Account,
    buyer: Account,
) -> None:
    _, order, intention = await _buy(client, paymob, teacher, buyer)
    transaction = paymob.pay(intention)
    first = await _callback(client, paymob, transaction)
    second = await _callback(client, paymob, transaction)
    assert first.json()["outcomes"] == ["paid"]
    assert second.json()["outcomes"] == ["duplicate"]
    enrollments = await connection.scalar(
        select(func.count(Enrollment.id)).where(Enrollment.user_id == buyer.id)
    )
    assert enrollments == 1
    assert await events_of(connection, "order.paid", order["id"]) == 1


async def test_a_forged_or_tampered_callback_is_400_and_changes_nothing(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    paymob: FakePaymob,
    teacher: Account,
    buyer: Account,
) -> None:
    course, order, intention = await _buy(client, paymob, teacher, buyer)
    declined = paymob.decline(intention)
    body, headers, query = paymob.signed_webhook(declined)
    # The declined attempt, rewritten as a success: the signature no longer matches.
    payload = json.loads(body)
    payload["obj"]["success"] = True
    tampered = json.dumps(payload).encode()
    with FakePaymob(hmac_secret="someone else's secret") as forger:
        forged_body, _, forged_query = forger.signed_webhook(paymob.pay(intention))
    before = await _recorded(connection)
    for attempt_body, attempt_query in (
        (tampered, query),
        (forged_body, forged_query),
        (body, {}),
        (body, {"hmac": "0" * 128}),
    ):
        response = await client.post(
            WEBHOOK, params=attempt_query, content=attempt_body, headers=headers
        )
        assert response.status_code == 400, response.text
        assert response.json()["type"].endswith("invalid-webhook")
    assert await _recorded(connection) == before
    assert (await _order(client, buyer, order["id"]))["status"] == "pending"
    assert await enrollment_status(connection, course["id"], buyer.id) is None


async def test_a_declined_payment_fails_the_order(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    paymob: FakePaymob,
    teacher: Account,
    buyer: Account,
) -> None:
    course, order, intention = await _buy(client, paymob, teacher, buyer)
    response = await _callback(client, paymob, paymob.decline(intention))
    assert response.status_code == 200, response.text
    assert (await _order(client, buyer, order["id"]))["status"] == "failed"
    assert await enrollment_status(connection, course["id"], buyer.id) is None


async def test_an_amount_mismatch_is_flagged_and_enrolls_nobody(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    paymob: FakePaymob,
    teacher: Account,
    buyer: Account,
) -> None:
    course, order, intention = await _buy(client, paymob, teacher, buyer)
    response = await _callback(client, paymob, paymob.pay(intention, amount=PRICE - 100))
    assert response.status_code == 200, response.text
    assert response.json()["outcomes"] == ["flagged: amount or currency mismatch"]
    mine = await _order(client, buyer, order["id"])
    assert mine["status"] == "pending" and mine["flagged_reason"]
    assert await enrollment_status(connection, course["id"], buyer.id) is None


async def test_a_lost_callback_is_settled_by_reconciliation(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    session: AsyncSession,
    settings: Settings,
    paymob: FakePaymob,
    teacher: Account,
    buyer: Account,
) -> None:
    course, order, intention = await _buy(client, paymob, teacher, buyer)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=16)

    async def reconcile() -> str:
        return await reconcile_order(
            session,
            registry.providers(settings, session=session),
            uuid.UUID(order["id"]),
            now=later,
            refund_ends_access=True,
        )

    assert await reconcile() == "still open"  # nothing paid yet
    transaction = paymob.pay(intention)  # and its callback never arrives
    assert await reconcile() == "paid"
    assert await enrollment_status(connection, course["id"], buyer.id) is EnrollmentStatus.active
    assert (await _order(client, buyer, order["id"]))["status"] == "paid"
    # The callback, arriving after all, is the event reconciliation already applied.
    late = await _callback(client, paymob, transaction)
    assert late.json()["outcomes"] == ["duplicate"]
    assert await events_of(connection, "order.paid", order["id"]) == 1


async def test_a_refund_through_lyceum_ends_access(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    paymob: FakePaymob,
    teacher: Account,
    buyer: Account,
    admin: Account,
) -> None:
    course, order, intention = await _buy(client, paymob, teacher, buyer)
    payment = paymob.pay(intention)
    assert (await _callback(client, paymob, payment)).json()["outcomes"] == ["paid"]

    refund = await client.post(
        f"{API}/payments/orders/{order['id']}/refunds",
        json={"reason": "changed their mind"},
        headers={**admin.headers, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert refund.status_code == 201, refund.text
    assert refund.json()["amount"] == PRICE
    assert refund.json()["status"] == "succeeded"
    at_paymob = paymob.transaction(payment["id"])
    assert at_paymob["is_refunded"] and at_paymob["refunded_amount_cents"] == PRICE

    assert (await _order(client, buyer, order["id"]))["status"] == "refunded"
    assert await enrollment_status(connection, course["id"], buyer.id) is (
        EnrollmentStatus.cancelled
    )
    assert await events_of(connection, "order.refunded", order["id"]) == 1
    # Paymob then calls back with the refund transaction: nothing more happens.
    child = paymob.transaction(intention.transactions[-1]["id"])
    assert child["is_refund"]
    assert (await _callback(client, paymob, child)).status_code == 200
    assert (await _order(client, buyer, order["id"]))["refunded_amount"] == PRICE


async def test_refunds_made_in_the_dashboard_arrive_by_callback(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    paymob: FakePaymob,
    teacher: Account,
    buyer: Account,
) -> None:
    course, order, intention = await _buy(client, paymob, teacher, buyer)
    payment = paymob.pay(intention)
    await _callback(client, paymob, payment)

    paymob.refund_in_dashboard(payment["id"], 40_000)
    part = await _callback(client, paymob, paymob.transaction(intention.transactions[-1]["id"]))
    assert part.status_code == 200, part.text
    mine = await _order(client, buyer, order["id"])
    assert (mine["status"], mine["refunded_amount"]) == ("partially_refunded", 40_000)
    assert await enrollment_status(connection, course["id"], buyer.id) is EnrollmentStatus.active

    paymob.refund_in_dashboard(payment["id"], PRICE - 40_000)
    rest = await _callback(client, paymob, paymob.transaction(intention.transactions[-1]["id"]))
    assert rest.status_code == 200, rest.text
    mine = await _order(client, buyer, order["id"])
    assert (mine["status"], mine["refunded_amount"]) == ("refunded", PRICE)
    assert await enrollment_status(connection, course["id"], buyer.id) is (
        EnrollmentStatus.cancelled
    )


async def test_a_genuine_callback_with_unsigned_fields_edited_refunds_nobody(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    paymob: FakePaymob,
    teacher: Account,
    buyer: Account,
) -> None:
    """Someone holding their own signed callback rewrites the fields the HMAC does not
    cover (merchant_order_id, is_refund, refunded_amount_cents, parent_transaction) to
    aim a refund at another learner's order: neither order is refunded."""
    course, order, intention = await _buy(client, paymob, teacher, buyer)
    payment = paymob.pay(intention)
    assert (await _callback(client, paymob, payment)).json()["outcomes"] == ["paid"]

    attacker = await account(client, connection, prefix="attacker")
    _, own_order, own_intention = await _buy(client, paymob, teacher, attacker)
    own_payment = paymob.pay(own_intention)
    assert (await _callback(client, paymob, own_payment)).json()["outcomes"] == ["paid"]

    body, headers, query = paymob.signed_webhook(own_payment)
    payload = json.loads(body)
    payload["obj"]["order"]["merchant_order_id"] = order["id"]
    payload["obj"].update(
        is_refund=True, refunded_amount_cents=PRICE, parent_transaction=payment["id"]
    )
    for _ in range(2):
        forged = await client.post(
            WEBHOOK, params=query, content=json.dumps(payload).encode(), headers=headers
        )
        assert forged.status_code == 200, forged.text
        assert forged.json()["outcomes"] == ["duplicate"]

    for who, placed in ((buyer, order), (attacker, own_order)):
        mine = await _order(client, who, placed["id"])
        assert (mine["status"], mine["refunded_amount"]) == ("paid", 0)
    assert await enrollment_status(connection, course["id"], buyer.id) is EnrollmentStatus.active
    assert await events_of(connection, "order.refunded", order["id"]) == 0
    assert paymob.transaction(payment["id"])["refunded_amount_cents"] == 0
