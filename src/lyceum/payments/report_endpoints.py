"""Receipt and report routes: the buyer's PDF receipt of a paid order, and the payment
reports (revenue, refunds, coupon use) as JSON and CSV for admins and, for their own
courses, instructors."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from fastapi import Depends, Query, Response

from lyceum.courses.permissions import Courses
from lyceum.identity.permissions import CurrentUser, RuntimeDep
from lyceum.kit.clock import ClockDep
from lyceum.kit.db import Session
from lyceum.kit.errors import Forbidden
from lyceum.kit.periods import Period
from lyceum.kit.routing import Router
from lyceum.kit.validation import IsoDate
from lyceum.models.identity import Role
from lyceum.payments import report_schemas as schemas
from lyceum.payments.receipts import receipt_pdf
from lyceum.payments.report_repository import Scope
from lyceum.payments.reports import (
    PaymentReports,
    coupons_csv,
    period_of,
    refunds_csv,
    revenue_csv,
)

router = Router(tags=["payments"])


async def report_scope(
    caller: CurrentUser,
    courses: Courses,
    course_id: Annotated[
        uuid.UUID | None, Query(description="One course only (its instructors and admins).")
    ] = None,
) -> Scope:
    """Admins see every course's payments, instructors their own courses' (owned or
    co-taught); with `course_id`, that course's, for its instructors and admins.
    Learners see none (403)."""
    if caller.role is Role.student:
        raise Forbidden("Payment reports are for instructors and admins.")
    if course_id is not None:
        course, can_edit = await courses.member_access(course_id, caller)
        if not can_edit:
            raise Forbidden("Only the course's instructors and admins see its payments.")
        return Scope(course_ids=[course.id])
    if caller.role is Role.admin:
        return Scope()
    return Scope(taught_by=caller.id)


def report_period(
    clock: ClockDep,
    first: Annotated[
        IsoDate | None,
        Query(alias="from", description="First UTC day (YYYY-MM-DD); default 30 days before `to`."),
    ] = None,
    last: Annotated[
        IsoDate | None,
        Query(alias="to", description="Last UTC day, included (YYYY-MM-DD); default today."),
    ] = None,
) -> Period:
    """UTC days, both included; a `from` after `to` covers no day."""
    return period_of(first, last, today=clock.now().astimezone(dt.UTC).date())


def payment_reports(session: Session) -> PaymentReports:
    return PaymentReports(session)


ReportScope = Annotated[Scope, Depends(report_scope)]
ReportPeriod = Annotated[Period, Depends(report_period)]
Reports = Annotated[PaymentReports, Depends(payment_reports)]

CSV_RESPONSE = {
    "content": {"text/csv": {}},
    "description": "The report as CSV (UTF-8, BOM); `X-Report-Truncated: true` when rows "
    "beyond the first 10,000 were left out.",
}


def _csv(body: str, name: str, period: Period, *, truncated: bool) -> Response:
    filename = f"{name}-{period.first.isoformat()}-{period.last.isoformat()}.csv"
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    if truncated:  # a CSV has no room for it in the body: a spreadsheet would sum it
        headers["X-Report-Truncated"] = "true"
    return Response(body, media_type="text/csv; charset=utf-8", headers=headers)


@router.get(
    "/me/orders/{order_id:uuid}/receipt",
    summary="The PDF receipt of one of the caller's paid orders",
    description="404 for another's order and for an order that was never paid.",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}, "description": "The receipt"}},
)
async def order_receipt(
    order_id: uuid.UUID, caller: CurrentUser, session: Session, runtime: RuntimeDep
) -> Response:
    filename, pdf = await receipt_pdf(
        session, runtime.settings, order_id=order_id, buyer_id=caller.id
    )
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get(
    "/payments/reports/revenue",
    summary="Revenue by UTC day, course and currency (instructors: their courses; admins: all)",
)
async def revenue_report(
    scope: ReportScope, period: ReportPeriod, reports: Reports
) -> schemas.RevenueReport:
    return await reports.revenue(scope, period)


@router.get(
    "/payments/reports/revenue.csv",
    summary="Revenue by UTC day, course and currency, as CSV",
    response_class=Response,
    responses={200: CSV_RESPONSE},
)
async def revenue_report_csv(
    scope: ReportScope, period: ReportPeriod, reports: Reports
) -> Response:
    report = await reports.revenue(scope, period)
    return _csv(revenue_csv(report), "revenue", period, truncated=report.truncated)


@router.get(
    "/payments/reports/refunds",
    summary="Refunds by UTC day, course and currency (instructors: their courses; admins: all)",
)
async def refunds_report(
    scope: ReportScope, period: ReportPeriod, reports: Reports
) -> schemas.RefundReport:
    return await reports.refunds(scope, period)


@router.get(
    "/payments/reports/refunds.csv",
    summary="Refunds by UTC day, course and currency, as CSV",
    response_class=Response,
    responses={200: CSV_RESPONSE},
)
async def refunds_report_csv(
    scope: ReportScope, period: ReportPeriod, reports: Reports
) -> Response:
    report = await reports.refunds(scope, period)
    return _csv(refunds_csv(report), "refunds", period, truncated=report.truncated)


@router.get(
    "/payments/reports/coupons",
    summary="Coupon use by coupon, course and currency (instructors: their courses; admins: all)",
)
async def coupons_report(
    scope: ReportScope, period: ReportPeriod, reports: Reports
) -> schemas.CouponReport:
    return await reports.coupons(scope, period)


@router.get(
    "/payments/reports/coupons.csv",
    summary="Coupon use by coupon, course and currency, as CSV",
    response_class=Response,
    responses={200: CSV_RESPONSE},
)
async def coupons_report_csv(
    scope: ReportScope, period: ReportPeriod, reports: Reports
) -> Response:
    report = await reports.coupons(scope, period)
    return _csv(coupons_csv(report), "coupons", period, truncated=report.truncated)
