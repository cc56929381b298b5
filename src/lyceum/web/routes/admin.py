"""Admins: users and roles, webhooks and deliveries, jobs, orders, refunds and
revenue.

Every page asks the API, whose admin routes refuse anyone else (a 403 page): this
module checks no role itself."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query
from starlette.responses import Response

from lyceum.web.api import ApiProblem
from lyceum.web.context import Page, SignedInForm, SignedInPage

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 25
ROLES = ("student", "instructor", "admin")
ORDER_STATUSES = (
    "pending",
    "paid",
    "partially_refunded",
    "refunded",
    "failed",
    "expired",
    "canceled",
)
DELIVERY_STATUSES = ("pending", "succeeded", "failed")


def _back(value: str, default: str) -> str:
    return value if value.startswith("/admin") and not value.startswith("//") else default


def _event_types(page: Page) -> list[str]:
    """The public event types a webhook endpoint may take (from the API's schema)."""
    schema = page.request.app.openapi()["components"]["schemas"]["EndpointIn"]
    items = schema["properties"]["event_types"]["items"]
    return list(items.get("enum", []))


# Overview -------------------------------------------------------------------------------


@router.get("/admin")
async def admin_home(page: SignedInPage) -> Response:
    queues = await page.api.get("admin/jobs/queues")
    failed = await page.api.get("admin/jobs/failed", params={"size": 1})
    flagged = await page.api.get("payments/orders", params={"flagged": True, "size": 5})
    return page.render(
        "admin/home.html", queues=queues["items"], failed_total=failed["total"], flagged=flagged
    )


# Users and roles -------------------------------------------------------------------------


@router.get("/admin/users")
async def admin_users(
    page: SignedInPage,
    q: Annotated[str | None, Query(max_length=200)] = None,
    role: Annotated[str | None, Query(max_length=20)] = None,
    active: Annotated[str | None, Query(max_length=5)] = None,
    page_number: Annotated[int, Query(alias="page", ge=1, le=10_000)] = 1,
    saved: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    filters: dict[str, Any] = {
        "q": q or None,
        "role": role if role in ROLES else None,
        "active": active if active in ("true", "false") else None,
    }
    users = await page.api.get("users", params={**filters, "page": page_number, "size": PAGE_SIZE})
    query = urlencode({k: v for k, v in filters.items() if v})
    base = "/admin/users?" + (query + "&" if query else "")
    back = base + (f"page={page_number}" if page_number > 1 else "")
    # `saved` names the account just changed by its id: the notice shows the email the
    # API answered for it, never text taken from the link.
    saved_email = next(
        (str(u["email"]) for u in users["items"] if saved and str(u["id"]) == saved), None
    )
    return page.render(
        "admin/users.html",
        users=users,
        filters=filters,
        roles=ROLES,
        page_number=page_number,
        page_size=PAGE_SIZE,
        base=base,
        back=back.rstrip("?&"),
        saved=saved_email,
    )


@router.post("/admin/users/{user_id:uuid}")
async def admin_change_user(
    page: SignedInForm,
    user_id: uuid.UUID,
    role: Annotated[str | None, Form(max_length=20)] = None,
    is_active: Annotated[str | None, Form(max_length=5)] = None,
    back: Annotated[str, Form(max_length=2000)] = "/admin/users",
) -> Response:
    change: dict[str, Any] = {}
    if role:
        change["role"] = role
    if is_active in ("true", "false"):
        change["is_active"] = is_active == "true"
    updated = await page.api.patch(f"users/{user_id}", json=change)
    target = _back(back, "/admin/users")
    joiner = "&" if "?" in target else "?"
    return page.redirect(f"{target}{joiner}{urlencode({'saved': updated['id']})}")


# Webhooks --------------------------------------------------------------------------------


async def _webhooks_page(
    page: Page,
    *,
    status: int = 200,
    created: dict[str, Any] | None = None,
    problem: ApiProblem | None = None,
    form: dict[str, Any] | None = None,
) -> Response:
    endpoints = await page.api.get("webhooks/endpoints", params={"size": 100})
    return page.render(
        "admin/webhooks.html",
        status=status,
        endpoints=endpoints,
        event_types=_event_types(page),
        created=created,
        problem=problem,
        form=form or {"url": "", "description": "", "event_types": []},
    )


@router.get("/admin/webhooks")
async def admin_webhooks(page: SignedInPage) -> Response:
    return await _webhooks_page(page)


@router.post("/admin/webhooks")
async def admin_create_webhook(
    page: SignedInForm,
    url: Annotated[str, Form(max_length=2000)] = "",
    description: Annotated[str, Form(max_length=500)] = "",
    event_types: Annotated[list[str] | None, Form()] = None,
) -> Response:
    form = {"url": url, "description": description, "event_types": event_types or []}
    try:
        created = await page.api.post("webhooks/endpoints", json={**form, "is_active": True})
    except ApiProblem as problem:
        if problem.status not in (409, 422):
            raise
        return await _webhooks_page(page, status=problem.status, problem=problem, form=form)
    # The signing secret is shown this once: the API never answers it again.
    return await _webhooks_page(page, status=201, created=created)


async def _webhook_page(
    page: Page,
    endpoint_id: uuid.UUID,
    *,
    delivery_status: str | None = None,
    page_number: int = 1,
    status: int = 200,
    problem: ApiProblem | None = None,
    notice: str | None = None,
) -> Response:
    endpoint = await page.api.get(f"webhooks/endpoints/{endpoint_id}")
    deliveries = await page.api.get(
        f"webhooks/endpoints/{endpoint_id}/deliveries",
        params={"status": delivery_status, "page": page_number, "size": PAGE_SIZE},
    )
    return page.render(
        "admin/webhook.html",
        status=status,
        endpoint=endpoint,
        deliveries=deliveries,
        delivery_status=delivery_status,
        delivery_statuses=DELIVERY_STATUSES,
        event_types=_event_types(page),
        page_number=page_number,
        page_size=PAGE_SIZE,
        problem=problem,
        notice=notice,
    )


@router.get("/admin/webhooks/{endpoint_id:uuid}")
async def admin_webhook(
    page: SignedInPage,
    endpoint_id: uuid.UUID,
    status: Annotated[str | None, Query(max_length=20)] = None,
    page_number: Annotated[int, Query(alias="page", ge=1, le=10_000)] = 1,
    notice: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    notices = {
        "saved": page.gettext("Saved."),
        "test": page.gettext("A test event was queued: its delivery shows below."),
        "redelivered": page.gettext("The delivery was queued again."),
    }
    return await _webhook_page(
        page,
        endpoint_id,
        delivery_status=status if status in DELIVERY_STATUSES else None,
        page_number=page_number,
        notice=notices.get(notice or ""),
    )


@router.post("/admin/webhooks/{endpoint_id:uuid}")
async def admin_update_webhook(
    page: SignedInForm,
    endpoint_id: uuid.UUID,
    url: Annotated[str, Form(max_length=2000)] = "",
    description: Annotated[str, Form(max_length=500)] = "",
    is_active: Annotated[str | None, Form(max_length=5)] = None,
    event_types: Annotated[list[str] | None, Form()] = None,
) -> Response:
    change: dict[str, Any] = {
        "description": description,
        "is_active": is_active == "true",
        "event_types": event_types or [],
    }
    if url:
        change["url"] = url
    try:
        await page.api.patch(f"webhooks/endpoints/{endpoint_id}", json=change)
    except ApiProblem as problem:
        if problem.status not in (409, 422):
            raise
        return await _webhook_page(page, endpoint_id, status=problem.status, problem=problem)
    return page.redirect(f"/admin/webhooks/{endpoint_id}?notice=saved")


@router.post("/admin/webhooks/{endpoint_id:uuid}/test")
async def admin_test_webhook(page: SignedInForm, endpoint_id: uuid.UUID) -> Response:
    await page.api.post(f"webhooks/endpoints/{endpoint_id}/test")
    return page.redirect(f"/admin/webhooks/{endpoint_id}?notice=test")


@router.post("/admin/webhooks/{endpoint_id:uuid}/deliveries/{delivery_id:uuid}/redeliver")
async def admin_redeliver(
    page: SignedInForm, endpoint_id: uuid.UUID, delivery_id: uuid.UUID
) -> Response:
    await page.api.post(f"webhooks/endpoints/{endpoint_id}/deliveries/{delivery_id}/redeliver")
    return page.redirect(f"/admin/webhooks/{endpoint_id}?notice=redelivered")


# Jobs ----------------------------------------------------------------------------------


@router.get("/admin/jobs")
async def admin_jobs(
    page: SignedInPage,
    queue: Annotated[str | None, Query(max_length=128)] = None,
    page_number: Annotated[int, Query(alias="page", ge=1, le=10_000)] = 1,
    notice: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    queues = await page.api.get("admin/jobs/queues")
    failed = await page.api.get(
        "admin/jobs/failed", params={"queue": queue, "page": page_number, "size": PAGE_SIZE}
    )
    notices = {
        "retried": page.gettext("The job was put back in its queue."),
        "cancelled": page.gettext("The job was cancelled."),
    }
    return page.render(
        "admin/jobs.html",
        queues=queues["items"],
        failed=failed,
        queue=queue,
        page_number=page_number,
        page_size=PAGE_SIZE,
        notice=notices.get(notice or ""),
        problem=None,
    )


async def _job_action(page: Page, job_id: int, action: str) -> Response:
    try:
        await page.api.post(f"admin/jobs/{job_id}/{action}")
    except ApiProblem as problem:
        if problem.status not in (404, 409, 422):
            raise
        queues = await page.api.get("admin/jobs/queues")
        failed = await page.api.get("admin/jobs/failed", params={"size": PAGE_SIZE})
        return page.render(
            "admin/jobs.html",
            status=problem.status,
            queues=queues["items"],
            failed=failed,
            queue=None,
            page_number=1,
            page_size=PAGE_SIZE,
            notice=None,
            problem=problem,
        )
    return page.redirect(f"/admin/jobs?notice={'retried' if action == 'retry' else 'cancelled'}")


@router.post("/admin/jobs/retry")
async def admin_retry_job(
    page: SignedInForm, job_id: Annotated[int, Form(ge=1, le=2**63 - 1)] = 1
) -> Response:
    return await _job_action(page, job_id, "retry")


@router.post("/admin/jobs/cancel")
async def admin_cancel_job(
    page: SignedInForm, job_id: Annotated[int, Form(ge=1, le=2**63 - 1)] = 1
) -> Response:
    return await _job_action(page, job_id, "cancel")


# Orders, refunds, revenue ----------------------------------------------------------------


@router.get("/admin/orders")
async def admin_orders(
    page: SignedInPage,
    status: Annotated[str | None, Query(max_length=30)] = None,
    flagged: Annotated[str | None, Query(max_length=5)] = None,
    page_number: Annotated[int, Query(alias="page", ge=1, le=10_000)] = 1,
    notice: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    filters: dict[str, Any] = {
        "status": status if status in ORDER_STATUSES else None,
        "flagged": flagged if flagged in ("true", "false") else None,
    }
    orders = await page.api.get(
        "payments/orders", params={**filters, "page": page_number, "size": PAGE_SIZE}
    )
    query = urlencode({k: v for k, v in filters.items() if v})
    return page.render(
        "admin/orders.html",
        orders=orders,
        filters=filters,
        statuses=ORDER_STATUSES,
        page_number=page_number,
        page_size=PAGE_SIZE,
        base="/admin/orders?" + (query + "&" if query else ""),
        notice=page.gettext("The refund was requested.") if notice == "refunded" else None,
        problem=None,
        idempotency_key=str(uuid.uuid4()),
    )


@router.get("/admin/orders/{order_id:uuid}")
async def admin_order(page: SignedInPage, order_id: uuid.UUID) -> Response:
    order = await page.api.get(f"payments/orders/{order_id}")
    refunds = await page.api.get(f"payments/orders/{order_id}/refunds")
    return page.render(
        "admin/order.html",
        order=order,
        refunds=refunds["items"],
        idempotency_key=str(uuid.uuid4()),
        problem=None,
    )


@router.post("/admin/orders/{order_id:uuid}/refund")
async def admin_refund(
    page: SignedInForm,
    order_id: uuid.UUID,
    idempotency_key: Annotated[str, Form(min_length=8, max_length=100)] = "",
    amount: Annotated[str, Form(max_length=20)] = "",
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    body: dict[str, Any] = {"reason": reason}
    if amount.strip():
        # Whole minor units of at most 12 ASCII digits; anything else goes to the API as
        # text, which answers the form with a 422 naming the field.
        body["amount"] = (
            int(amount.strip()) if re.fullmatch(r"[0-9]{1,12}", amount.strip()) else amount.strip()
        )
    key = idempotency_key or str(uuid.uuid4())
    try:
        await page.api.post(
            f"payments/orders/{order_id}/refunds", json=body, headers={"Idempotency-Key": key}
        )
    except ApiProblem as problem:
        if problem.status not in (400, 409, 422):
            raise
        order = await page.api.get(f"payments/orders/{order_id}")
        refunds = await page.api.get(f"payments/orders/{order_id}/refunds")
        return page.render(
            "admin/order.html",
            status=problem.status,
            order=order,
            refunds=refunds["items"],
            idempotency_key=str(uuid.uuid4()),
            problem=problem,
        )
    return page.redirect(f"/admin/orders/{order_id}")


def _day(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value).isoformat()
    except ValueError:
        return None


@router.get("/admin/revenue")
async def admin_revenue(
    page: SignedInPage,
    start: Annotated[str | None, Query(alias="from", max_length=10)] = None,
    end: Annotated[str | None, Query(alias="to", max_length=10)] = None,
) -> Response:
    period = {"from": _day(start), "to": _day(end)}
    try:
        revenue = await page.api.get("payments/reports/revenue", params=period)
        refunds = await page.api.get("payments/reports/refunds", params=period)
        problem = None
    except ApiProblem as error:
        if error.status != 422:
            raise
        revenue = refunds = {"items": [], "period": None, "truncated": False}
        problem = error
    totals: dict[tuple[str, int], dict[str, int]] = {}
    for row in revenue["items"]:
        total = totals.setdefault(
            (row["currency"], row["decimals"]),
            {"orders": 0, "gross": 0, "discounts": 0, "tax": 0, "refunded": 0, "net": 0},
        )
        for key in total:
            total[key] += int(row[key])
    return page.render(
        "admin/revenue.html",
        status=200,  # the report, empty, with a note on the period refused
        revenue=revenue,
        refunds=refunds,
        totals=totals,
        period=period,
        problem=problem,
    )
