"""Checkout: priced on the server, idempotent by key, one open checkout per course, and
the buyer alone sees their orders."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncConnection

from lyceum.kit.runtime import Runtime
from tests.conftest import client_for, make_app
from tests.courses.test_courses import published
from tests.identity.helpers import Account
from tests.payments.helpers import API, bought, checkout, priced_course
from tests.support.clock import FrozenClock
from tests.support.jobs import with_settings


async def test_the_same_key_and_body_answer_the_same_order(
    client: httpx.AsyncClient, teacher: Account, buyer: Account
) -> None:
    course = await priced_course(client, teacher)
    first = await checkout(client, buyer, course["id"], key="key-1")
    again = await checkout(client, buyer, course["id"], key="key-1")
    assert first.status_code == 201 and again.status_code == 200
    assert again.json() == first.json()
    assert "location" not in again.headers
    other_body = await checkout(client, buyer, course["id"], key="key-1", provider="sandbox")
    assert other_body.status_code == 422
    assert other_body.json()["errors"][0]["field"] == "header.Idempotency-Key"
    listed = await client.get(f"{API}/me/orders", headers=buyer.headers)
    assert listed.json()["total"] == 1


async def test_the_idempotency_key_is_required_and_checked(
    client: httpx.AsyncClient, teacher: Account, buyer: Account
) -> None:
    course = await priced_course(client, teacher)
    url = f"{API}/courses/{course['id']}/checkout"
    missing = await client.post(url, json={}, headers=buyer.headers)
    assert missing.status_code == 422
    assert [e["field"] for e in missing.json()["errors"]] == ["header.Idempotency-Key"]
    for bad in ("has space", "x" * 256):
        response = await client.post(
            url, json={}, headers={**buyer.headers, "Idempotency-Key": bad}
        )
        assert response.status_code == 422, bad


async def test_what_cannot_be_bought(
    client: httpx.AsyncClient, teacher: Account, buyer: Account
) -> None:
    free, _ = await published(client, teacher)
    response = await checkout(client, buyer, free["id"])
    assert response.status_code == 409 and response.json()["type"].endswith("course-is-free")
    course = await priced_course(client, teacher)
    await bought(client, buyer, course["id"])
    enrolled = await checkout(client, buyer, course["id"])
    assert enrolled.status_code == 409 and enrolled.json()["type"].endswith("already-enrolled")
    other = await priced_course(client, teacher)
    not_offered = await checkout(client, buyer, other["id"], provider="stripe")
    assert not_offered.status_code == 409
    assert not_offered.json()["errors"][0]["field"] == "body.provider"
    amount = await client.post(
        f"{API}/courses/{other['id']}/checkout",
        json={"amount": 1},
        headers={**buyer.headers, "Idempotency-Key": "k"},
    )
    assert amount.status_code == 422  # the price is never the client's to say


async def test_a_new_checkout_cancels_the_open_one(
    client: httpx.AsyncClient, teacher: Account, buyer: Account
) -> None:
    course = await priced_course(client, teacher)
    first = (await checkout(client, buyer, course["id"])).json()
    second = (await checkout(client, buyer, course["id"])).json()
    assert first["id"] != second["id"]
    old = await client.get(f"{API}/me/orders/{first['id']}", headers=buyer.headers)
    assert old.json()["status"] == "canceled" and old.json()["checkout_url"] is None


async def test_paid_courses_need_an_order_and_a_buyer_comes_back_free(
    client: httpx.AsyncClient, teacher: Account, buyer: Account
) -> None:
    course = await priced_course(client, teacher)
    enroll = f"{API}/courses/{course['id']}/enrollments"
    refused = await client.post(enroll, headers=buyer.headers)
    assert refused.status_code == 402 and "/checkout" in refused.json()["detail"]
    await bought(client, buyer, course["id"])
    left = await client.delete(f"{enroll}/me", headers=buyer.headers)
    assert left.status_code == 204
    back = await client.post(enroll, headers=buyer.headers)
    assert back.status_code == 201, back.text


async def test_prices_are_iso_4217(client: httpx.AsyncClient, teacher: Account) -> None:
    response = await client.post(
        f"{API}/courses",
        json={"title": "Gold", "price": {"amount_cents": 100, "currency": "XAU"}},
        headers=teacher.headers,
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body.price.currency"


def app_with(runtime: Runtime, connection: AsyncConnection, **changes: object) -> FastAPI:
    """The app in the test transaction, with settings changed."""
    changed = with_settings(runtime, **changes)
    app = make_app(changed.settings, changed, connection)
    app.state.clock = FrozenClock()
    return app


@pytest.fixture
async def taxed(runtime: Runtime, connection: AsyncConnection) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app_with(runtime, connection, tax_rate_percent=Decimal("14"))) as client:
        yield client


async def test_the_tax_rate_in_force_is_stored_on_the_order(
    taxed: httpx.AsyncClient, teacher: Account, buyer: Account
) -> None:
    course = await priced_course(taxed, teacher, 11400, "EGP")
    order = (await checkout(taxed, buyer, course["id"])).json()
    assert order["amount"] == 11400
    assert order["tax_rate_percent"] == 14 and order["tax_amount"] == 1400
