"""Orders, courses and coupons written straight into the database, as the checkout and
webhooks would leave them, for the receipt and report tests."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.models.courses import Course, CourseInstructor, CourseLevel, CourseStatus
from lyceum.models.identity import Role, User
from lyceum.models.payments import Coupon, CouponKind, Order, OrderStatus

PAID_AT = dt.datetime(2026, 12, 2, 10, 30, tzinfo=dt.UTC)


async def person(
    session: AsyncSession,
    *,
    name: str = "Ada Learner",
    role: Role = Role.student,
    locale: str = "en",
) -> User:
    user = User(
        id=uuid.uuid4(),
        email=f"pay-{uuid.uuid4().hex[:12]}@example.com",
        full_name=name,
        role=role,
        locale=locale,
    )
    session.add(user)
    await session.flush()
    return user


async def course(session: AsyncSession, owner_id: uuid.UUID, *, title: str = "Python") -> Course:
    row = Course(
        slug=f"pay-{uuid.uuid4().hex[:12]}",
        title=title,
        language="en",
        level=CourseLevel.beginner,
        category="programming",
        owner_id=owner_id,
        status=CourseStatus.published,
        published_at=PAID_AT - dt.timedelta(days=30),
    )
    session.add(row)
    await session.flush()
    session.add(CourseInstructor(course_id=row.id, user_id=owner_id))
    await session.flush()
    return row


async def coupon(session: AsyncSession, code: str, *, percent: int = 10) -> Coupon:
    row = Coupon(
        code=f"{code}-{uuid.uuid4().hex[:6].upper()}", kind=CouponKind.percent, percent_off=percent
    )
    session.add(row)
    await session.flush()
    return row


async def order(
    session: AsyncSession,
    buyer_id: uuid.UUID,
    course_id: uuid.UUID,
    *,
    amount: int = 12_345,
    currency: str = "KWD",
    status: OrderStatus = OrderStatus.paid,
    paid_at: dt.datetime | None = PAID_AT,
    **fields: Any,
) -> Order:
    values: dict[str, Any] = {
        "list_amount": amount + fields.get("discount_amount", 0),
        "provider": "sandbox",
        "provider_ref": f"chk-{uuid.uuid4().hex[:16]}",
        "payment_ref": f"pay-{uuid.uuid4().hex[:16]}",
        "expires_at": (paid_at or PAID_AT) + dt.timedelta(hours=1),
        "idempotency_key": uuid.uuid4().hex,
        "request_hash": "0" * 64,
        **fields,
    }
    row = Order(
        user_id=buyer_id,
        course_id=course_id,
        amount=amount,
        currency=currency,
        status=status,
        paid_at=paid_at if status is not OrderStatus.pending else None,
        **values,
    )
    session.add(row)
    await session.flush()
    return row


def paid_payload(row: Order) -> dict[str, Any]:
    """The `order.paid` payload the core's service emits for `row`."""
    return {
        "order_id": str(row.id),
        "user_id": str(row.user_id),
        "course_id": str(row.course_id),
        "amount": row.amount,
        "currency": row.currency,
        "provider": row.provider,
    }
