"""Every payment route with an id in its path, called by each kind of caller: a buyer
sees only their own orders; orders and refunds are for admins (and, when
REFUNDS_BY_INSTRUCTORS is on, the course's instructors: tests/payments/test_refunds.py);
coupons for admins and the course's instructors."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from lyceum.models.identity import Role
from tests.identity.helpers import Account, account
from tests.payments.helpers import bought, checkout, priced_course

API = "/api/v1"
CALLERS = ["anonymous", "buyer", "other_learner", "instructor", "other_instructor", "admin"]


@dataclass
class World:
    ids: dict[str, str]
    people: dict[str, Account | None]


@pytest.fixture
async def world(client: httpx.AsyncClient, connection: AsyncConnection) -> World:
    teacher = await account(client, connection, role=Role.instructor, prefix="teacher")
    other_teacher = await account(client, connection, role=Role.instructor, prefix="oi")
    buyer = await account(client, connection, prefix="buyer")
    other = await account(client, connection, prefix="other")
    admin = await account(client, connection, role=Role.admin, prefix="admin")
    course = await priced_course(client, teacher)
    order = await bought(client, buyer, course["id"])
    pending = (await checkout(client, other, course["id"])).json()
    coupon = await client.post(
        f"{API}/coupons",
        json={
            "code": f"T{uuid.uuid4().hex[:8]}",
            "kind": "percent",
            "percent_off": 10,
            "course_id": course["id"],
        },
        headers=teacher.headers,
    )
    assert coupon.status_code == 201, coupon.text
    people: dict[str, Account | None] = {
        "anonymous": None,
        "buyer": buyer,
        "other_learner": other,
        "instructor": teacher,
        "other_instructor": other_teacher,
        "admin": admin,
    }
    ids = {
        "course": course["id"],
        "order": order["id"],
        "checkout": pending["checkout_url"].rsplit("/", 1)[1],
        "coupon": coupon.json()["id"],
        "made_up": "00000000-0000-4000-8000-000000000000",
    }
    return World(ids, people)


# (method, path template, body, expected status per caller in CALLERS order)
MATRIX: list[tuple[str, str, Any, list[int]]] = [
    ("GET", API + "/me/orders/{order}", None, [401, 200, 404, 404, 404, 404]),
    ("GET", API + "/me/orders/{made_up}", None, [401, 404, 404, 404, 404, 404]),
    # the buyer is enrolled already (409); everyone else may buy
    ("POST", API + "/courses/{course}/checkout", {}, [401, 409, 201, 201, 201, 201]),
    ("GET", API + "/payments/orders/{order}", None, [401, 403, 403, 403, 403, 200]),
    ("GET", API + "/payments/orders/{made_up}", None, [401, 403, 403, 403, 403, 404]),
    ("GET", API + "/payments/orders/{order}/refunds", None, [401, 403, 403, 403, 403, 200]),
    (
        "POST",
        API + "/payments/orders/{order}/refunds",
        {"amount": 100, "reason": "asked"},
        [401, 403, 403, 403, 403, 201],
    ),
    ("POST", API + "/payments/webhooks/sandbox", {}, [400] * 6),
    ("POST", API + "/payments/webhooks/stripe", {}, [404] * 6),
    ("GET", "/pay/sandbox/{checkout}", None, [200] * 6),
    # the form's token, not the caller, is the credential
    ("POST", "/pay/sandbox/{checkout}", None, [422] * 6),
    ("GET", API + "/coupons/{coupon}", None, [401, 403, 403, 200, 404, 200]),
    ("PATCH", API + "/coupons/{coupon}", {"is_active": False}, [401, 403, 403, 200, 404, 200]),
    ("DELETE", API + "/coupons/{coupon}", None, [401, 403, 403, 204, 404, 204]),
    ("GET", API + "/coupons/{made_up}", None, [401, 403, 403, 404, 404, 404]),
]


@pytest.mark.parametrize(("method", "template", "body", "expected"), MATRIX)
async def test_authorization_matrix(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    world: World,
    method: str,
    template: str,
    body: Any,
    expected: list[int],
) -> None:
    path = template.format(**world.ids)
    answers = {}
    for who in CALLERS:
        caller = world.people[who]
        headers = {"Idempotency-Key": uuid.uuid4().hex, **(caller.headers if caller else {})}
        row = await connection.begin_nested()
        try:
            response = await client.request(method, path, json=body, headers=headers)
        finally:
            await row.rollback()
        answers[who] = response.status_code
        if response.status_code >= 400:
            assert response.headers["content-type"] == "application/problem+json", response.text
    assert answers == dict(zip(CALLERS, expected, strict=True))
