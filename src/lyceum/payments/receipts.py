"""Receipts: a paid order gets the next receipt number of its year, without gaps, in
the paying transaction, and its buyer is told (in the app and by mail, in their
language) with a link to the PDF; a refund is confirmed the same way. The PDF is
rendered on request from the order, so it always shows the refunds so far.

These are reactions to `order.paid` and `order.refunded`: they run inside the emitting
transaction, so a payment that rolls back takes its receipt number and its
notifications with it. Links are API paths; the mail job makes them absolute.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.config import Settings
from lyceum.kit.errors import NotFound
from lyceum.kit.events import react
from lyceum.models.notifications import Category
from lyceum.notifications.service import notify
from lyceum.payments.money import format_amount, to_decimal
from lyceum.payments.receipt_pdf import Receipt, render_receipt
from lyceum.payments.receipt_repository import ReceiptRepository


def receipt_path(order_id: uuid.UUID | str) -> str:
    return f"/api/v1/me/orders/{order_id}/receipt"


def format_receipt_number(year: int, number: int) -> str:
    """`2026-000123`: the year of payment and the year's sequence number."""
    return f"{year}-{number:06d}"


def receipt_filename(receipt_number: str) -> str:
    return f"receipt-{receipt_number}.pdf"


def mail_amount(amount: int, currency: str) -> dict[str, str]:
    """An amount for a mail's context: the mail writes it the reader's way (`money`
    filter: `12.345 KWD` in English, `12,345 KWD` in Vietnamese)."""
    return {"value": str(to_decimal(amount, currency)), "currency": currency}


async def assign_receipt_number(
    session: AsyncSession, order_id: uuid.UUID, *, now: dt.datetime | None = None
) -> str | None:
    """Number the order's receipt (once: an order that has a number keeps it) from its
    payment year's counter; returns the number, or None if there is no such order."""
    repository = ReceiptRepository(session)
    current = await repository.lock_for_numbering(order_id)
    if current is None:
        return None
    number, paid_at = current
    if number is not None:
        return number
    year = (paid_at or now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).year
    number = format_receipt_number(year, await repository.next_number(year))
    await repository.set_number(order_id, number)
    return number


async def order_paid(
    session: AsyncSession,
    *,
    order_id: str,
    user_id: str,
    course_id: str,
    amount: int,
    currency: str,
    provider: str,
    **_later_fields: object,  # a public event's payload may grow; this reads what it needs
) -> None:
    number = await assign_receipt_number(session, uuid.UUID(order_id))
    if number is None:
        return
    title = await ReceiptRepository(session).course_title(uuid.UUID(course_id))
    paid = format_amount(amount, currency)
    link = receipt_path(order_id)
    await notify(
        session,
        user_ids=[uuid.UUID(user_id)],
        category=Category.payments,
        kind="order.paid",
        title=f"Receipt {number}: {title}",
        body=f"You paid {paid} for {title}. Your receipt is ready.",
        url=link,
        template="order_paid",
        context={
            "course_title": title,
            "amount": mail_amount(amount, currency),
            "receipt_number": number,
            "receipt_url": link,
        },
        dedupe_key=f"order.paid:{order_id}",
        data={
            "order_id": order_id,
            "course_id": course_id,
            "receipt_number": number,
            "amount": amount,
            "currency": currency,
            "provider": provider,
        },
    )


async def order_refunded(
    session: AsyncSession,
    *,
    order_id: str,
    user_id: str,
    course_id: str,
    amount: int,
    currency: str,
    refunded_amount: int,
    full: bool,
    **_later_fields: object,
) -> None:
    # `refunded_amount` is the order's refunded total so far (several partial refunds
    # add up), not this refund's.
    repository = ReceiptRepository(session)
    order = await repository.order(uuid.UUID(order_id))
    refunded = refunded_amount
    number = order.receipt_number if order else None
    title = await repository.course_title(uuid.UUID(course_id))
    link = receipt_path(order_id) if number else None
    refunded_text = format_amount(refunded, currency)
    await notify(
        session,
        user_ids=[uuid.UUID(user_id)],
        category=Category.payments,
        kind="order.refunded",
        title=f"{'Refund' if full else 'Partial refund'}: {title}",
        body=f"{refunded_text} of {format_amount(amount, currency)} for {title} "
        "was refunded to you.",
        url=link,
        template="order_refunded",
        context={
            "course_title": title,
            "amount": mail_amount(amount, currency),
            "refunded_amount": mail_amount(refunded, currency),
            "full": full,
            "receipt_number": number,
            "receipt_url": link,
        },
        # One notification per refunded total: a redelivered event adds nothing, a
        # second partial refund is news.
        dedupe_key=f"order.refunded:{order_id}:{refunded}",
        data={
            "order_id": order_id,
            "course_id": course_id,
            "refunded_amount": refunded,
            "amount": amount,
            "currency": currency,
            "full": full,
        },
    )


react("order.paid", order_paid)
react("order.refunded", order_refunded)


# The PDF ------------------------------------------------------------------------------


async def receipt_pdf(
    session: AsyncSession, settings: Settings, *, order_id: uuid.UUID, buyer_id: uuid.UUID
) -> tuple[str, bytes]:
    """The buyer's receipt of a paid order: (file name, PDF). Anyone else's order, or one
    without a receipt number, is 404."""
    row = await ReceiptRepository(session).receipt_of(order_id, buyer_id)
    number = row.order.receipt_number if row is not None else None
    if row is None or number is None:
        raise NotFound("No receipt of yours has this order id.")
    order = row.order
    receipt = Receipt(
        seller_name=settings.receipt_seller_name,
        seller_address=settings.receipt_seller_address,
        seller_tax_id=settings.receipt_tax_id,
        receipt_number=number,
        paid_at=order.paid_at or order.created_at,
        buyer_name=row.buyer_name,
        buyer_email=row.buyer_email,
        course_title=row.course_title,
        currency=order.currency,
        list_amount=order.list_amount,
        discount_amount=order.discount_amount,
        coupon_code=row.coupon_code,
        amount=order.amount,
        tax_name=settings.tax_name,
        tax_rate_bp=order.tax_rate_bp,
        tax_amount=order.tax_amount,
        refunded_amount=order.refunded_amount,
        provider=order.provider,
        payment_ref=order.payment_ref,
    )
    pdf = await asyncio.to_thread(render_receipt, receipt)
    return receipt_filename(number), pdf
