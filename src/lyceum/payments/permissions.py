"""Who may reach which order, refund and coupon: `Annotated` dependencies for the
endpoints' signatures.

- `MyOrder`: one of the caller's own orders (anyone else's is 404, as if it did not exist).
- `ManagedOrder`: any order, for admins (403 to everyone else).
- `RefundableOrder`: an order admins may refund, and so may the course's instructors when
  REFUNDS_BY_INSTRUCTORS is on (403 to other roles and while it is off; another
  course's order is 404 to an instructor). Locked for the request.
- `ManagedCoupon`: any coupon for admins; a coupon of a course they teach for
  instructors (others, and coupons for every course, are 404 to them).
"""

from __future__ import annotations

import uuid
from typing import Annotated

import httpx
from fastapi import Depends, Request

from lyceum.courses.permissions import Courses
from lyceum.courses.service import course_by_id
from lyceum.identity.permissions import AdminUser, CurrentUser, InstructorUser, RuntimeDep
from lyceum.kit.clock import ClockDep
from lyceum.kit.db import Session
from lyceum.kit.errors import Forbidden, NotFound
from lyceum.models.courses import Course
from lyceum.models.identity import Role, User
from lyceum.models.payments import Coupon, Order
from lyceum.payments import registry
from lyceum.payments.service import PaymentService

PROVIDER_TIMEOUT_SECONDS = 20.0


def provider_http(request: Request) -> httpx.AsyncClient:
    """The app's one client for calls to payment providers (made on first use: a client
    per request would build a TLS context every time)."""
    client: httpx.AsyncClient | None = getattr(request.app.state, "payment_http", None)
    if client is None or client.is_closed:
        client = httpx.AsyncClient(timeout=PROVIDER_TIMEOUT_SECONDS)
        request.app.state.payment_http = client
    return client


async def payment_service(
    request: Request, session: Session, runtime: RuntimeDep, clock: ClockDep
) -> PaymentService:
    settings = runtime.settings
    return PaymentService(
        session,
        settings=settings,
        providers=registry.providers(settings, http=provider_http(request), session=session),
        now=clock.now(),
    )


Payments = Annotated[PaymentService, Depends(payment_service)]


async def my_order(order_id: uuid.UUID, caller: CurrentUser, service: Payments) -> Order:
    return await service.own_order(caller, order_id)


MyOrder = Annotated[Order, Depends(my_order)]


async def managed_order(order_id: uuid.UUID, admin: AdminUser, service: Payments) -> Order:
    return await service.order(order_id)


ManagedOrder = Annotated[Order, Depends(managed_order)]


async def refundable_order(
    order_id: uuid.UUID,
    caller: InstructorUser,
    service: Payments,
    courses: Courses,
    session: Session,
    runtime: RuntimeDep,
) -> Order:
    if caller.role is not Role.admin and not runtime.settings.refunds_by_instructors:
        raise Forbidden("Only admins refund orders here (REFUNDS_BY_INSTRUCTORS is off).")
    order = await service.order(order_id, for_update=True)
    if caller.role is Role.admin:
        return order
    course = await course_by_id(session, order.course_id)
    if course is None or not await courses.can_edit(course, caller):
        raise NotFound("No such order.")
    return order


RefundableOrder = Annotated[Order, Depends(refundable_order)]


async def coupon_course(
    caller: User, course_id: uuid.UUID | None, courses: Courses
) -> Course | None:
    """The course a new coupon is for, which the caller must be able to edit; None (every
    course) only for admins."""
    if course_id is None:
        if caller.role is not Role.admin:
            raise Forbidden("Only admins make coupons for every course: name a course_id.")
        return None
    return await courses.editable_course(course_id, caller)


async def managed_coupon(
    coupon_id: uuid.UUID,
    caller: InstructorUser,
    service: Payments,
    courses: Courses,
    session: Session,
) -> Coupon:
    coupon = await service.coupon(coupon_id, for_update=True)
    if caller.role is Role.admin:
        return coupon
    course = await course_by_id(session, coupon.course_id) if coupon.course_id else None
    if course is None or not await courses.can_edit(course, caller):
        raise NotFound("No such coupon.")
    return coupon


ManagedCoupon = Annotated[Coupon, Depends(managed_coupon)]
