"""Sandbox webhooks through `POST /payments/webhooks/sandbox`: verified on the raw body,
applied once per event id, checked against the order, and in any order."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from lyceum.config import Settings
from lyceum.models.courses import Enrollment, EnrollmentStatus
from lyceum.models.payments import PaymentEvent
from tests.identity.helpers import Account
from tests.payments.helpers import (
    API,
    WEBHOOK,
    checkout,
    checkout_id_of,
    enrollment_status,
    events_of,
    post_webhook,
    priced_course,
    sandbox_event,
)


async def _pending(
    client: httpx.AsyncClient, teacher: Account, buyer: Account
) -> tuple[dict[str, Any], dict[str, Any]]:
    course = await priced_course(client, teacher)
    response = await checkout(client, buyer, course["id"])
    assert response.status_code == 201, response.text
    return course, response.json()


async def _order(client: httpx.AsyncClient, who: Account, order_id: str) -> dict[str, Any]:
    response = await client.get(f"{API}/me/orders/{order_id}", headers=who.headers)
    result: dict[str, Any] = response.json()
    return result


async def _recorded(connection: AsyncConnection) -> int:
    return int(await connection.scalar(select(func.count(PaymentEvent.id))) or 0)


async def test_a_forged_or_stale_signature_is_400_and_changes_nothing(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    settings: Settings,
    teacher: Account,
    buyer: Account,
) -> None:
    course, order = await _pending(client, teacher, buyer)
    before = await _recorded(connection)
    body, headers = sandbox_event(
        settings, "payment.succeeded", order=order, checkout_id=checkout_id_of(order)
    )
    forged = {**headers, "webhook-signature": "v1,bm90IHRoZSBzaWduYXR1cmU="}
    tampered = body.replace(b'"amount": 2900', b'"amount": 1')
    stale_body, stale = sandbox_event(
        settings,
        "payment.succeeded",
        order=order,
        checkout_id=checkout_id_of(order),
        timestamp=int(time.time()) - 600,
    )
    for attempt_body, attempt_headers in (
        (body, forged),
        (tampered, headers),
        (stale_body, stale),
        (body, {"content-type": "application/json"}),
    ):
        response = await post_webhook(client, attempt_body, attempt_headers)
        assert response.status_code == 400, response.text
        assert response.json()["type"].endswith("invalid-webhook")
    assert await _recorded(connection) == before
    assert (await _order(client, buyer, order["id"]))["status"] == "pending"
    assert await enrollment_status(connection, course["id"], buyer.id) is None


async def test_the_same_webhook_twice_enrolls_once(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    settings: Settings,
    teacher: Account,
    buyer: Account,
) -> None:
    course, order = await _pending(client, teacher, buyer)
    body, headers = sandbox_event(
        settings, "payment.succeeded", order=order, checkout_id=checkout_id_of(order)
    )
    first = await post_webhook(client, body, headers)
    second = await post_webhook(client, body, headers)
    assert first.status_code == second.status_code == 200
    assert first.json()["outcomes"] == ["paid"] and second.json()["outcomes"] == ["duplicate"]
    # Another delivery of the same payment under a new event id changes nothing either.
    again_body, again = sandbox_event(
        settings, "payment.succeeded", order=order, checkout_id=checkout_id_of(order)
    )
    assert (await post_webhook(client, again_body, again)).json()["outcomes"] == [
        "ignored: already paid"
    ]
    enrollments = await connection.scalar(
        select(func.count(Enrollment.id)).where(Enrollment.user_id == buyer.id)
    )
    assert enrollments == 1
    assert await events_of(connection, "order.paid", order["id"]) == 1
    assert await events_of(connection, "enrollment.created", order["id"]) == 0  # no order id
    assert await enrollment_status(connection, course["id"], buyer.id) is EnrollmentStatus.active


async def test_an_amount_mismatch_flags_the_order_and_enrolls_nobody(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    settings: Settings,
    teacher: Account,
    buyer: Account,
    admin: Account,
) -> None:
    course, order = await _pending(client, teacher, buyer)
    for amount, currency in ((100, "USD"), (2900, "EUR")):
        body, headers = sandbox_event(
            settings,
            "payment.succeeded",
            order=order,
            checkout_id=checkout_id_of(order),
            amount=amount,
            currency=currency,
        )
        response = await post_webhook(client, body, headers)
        assert response.json()["outcomes"] == ["flagged: amount or currency mismatch"]
    mine = await _order(client, buyer, order["id"])
    assert mine["status"] == "pending" and "expected 2900 USD" in mine["flagged_reason"]
    assert await enrollment_status(connection, course["id"], buyer.id) is None
    flagged = await client.get(
        f"{API}/payments/orders", params={"flagged": "true"}, headers=admin.headers
    )
    assert order["id"] in [item["id"] for item in flagged.json()["items"]]
    clean = await client.get(
        f"{API}/payments/orders", params={"flagged": "false"}, headers=admin.headers
    )
    assert order["id"] not in [item["id"] for item in clean.json()["items"]]


async def test_events_out_of_order(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    settings: Settings,
    teacher: Account,
    buyer: Account,
) -> None:
    course, order = await _pending(client, teacher, buyer)
    checkout_id = checkout_id_of(order)

    def event(kind: str, **fields: Any) -> tuple[bytes, dict[str, str]]:
        return sandbox_event(settings, kind, order=order, checkout_id=checkout_id, **fields)

    # A refund before the payment: recorded, applied once the payment arrives.
    refund = await post_webhook(client, *event("payment.refunded", refunded_total=900))
    assert refund.json()["outcomes"] == ["deferred: refund before payment, applied once paid"]
    assert (await _order(client, buyer, order["id"]))["status"] == "pending"
    paid = await post_webhook(client, *event("payment.succeeded"))
    assert paid.json()["outcomes"] == ["paid"]
    mine = await _order(client, buyer, order["id"])
    assert mine["status"] == "partially_refunded" and mine["refunded_amount"] == 900
    assert await enrollment_status(connection, course["id"], buyer.id) is EnrollmentStatus.active
    # A decline after the payment: recorded, ignored.
    late = await post_webhook(client, *event("payment.declined"))
    assert late.json()["outcomes"] == ["ignored: order is partially_refunded"]
    # A refund total lower than what is known does not undo a refund.
    lower = await post_webhook(client, *event("payment.refunded", refunded_total=500))
    assert lower.json()["outcomes"] == ["ignored: refund already applied"]
    assert (await _order(client, buyer, order["id"]))["refunded_amount"] == 900


async def test_a_payment_on_a_replaced_checkout_still_enrolls(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    settings: Settings,
    teacher: Account,
    buyer: Account,
) -> None:
    course, first = await _pending(client, teacher, buyer)
    second = await checkout(client, buyer, course["id"])
    assert second.status_code == 201
    assert (await _order(client, buyer, first["id"]))["status"] == "canceled"
    body, headers = sandbox_event(
        settings, "payment.succeeded", order=first, checkout_id=checkout_id_of(first)
    )
    assert (await post_webhook(client, body, headers)).json()["outcomes"] == ["paid"]
    assert (await _order(client, buyer, first["id"]))["status"] == "paid"
    assert await enrollment_status(connection, course["id"], buyer.id) is EnrollmentStatus.active


async def test_unknown_providers_and_oversized_bodies(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    assert (await client.post(f"{API}/payments/webhooks/stripe", content=b"{}")).status_code == 404
    assert (await client.post(f"{API}/payments/webhooks/nobody", content=b"{}")).status_code == 404
    huge = await client.post(WEBHOOK, content=b"x" * (300 * 1024))
    assert huge.status_code == 413
    unknown_order = {"id": str(uuid.uuid4()), "amount": 1, "currency": "USD"}
    body, headers = sandbox_event(
        settings, "payment.succeeded", order=unknown_order, checkout_id="sbx_cs_none"
    )
    response = await post_webhook(client, body, headers)
    assert response.status_code == 200 and response.json()["outcomes"] == ["no such order"]


async def test_hostile_headers_and_bodies_are_400_never_500(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    settings: Settings,
    teacher: Account,
    buyer: Account,
) -> None:
    """What a stranger can send to the public webhook URL: a non-ASCII signature, a
    timestamp of a thousand digits or in another script's digits, a body nested past the
    JSON parser's depth. Each is an untrusted webhook (400) and nothing is written."""
    _course, order = await _pending(client, teacher, buyer)
    before = await _recorded(connection)
    body, headers = sandbox_event(
        settings, "payment.succeeded", order=order, checkout_id=checkout_id_of(order)
    )
    deep = b"[" * 100_000 + b"]" * 100_000
    for attempt_body, attempt_headers in (
        (body, {**headers, "webhook-signature": "v1,\u00e9\u00e9"}),
        (body, {**headers, "webhook-timestamp": "9" * 1000}),
        (body, {**headers, "webhook-timestamp": "\u0661\u0667\u0660\u0660"}),
        (deep, headers),
    ):
        response = await client.post(
            WEBHOOK,
            content=attempt_body,
            headers={name: value.encode("utf-8") for name, value in attempt_headers.items()},
        )
        assert response.status_code == 400, response.text
    assert await _recorded(connection) == before
