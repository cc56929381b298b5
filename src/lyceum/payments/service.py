"""Paid courses: checkout (an order priced on the server, a hosted checkout at the chosen
provider), applying what providers report (paid, failed, expired, refunded) exactly once
and in any order, refunds, reconciliation of orders whose webhook never came, and coupons.

Out-of-order events, as decided here:
- paid twice (a redelivery under a new id, or reconciliation and a webhook): the second
  changes nothing; a second payment under another payment id flags the order.
- failed or expired after paid: recorded, ignored.
- paid on an expired, failed or canceled order: the money was taken, so the order is
  paid and the learner enrolled all the same.
- refunded before paid: recorded as deferred, and applied the moment the order is paid,
  so the order ends as the provider has it whichever came first.
- a payment whose amount or currency differs from the order's flags the order for an
  admin (the `flagged` filter of the admin list) and enrolls nobody.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.config import Settings
from lyceum.kit.db import after_commit
from lyceum.kit.errors import Conflict, DomainError, Invalid, NotFound
from lyceum.kit.events import emit
from lyceum.kit.metrics import PAYMENT_NOTIFICATIONS, PAYMENT_PROVIDER_ERRORS, PAYMENTS
from lyceum.learning import service as learning
from lyceum.models.courses import Course, CourseStatus
from lyceum.models.identity import Role, User
from lyceum.models.payments import (
    Coupon,
    CouponKind,
    Order,
    OrderStatus,
    Refund,
    RefundStatus,
)
from lyceum.payments import money, schemas
from lyceum.payments.providers.base import (
    CheckoutRequest,
    EventKind,
    InvalidWebhook,
    OrderRef,
    PaymentProvider,
    ProviderError,
    ProviderEvent,
)
from lyceum.payments.repository import PaymentRepository

logger = structlog.get_logger("lyceum.payments")

# The provider of an order a coupon made free: nothing to charge, paid at once.
FREE_PROVIDER = "coupon"
PAID_STATES = (OrderStatus.paid, OrderStatus.partially_refunded, OrderStatus.refunded)
RETRY_AFTER_SECONDS = 30


class ProviderUnavailable(DomainError):
    """The provider failed in a way worth retrying (timeout, 5xx): nothing was kept."""

    status, slug, title = 503, "payment-provider-unavailable", "Payment provider unavailable"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


class ProviderRefused(DomainError):
    """The provider refused the call: nothing was kept."""

    status, slug, title = 502, "payment-provider-error", "Payment provider error"


class UntrustedWebhook(DomainError):
    status, slug, title = 400, "invalid-webhook", "Invalid webhook"


def _provider_failure(error: ProviderError, what: str, provider: str) -> DomainError:
    PAYMENT_PROVIDER_ERRORS.labels(provider).inc()
    if error.transient:
        return ProviderUnavailable(f"The payment provider could not {what} now; try again.")
    return ProviderRefused(f"The payment provider refused to {what}: {error}")


def count_payment(session: AsyncSession, provider: str, outcome: str) -> None:
    """`lyceum_payments_total{provider, outcome}`, once the transaction has committed."""

    async def count() -> None:
        PAYMENTS.labels(provider, outcome).inc()

    after_commit(session, count)


def request_hash(course_id: uuid.UUID, data: schemas.CheckoutIn) -> str:
    """What an Idempotency-Key stands for: the course and the body, normalised."""
    canonical = {
        "course_id": str(course_id),
        "provider": data.provider,
        "coupon_code": data.coupon_code.upper() if data.coupon_code else None,
    }
    return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()


def included_tax(amount: int, rate_percent: Decimal) -> tuple[int, int]:
    """The rate in basis points and the tax included in `amount` at that rate."""
    basis_points = int((rate_percent * 100).to_integral_value(ROUND_HALF_UP))
    if basis_points <= 0 or amount <= 0:
        return max(basis_points, 0), 0
    tax = Decimal(amount) * basis_points / (10_000 + basis_points)
    return basis_points, int(tax.to_integral_value(ROUND_HALF_UP))


def discount_for(coupon: Coupon, price: int) -> int:
    if coupon.kind is CouponKind.percent:
        off = Decimal(price) * (coupon.percent_off or 0) / 100
        return min(price, int(off.to_integral_value(ROUND_HALF_UP)))
    return min(price, coupon.amount_off or 0)


def order_ref(order: Order) -> OrderRef:
    return OrderRef(
        order_id=order.id,
        provider_ref=order.provider_ref,
        payment_ref=order.payment_ref,
        amount=order.amount,
        currency=order.currency,
    )


def order_out(order: Order, course_title: str) -> schemas.OrderOut:
    return schemas.OrderOut(
        id=order.id,
        user_id=order.user_id,
        course_id=order.course_id,
        course_title=course_title,
        status=order.status,
        list_amount=order.list_amount,
        discount_amount=order.discount_amount,
        amount=order.amount,
        currency=order.currency,
        tax_rate_percent=order.tax_rate_bp / 100,
        tax_amount=order.tax_amount,
        refunded_amount=order.refunded_amount,
        coupon_id=order.coupon_id,
        provider=order.provider,
        checkout_url=order.checkout_url if order.status is OrderStatus.pending else None,
        expires_at=order.expires_at,
        paid_at=order.paid_at,
        flagged_reason=order.flagged_reason,
        receipt_number=order.receipt_number,
        receipt_url=f"/api/v1/me/orders/{order.id}/receipt" if order.receipt_number else None,
        created_at=order.created_at,
    )


def refund_key(order_id: uuid.UUID, client_key: str) -> str:
    """The idempotency key a refund is asked of the provider with: stable for the order
    and the client's Idempotency-Key, whatever became of an earlier attempt's row."""
    digest = hashlib.sha256(f"{order_id}:{client_key}".encode()).hexdigest()[:32]
    return f"lyceum-refund-{digest}"


def refund_out(refund: Refund) -> schemas.RefundOut:
    return schemas.RefundOut(
        id=refund.id,
        order_id=refund.order_id,
        amount=refund.amount,
        currency=refund.currency,
        status=refund.status,
        reason=refund.reason,
        failure_reason=refund.failure_reason,
        requested_by=refund.requested_by,
        created_at=refund.created_at,
    )


def coupon_out(coupon: Coupon, redemptions: int) -> schemas.CouponOut:
    return schemas.CouponOut(
        id=coupon.id,
        code=coupon.code,
        kind=coupon.kind,
        percent_off=coupon.percent_off,
        amount_off=coupon.amount_off,
        currency=coupon.currency,
        course_id=coupon.course_id,
        max_redemptions=coupon.max_redemptions,
        per_user_limit=coupon.per_user_limit,
        expires_at=coupon.expires_at,
        is_active=coupon.is_active,
        redemptions=redemptions,
        created_at=coupon.created_at,
    )


def checkout_return_urls(settings: Settings, order_id: uuid.UUID) -> tuple[str, str]:
    """Where the buyer's browser goes after paying, and after giving up."""
    base = settings.base_url()
    success = settings.checkout_success_url or f"{base}/pay/done?order={{order_id}}"
    cancel = settings.checkout_cancel_url or f"{base}/pay/canceled?order={{order_id}}"
    return (
        success.replace("{order_id}", str(order_id)),
        cancel.replace("{order_id}", str(order_id)),
    )


def webhook_url(settings: Settings, provider: str) -> str:
    return f"{settings.base_url()}/api/v1/payments/webhooks/{provider}"


# Applying what providers report -----------------------------------------------------


def _order_payload(order: Order) -> dict[str, Any]:
    return {
        "order_id": str(order.id),
        "user_id": str(order.user_id),
        "course_id": str(order.course_id),
        "amount": order.amount,
        "currency": order.currency,
        "provider": order.provider,
    }


def _event_payload(event: ProviderEvent) -> dict[str, Any]:
    return {
        key: (str(value) if isinstance(value, uuid.UUID) else value)
        for key, value in dataclasses.asdict(event).items()
    }


class _Applier:
    """Applies events to orders in one transaction (the caller's)."""

    def __init__(
        self, session: AsyncSession, provider: str, now: dt.datetime, refund_ends_access: bool
    ) -> None:
        self.session = session
        self.repo = PaymentRepository(session)
        self.provider = provider
        self.now = now
        self.refund_ends_access = refund_ends_access

    async def apply(self, event: ProviderEvent) -> str:
        row_id = await self.repo.record_event(
            provider=self.provider,
            event_id=event.event_id[:255],
            kind=event.kind.value,
            order_id=None,
            received_at=self.now,
            payload=_event_payload(event),
        )
        if row_id is None:
            return "duplicate"
        order = await self.repo.order_for_event(
            self.provider, event.order_id, event.provider_ref, event.payment_ref
        )
        if order is None:
            outcome = "no such order"
        else:
            outcome = await self._apply_to(order, event)
        await self.repo.settle_event(row_id, order_id=order.id if order else None, outcome=outcome)
        logger.info(
            "payment_event",
            provider=self.provider,
            event_id=event.event_id,
            kind=event.kind.value,
            order_id=str(order.id) if order else None,
            outcome=outcome,
        )
        return outcome

    async def _apply_to(self, order: Order, event: ProviderEvent) -> str:
        if event.kind is EventKind.paid:
            return await self.paid(order, event.payment_ref, event.amount, event.currency)
        if event.kind is EventKind.failed:
            if order.status is not OrderStatus.pending:
                return f"ignored: order is {order.status.value}"
            order.status = OrderStatus.failed
            await self.session.flush()
            count_payment(self.session, self.provider, "failed")
            await emit(
                self.session, "order.failed", **_order_payload(order), reason=event.summary[:300]
            )
            return "failed"
        if event.kind is EventKind.expired:
            if order.status is not OrderStatus.pending:
                return f"ignored: order is {order.status.value}"
            order.status = OrderStatus.expired
            await self.session.flush()
            return "expired"
        if event.kind is EventKind.refunded:
            if order.status not in PAID_STATES:
                return "deferred: refund before payment, applied once paid"
            return await self.refunded(
                order, event.refunded_total, event.refund_ref, event.event_id
            )
        return "ignored"

    async def paid(
        self, order: Order, payment_ref: str | None, amount: int | None, currency: str | None
    ) -> str:
        if order.status in PAID_STATES:
            if payment_ref and order.payment_ref and payment_ref != order.payment_ref:
                order.flagged_reason = f"a second payment {payment_ref} for a paid order"[:300]
                await self.session.flush()
                return "flagged: second payment"
            return "ignored: already paid"
        if amount != order.amount or (currency or "").upper() != order.currency:
            order.flagged_reason = (
                f"paid {amount} {currency}, expected {order.amount} {order.currency} (minor units)"
            )[:300]
            order.payment_ref = payment_ref or order.payment_ref
            await self.session.flush()
            return "flagged: amount or currency mismatch"
        held_back = await self._why_not_enroll(order)
        if held_back is not None:
            # The money was taken: the order is paid, and an admin refunds it or lets
            # it stand; the learner is not enrolled (again) by it.
            order.status = OrderStatus.paid
            order.paid_at = self.now
            order.payment_ref = payment_ref or order.payment_ref
            order.flagged_reason = held_back[:300]
            await self.session.flush()
            count_payment(self.session, self.provider, "paid")
            return f"flagged: {held_back}"
        await self.mark_paid(order, payment_ref)
        for payload in await self.repo.deferred_refund_payloads(order.id):
            await self.refunded(
                order, payload.get("refunded_total"), payload.get("refund_ref"), payload["event_id"]
            )
        return "paid"

    async def _why_not_enroll(self, order: Order) -> str | None:
        """Why a payment that matches its order must still go to an admin: the buyer
        already bought the course through another order (two tabs, two checkouts), or the
        order's coupon was released when the order stopped being open (replaced,
        declined, expired) and others used it up since, so a late payment would redeem it
        past its limits."""
        if await self.repo.other_paid_order(order) is not None:
            return "a second purchase of a course the buyer already bought: refund one"
        if order.status is OrderStatus.pending or order.coupon_id is None:
            return None
        coupon = await self.repo.coupon(order.coupon_id, for_update=True)
        if coupon is None:
            return None
        if (
            coupon.max_redemptions is not None
            and await self.repo.coupon_uses(coupon.id) >= coupon.max_redemptions
        ) or await self.repo.coupon_uses(coupon.id, order.user_id) >= coupon.per_user_limit:
            return f"paid after its checkout closed, past coupon {coupon.code}'s limits"
        return None

    async def mark_paid(self, order: Order, payment_ref: str | None) -> None:
        order.status = OrderStatus.paid
        order.paid_at = self.now
        order.payment_ref = payment_ref or order.payment_ref
        await self.session.flush()
        count_payment(self.session, self.provider, "paid")
        await learning.enroll_for_order(
            self.session, course_id=order.course_id, user_id=order.user_id, now=self.now
        )
        await emit(self.session, "order.paid", **_order_payload(order))

    async def refunded(
        self, order: Order, refunded_total: int | None, refund_ref: str | None, event_id: str
    ) -> str:
        previous = order.refunded_amount
        total = min(max(previous, refunded_total or 0), order.amount)
        refund = await self.repo.refund_by_ref(order.id, refund_ref) if refund_ref else None
        if refund is not None:
            refund.status = RefundStatus.succeeded
        elif total > previous:
            # A report without the refund's id (a Stripe charge's refunded total, say)
            # first settles the refunds Lyceum asked for that it covers, oldest first; only
            # what is left over was made at the provider itself. Otherwise a pending refund
            # would stay pending, held back from what can still be refunded.
            unexplained = total - previous
            for pending in await self.repo.pending_refunds_of(order.id):
                if pending.amount > unexplained:
                    break
                pending.status = RefundStatus.succeeded
                unexplained -= pending.amount
            if unexplained > 0:
                await self.repo.add(
                    Refund(
                        order_id=order.id,
                        amount=unexplained,
                        currency=order.currency,
                        status=RefundStatus.succeeded,
                        reason="refunded at the provider",
                        provider_ref=refund_ref,
                        idempotency_key=f"provider:{refund_ref or event_id}"[:255],
                    )
                )
        if total <= previous:
            await self.session.flush()
            return "ignored: refund already applied"
        full = total >= order.amount
        order.refunded_amount = total
        order.status = OrderStatus.refunded if full else OrderStatus.partially_refunded
        await self.session.flush()
        count_payment(self.session, self.provider, "refunded")
        await emit(
            self.session,
            "order.refunded",
            **_order_payload(order),
            refunded_amount=total,
            full=full,
        )
        if full and self.refund_ends_access:
            await learning.end_paid_access(
                self.session, course_id=order.course_id, user_id=order.user_id
            )
        return "refunded" if full else "partially refunded"


async def apply_events(
    session: AsyncSession,
    provider_name: str,
    events: Sequence[ProviderEvent],
    *,
    now: dt.datetime,
    refund_ends_access: bool = True,
) -> list[str]:
    """Apply normalised events from `provider_name`, each exactly once (its id is stored
    under a unique constraint first: a redelivery is "duplicate" and changes nothing),
    in the caller's transaction; returns what each did."""
    applier = _Applier(session, provider_name, now, refund_ends_access)
    return [await applier.apply(event) for event in events]


async def receive_webhook(
    session: AsyncSession,
    provider: PaymentProvider,
    body: bytes,
    headers: Mapping[str, str],
    query: Mapping[str, str],
    *,
    now: dt.datetime,
    refund_ends_access: bool,
) -> list[str]:
    """Verify a webhook on its raw body (400 and nothing written if it cannot be
    trusted), then apply its events."""
    try:
        events = await provider.parse_webhook(body, headers, query)
    except InvalidWebhook as error:
        PAYMENT_NOTIFICATIONS.labels(provider.name, "rejected").inc()
        raise UntrustedWebhook(f"The webhook was refused: {error}") from None
    except (ValueError, TypeError, OverflowError, RecursionError) as error:
        # Anyone can post here: whatever in the request trips an adapter before it is
        # trusted (an odd header, a deep body) is the sender's fault, a 400, never a
        # 500 that a provider would retry for days. Logged, as it means an adapter
        # missed a case.
        logger.warning(
            "payment_webhook_unreadable", provider=provider.name, error=repr(error)[:300]
        )
        PAYMENT_NOTIFICATIONS.labels(provider.name, "rejected").inc()
        raise UntrustedWebhook("The webhook was refused: it cannot be read.") from None
    except ProviderError as error:
        raise _provider_failure(error, "confirm the webhook", provider.name) from None
    PAYMENT_NOTIFICATIONS.labels(provider.name, "accepted").inc()
    return await apply_events(
        session, provider.name, events, now=now, refund_ends_access=refund_ends_access
    )


# Reconciliation ------------------------------------------------------------------------


async def stale_pending_orders(
    session: AsyncSession, *, now: dt.datetime, after_minutes: int, limit: int = 200
) -> list[uuid.UUID]:
    before = now - dt.timedelta(minutes=after_minutes)
    return await PaymentRepository(session).stale_pending_order_ids(before, limit)


async def reconcile_order(
    session: AsyncSession,
    providers: Mapping[str, PaymentProvider],
    order_id: uuid.UUID,
    *,
    now: dt.datetime,
    refund_ends_access: bool,
) -> str:
    """Ask the provider where a pending order stands and apply the answer like a webhook
    (the same event id a webhook would carry, where the provider's ids allow); close the
    checkout when it is past its time and still unpaid. Safe to run twice."""
    order = await PaymentRepository(session).pending_order_to_check(order_id)
    if order is None:
        return "not pending"
    provider = providers.get(order.provider)
    if provider is None:
        return f"provider {order.provider} is not enabled"
    order.last_checked_at = now
    try:
        status = await provider.fetch_status(order_ref(order))
    except ProviderError:
        PAYMENT_PROVIDER_ERRORS.labels(provider.name).inc()
        raise
    if status.kind is not None:
        event = ProviderEvent(
            event_id=status.event_id
            or f"reconcile:{order.id}:{status.kind.value}:{status.payment_ref or ''}",
            kind=status.kind,
            raw_type="reconciliation",
            order_id=order.id,
            provider_ref=order.provider_ref,
            payment_ref=status.payment_ref,
            amount=status.amount,
            currency=status.currency,
        )
        (outcome,) = await apply_events(
            session, provider.name, [event], now=now, refund_ends_access=refund_ends_access
        )
        return outcome
    if order.expires_at <= now:
        await provider.expire_checkout(order_ref(order))
        (outcome,) = await apply_events(
            session,
            provider.name,
            [
                ProviderEvent(
                    event_id=f"expire:{order.id}",
                    kind=EventKind.expired,
                    raw_type="reconciliation",
                    order_id=order.id,
                )
            ],
            now=now,
            refund_ends_access=refund_ends_access,
        )
        return outcome
    return "still open"


# Checkout, orders, refunds, coupons -----------------------------------------------------


class PaymentService:
    def __init__(
        self,
        session: AsyncSession,
        *,
        settings: Settings,
        providers: Mapping[str, PaymentProvider],
        now: dt.datetime,
    ) -> None:
        self.session = session
        self.repo = PaymentRepository(session)
        self.settings = settings
        self.providers = providers
        self.now = now

    def _applier(self, provider: str) -> _Applier:
        return _Applier(self.session, provider, self.now, self.settings.refund_ends_access)

    # Checkout ---------------------------------------------------------------------------

    async def checkout(
        self, caller: User, course: Course, key: str, data: schemas.CheckoutIn
    ) -> tuple[Order, bool]:
        """The order for this Idempotency-Key (created, with its hosted checkout, the
        first time), and whether it was created now."""
        fingerprint = request_hash(course.id, data)
        existing = await self.repo.order_by_key(caller.id, key)
        if existing is not None:
            return _same_request(existing, fingerprint), False
        if course.status is not CourseStatus.published:
            raise Conflict("Only published courses are sold.")
        if course.price_cents <= 0:
            raise Conflict(
                f"This course is free: enroll with POST /api/v1/courses/{course.id}/enrollments.",
                slug="course-is-free",
            )
        if await learning.has_access(self.session, course_id=course.id, user_id=caller.id):
            raise Conflict("You are already enrolled in this course.", slug="already-enrolled")
        if not money.is_currency(course.currency):
            raise Conflict(f"The course's currency {course.currency} is not ISO 4217.")
        # A new checkout replaces the caller's open ones for the course (their coupon
        # uses are released; one paid after all still enrolls).
        for older in await self.repo.pending_orders_of(caller.id, course.id):
            older.status = OrderStatus.canceled
        await self.session.flush()
        coupon, discount = await self._coupon(caller, course, data.coupon_code)
        amount = course.price_cents - discount
        provider = self._provider(data.provider, course.currency) if amount > 0 else None
        tax_rate_bp, tax_amount = included_tax(amount, self.settings.tax_rate_percent)
        order = Order(
            id=uuid.uuid4(),
            user_id=caller.id,
            course_id=course.id,
            status=OrderStatus.pending,
            list_amount=course.price_cents,
            discount_amount=discount,
            amount=amount,
            currency=course.currency,
            tax_rate_bp=tax_rate_bp,
            tax_amount=tax_amount,
            coupon_id=coupon.id if coupon else None,
            provider=provider.name if provider else FREE_PROVIDER,
            expires_at=self.now + dt.timedelta(minutes=self.settings.checkout_expiry_minutes),
            refunded_amount=0,
            idempotency_key=key,
            request_hash=fingerprint,
        )
        try:
            async with self.session.begin_nested():
                await self.repo.add(order)
        except IntegrityError:
            # The same key, sent twice at once: the other request made the order.
            existing = await self.repo.order_by_key(caller.id, key)
            if existing is None:
                raise
            return _same_request(existing, fingerprint), False
        if provider is None:
            # A coupon made it free: nothing to charge, the order is paid as it is.
            await self._applier(FREE_PROVIDER).mark_paid(order, None)
            return order, True
        success_url, cancel_url = checkout_return_urls(self.settings, order.id)
        request = CheckoutRequest(
            order_id=order.id,
            amount=amount,
            currency=course.currency,
            description=course.title,
            customer_email=caller.email,
            customer_name=caller.full_name,
            customer_phone=await self.repo.verified_phone(caller.id),
            success_url=success_url,
            cancel_url=cancel_url,
            webhook_url=webhook_url(self.settings, provider.name),
            expires_at=order.expires_at,
            idempotency_key=f"lyceum-order-{order.id}",
        )
        try:
            checkout = await provider.create_checkout(request)
        except ProviderError as error:
            # The request's transaction rolls back: no order, no coupon use is left.
            raise _provider_failure(error, "open a checkout", provider.name) from None
        count_payment(self.session, provider.name, "checkout_started")
        order.provider_ref = checkout.provider_ref
        order.checkout_url = checkout.url
        order.payment_ref = checkout.payment_ref
        await self.session.flush()
        return order, True

    def _provider(self, name: str | None, currency: str) -> PaymentProvider:
        if name is not None:
            chosen = self.providers.get(name)
            if chosen is None:
                offered = ", ".join(self.providers) or "none"
                raise Conflict(
                    f"{name} is not offered here (offered: {offered}).",
                    field="body.provider",
                    slug="provider-not-enabled",
                )
            if not chosen.supports(currency):
                raise Conflict(
                    f"{name} does not charge in {currency}.", slug="currency-not-supported"
                )
            return chosen
        for provider in self.providers.values():
            if provider.supports(currency):
                return provider
        raise Conflict(
            f"No payment provider offered here charges in {currency}.",
            slug="currency-not-supported",
        )

    async def _coupon(
        self, caller: User, course: Course, code: str | None
    ) -> tuple[Coupon | None, int]:
        if code is None:
            return None, 0
        # A well-formed code that does not apply is a 409 naming the field: whether a
        # code applies is the coupon's state, not the request's shape.
        field, slug = "body.coupon_code", "coupon-not-applicable"
        coupon = await self.repo.coupon_by_code(code, for_update=True)
        if coupon is None or not coupon.is_active:
            raise Conflict("No such coupon, or it is no longer active.", field=field, slug=slug)
        if coupon.expires_at is not None and coupon.expires_at <= self.now:
            raise Conflict("This coupon has expired.", field=field, slug=slug)
        if coupon.course_id is not None and coupon.course_id != course.id:
            raise Conflict("This coupon is for another course.", field=field, slug=slug)
        if coupon.kind is CouponKind.fixed and coupon.currency != course.currency:
            raise Conflict(
                f"This coupon is in {coupon.currency}; the course is sold in {course.currency}.",
                field=field,
                slug=slug,
            )
        if coupon.max_redemptions is not None and (
            await self.repo.coupon_uses(coupon.id) >= coupon.max_redemptions
        ):
            raise Conflict("This coupon has been used up.", slug="coupon-used-up")
        if await self.repo.coupon_uses(coupon.id, caller.id) >= coupon.per_user_limit:
            raise Conflict(
                "You have used this coupon as often as it allows.", slug="coupon-limit-reached"
            )
        return coupon, discount_for(coupon, course.price_cents)

    # Orders -----------------------------------------------------------------------------

    async def out(self, order: Order) -> schemas.OrderOut:
        return order_out(order, await self.repo.course_title(order.course_id))

    async def my_orders(
        self, caller: User, offset: int, limit: int
    ) -> tuple[list[schemas.OrderOut], int]:
        rows, total = await self.repo.orders(offset=offset, limit=limit, user_id=caller.id)
        return [order_out(order, title) for order, title in rows], total

    async def all_orders(
        self,
        offset: int,
        limit: int,
        *,
        status: OrderStatus | None,
        flagged: bool | None,
        course_id: uuid.UUID | None,
        user_id: uuid.UUID | None,
    ) -> tuple[list[schemas.OrderOut], int]:
        rows, total = await self.repo.orders(
            offset=offset,
            limit=limit,
            status=status,
            flagged=flagged,
            course_id=course_id,
            user_id=user_id,
        )
        return [order_out(order, title) for order, title in rows], total

    async def own_order(self, caller: User, order_id: uuid.UUID) -> Order:
        order = await self.repo.order(order_id)
        if order is None or order.user_id != caller.id:
            raise NotFound("No such order of yours.")
        return order

    async def order(self, order_id: uuid.UUID, *, for_update: bool = False) -> Order:
        order = await self.repo.order(order_id, for_update=for_update)
        if order is None:
            raise NotFound("No such order.")
        return order

    # Refunds ----------------------------------------------------------------------------

    async def refunds(self, order: Order) -> list[schemas.RefundOut]:
        return [refund_out(refund) for refund in await self.repo.refunds_of(order.id)]

    async def refund(
        self, caller: User, order: Order, key: str, data: schemas.RefundIn
    ) -> tuple[Refund, bool]:
        """Refund (part of) a paid order through its provider; the same key answers the
        same refund again without asking the provider twice. `order` is locked."""
        existing = await self.repo.refund_by_key(order.id, key)
        if existing is not None:
            if data.amount is not None and data.amount != existing.amount:
                raise Invalid(
                    "This Idempotency-Key was used for a refund of another amount.",
                    field="header.Idempotency-Key",
                    slug="idempotency-key-reused",
                )
            return existing, False
        if order.status not in (OrderStatus.paid, OrderStatus.partially_refunded):
            raise Conflict(f"Only paid orders are refunded; this one is {order.status.value}.")
        refundable = (
            order.amount - order.refunded_amount - await self.repo.pending_refund_total(order.id)
        )
        amount = data.amount if data.amount is not None else refundable
        if refundable <= 0:
            raise Conflict("Nothing is left to refund on this order.", slug="nothing-to-refund")
        if amount > refundable:
            raise Conflict(
                f"At most {refundable} (minor units of {order.currency}) can be refunded.",
                slug="refund-too-large",
            )
        provider = self.providers.get(order.provider)
        if provider is None:
            raise Conflict(
                f"The order's provider {order.provider} is not enabled here; refund it there.",
                slug="provider-not-enabled",
            )
        refund = Refund(
            order_id=order.id,
            amount=amount,
            currency=order.currency,
            status=RefundStatus.pending,
            reason=data.reason,
            requested_by=caller.id,
            idempotency_key=key,
        )
        await self.repo.add(refund)
        try:
            result = await provider.refund(
                order_ref(order),
                amount=amount,
                reason=data.reason,
                # From the caller's key, not the row's id: a retry after a timeout (the
                # row rolled back with the failed request) asks the provider with the
                # same key, and the provider answers the refund it already made.
                idempotency_key=refund_key(order.id, key),
            )
        except ProviderError as error:
            raise _provider_failure(error, "refund", provider.name) from None
        refund.provider_ref = result.refund_ref
        await self.session.flush()
        if result.succeeded:
            await self._applier(order.provider).refunded(
                order, order.refunded_amount + amount, result.refund_ref, f"refund:{refund.id}"
            )
        return refund, True

    # Coupons ----------------------------------------------------------------------------

    async def create_coupon(
        self, caller: User, data: schemas.CouponIn, course: Course | None
    ) -> Coupon:
        percent_off = amount_off = None
        currency = None
        if isinstance(data, schemas.FixedCouponIn):
            if not money.is_currency(data.currency):
                raise Invalid("Not an ISO 4217 currency.", field="body.currency")
            if course is not None and data.currency != course.currency:
                raise Conflict(
                    f"The course is sold in {course.currency}.",
                    field="body.currency",
                    slug="coupon-currency-mismatch",
                )
            amount_off, currency = data.amount_off, data.currency
        else:
            percent_off = data.percent_off
        coupon = Coupon(
            code=data.code.upper(),
            kind=data.kind,
            percent_off=percent_off,
            amount_off=amount_off,
            currency=currency,
            course_id=course.id if course else None,
            max_redemptions=data.max_redemptions,
            per_user_limit=data.per_user_limit,
            expires_at=data.expires_at,
            is_active=data.is_active,
            created_by=caller.id,
        )
        try:
            async with self.session.begin_nested():
                await self.repo.add(coupon)
        except IntegrityError:
            raise Conflict("A coupon with this code exists.", slug="coupon-code-taken") from None
        await self.session.refresh(coupon)
        return coupon

    async def coupon(self, coupon_id: uuid.UUID, *, for_update: bool = False) -> Coupon:
        coupon = await self.repo.coupon(coupon_id, for_update=for_update)
        if coupon is None:
            raise NotFound("No such coupon.")
        return coupon

    async def coupon_with_uses(self, coupon: Coupon) -> schemas.CouponOut:
        return coupon_out(coupon, await self.repo.coupon_uses(coupon.id))

    async def update_coupon(self, coupon: Coupon, data: schemas.CouponUpdate) -> Coupon:
        for field in data.model_fields_set:
            value = getattr(data, field)
            if value is None and field in ("is_active", "per_user_limit"):
                continue  # null leaves a required field as it is
            setattr(coupon, field, value)
        await self.session.flush()
        await self.session.refresh(coupon)
        return coupon

    async def delete_coupon(self, coupon: Coupon) -> None:
        await self.repo.delete(coupon)

    async def coupons(
        self, caller: User, offset: int, limit: int, course_id: uuid.UUID | None
    ) -> tuple[list[schemas.CouponOut], int]:
        rows, total = await self.repo.coupons(
            offset=offset,
            limit=limit,
            course_id=course_id,
            instructor_id=None if caller.role is Role.admin else caller.id,
        )
        uses = await self.repo.uses_by_coupon([coupon.id for coupon in rows])
        return [coupon_out(coupon, uses.get(coupon.id, 0)) for coupon in rows], total


def _same_request(order: Order, fingerprint: str) -> Order:
    if order.request_hash != fingerprint:
        raise Invalid(
            "This Idempotency-Key was used for a different checkout; send a new key.",
            field="header.Idempotency-Key",
            slug="idempotency-key-reused",
        )
    return order
