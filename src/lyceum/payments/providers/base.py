"""What Lyceum asks of a payment provider, in its own terms: open a hosted checkout,
turn a webhook (after verifying its signature on the raw body) into normalised events,
say where a payment stands, and refund. Every amount is an integer in the currency's
minor units (ISO 4217 exponent, `lyceum.payments.money`); adapters convert at the edge
where a provider speaks decimals."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class InvalidWebhook(Exception):
    """The webhook cannot be trusted (bad or missing signature, stale timestamp) or read.
    The endpoint answers 400 and changes nothing."""


class ProviderError(Exception):
    """The provider refused or failed a call (HTTP error, declined request, timeout).
    `transient` says whether trying again later may succeed."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True)
class CheckoutRequest:
    order_id: uuid.UUID
    amount: int  # minor units
    currency: str  # ISO 4217, upper case
    description: str  # the course title
    customer_email: str
    customer_name: str
    customer_phone: str | None
    success_url: str
    cancel_url: str
    webhook_url: str  # where this provider's webhooks for Lyceum arrive
    expires_at: dt.datetime
    # Stable per order: providers that take an idempotency key get it, so a retried
    # checkout creation never opens two payments.
    idempotency_key: str


@dataclass(frozen=True)
class Checkout:
    provider_ref: str  # the provider's id for this checkout (session, intention, invoice)
    url: str  # where the buyer's browser goes to pay
    payment_ref: str | None = None  # when the provider names the payment up front


class EventKind(StrEnum):
    paid = "paid"  # money captured: amount/currency say how much
    failed = "failed"  # the attempt was declined; the buyer may try again
    expired = "expired"  # the checkout closed unpaid
    refunded = "refunded"  # money returned: refunded_total says how much in all so far
    ignored = "ignored"  # verified, but nothing Lyceum acts on (recorded, not applied)


@dataclass(frozen=True)
class ProviderEvent:
    # Unique per provider and per happening: a redelivery carries the same id.
    event_id: str
    kind: EventKind
    raw_type: str  # the provider's own name for it ("checkout.session.completed", ...)
    # How the order is found: Lyceum's order id where the provider echoes it back
    # (client_reference_id, special_reference, CustomerReference), else the checkout id.
    order_id: uuid.UUID | None = None
    provider_ref: str | None = None
    payment_ref: str | None = None  # the captured payment's id (refunds name it)
    amount: int | None = None  # paid: the amount captured, minor units
    currency: str | None = None
    refunded_total: int | None = None  # refunded: the total refunded so far, minor units
    refund_ref: str | None = None  # refunded: the provider's id of the refund
    summary: str = ""  # a short human-readable note (decline reason, ...)


@dataclass(frozen=True)
class OrderRef:
    order_id: uuid.UUID
    provider_ref: str | None
    payment_ref: str | None
    amount: int
    currency: str


@dataclass(frozen=True)
class PaymentStatus:
    """Where a checkout stands at the provider now (reconciliation asks)."""

    kind: EventKind | None  # None: still open, nothing to apply
    payment_ref: str | None = None
    amount: int | None = None
    currency: str | None = None
    # An id for the normalised event reconciliation records, unique at the provider
    # ("<payment id>:paid"), so a webhook arriving later for the same payment is the
    # same event where the provider's ids allow, and is harmless where they do not.
    event_id: str | None = None


@dataclass(frozen=True)
class RefundResult:
    refund_ref: str
    succeeded: bool  # False: accepted and pending; a webhook or a later check settles it


class PaymentProvider(Protocol):
    name: str  # "stripe", "paymob", "myfatoorah", "sandbox"

    def supports(self, currency: str) -> bool:
        """Whether this provider, as configured, can charge in `currency`."""

    async def create_checkout(self, request: CheckoutRequest) -> Checkout:
        """Open a hosted checkout; raises ProviderError."""

    async def parse_webhook(
        self, body: bytes, headers: Mapping[str, str], query: Mapping[str, str]
    ) -> list[ProviderEvent]:
        """Verify the signature on the raw `body` first (raises InvalidWebhook), then
        normalise. `headers` keys are lower case. May ask the provider to confirm
        (MyFatoorah's GetPaymentStatus); raises ProviderError when it cannot."""

    async def fetch_status(self, order: OrderRef) -> PaymentStatus:
        """Ask the provider where the order's payment stands; raises ProviderError."""

    async def expire_checkout(self, order: OrderRef) -> None:
        """Close an open checkout so it can no longer be paid, where the provider can
        (a no-op where it cannot); raises ProviderError."""

    async def refund(
        self, order: OrderRef, *, amount: int, reason: str, idempotency_key: str
    ) -> RefundResult:
        """Refund `amount` minor units of the order's payment; raises ProviderError."""
