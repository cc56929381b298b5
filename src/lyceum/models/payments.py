"""Paid courses: orders and their checkouts, coupons, the provider events received,
refunds, and the counter that numbers receipts without gaps."""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from lyceum.models.base import Base, Timestamps, UUIDPrimaryKey


def _enum(cls: type[StrEnum], name: str) -> Enum:
    return Enum(cls, name=name, native_enum=False, length=24)


class OrderStatus(StrEnum):
    pending = "pending"  # checkout created, no payment confirmed yet
    paid = "paid"
    partially_refunded = "partially_refunded"
    refunded = "refunded"
    failed = "failed"  # the provider declined the payment
    expired = "expired"  # the checkout ran out of time unpaid
    canceled = "canceled"  # replaced by a newer checkout, or canceled by the buyer


class CouponKind(StrEnum):
    percent = "percent"
    fixed = "fixed"


class Coupon(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "coupons"
    __table_args__ = (
        CheckConstraint(
            "(kind = 'percent' AND percent_off BETWEEN 1 AND 100 AND amount_off IS NULL)"
            " OR (kind = 'fixed' AND amount_off > 0 AND currency IS NOT NULL"
            " AND percent_off IS NULL)",
            name="discount_shape",
        ),
    )

    # Stored upper-case; codes are matched case-insensitively.
    code: Mapped[str] = mapped_column(String(40), unique=True)
    kind: Mapped[CouponKind] = mapped_column(_enum(CouponKind, "coupon_kind"))
    percent_off: Mapped[int | None] = mapped_column(Integer)
    amount_off: Mapped[int | None] = mapped_column(BigInteger)  # minor units of `currency`
    currency: Mapped[str | None] = mapped_column(String(3))
    # None: every course (only admins create those).
    course_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("courses.id", ondelete="CASCADE"), index=True
    )
    max_redemptions: Mapped[int | None] = mapped_column(Integer)
    per_user_limit: Mapped[int] = mapped_column(Integer, default=1)
    expires_at: Mapped[dt.datetime | None]
    is_active: Mapped[bool] = mapped_column(default=True)
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )


class Order(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("user_id", "idempotency_key"),
        UniqueConstraint("provider", "provider_ref"),
        Index("ix_orders_user_created", "user_id", "created_at"),
        Index("ix_orders_course_created", "course_id", "created_at"),
        # Reconciliation walks only the open orders.
        Index("ix_orders_pending", "created_at", postgresql_where=text("status = 'pending'")),
        Index("ix_orders_paid_at", "paid_at"),
        # A refund reported by payment id alone (a charge, a transaction) finds its order.
        Index("ix_orders_provider_payment_ref", "provider", "payment_ref"),
        CheckConstraint("amount >= 0 AND list_amount >= 0 AND discount_amount >= 0", "amounts"),
        CheckConstraint("refunded_amount BETWEEN 0 AND amount", "refund_bounded"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    course_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("courses.id", ondelete="RESTRICT"))
    status: Mapped[OrderStatus] = mapped_column(
        _enum(OrderStatus, "order_status"), default=OrderStatus.pending
    )
    # Amounts in the currency's minor units (ISO 4217 exponent): the course's price, the
    # coupon's discount, and what is charged (`list_amount - discount_amount`).
    list_amount: Mapped[int] = mapped_column(BigInteger)
    discount_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    # Tax included in `amount`, at the rate in force when the order was made.
    tax_rate_bp: Mapped[int] = mapped_column(Integer, default=0)  # basis points: 1400 = 14%
    tax_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    coupon_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("coupons.id", ondelete="SET NULL"), index=True
    )
    provider: Mapped[str] = mapped_column(String(20))
    # The provider's id of the checkout (Stripe session, Paymob intention, MyFatoorah
    # invoice, sandbox checkout) and of the captured payment, which refunds name.
    provider_ref: Mapped[str | None] = mapped_column(String(200))
    payment_ref: Mapped[str | None] = mapped_column(String(200))
    checkout_url: Mapped[str | None] = mapped_column(String(2000))
    expires_at: Mapped[dt.datetime]
    paid_at: Mapped[dt.datetime | None]
    refunded_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    # The client's Idempotency-Key and a hash of what it asked for with it.
    idempotency_key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    # Set when a confirmed payment disagrees with the order (amount, currency): an admin
    # looks; the learner is not enrolled by it.
    flagged_reason: Mapped[str | None] = mapped_column(String(300))
    receipt_number: Mapped[str | None] = mapped_column(String(40), unique=True)
    last_checked_at: Mapped[dt.datetime | None]


class PaymentEvent(UUIDPrimaryKey, Base):
    """One event a provider sent (or reconciliation learned): the unique id makes a
    redelivery a no-op."""

    __tablename__ = "payment_events"
    __table_args__ = (UniqueConstraint("provider", "event_id"),)

    provider: Mapped[str] = mapped_column(String(20))
    event_id: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(40))
    order_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("orders.id", ondelete="CASCADE"), index=True
    )
    received_at: Mapped[dt.datetime]
    # What was applied ("paid", "duplicate payment", "ignored: order already paid", ...).
    outcome: Mapped[str] = mapped_column(String(300), default="")
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)


class RefundStatus(StrEnum):
    pending = "pending"  # asked of the provider, not confirmed yet
    succeeded = "succeeded"
    failed = "failed"


class Refund(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "refunds"
    __table_args__ = (
        UniqueConstraint("order_id", "idempotency_key"),
        # A provider's refund id is unique at that provider, for that payment: two
        # providers' ids may be equal.
        UniqueConstraint("order_id", "provider_ref"),
        CheckConstraint("amount > 0", "amount_positive"),
    )

    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[RefundStatus] = mapped_column(
        _enum(RefundStatus, "refund_status"), default=RefundStatus.pending
    )
    reason: Mapped[str] = mapped_column(Text, default="")
    provider_ref: Mapped[str | None] = mapped_column(String(200))
    failure_reason: Mapped[str | None] = mapped_column(String(300))
    # Who asked (None: the provider reported a refund made in its own dashboard).
    requested_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    idempotency_key: Mapped[str] = mapped_column(String(255))


class ReceiptCounter(Base):
    """The last receipt number given out per year: incremented under the row's lock in
    the paying transaction, so numbers are sequential with no gaps (a rolled-back payment
    takes its number back with it)."""

    __tablename__ = "receipt_counters"

    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_number: Mapped[int] = mapped_column(Integer, default=0)


class SandboxCheckout(Base):
    """The built-in sandbox provider's own state: one hosted checkout, what was paid and
    refunded at it. Lyceum's orders learn of it only through the sandbox's signed
    webhooks and its status answers, as they would from a remote provider."""

    __tablename__ = "sandbox_checkouts"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    order_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("orders.id", ondelete="CASCADE"), index=True
    )
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    description: Mapped[str] = mapped_column(String(300))
    success_url: Mapped[str] = mapped_column(String(2000))
    cancel_url: Mapped[str] = mapped_column(String(2000))
    # open, paid, declined, expired
    status: Mapped[str] = mapped_column(String(20), default="open")
    payment_id: Mapped[str | None] = mapped_column(String(40))
    refunded_total: Mapped[int] = mapped_column(BigInteger, default=0)
    expires_at: Mapped[dt.datetime]
    created_at: Mapped[dt.datetime]
