"""Payment reports for admins (every course) and instructors (their own courses):
revenue by UTC day, course and currency; refunds; coupon use. As JSON (amounts in
minor units) and as CSV (amounts written with the currency's decimals, cells that a
spreadsheet would run as a formula escaped)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.ext.asyncio import AsyncSession

# csv_safe and the CSV writer moved to kit (the analytics reports use them too).
from lyceum.kit.csvexport import csv_safe as csv_safe
from lyceum.kit.csvexport import csv_text
from lyceum.kit.periods import Period, days_ending
from lyceum.payments import report_schemas as schemas
from lyceum.payments.money import exponent, to_decimal
from lyceum.payments.report_repository import MAX_ROWS, ReportRepository, Scope

# Without `from`, a report covers the 30 days up to `to` (default: today, UTC).
DEFAULT_DAYS = 30


def period_of(first: dt.date | None, last: dt.date | None, *, today: dt.date) -> Period:
    """The days asked for: `to` defaults to today, `from` to 30 days before `to`. Any
    span is answered (a `from` after `to` covers no day); a report's rows are capped
    (`report_repository.MAX_ROWS`), not its period."""
    last = last or today
    first = first or days_ending(last, DEFAULT_DAYS)
    return Period(first, last)


def _period_out(period: Period) -> schemas.ReportPeriod:
    return schemas.ReportPeriod(first_day=period.first, last_day=period.last)


def money_text(amount: int, currency: str) -> str:
    """12345 KWD -> '12.345': the amount as written, without the code (its own column)."""
    return f"{to_decimal(amount, currency):.{exponent(currency)}f}"


class PaymentReports:
    def __init__(self, session: AsyncSession) -> None:
        self.repository = ReportRepository(session)

    async def revenue(self, scope: Scope, period: Period) -> schemas.RevenueReport:
        rows = await self.repository.revenue(scope, period)
        truncated = len(rows) > MAX_ROWS
        rows = rows[:MAX_ROWS]
        return schemas.RevenueReport(
            period=_period_out(period),
            truncated=truncated,
            items=[
                schemas.RevenueRow(
                    day=row.day,
                    course_id=row.course_id,
                    course_title=row.course_title,
                    currency=row.currency,
                    decimals=exponent(row.currency),
                    orders=row.orders,
                    gross=row.gross,
                    discounts=row.discounts,
                    tax=row.tax,
                    refunded=row.refunded,
                    net=row.net,
                )
                for row in rows
            ],
        )

    async def refunds(self, scope: Scope, period: Period) -> schemas.RefundReport:
        rows = await self.repository.refunds(scope, period)
        truncated = len(rows) > MAX_ROWS
        rows = rows[:MAX_ROWS]
        return schemas.RefundReport(
            period=_period_out(period),
            truncated=truncated,
            items=[
                schemas.RefundRow(
                    day=row.day,
                    course_id=row.course_id,
                    course_title=row.course_title,
                    currency=row.currency,
                    decimals=exponent(row.currency),
                    refunds=row.refunds,
                    orders=row.orders,
                    amount=row.amount,
                )
                for row in rows
            ],
        )

    async def coupons(self, scope: Scope, period: Period) -> schemas.CouponReport:
        rows = await self.repository.coupons(scope, period)
        truncated = len(rows) > MAX_ROWS
        rows = rows[:MAX_ROWS]
        return schemas.CouponReport(
            period=_period_out(period),
            truncated=truncated,
            items=[
                schemas.CouponRow(
                    coupon_id=row.coupon_id,
                    code=row.code,
                    course_id=row.course_id,
                    course_title=row.course_title,
                    currency=row.currency,
                    decimals=exponent(row.currency),
                    uses=row.uses,
                    buyers=row.buyers,
                    discount=row.discount,
                    gross=row.gross,
                )
                for row in rows
            ],
        )


REVENUE_COLUMNS = (
    "day",
    "course_id",
    "course_title",
    "currency",
    "orders",
    "gross",
    "discounts",
    "tax",
    "refunded",
    "net",
)
REFUND_COLUMNS = ("day", "course_id", "course_title", "currency", "refunds", "orders", "amount")
COUPON_COLUMNS = (
    "code",
    "coupon_id",
    "course_id",
    "course_title",
    "currency",
    "uses",
    "buyers",
    "discount",
    "gross",
)


def revenue_csv(report: schemas.RevenueReport) -> str:
    return csv_text(
        REVENUE_COLUMNS,
        (
            [
                row.day.isoformat(),
                str(row.course_id),
                row.course_title,
                row.currency,
                row.orders,
                *(
                    money_text(value, row.currency)
                    for value in (row.gross, row.discounts, row.tax, row.refunded, row.net)
                ),
            ]
            for row in report.items
        ),
    )


def refunds_csv(report: schemas.RefundReport) -> str:
    return csv_text(
        REFUND_COLUMNS,
        (
            [
                row.day.isoformat(),
                str(row.course_id),
                row.course_title,
                row.currency,
                row.refunds,
                row.orders,
                money_text(row.amount, row.currency),
            ]
            for row in report.items
        ),
    )


def coupons_csv(report: schemas.CouponReport) -> str:
    return csv_text(
        COUPON_COLUMNS,
        (
            [
                row.code,
                str(row.coupon_id),
                str(row.course_id),
                row.course_title,
                row.currency,
                row.uses,
                row.buyers,
                money_text(row.discount, row.currency),
                money_text(row.gross, row.currency),
            ]
            for row in report.items
        ),
    )
