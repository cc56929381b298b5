"""Request and response bodies of orders, checkout, refunds and coupons. Every amount is
an integer in the currency's minor units (ISO 4217 exponent: cents for USD, fils with
three decimals for KWD, whole yen for JPY)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, Field, StrictBool

from lyceum.kit.validation import NO_NUL, IsoDateTime, integral_float
from lyceum.kit.validation import RequestModel as Strict
from lyceum.models.payments import CouponKind, OrderStatus, RefundStatus
from lyceum.payments import money

ProviderName = Literal["sandbox", "stripe", "paymob", "myfatoorah"]
CouponCode = Annotated[
    str,
    Field(
        min_length=3,
        max_length=40,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$",
        description="Letters, digits, `-` and `_`; matched without regard to case.",
        examples=["LAUNCH20"],
    ),
]
Currency = Annotated[
    str,
    Field(
        pattern=r"^[A-Z]{3}$",
        examples=["USD"],
        json_schema_extra={"enum": sorted(money.currencies())},
    ),
]


Percent = Annotated[int, Field(ge=1, le=100, strict=True), BeforeValidator(integral_float)]
MinorUnits = Annotated[int, Field(ge=1, le=10**12, strict=True), BeforeValidator(integral_float)]
Count = Annotated[int, Field(ge=1, le=10**9, strict=True), BeforeValidator(integral_float)]
PerUser = Annotated[int, Field(ge=1, le=1000, strict=True), BeforeValidator(integral_float)]
IDEMPOTENCY_KEY = Annotated[
    str,
    Field(
        min_length=1,
        max_length=255,
        pattern=r"^[!-~]+$",
        description="Any 1-255 visible ASCII characters, new for each purchase: the same "
        "key with the same body answers the same order again.",
    ),
]


class CheckoutIn(Strict):
    provider: ProviderName | None = Field(
        default=None,
        description="The provider to pay with; omitted: the first enabled one that "
        "charges in the course's currency.",
    )
    coupon_code: CouponCode | None = None


class OrderOut(BaseModel):
    id: uuid.UUID
    user_id: uuid.UUID
    course_id: uuid.UUID
    course_title: str
    status: OrderStatus
    list_amount: int = Field(description="The course's price, minor units.")
    discount_amount: int = Field(description="The coupon's discount, minor units.")
    amount: int = Field(description="What is charged, minor units, tax included.")
    currency: str
    tax_rate_percent: float = Field(description="The tax rate included in `amount`.")
    tax_amount: int = Field(description="The tax included in `amount`, minor units.")
    refunded_amount: int
    coupon_id: uuid.UUID | None
    provider: str
    checkout_url: str | None = Field(
        description="Where the buyer pays, while the order is pending."
    )
    expires_at: dt.datetime
    paid_at: dt.datetime | None
    flagged_reason: str | None = Field(
        description="Set when a confirmed payment disagreed with the order: an admin looks."
    )
    receipt_number: str | None = Field(
        description="The paid order's receipt number (sequential per year); null until paid."
    )
    receipt_url: str | None = Field(
        description="Where the buyer downloads the PDF receipt; null until paid."
    )
    created_at: dt.datetime


class RefundIn(Strict):
    amount: MinorUnits | None = Field(
        default=None, description="Minor units; omitted: everything not refunded yet."
    )
    reason: Annotated[str, Field(max_length=500, pattern=NO_NUL)] = ""


class RefundOut(BaseModel):
    id: uuid.UUID
    order_id: uuid.UUID
    amount: int
    currency: str
    status: RefundStatus
    reason: str
    failure_reason: str | None
    requested_by: uuid.UUID | None
    created_at: dt.datetime


class _CouponFields(Strict):
    code: CouponCode
    course_id: uuid.UUID | None = Field(
        default=None, description="The course it applies to; omitted: every course (admins)."
    )
    max_redemptions: Count | None = Field(default=None, description="Uses in all; omitted: any.")
    per_user_limit: PerUser = 1
    expires_at: IsoDateTime | None = None
    is_active: StrictBool = True


class PercentCouponIn(_CouponFields):
    kind: Literal[CouponKind.percent]
    percent_off: Percent


class FixedCouponIn(_CouponFields):
    kind: Literal[CouponKind.fixed]
    amount_off: MinorUnits = Field(description="Minor units of `currency`.")
    currency: Currency = Field(description="The course's currency (ISO 4217).")


CouponIn = Annotated[PercentCouponIn | FixedCouponIn, Field(discriminator="kind")]


class CouponUpdate(Strict):
    """Only the fields sent change."""

    max_redemptions: Count | None = None
    per_user_limit: PerUser | None = None
    expires_at: IsoDateTime | None = None
    is_active: StrictBool | None = None


class CouponOut(BaseModel):
    id: uuid.UUID
    code: str
    kind: CouponKind
    percent_off: int | None
    amount_off: int | None
    currency: str | None
    course_id: uuid.UUID | None
    max_redemptions: int | None
    per_user_limit: int
    expires_at: dt.datetime | None
    is_active: bool
    redemptions: int = Field(description="Orders holding a use: pending or paid.")
    created_at: dt.datetime
