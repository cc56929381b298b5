"""Every query of orders, coupons, provider events, refunds and the sandbox's checkouts."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.models.channels import UserPhone
from lyceum.models.courses import Course, CourseInstructor
from lyceum.models.payments import (
    Coupon,
    Order,
    OrderStatus,
    PaymentEvent,
    Refund,
    RefundStatus,
    SandboxCheckout,
)

# Orders that hold a coupon use: an open checkout reserves it, a paid one spends it.
COUPON_HOLDING = (
    OrderStatus.pending,
    OrderStatus.paid,
    OrderStatus.partially_refunded,
    OrderStatus.refunded,
)


def _holds_a_use() -> tuple[ColumnElement[bool], ...]:
    # A flagged order (paid past the coupon's limits, or twice) waits for an admin's
    # refund: it redeems nothing.
    return (Order.status.in_(COUPON_HOLDING), Order.flagged_reason.is_(None))


class PaymentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, row: object) -> None:
        self.session.add(row)
        await self.session.flush()

    # Orders ---------------------------------------------------------------------------

    async def order(self, order_id: uuid.UUID, *, for_update: bool = False) -> Order | None:
        query = select(Order).where(Order.id == order_id)
        if for_update:
            query = query.with_for_update()
        return (await self.session.execute(query)).scalar_one_or_none()

    async def order_by_key(self, user_id: uuid.UUID, key: str) -> Order | None:
        query = select(Order).where(Order.user_id == user_id, Order.idempotency_key == key)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def order_for_event(
        self,
        provider: str,
        order_id: uuid.UUID | None,
        provider_ref: str | None,
        payment_ref: str | None = None,
    ) -> Order | None:
        """The provider's order an event names (by Lyceum's id, else the checkout's, else
        the captured payment's), locked for the update the event makes."""
        if order_id is not None:
            condition = Order.id == order_id
        elif provider_ref is not None:
            condition = Order.provider_ref == provider_ref
        elif payment_ref is not None:
            condition = Order.payment_ref == payment_ref
        else:
            return None
        query = select(Order).where(Order.provider == provider, condition).with_for_update()
        return (await self.session.execute(query)).scalar_one_or_none()

    async def other_paid_order(self, order: Order) -> uuid.UUID | None:
        """Another order by which the same buyer holds the same course (paid, or partly
        refunded, and not flagged)."""
        query = select(Order.id).where(
            Order.user_id == order.user_id,
            Order.course_id == order.course_id,
            Order.id != order.id,
            Order.status.in_([OrderStatus.paid, OrderStatus.partially_refunded]),
            Order.flagged_reason.is_(None),
        )
        return (await self.session.execute(query.limit(1))).scalar_one_or_none()

    async def pending_refunds_of(self, order_id: uuid.UUID) -> list[Refund]:
        """The order's refunds asked of the provider and not confirmed yet, oldest first,
        locked."""
        rows = await self.session.scalars(
            select(Refund)
            .where(Refund.order_id == order_id, Refund.status == RefundStatus.pending)
            .order_by(Refund.created_at, Refund.id)
            .with_for_update()
        )
        return list(rows)

    async def pending_orders_of(self, user_id: uuid.UUID, course_id: uuid.UUID) -> list[Order]:
        rows = await self.session.scalars(
            select(Order)
            .where(
                Order.user_id == user_id,
                Order.course_id == course_id,
                Order.status == OrderStatus.pending,
            )
            .with_for_update()
        )
        return list(rows)

    async def orders(
        self,
        *,
        offset: int,
        limit: int,
        user_id: uuid.UUID | None = None,
        course_id: uuid.UUID | None = None,
        status: OrderStatus | None = None,
        flagged: bool | None = None,
    ) -> tuple[list[tuple[Order, str]], int]:
        """Orders newest first with their course's title, filtered."""
        conditions: list[Any] = []
        if user_id is not None:
            conditions.append(Order.user_id == user_id)
        if course_id is not None:
            conditions.append(Order.course_id == course_id)
        if status is not None:
            conditions.append(Order.status == status)
        if flagged is not None:
            conditions.append(
                Order.flagged_reason.is_not(None) if flagged else Order.flagged_reason.is_(None)
            )
        total = await self.session.scalar(select(func.count(Order.id)).where(*conditions))
        rows = await self.session.execute(
            select(Order, Course.title)
            .join(Course, Course.id == Order.course_id)
            .where(*conditions)
            .order_by(Order.created_at.desc(), Order.id.desc())
            .offset(offset)
            .limit(limit)
        )
        return [(order, title) for order, title in rows], total or 0

    async def verified_phone(self, user_id: uuid.UUID) -> str | None:
        return await self.session.scalar(
            select(UserPhone.number).where(
                UserPhone.user_id == user_id, UserPhone.verified_at.is_not(None)
            )
        )

    async def course_title(self, course_id: uuid.UUID) -> str:
        title = await self.session.scalar(select(Course.title).where(Course.id == course_id))
        return title or ""

    async def stale_pending_order_ids(self, before: dt.datetime, limit: int) -> list[uuid.UUID]:
        """Pending orders created before `before`, the longest unchecked first."""
        rows = await self.session.scalars(
            select(Order.id)
            .where(
                Order.status == OrderStatus.pending,
                Order.created_at < before,
                # A flagged order waits for an admin, not for the provider.
                Order.flagged_reason.is_(None),
            )
            .order_by(Order.last_checked_at.asc().nulls_first(), Order.created_at)
            .limit(limit)
        )
        return list(rows)

    async def pending_order_to_check(self, order_id: uuid.UUID) -> Order | None:
        """The order, locked, if it is still pending and no other worker holds it."""
        query = (
            select(Order)
            .where(Order.id == order_id, Order.status == OrderStatus.pending)
            .with_for_update(skip_locked=True)
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    # Provider events ------------------------------------------------------------------

    async def record_event(
        self,
        *,
        provider: str,
        event_id: str,
        kind: str,
        order_id: uuid.UUID | None,
        received_at: dt.datetime,
        payload: dict[str, Any],
    ) -> uuid.UUID | None:
        """Insert the event; None when the provider sent this event id before."""
        statement = (
            insert(PaymentEvent)
            .values(
                id=uuid.uuid4(),
                provider=provider,
                event_id=event_id,
                kind=kind,
                order_id=order_id,
                received_at=received_at,
                outcome="",
                payload=payload,
            )
            .on_conflict_do_nothing(index_elements=["provider", "event_id"])
            .returning(PaymentEvent.id)
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def settle_event(
        self, event_row_id: uuid.UUID, *, order_id: uuid.UUID | None, outcome: str
    ) -> None:
        await self.session.execute(
            update(PaymentEvent)
            .where(PaymentEvent.id == event_row_id)
            .values(order_id=order_id, outcome=outcome[:300])
        )

    async def deferred_refund_payloads(self, order_id: uuid.UUID) -> list[dict[str, Any]]:
        """Refund events that came before the order was paid (applied once it is)."""
        rows = await self.session.scalars(
            select(PaymentEvent.payload).where(
                PaymentEvent.order_id == order_id,
                PaymentEvent.kind == "refunded",
                PaymentEvent.outcome.startswith("deferred"),
            )
        )
        return list(rows)

    async def events_of(self, order_id: uuid.UUID) -> list[PaymentEvent]:
        rows = await self.session.scalars(
            select(PaymentEvent)
            .where(PaymentEvent.order_id == order_id)
            .order_by(PaymentEvent.received_at, PaymentEvent.id)
        )
        return list(rows)

    # Refunds --------------------------------------------------------------------------

    async def refund_by_key(self, order_id: uuid.UUID, key: str) -> Refund | None:
        query = select(Refund).where(Refund.order_id == order_id, Refund.idempotency_key == key)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def refund_by_ref(self, order_id: uuid.UUID, provider_ref: str) -> Refund | None:
        query = (
            select(Refund)
            .where(Refund.order_id == order_id, Refund.provider_ref == provider_ref)
            .with_for_update()
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def refunds_of(self, order_id: uuid.UUID) -> list[Refund]:
        rows = await self.session.scalars(
            select(Refund).where(Refund.order_id == order_id).order_by(Refund.created_at, Refund.id)
        )
        return list(rows)

    async def pending_refund_total(self, order_id: uuid.UUID) -> int:
        total = await self.session.scalar(
            select(func.coalesce(func.sum(Refund.amount), 0)).where(
                Refund.order_id == order_id, Refund.status == RefundStatus.pending
            )
        )
        return int(total or 0)

    # Coupons --------------------------------------------------------------------------

    async def coupon(self, coupon_id: uuid.UUID, *, for_update: bool = False) -> Coupon | None:
        query = select(Coupon).where(Coupon.id == coupon_id)
        if for_update:
            query = query.with_for_update()
        return (await self.session.execute(query)).scalar_one_or_none()

    async def coupon_by_code(self, code: str, *, for_update: bool = False) -> Coupon | None:
        query = select(Coupon).where(Coupon.code == code.upper())
        if for_update:
            # Held until the checkout commits: concurrent checkouts with the code count
            # its uses one after the other, so no limit is passed.
            query = query.with_for_update()
        return (await self.session.execute(query)).scalar_one_or_none()

    async def coupon_uses(self, coupon_id: uuid.UUID, user_id: uuid.UUID | None = None) -> int:
        query = select(func.count(Order.id)).where(Order.coupon_id == coupon_id, *_holds_a_use())
        if user_id is not None:
            query = query.where(Order.user_id == user_id)
        return int(await self.session.scalar(query) or 0)

    async def coupons(
        self,
        *,
        offset: int,
        limit: int,
        course_id: uuid.UUID | None = None,
        instructor_id: uuid.UUID | None = None,
    ) -> tuple[list[Coupon], int]:
        """Coupons newest first; with `instructor_id`, only those of courses they teach."""
        conditions: list[Any] = []
        if course_id is not None:
            conditions.append(Coupon.course_id == course_id)
        if instructor_id is not None:
            taught = select(CourseInstructor.course_id).where(
                CourseInstructor.user_id == instructor_id
            )
            conditions.append(Coupon.course_id.in_(taught))
        total = await self.session.scalar(select(func.count(Coupon.id)).where(*conditions))
        rows = await self.session.scalars(
            select(Coupon)
            .where(*conditions)
            .order_by(Coupon.created_at.desc(), Coupon.id.desc())
            .offset(offset)
            .limit(limit)
        )
        return list(rows), total or 0

    async def uses_by_coupon(self, coupon_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
        if not coupon_ids:
            return {}
        rows = await self.session.execute(
            select(Order.coupon_id, func.count(Order.id))
            .where(Order.coupon_id.in_(coupon_ids), *_holds_a_use())
            .group_by(Order.coupon_id)
        )
        return {coupon_id: count for coupon_id, count in rows if coupon_id is not None}

    async def delete(self, row: object) -> None:
        await self.session.delete(row)
        await self.session.flush()

    # The sandbox provider's own state ---------------------------------------------------

    async def sandbox_checkout(
        self, checkout_id: str, *, for_update: bool = False
    ) -> SandboxCheckout | None:
        query = select(SandboxCheckout).where(SandboxCheckout.id == checkout_id)
        if for_update:
            query = query.with_for_update()
        return (await self.session.execute(query)).scalar_one_or_none()
