"""Helpers of the payment tests: a priced course, a checkout, the sandbox's page driven
like a browser, and sandbox webhooks signed as the sandbox signs them."""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any, cast
from urllib.parse import urlsplit

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from lyceum.config import Settings
from lyceum.models.courses import Enrollment, EnrollmentStatus
from lyceum.models.events import Event
from lyceum.payments.providers.sandbox import sign_webhook
from tests.content.helpers import Person
from tests.courses.test_courses import published
from tests.identity.helpers import Account

Caller = Account | Person

API = "/api/v1"
WEBHOOK = f"{API}/payments/webhooks/sandbox"


async def priced_course(
    client: httpx.AsyncClient, teacher: Caller, amount: int = 2900, currency: str = "USD"
) -> dict[str, Any]:
    # published() reads only the caller's headers, which a Person has too.
    course, _ = await published(
        client, cast(Account, teacher), price={"amount_cents": amount, "currency": currency}
    )
    return course


async def checkout(
    client: httpx.AsyncClient,
    who: Caller,
    course_id: str,
    key: str | None = None,
    **body: Any,
) -> httpx.Response:
    return await client.post(
        f"{API}/courses/{course_id}/checkout",
        json=body,
        headers={**who.headers, "Idempotency-Key": key or uuid.uuid4().hex},
    )


async def bought(client: httpx.AsyncClient, who: Account, course_id: str) -> dict[str, Any]:
    """Check out and pay on the sandbox page: the paid order."""
    response = await checkout(client, who, course_id)
    assert response.status_code == 201, response.text
    paid = await pay_on_page(client, response.json()["checkout_url"])
    assert paid.status_code == 303, paid.text
    order = await client.get(f"{API}/me/orders/{response.json()['id']}", headers=who.headers)
    assert order.json()["status"] == "paid", order.text
    result: dict[str, Any] = order.json()
    return result


async def pay_on_page(
    client: httpx.AsyncClient, checkout_url: str, action: str = "pay"
) -> httpx.Response:
    """Open the sandbox checkout page and press Pay (or Decline), as a browser would."""
    path = urlsplit(checkout_url).path
    page = await client.get(path)
    assert page.status_code == 200, page.text
    found = re.search(r'name="token" value="([0-9a-f]+)"', page.text)
    assert found is not None, page.text
    return await client.post(path, data={"token": found.group(1), "action": action})


def sandbox_event(
    settings: Settings,
    event_type: str,
    *,
    order: dict[str, Any],
    checkout_id: str,
    payment_id: str = "sbx_pay_test",
    amount: int | None = None,
    currency: str | None = None,
    refunded_total: int | None = None,
    refund_id: str | None = None,
    event_id: str | None = None,
    timestamp: int | None = None,
) -> tuple[bytes, dict[str, str]]:
    """A sandbox webhook's body and signed headers."""
    event_id = event_id or f"sbx_evt_{uuid.uuid4().hex[:24]}"
    data: dict[str, Any] = {
        "checkout_id": checkout_id,
        "order_id": order["id"],
        "payment_id": payment_id,
        "amount": order["amount"] if amount is None else amount,
        "currency": currency or order["currency"],
    }
    if refunded_total is not None:
        data["refunded_total"] = refunded_total
        data["refund_id"] = refund_id or f"sbx_re_{uuid.uuid4().hex[:24]}"
    body = json.dumps({"id": event_id, "type": event_type, "data": data}).encode()
    headers = sign_webhook(settings, body, event_id, timestamp or int(time.time()))
    return body, {**headers, "content-type": "application/json"}


async def post_webhook(
    client: httpx.AsyncClient, body: bytes, headers: dict[str, str]
) -> httpx.Response:
    return await client.post(WEBHOOK, content=body, headers=headers)


def checkout_id_of(order: dict[str, Any]) -> str:
    return str(order["checkout_url"]).rsplit("/", 1)[1]


async def enrollment_status(
    connection: AsyncConnection, course_id: str, user_id: uuid.UUID
) -> EnrollmentStatus | None:
    return await connection.scalar(
        select(Enrollment.status).where(
            Enrollment.course_id == uuid.UUID(course_id), Enrollment.user_id == user_id
        )
    )


async def events_of(connection: AsyncConnection, event_type: str, order_id: str) -> int:
    count = await connection.scalar(
        select(func.count(Event.id)).where(
            Event.type == event_type, Event.payload["order_id"].astext == order_id
        )
    )
    return int(count or 0)
