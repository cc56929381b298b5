"""The whole paid-course flow on the built-in sandbox provider, as the README shows it:
checkout URL -> the sandbox page -> Pay -> enrolled."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy.ext.asyncio import AsyncConnection

from lyceum.models.courses import EnrollmentStatus
from tests.identity.helpers import Account
from tests.payments.helpers import (
    API,
    checkout,
    enrollment_status,
    events_of,
    pay_on_page,
    priced_course,
)


async def test_checkout_pay_on_the_sandbox_page_and_be_enrolled(
    client: httpx.AsyncClient, connection: AsyncConnection, teacher: Account, buyer: Account
) -> None:
    course = await priced_course(client, teacher, 2900, "USD")
    response = await checkout(client, buyer, course["id"])
    assert response.status_code == 201, response.text
    order = response.json()
    assert response.headers["location"] == f"/api/v1/me/orders/{order['id']}"
    assert order["status"] == "pending" and order["provider"] == "sandbox"
    assert order["amount"] == 2900 and order["currency"] == "USD"
    assert order["checkout_url"].startswith("http://lyceum.test/pay/sandbox/sbx_cs_")

    page = await client.get(order["checkout_url"].removeprefix("http://lyceum.test"))
    assert page.status_code == 200
    assert "29.00 USD" in page.text and course["title"] in page.text
    assert "<script" not in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]

    paid = await pay_on_page(client, order["checkout_url"])
    assert paid.status_code == 303
    assert paid.headers["location"] == f"http://lyceum.test/pay/done?order={order['id']}"
    assert (await client.get("/pay/done", params={"order": order["id"]})).status_code == 200

    mine = await client.get(f"{API}/me/orders/{order['id']}", headers=buyer.headers)
    assert mine.json()["status"] == "paid" and mine.json()["paid_at"] is not None
    assert mine.json()["checkout_url"] is None
    assert await enrollment_status(connection, course["id"], buyer.id) is EnrollmentStatus.active
    progress = await client.get(f"{API}/courses/{course['id']}/progress", headers=buyer.headers)
    assert progress.status_code == 200
    assert await events_of(connection, "order.paid", order["id"]) == 1

    # The page of a paid checkout offers nothing more; pressing Pay again changes nothing.
    again = await client.get(order["checkout_url"].removeprefix("http://lyceum.test"))
    assert "This checkout is paid" in again.text and 'name="token"' not in again.text


async def test_decline_fails_the_order_and_enrolls_nobody(
    client: httpx.AsyncClient, connection: AsyncConnection, teacher: Account, buyer: Account
) -> None:
    course = await priced_course(client, teacher)
    order = (await checkout(client, buyer, course["id"])).json()
    declined = await pay_on_page(client, order["checkout_url"], action="decline")
    assert declined.status_code == 303
    assert declined.headers["location"].startswith("http://lyceum.test/pay/canceled")
    mine = await client.get(f"{API}/me/orders/{order['id']}", headers=buyer.headers)
    assert mine.json()["status"] == "failed"
    assert await enrollment_status(connection, course["id"], buyer.id) is None
    assert await events_of(connection, "order.failed", order["id"]) == 1


async def test_a_form_not_served_for_the_checkout_is_refused(
    client: httpx.AsyncClient, connection: AsyncConnection, teacher: Account, buyer: Account
) -> None:
    course = await priced_course(client, teacher)
    order = (await checkout(client, buyer, course["id"])).json()
    path = order["checkout_url"].removeprefix("http://lyceum.test")
    forged = await client.post(path, data={"token": "0" * 64, "action": "pay"})
    assert forged.status_code == 403
    assert await enrollment_status(connection, course["id"], buyer.id) is None
    missing = await client.get(f"/pay/sandbox/sbx_cs_{uuid.uuid4().hex[:24]}")
    assert missing.status_code == 404


async def test_amounts_are_shown_with_the_currency_s_own_decimals(
    client: httpx.AsyncClient, teacher: Account, buyer: Account
) -> None:
    for amount, currency, shown in ((12345, "KWD", "12.345 KWD"), (500, "JPY", "500 JPY")):
        course = await priced_course(client, teacher, amount, currency)
        order = (await checkout(client, buyer, course["id"])).json()
        assert order["amount"] == amount and order["currency"] == currency
        page = await client.get(order["checkout_url"].removeprefix("http://lyceum.test"))
        assert shown in page.text
