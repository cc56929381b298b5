"""The built-in sandbox provider: a hosted checkout served by Lyceum itself with Pay and
Decline buttons, so the whole paid-course flow runs with nothing configured. It takes no
money and is refused in production.

It behaves like a remote provider: its state (checkouts, what was paid and refunded) is
its own table, and Lyceum's orders learn of it only through its signed webhooks and its
status answers. The webhooks are signed like Standard Webhooks: headers `webhook-id`
(the event id), `webhook-timestamp` (Unix seconds) and `webhook-signature:
v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>`, with a key derived from
SECRET_KEY; a timestamp more than five minutes off is refused. The body:

    {"id": "<event id>", "type": "payment.succeeded" | "payment.declined" |
     "payment.refunded", "data": {"checkout_id", "order_id", "payment_id", "amount",
     "currency", "refunded_total" (refunds), "refund_id" (refunds)}}
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import re
import secrets
import time
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import httpx

from lyceum.config import Settings
from lyceum.kit.security import constant_time_equal
from lyceum.models.payments import SandboxCheckout
from lyceum.payments import money
from lyceum.payments.providers.base import (
    Checkout,
    CheckoutRequest,
    EventKind,
    InvalidWebhook,
    OrderRef,
    PaymentStatus,
    ProviderError,
    ProviderEvent,
    RefundResult,
)
from lyceum.payments.repository import PaymentRepository

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

TOLERANCE_SECONDS = 300
_SIGNING_LABEL = b"lyceum sandbox payment webhooks v1"
_FORM_LABEL = b"lyceum sandbox checkout form v1"
PAGE_PATH = "/pay/sandbox"

EVENT_KINDS = {
    "payment.succeeded": EventKind.paid,
    "payment.declined": EventKind.failed,
    "payment.refunded": EventKind.refunded,
}


_TIMESTAMP = re.compile(r"[0-9]{1,12}")


def sandbox_signing_key(settings: Settings) -> bytes:
    """The key sandbox webhooks are signed with, derived from SECRET_KEY."""
    return hmac.new(settings.secret_key_value().encode(), _SIGNING_LABEL, hashlib.sha256).digest()


def _signature(key: bytes, body: bytes, event_id: str, timestamp: int) -> str:
    signed = f"{event_id}.{timestamp}.".encode() + body
    return base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def sign_webhook(settings: Settings, body: bytes, event_id: str, timestamp: int) -> dict[str, str]:
    """The headers of a sandbox webhook carrying `body`."""
    signature = _signature(sandbox_signing_key(settings), body, event_id, timestamp)
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": f"v1,{signature}",
    }


def form_token(settings: Settings, checkout_id: str) -> str:
    """The token the checkout page's form carries: only a page Lyceum served for this
    checkout can pay or decline it."""
    key = hmac.new(settings.secret_key_value().encode(), _FORM_LABEL, hashlib.sha256).digest()
    return hmac.new(key, checkout_id.encode(), hashlib.sha256).hexdigest()


def event_body(
    event_type: str, checkout: SandboxCheckout, *, refund_id: str | None = None
) -> tuple[str, bytes]:
    """A webhook's event id and body for what just happened at `checkout`."""
    event_id = f"sbx_evt_{secrets.token_hex(12)}"
    data: dict[str, Any] = {
        "checkout_id": checkout.id,
        "order_id": str(checkout.order_id),
        "payment_id": checkout.payment_id or "",
        "amount": checkout.amount,
        "currency": checkout.currency,
    }
    if event_type == "payment.refunded":
        data["refunded_total"] = checkout.refunded_total
        data["refund_id"] = refund_id or ""
    body = json.dumps({"id": event_id, "type": event_type, "data": data}, separators=(",", ":"))
    return event_id, body.encode()


def _parse_uuid(value: object) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


class SandboxProvider:
    name = "sandbox"

    def __init__(
        self,
        settings: Settings,
        http: httpx.AsyncClient | None = None,
        *,
        session: AsyncSession | None = None,
    ) -> None:
        self.settings = settings
        self.session = session

    def _repo(self) -> PaymentRepository:
        if self.session is None:
            raise ProviderError("the sandbox provider was built without a database session")
        return PaymentRepository(self.session)

    def supports(self, currency: str) -> bool:
        return money.is_currency(currency)

    async def create_checkout(self, request: CheckoutRequest) -> Checkout:
        checkout = SandboxCheckout(
            id=f"sbx_cs_{secrets.token_hex(12)}",
            order_id=request.order_id,
            amount=request.amount,
            currency=request.currency,
            description=request.description[:300],
            success_url=request.success_url,
            cancel_url=request.cancel_url,
            status="open",
            refunded_total=0,
            expires_at=request.expires_at,
            created_at=dt.datetime.now(dt.UTC),
        )
        await self._repo().add(checkout)
        url = f"{self.settings.base_url()}{PAGE_PATH}/{checkout.id}"
        return Checkout(provider_ref=checkout.id, url=url)

    async def parse_webhook(
        self, body: bytes, headers: Mapping[str, str], query: Mapping[str, str]
    ) -> list[ProviderEvent]:
        event_id = headers.get("webhook-id", "")
        stamp = headers.get("webhook-timestamp", "")
        signatures = headers.get("webhook-signature", "")
        # ASCII digits, at most 12 (`str.isdigit` takes any script's digits, and a
        # thousand-digit number overflows the arithmetic below).
        if not event_id or not _TIMESTAMP.fullmatch(stamp) or not signatures:
            raise InvalidWebhook("missing webhook-id, webhook-timestamp or webhook-signature")
        timestamp = int(stamp)
        if abs(time.time() - timestamp) > TOLERANCE_SECONDS:
            raise InvalidWebhook("the webhook's timestamp is more than five minutes off")
        expected = _signature(sandbox_signing_key(self.settings), body, event_id, timestamp)
        offered = [part.split(",", 1)[1] for part in signatures.split() if part.startswith("v1,")]
        if not any(constant_time_equal(expected, candidate) for candidate in offered):
            raise InvalidWebhook("the webhook's signature does not match")
        try:
            document = json.loads(body)
            data = document["data"]
            event_type = str(document["type"])
            if str(document["id"]) != event_id:
                raise InvalidWebhook("the body's id is not the signed webhook-id")
            kind = EVENT_KINDS.get(event_type, EventKind.ignored)
            amount = data.get("amount")
            refunded_total = data.get("refunded_total")
            return [
                ProviderEvent(
                    event_id=event_id,
                    kind=kind,
                    raw_type=event_type,
                    order_id=_parse_uuid(data.get("order_id")),
                    provider_ref=str(data["checkout_id"]),
                    payment_ref=str(data.get("payment_id") or "") or None,
                    amount=amount if isinstance(amount, int) else None,
                    currency=str(data.get("currency") or "") or None,
                    refunded_total=refunded_total if isinstance(refunded_total, int) else None,
                    refund_ref=str(data.get("refund_id") or "") or None,
                    summary="declined on the sandbox page" if kind is EventKind.failed else "",
                )
            ]
        except InvalidWebhook:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise InvalidWebhook(f"the webhook's body cannot be read: {error}") from None

    async def fetch_status(self, order: OrderRef) -> PaymentStatus:
        checkout = await self._checkout(order)
        if checkout.status == "paid":
            return PaymentStatus(
                kind=EventKind.paid,
                payment_ref=checkout.payment_id,
                amount=checkout.amount,
                currency=checkout.currency,
                event_id=f"{checkout.payment_id}:paid",
            )
        if checkout.status == "declined":
            return PaymentStatus(kind=EventKind.failed, event_id=f"{checkout.id}:declined")
        if checkout.status == "expired":
            return PaymentStatus(kind=EventKind.expired, event_id=f"{checkout.id}:expired")
        return PaymentStatus(kind=None)

    async def expire_checkout(self, order: OrderRef) -> None:
        checkout = await self._checkout(order, for_update=True)
        if checkout.status == "open":
            checkout.status = "expired"
            await self._repo().session.flush()

    async def refund(
        self, order: OrderRef, *, amount: int, reason: str, idempotency_key: str
    ) -> RefundResult:
        checkout = await self._checkout(order, for_update=True)
        if checkout.status != "paid":
            raise ProviderError("the sandbox checkout was not paid")
        if amount <= 0 or checkout.refunded_total + amount > checkout.amount:
            raise ProviderError("the refund is more than what is left of the payment")
        checkout.refunded_total += amount
        await self._repo().session.flush()
        return RefundResult(refund_ref=f"sbx_re_{secrets.token_hex(12)}", succeeded=True)

    # What the checkout page's buttons do ---------------------------------------------

    async def checkout(
        self, checkout_id: str, *, for_update: bool = False
    ) -> SandboxCheckout | None:
        return await self._repo().sandbox_checkout(checkout_id, for_update=for_update)

    async def settle(
        self, checkout: SandboxCheckout, *, pay: bool, now: dt.datetime
    ) -> tuple[bytes, dict[str, str]] | None:
        """Pay or decline an open checkout; the signed webhook telling Lyceum (its body
        and headers), or None when the checkout is no longer open."""
        if checkout.status != "open" or checkout.expires_at <= now:
            return None
        if pay:
            checkout.status = "paid"
            checkout.payment_id = f"sbx_pay_{secrets.token_hex(12)}"
        else:
            checkout.status = "declined"
        await self._repo().session.flush()
        event_type = "payment.succeeded" if pay else "payment.declined"
        event_id, body = event_body(event_type, checkout)
        return body, sign_webhook(self.settings, body, event_id, int(time.time()))

    async def _checkout(self, order: OrderRef, *, for_update: bool = False) -> SandboxCheckout:
        if order.provider_ref is None:
            raise ProviderError("the order has no sandbox checkout")
        checkout = await self._repo().sandbox_checkout(order.provider_ref, for_update=for_update)
        if checkout is None:
            raise ProviderError("the sandbox has no such checkout")
        return checkout
