"""Every query of the payment reports: revenue, refunds and coupon use, summed in
PostgreSQL by UTC day, course and currency (amounts of different currencies are never
added together), limited to the caller's scope in the query itself."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Date, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from lyceum.kit.periods import Period
from lyceum.models.courses import Course, CourseInstructor
from lyceum.models.payments import Coupon, Order, OrderStatus, Refund, RefundStatus

# Orders whose payment was confirmed (what happened to it since does not unmake it).
PAID_STATUSES = (OrderStatus.paid, OrderStatus.partially_refunded, OrderStatus.refunded)
# A report answers at most this many rows (the first, in its order): narrow the period
# or pick a course for more.
MAX_ROWS = 10_000


@dataclass(frozen=True)
class Scope:
    """Whose courses a report covers: `course_ids`, those `taught_by` an instructor
    (its owner or a co-instructor), both, or (neither) every course."""

    course_ids: Sequence[uuid.UUID] | None = None
    taught_by: uuid.UUID | None = None


def _utc_day(column: Any) -> ColumnElement[dt.date]:
    return cast(func.timezone("UTC", column), Date)


def _in_scope(course_id: Any, scope: Scope) -> list[ColumnElement[bool]]:
    """The conditions that keep a report's rows to the scope's courses."""
    conditions: list[ColumnElement[bool]] = []
    if scope.course_ids is not None:
        conditions.append(course_id.in_(scope.course_ids))
    if scope.taught_by is not None:
        taught = select(CourseInstructor.course_id).where(
            CourseInstructor.user_id == scope.taught_by
        )
        conditions.append(course_id.in_(taught))
    return conditions


class ReportRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def revenue(self, scope: Scope, period: Period) -> Sequence[Any]:
        """Paid orders by UTC day of payment, course and currency: how many, what was
        charged (gross), discounts given, tax included, refunded since (of those
        orders) and what is kept (net)."""
        start, end = period.bounds()
        day = _utc_day(Order.paid_at).label("day")
        query = (
            select(
                day,
                Order.course_id,
                Course.title.label("course_title"),
                Order.currency,
                func.count().label("orders"),
                func.sum(Order.amount).label("gross"),
                func.sum(Order.discount_amount).label("discounts"),
                func.sum(Order.tax_amount).label("tax"),
                func.sum(Order.refunded_amount).label("refunded"),
                func.sum(Order.amount - Order.refunded_amount).label("net"),
            )
            .join(Course, Course.id == Order.course_id)
            .where(
                Order.status.in_(PAID_STATUSES),
                Order.paid_at >= start,
                Order.paid_at < end,
                *_in_scope(Order.course_id, scope),
            )
            .group_by(day, Order.course_id, Course.title, Order.currency)
            .order_by(day, Course.title, Order.course_id, Order.currency)
            .limit(MAX_ROWS + 1)  # one more: the caller tells a cut report
        )
        return (await self.session.execute(query)).all()

    async def refunds(self, scope: Scope, period: Period) -> Sequence[Any]:
        """Refunds that went through, by UTC day of the refund, course and currency:
        how many, how many orders they touched, and the amount."""
        start, end = period.bounds()
        day = _utc_day(Refund.created_at).label("day")
        query = (
            select(
                day,
                Order.course_id,
                Course.title.label("course_title"),
                Refund.currency,
                func.count().label("refunds"),
                func.count(func.distinct(Refund.order_id)).label("orders"),
                func.sum(Refund.amount).label("amount"),
            )
            .join(Order, Order.id == Refund.order_id)
            .join(Course, Course.id == Order.course_id)
            .where(
                Refund.status == RefundStatus.succeeded,
                Refund.created_at >= start,
                Refund.created_at < end,
                *_in_scope(Order.course_id, scope),
            )
            .group_by(day, Order.course_id, Course.title, Refund.currency)
            .order_by(day, Course.title, Order.course_id, Refund.currency)
            .limit(MAX_ROWS + 1)  # one more: the caller tells a cut report
        )
        return (await self.session.execute(query)).all()

    async def coupons(self, scope: Scope, period: Period) -> Sequence[Any]:
        """Coupon use on paid orders (by day of payment) by coupon, course and currency:
        uses, distinct buyers, the discount given and what was charged."""
        start, end = period.bounds()
        query = (
            select(
                Order.coupon_id,
                Coupon.code,
                Order.course_id,
                Course.title.label("course_title"),
                Order.currency,
                func.count().label("uses"),
                func.count(func.distinct(Order.user_id)).label("buyers"),
                func.sum(Order.discount_amount).label("discount"),
                func.sum(Order.amount).label("gross"),
            )
            .join(Coupon, Coupon.id == Order.coupon_id)
            .join(Course, Course.id == Order.course_id)
            .where(
                Order.status.in_(PAID_STATUSES),
                Order.paid_at >= start,
                Order.paid_at < end,
                *_in_scope(Order.course_id, scope),
            )
            .group_by(Order.coupon_id, Coupon.code, Order.course_id, Course.title, Order.currency)
            .order_by(Coupon.code, Course.title, Order.course_id, Order.currency)
            .limit(MAX_ROWS + 1)  # one more: the caller tells a cut report
        )
        return (await self.session.execute(query)).all()
