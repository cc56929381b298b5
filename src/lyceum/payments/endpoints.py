"""Paid-course routes: checkout, the buyer's orders, the admins' orders and refunds,
coupons, and the providers' webhooks."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Header, Path, Query, Request, Response, status
from pydantic import BaseModel

from lyceum.courses.permissions import Courses, SignedInVisibleCourse
from lyceum.identity.permissions import AdminUser, CurrentUser, InstructorUser, RuntimeDep
from lyceum.kit.clock import ClockDep
from lyceum.kit.db import Session
from lyceum.kit.errors import NotFound, PayloadTooLarge
from lyceum.kit.pagination import Page, Paging
from lyceum.kit.routing import Router
from lyceum.models.payments import OrderStatus
from lyceum.payments import registry, schemas
from lyceum.payments.permissions import (
    ManagedCoupon,
    ManagedOrder,
    MyOrder,
    Payments,
    RefundableOrder,
    coupon_course,
    provider_http,
)
from lyceum.payments.service import receive_webhook, refund_out

payments = Router(tags=["payments"])

# A provider's webhook is a small JSON or form document; anything larger is refused
# before it is read any further.
MAX_WEBHOOK_BYTES = 256 * 1024

IdempotencyKey = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[!-~]+$",
        description="1-255 visible ASCII characters, new for each purchase or refund: "
        "the same key with the same body answers the same result again (no second "
        "charge or refund); with a different body, 422.",
    ),
]


class WebhookReceived(BaseModel):
    received: int
    outcomes: list[str]


@payments.post(
    "/courses/{course_id:uuid}/checkout",
    status_code=status.HTTP_201_CREATED,
    summary="Buy a course: an order and its hosted checkout",
    description="Creates a `pending` order priced by the server (the course's price in "
    "its currency's minor units, less the coupon, tax included) and a hosted checkout at "
    "the chosen provider; send the buyer to `checkout_url`. The learner is enrolled when "
    "the provider confirms the payment. Requires an `Idempotency-Key`: the same key and "
    "body answer the same order (200); another body with it, 422. A newer checkout "
    "cancels the caller's open ones for the course. 409 for a free course, a course the "
    "caller is enrolled in, or a currency no enabled provider charges in; 502/503 when "
    "the provider fails (nothing is kept; 503 carries Retry-After). A coupon that makes "
    "the price 0 makes the order paid at once, without a provider.",
    responses={200: {"model": schemas.OrderOut, "description": "The order this key made"}},
)
async def checkout_course(
    course: SignedInVisibleCourse,
    caller: CurrentUser,
    key: IdempotencyKey,
    service: Payments,
    response: Response,
    body: schemas.CheckoutIn | None = None,
) -> schemas.OrderOut:
    order, created = await service.checkout(caller, course, key, body or schemas.CheckoutIn())
    if created:
        response.headers["Location"] = f"/api/v1/me/orders/{order.id}"
    else:
        response.status_code = status.HTTP_200_OK
    return await service.out(order)


@payments.get("/me/orders", summary="The caller's orders, newest first")
async def my_orders(
    caller: CurrentUser, service: Payments, paging: Paging
) -> Page[schemas.OrderOut]:
    items, total = await service.my_orders(caller, paging.offset, paging.size)
    return Page.of(items, total, paging)


@payments.get("/me/orders/{order_id:uuid}", summary="One of the caller's orders")
async def my_order(order: MyOrder, service: Payments) -> schemas.OrderOut:
    return await service.out(order)


@payments.get("/payments/orders", summary="Every order, newest first (admins)")
async def list_orders(
    admin: AdminUser,
    service: Payments,
    paging: Paging,
    order_status: Annotated[
        OrderStatus | None, Query(alias="status", description="Only orders in this state.")
    ] = None,
    flagged: Annotated[
        bool | None,
        Query(description="Only orders flagged for an admin (true) or not flagged (false)."),
    ] = None,
    course_id: Annotated[uuid.UUID | None, Query(description="Only this course's.")] = None,
    user_id: Annotated[uuid.UUID | None, Query(description="Only this buyer's.")] = None,
) -> Page[schemas.OrderOut]:
    items, total = await service.all_orders(
        paging.offset,
        paging.size,
        status=order_status,
        flagged=flagged,
        course_id=course_id,
        user_id=user_id,
    )
    return Page.of(items, total, paging)


@payments.get("/payments/orders/{order_id:uuid}", summary="One order (admins)")
async def get_order(order: ManagedOrder, service: Payments) -> schemas.OrderOut:
    return await service.out(order)


@payments.post(
    "/payments/orders/{order_id:uuid}/refunds",
    status_code=status.HTTP_201_CREATED,
    summary="Refund an order fully or partly through its provider",
    description="Admins, and the course's instructors when REFUNDS_BY_INSTRUCTORS is on. "
    "`amount` (minor units) defaults to what is left; more than that is 409. Requires an "
    "`Idempotency-Key`: the same key answers the same refund (200) without asking the "
    "provider again. A full refund ends the learner's access when REFUND_ENDS_ACCESS is "
    "on, and a refunded course earns no certificate.",
    responses={200: {"model": schemas.RefundOut, "description": "The refund this key made"}},
)
async def refund_order(
    order: RefundableOrder,
    caller: InstructorUser,
    key: IdempotencyKey,
    service: Payments,
    response: Response,
    body: schemas.RefundIn | None = None,
) -> schemas.RefundOut:
    refund, created = await service.refund(caller, order, key, body or schemas.RefundIn())
    if created:
        response.headers["Location"] = f"/api/v1/payments/orders/{order.id}/refunds"
    else:
        response.status_code = status.HTTP_200_OK
    return refund_out(refund)


@payments.get(
    "/payments/orders/{order_id:uuid}/refunds",
    summary="An order's refunds (admins; instructors as for refunding)",
)
async def list_refunds(order: RefundableOrder, service: Payments) -> Page[schemas.RefundOut]:
    return Page.of_all(await service.refunds(order))


@payments.post(
    "/payments/webhooks/{provider}",
    summary="Where a payment provider reports payments and refunds",
    description="Register `<PUBLIC_BASE_URL>/api/v1/payments/webhooks/<provider>` with the "
    "provider. The raw body's signature is verified as the provider documents it (400 and "
    "nothing written otherwise); each provider event id is applied once, a redelivery "
    "answers 200 and changes nothing. 404 for a provider that is not enabled; 413 past "
    "256 KB.",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
)
async def receive_payment_webhook(
    provider: Annotated[str, Path(pattern=r"^[a-z]{1,20}$")],
    request: Request,
    session: Session,
    runtime: RuntimeDep,
    clock: ClockDep,
) -> WebhookReceived:
    settings = runtime.settings
    enabled = registry.providers(settings, http=provider_http(request), session=session)
    chosen = enabled.get(provider)
    if chosen is None:
        raise NotFound(f"No payment provider {provider} is enabled here.")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_WEBHOOK_BYTES:
            raise PayloadTooLarge("A webhook body is at most 256 KB.")
    headers = {name.lower(): value for name, value in request.headers.items()}
    outcomes = await receive_webhook(
        session,
        chosen,
        bytes(body),
        headers,
        dict(request.query_params),
        now=clock.now(),
        refund_ends_access=settings.refund_ends_access,
    )
    return WebhookReceived(received=len(outcomes), outcomes=outcomes)


# Coupons ----------------------------------------------------------------------------


@payments.post(
    "/coupons",
    status_code=status.HTTP_201_CREATED,
    summary="Make a coupon (admins; instructors for their own courses)",
    description="`percent` coupons take `percent_off`; `fixed` ones `amount_off` in the "
    "minor units of `currency` (the course's). Without `course_id` the coupon is for every "
    "course (admins only). A coupon use is held by a pending or paid order.",
)
async def create_coupon(
    body: schemas.CouponIn,
    caller: InstructorUser,
    courses: Courses,
    service: Payments,
    response: Response,
) -> schemas.CouponOut:
    course = await coupon_course(caller, body.course_id, courses)
    coupon = await service.create_coupon(caller, body, course)
    response.headers["Location"] = f"/api/v1/coupons/{coupon.id}"
    return await service.coupon_with_uses(coupon)


@payments.get("/coupons", summary="Coupons (admins: all; instructors: their courses')")
async def list_coupons(
    caller: InstructorUser,
    service: Payments,
    paging: Paging,
    course_id: Annotated[uuid.UUID | None, Query(description="Only this course's.")] = None,
) -> Page[schemas.CouponOut]:
    items, total = await service.coupons(caller, paging.offset, paging.size, course_id)
    return Page.of(items, total, paging)


@payments.get("/coupons/{coupon_id:uuid}", summary="One coupon")
async def get_coupon(coupon: ManagedCoupon, service: Payments) -> schemas.CouponOut:
    return await service.coupon_with_uses(coupon)


@payments.patch(
    "/coupons/{coupon_id:uuid}",
    summary="Change a coupon's limits, expiry or activity",
    description="Only the fields sent change.",
)
async def update_coupon(
    body: schemas.CouponUpdate, coupon: ManagedCoupon, service: Payments
) -> schemas.CouponOut:
    return await service.coupon_with_uses(await service.update_coupon(coupon, body))


@payments.delete(
    "/coupons/{coupon_id:uuid}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a coupon (orders keep the discount they had)",
)
async def delete_coupon(coupon: ManagedCoupon, service: Payments) -> None:
    await service.delete_coupon(coupon)
