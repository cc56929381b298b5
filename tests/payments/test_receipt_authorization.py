"""Receipts and payment reports, called by each kind of caller: a receipt is its
buyer's alone (404 to everyone else, admins included: it is the buyer's document),
reports are for instructors (their own courses) and admins (every course)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from lyceum.kit.events import emit
from lyceum.models.identity import Role
from lyceum.models.payments import OrderStatus
from tests.identity.helpers import Account, account
from tests.payments import order_rows

CALLERS = ["anonymous", "enrolled", "other_learner", "instructor", "other_instructor", "admin"]


@dataclass
class World:
    ids: dict[str, str]
    people: dict[str, Account | None]


@pytest.fixture
async def world(
    client: httpx.AsyncClient, connection: AsyncConnection, session: AsyncSession
) -> World:
    teacher = await account(client, connection, role=Role.instructor, prefix="teacher")
    buyer = await account(client, connection, prefix="buyer")
    course = await order_rows.course(session, teacher.id)
    paid = await order_rows.order(session, buyer.id, course.id)
    await emit(session, "order.paid", **order_rows.paid_payload(paid))
    pending = await order_rows.order(
        session, buyer.id, course.id, status=OrderStatus.pending, paid_at=None
    )
    await session.flush()
    people: dict[str, Account | None] = {
        "anonymous": None,
        "enrolled": buyer,
        "other_learner": await account(client, connection, prefix="other"),
        "instructor": teacher,
        "other_instructor": await account(client, connection, role=Role.instructor, prefix="oi"),
        "admin": await account(client, connection, role=Role.admin, prefix="admin"),
    }
    return World(
        {"order": str(paid.id), "pending": str(pending.id), "course": str(course.id)}, people
    )


# (method, path template, body, expected status per caller in CALLERS order)
MATRIX: list[tuple[str, str, Any, list[int]]] = [
    ("GET", "/api/v1/me/orders/{order}/receipt", None, [401, 200, 404, 404, 404, 404]),
    ("GET", "/api/v1/me/orders/{pending}/receipt", None, [401, 404, 404, 404, 404, 404]),
    ("GET", "/api/v1/payments/reports/revenue", None, [401, 403, 403, 200, 200, 200]),
    ("GET", "/api/v1/payments/reports/revenue.csv", None, [401, 403, 403, 200, 200, 200]),
    ("GET", "/api/v1/payments/reports/refunds", None, [401, 403, 403, 200, 200, 200]),
    ("GET", "/api/v1/payments/reports/refunds.csv", None, [401, 403, 403, 200, 200, 200]),
    ("GET", "/api/v1/payments/reports/coupons", None, [401, 403, 403, 200, 200, 200]),
    ("GET", "/api/v1/payments/reports/coupons.csv", None, [401, 403, 403, 200, 200, 200]),
    (
        "GET",
        "/api/v1/payments/reports/revenue?course_id={course}",
        None,
        [401, 403, 403, 200, 403, 200],
    ),
]


@pytest.mark.parametrize(("method", "template", "body", "expected"), MATRIX)
async def test_authorization_matrix(
    client: httpx.AsyncClient,
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
        response = await client.request(
            method, path, json=body, headers=caller.headers if caller else {}
        )
        answers[who] = response.status_code
        if response.status_code >= 400:
            assert response.headers["content-type"] == "application/problem+json"
    assert answers == dict(zip(CALLERS, expected, strict=True))
