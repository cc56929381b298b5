"""Coupons: percent or fixed, per course or global, applied on the server within their
limits, even when checkouts race for the last use."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from lyceum.kit.runtime import Runtime
from lyceum.models.courses import EnrollmentStatus
from lyceum.models.identity import Role
from tests.conftest import committing_client
from tests.content.helpers import Person, person
from tests.identity.helpers import Account
from tests.payments.helpers import API, checkout, enrollment_status, pay_on_page, priced_course


def code() -> str:
    return f"C{uuid.uuid4().hex[:10].upper()}"


async def coupon(client: httpx.AsyncClient, who: Account | Person, **body: Any) -> dict[str, Any]:
    response = await client.post(f"{API}/coupons", json=body, headers=who.headers)
    assert response.status_code == 201, response.text
    assert response.headers["location"] == f"/api/v1/coupons/{response.json()['id']}"
    result: dict[str, Any] = response.json()
    return result


async def test_percent_and_fixed_discounts_are_priced_on_the_server(
    client: httpx.AsyncClient, teacher: Account, buyer: Account
) -> None:
    course = await priced_course(client, teacher, 2900)
    twenty = await coupon(
        client, teacher, code=code(), kind="percent", percent_off=20, course_id=course["id"]
    )
    order = (await checkout(client, buyer, course["id"], coupon_code=twenty["code"].lower())).json()
    assert order["list_amount"] == 2900 and order["discount_amount"] == 580
    assert order["amount"] == 2320 and order["coupon_id"] == twenty["id"]
    ten_off = await coupon(
        client,
        teacher,
        code=code(),
        kind="fixed",
        amount_off=1000,
        currency="USD",
        course_id=course["id"],
    )
    order = (await checkout(client, buyer, course["id"], coupon_code=ten_off["code"])).json()
    assert order["amount"] == 1900
    shown = await client.get(f"{API}/coupons/{ten_off['id']}", headers=teacher.headers)
    assert shown.json()["redemptions"] == 1
    # The first order was replaced by the second: its use is released.
    released = await client.get(f"{API}/coupons/{twenty['id']}", headers=teacher.headers)
    assert released.json()["redemptions"] == 0


async def test_a_coupon_that_makes_the_course_free_enrolls_at_once(
    client: httpx.AsyncClient, connection: AsyncConnection, teacher: Account, buyer: Account
) -> None:
    course = await priced_course(client, teacher, 2900)
    gift = await coupon(
        client, teacher, code=code(), kind="percent", percent_off=100, course_id=course["id"]
    )
    response = await checkout(client, buyer, course["id"], coupon_code=gift["code"])
    assert response.status_code == 201, response.text
    order = response.json()
    assert order["status"] == "paid" and order["amount"] == 0
    assert order["provider"] == "coupon" and order["checkout_url"] is None
    assert await enrollment_status(connection, course["id"], buyer.id) is EnrollmentStatus.active


async def test_coupons_that_do_not_apply(
    client: httpx.AsyncClient, teacher: Account, buyer: Account, admin: Account
) -> None:
    course = await priced_course(client, teacher, 2900)
    other = await priced_course(client, teacher, 2900)
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).isoformat()
    expired = await coupon(
        client,
        teacher,
        code=code(),
        kind="percent",
        percent_off=5,
        course_id=course["id"],
        expires_at=past,
    )
    inactive = await coupon(
        client,
        teacher,
        code=code(),
        kind="percent",
        percent_off=5,
        course_id=course["id"],
        is_active=False,
    )
    elsewhere = await coupon(
        client, teacher, code=code(), kind="percent", percent_off=5, course_id=other["id"]
    )
    for used in (expired["code"], inactive["code"], elsewhere["code"], "NOSUCHCODE"):
        response = await checkout(client, buyer, course["id"], coupon_code=used)
        assert response.status_code == 409, used
        assert response.json()["errors"][0]["field"] == "body.coupon_code"
    # Global coupons are the admins'; one use per buyer across courses.
    once = await coupon(client, admin, code=code(), kind="percent", percent_off=10)
    first = await checkout(client, buyer, course["id"], coupon_code=once["code"])
    await pay_on_page(client, first.json()["checkout_url"])
    second = await checkout(client, buyer, other["id"], coupon_code=once["code"])
    assert second.status_code == 409
    assert second.json()["type"].endswith("coupon-limit-reached")


async def test_who_makes_which_coupon(
    client: httpx.AsyncClient, connection: AsyncConnection, teacher: Account, admin: Account
) -> None:
    course = await priced_course(client, teacher, 2900)
    body = {"code": code(), "kind": "percent", "percent_off": 10}
    everywhere = await client.post(f"{API}/coupons", json=body, headers=teacher.headers)
    assert everywhere.status_code == 403
    made = await coupon(client, teacher, **body, course_id=course["id"])
    taken = await client.post(
        f"{API}/coupons", json={**body, "course_id": course["id"]}, headers=teacher.headers
    )
    assert taken.status_code == 409
    wrong_currency = await client.post(
        f"{API}/coupons",
        json={
            "code": code(),
            "kind": "fixed",
            "amount_off": 5,
            "currency": "EUR",
            "course_id": course["id"],
        },
        headers=teacher.headers,
    )
    assert wrong_currency.status_code == 409
    shape = await client.post(
        f"{API}/coupons",
        json={"code": code(), "kind": "fixed", "percent_off": 5, "course_id": course["id"]},
        headers=teacher.headers,
    )
    assert shape.status_code == 422
    await coupon(client, admin, code=code(), kind="percent", percent_off=10)
    mine = await client.get(f"{API}/coupons", headers=teacher.headers)
    assert [c["id"] for c in mine.json()["items"]] == [made["id"]]
    everything = await client.get(f"{API}/coupons", headers=admin.headers)
    assert everything.json()["total"] >= 2
    changed = await client.patch(
        f"{API}/coupons/{made['id']}",
        json={"max_redemptions": 5, "is_active": None},
        headers=teacher.headers,
    )
    assert changed.status_code == 200
    assert changed.json()["max_redemptions"] == 5 and changed.json()["is_active"] is True


# Racing checkouts: committed data, concurrent requests on their own connections.


@pytest.fixture
async def live(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    async with committing_client(runtime) as client:
        yield client


async def test_racing_checkouts_never_pass_the_coupon_s_limit(
    live: httpx.AsyncClient, runtime: Runtime
) -> None:
    teacher = await person(live, runtime, Role.instructor)
    course = await priced_course(live, teacher, 2900)
    last = await coupon(
        live,
        teacher,
        code=code(),
        kind="percent",
        percent_off=50,
        course_id=course["id"],
        max_redemptions=3,
    )
    buyers = [await person(live, runtime) for _ in range(6)]
    answers = await asyncio.gather(
        *(checkout(live, who, course["id"], coupon_code=last["code"]) for who in buyers)
    )
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [201, 201, 201, 409, 409, 409], [a.text for a in answers]
    shown = await live.get(f"{API}/coupons/{last['id']}", headers=teacher.headers)
    assert shown.json()["redemptions"] == 3
    # The same buyer racing two keys for a once-per-buyer coupon gets one order.
    once = await coupon(
        live, teacher, code=code(), kind="percent", percent_off=10, course_id=course["id"]
    )
    twice = await asyncio.gather(
        *(checkout(live, buyers[0], course["id"], coupon_code=once["code"]) for _ in range(2))
    )
    assert sorted(answer.status_code for answer in twice) == [201, 409]


async def test_a_released_coupon_is_not_redeemed_past_its_limit_by_a_late_payment(
    live: httpx.AsyncClient, runtime: Runtime, connection: AsyncConnection
) -> None:
    """A replaced checkout releases its coupon use, but its page can still be paid: three
    buyers each take a single-use coupon, replace that checkout, then pay the first one.
    The first payment redeems the coupon; the later two are paid (the money was taken)
    but flagged for an admin, and do not enroll."""
    teacher = await person(live, runtime, Role.instructor)
    course = await priced_course(live, teacher, 2900)
    single = await coupon(
        live,
        teacher,
        code=code(),
        kind="percent",
        percent_off=90,
        course_id=course["id"],
        max_redemptions=1,
    )
    taken = []
    for _ in range(3):
        who = await person(live, runtime)
        first = await checkout(live, who, course["id"], coupon_code=single["code"])
        assert first.status_code == 201, first.text
        assert (await checkout(live, who, course["id"])).status_code == 201  # replaces it
        taken.append((who, first.json()))
    outcomes = []
    for who, order in taken:
        assert (await pay_on_page(live, order["checkout_url"])).status_code == 303
        mine = (await live.get(f"{API}/me/orders/{order['id']}", headers=who.headers)).json()
        enrolled = await enrollment_status(connection, course["id"], who.id)
        outcomes.append((mine["status"], mine["flagged_reason"] is not None, enrolled))
    assert outcomes == [
        ("paid", False, EnrollmentStatus.active),
        ("paid", True, None),
        ("paid", True, None),
    ]
    shown = await live.get(f"{API}/coupons/{single['id']}", headers=teacher.headers)
    assert shown.json()["redemptions"] == 1
