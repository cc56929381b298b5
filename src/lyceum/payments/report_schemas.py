"""Response bodies of the payment reports. Amounts are integers in the currency's minor
units (`decimals` says how many: 3 for KWD, 0 for JPY), as everywhere in the API; rows
of different currencies are never added together."""

from __future__ import annotations

import datetime as dt
import uuid

from pydantic import BaseModel, Field


class ReportPeriod(BaseModel):
    first_day: dt.date = Field(description="First UTC day covered.")
    last_day: dt.date = Field(description="Last UTC day covered (included).")


class RevenueRow(BaseModel):
    day: dt.date = Field(description="UTC day of payment.")
    course_id: uuid.UUID
    course_title: str
    currency: str
    decimals: int = Field(description="The currency's minor-unit exponent (ISO 4217).")
    orders: int = Field(description="Paid orders.")
    gross: int = Field(description="Charged, tax included.")
    discounts: int = Field(description="Coupon discounts given off the list price.")
    tax: int = Field(description="Tax included in `gross`.")
    refunded: int = Field(description="Refunded since, of these orders.")
    net: int = Field(description="`gross - refunded`.")


class RevenueReport(BaseModel):
    period: ReportPeriod
    items: list[RevenueRow]
    truncated: bool = Field(
        description="True when the report has more rows than the 10,000 returned: ask for "
        "a shorter period or one course."
    )


class RefundRow(BaseModel):
    day: dt.date = Field(description="UTC day the refund was made.")
    course_id: uuid.UUID
    course_title: str
    currency: str
    decimals: int = Field(description="The currency's minor-unit exponent (ISO 4217).")
    refunds: int = Field(description="Refunds that went through.")
    orders: int = Field(description="Orders they were made on.")
    amount: int = Field(description="Refunded.")


class RefundReport(BaseModel):
    period: ReportPeriod
    items: list[RefundRow]
    truncated: bool = Field(
        description="True when the report has more rows than the 10,000 returned: ask for "
        "a shorter period or one course."
    )


class CouponRow(BaseModel):
    coupon_id: uuid.UUID
    code: str
    course_id: uuid.UUID
    course_title: str
    currency: str
    decimals: int = Field(description="The currency's minor-unit exponent (ISO 4217).")
    uses: int = Field(description="Paid orders the coupon was applied to.")
    buyers: int = Field(description="Distinct buyers among them.")
    discount: int = Field(description="Discount given.")
    gross: int = Field(description="Charged on those orders, tax included.")


class CouponReport(BaseModel):
    period: ReportPeriod
    items: list[CouponRow]
    truncated: bool = Field(
        description="True when the report has more rows than the 10,000 returned: ask for "
        "a shorter period or one course."
    )
