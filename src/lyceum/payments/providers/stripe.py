"""Stripe as a payment provider, through the official `stripe` SDK (its async methods).

What it follows, from Stripe's API reference and guides (docs.stripe.com):

- Checkout: `POST /v1/checkout/sessions` in `payment` mode with one line item priced
  inline (`price_data`: lower-case currency, `unit_amount` in Stripe's minor unit,
  `product_data.name`), `client_reference_id` and `metadata.order_id` naming the order,
  `payment_intent_data.metadata.order_id` so the PaymentIntent and its charges carry it
  too, `customer_email`, `success_url`, `cancel_url`, and `expires_at`, which Stripe takes
  from 30 minutes to 24 hours after creation. Sessions are read back with
  `GET /v1/checkout/sessions/{id}` (`expand[]=payment_intent`), found by payment with
  `GET /v1/checkout/sessions?payment_intent=`, and closed with `POST .../{id}/expire`.
- Refunds: `POST /v1/refunds` with the `payment_intent` and an `amount`.
- Idempotent requests: creations carry an `Idempotency-Key` (the SDK's
  `idempotency_key` request option); the same key replays the first answer.
- Webhook signatures: `Stripe-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of
  "<t>.<raw body>" under the endpoint's whsec_ secret>`, checked by the SDK's
  `WebhookSignature.verify_header` with `Webhook.DEFAULT_TOLERANCE` (300 s), which is
  what `construct_event` runs, on the raw bytes before anything is parsed.
- Fulfilment: `checkout.session.completed` is a payment only when its `payment_status` is
  `paid` (delayed methods complete `unpaid` and settle later with
  `checkout.session.async_payment_succeeded` / `_failed`); `checkout.session.expired`
  closes an unpaid session; `charge.refunded` carries the charge's `amount_refunded`, the
  total refunded so far.
- Amounts (docs.stripe.com/currencies): Stripe's minor unit is ISO 4217's for most
  currencies but not all. Its zero-decimal currencies take whole units (MGA among them,
  two decimals in ISO 4217); ISK is two-decimal in the API (ISO: none) with amounts
  divisible by 100; the three-decimal currencies (BHD, JOD, KWD, OMR, TND) are sent in
  thousandths whose last digit must be 0. A price Stripe cannot take exactly is refused,
  never rounded (the order's amount would no longer match what is paid).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Mapping
from contextlib import asynccontextmanager
from typing import Any, ClassVar

import httpx
import stripe
from stripe.params import RefundCreateParams
from stripe.params.checkout import SessionCreateParams

from lyceum.config import Settings
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

# Seconds one request to Stripe may take.
STRIPE_TIMEOUT_SECONDS = 20.0
# Stripe's documented window for `expires_at`, with a minute of slack each side for the
# time the request takes to arrive.
MIN_CHECKOUT_LIFETIME = dt.timedelta(minutes=31)
MAX_CHECKOUT_LIFETIME = dt.timedelta(hours=24) - dt.timedelta(minutes=1)
# Stripe caps metadata values at 500 characters.
METADATA_VALUE_MAX = 500

# docs.stripe.com/currencies, "Zero-decimal currencies" and "Three-decimal currencies":
# where Stripe's minor unit is not simply the ISO 4217 one.
ZERO_DECIMAL_CURRENCIES = frozenset(
    {
        "BIF",
        "CLP",
        "DJF",
        "GNF",
        "JPY",
        "KMF",
        "KRW",
        "MGA",
        "PYG",
        "RWF",
        "UGX",
        "VND",
        "VUV",
        "XAF",
        "XOF",
        "XPF",
    }
)
THREE_DECIMAL_CURRENCIES = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})


def stripe_configured(settings: Settings) -> bool:
    """Stripe is offered when both its secret API key and webhook secret are set."""
    return settings.stripe_secret_key is not None and settings.stripe_webhook_secret is not None


def stripe_decimals(currency: str) -> int | None:
    """How many decimals Stripe's API amounts have in `currency`, or None where Stripe
    cannot take it (not ISO 4217, or ISO three- or four-decimal currencies Stripe does
    not list as three-decimal, such as IQD and LYD)."""
    if not money.is_currency(currency):
        return None
    if currency in ZERO_DECIMAL_CURRENCIES:
        return 0
    if currency in THREE_DECIMAL_CURRENCIES:
        return 3
    return 2 if money.exponent(currency) <= 2 else None


def _shift(currency: str) -> int:
    decimals = stripe_decimals(currency)
    if decimals is None:
        raise ValueError(f"Stripe does not take {currency}")
    return decimals - money.exponent(currency)


def _power_of_ten(places: int) -> int:
    return int(10**places)


def to_stripe_amount(amount: int, currency: str) -> int:
    """Lyceum's minor units (ISO 4217) to Stripe's; ValueError where Stripe cannot
    charge that amount exactly (fractions of a zero-decimal unit, a three-decimal amount
    whose last digit is not 0)."""
    shift = _shift(currency)
    if shift >= 0:
        converted = amount * _power_of_ten(shift)
    else:
        whole, rest = divmod(amount, _power_of_ten(-shift))
        if rest:
            raise ValueError(
                f"{money.format_amount(amount, currency)}: Stripe charges {currency} "
                "in whole units only"
            )
        converted = whole
    if currency in THREE_DECIMAL_CURRENCIES and converted % 10:
        raise ValueError(
            f"{money.format_amount(amount, currency)}: Stripe takes {currency} amounts "
            "only with a last digit of 0"
        )
    return converted


def from_stripe_amount(amount: int, currency: str) -> int:
    """Stripe's minor units back to Lyceum's (ISO 4217); ValueError if not exact."""
    shift = _shift(currency)
    if shift <= 0:
        return amount * _power_of_ten(-shift)
    whole, rest = divmod(amount, _power_of_ten(shift))
    if rest:
        raise ValueError(f"{amount} is not a whole number of {currency} minor units")
    return whole


class _HttpxTransport(stripe.HTTPClient):
    """The SDK's requests over an `httpx.AsyncClient` Lyceum owns (the SDK's README:
    "subclass `stripe.HTTPClient` and provide your own instance"). Async only; the
    client's owner closes it."""

    name: ClassVar[str] = "lyceum-httpx"

    def __init__(self, http: httpx.AsyncClient) -> None:
        super().__init__()
        self._http = http

    async def request_async(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any = None
    ) -> tuple[bytes, int, Mapping[str, str]]:
        try:
            response = await self._http.request(
                method, url, headers=headers, content=post_data, timeout=STRIPE_TIMEOUT_SECONDS
            )
        except httpx.HTTPError as error:
            # The SDK's own transports say so the same way: a connection error it may retry.
            raise stripe.APIConnectionError(  # type: ignore[no-untyped-call]
                f"Stripe could not be reached ({type(error).__name__})", should_retry=True
            ) from error
        return response.content, response.status_code, response.headers

    def sleep_async(self, secs: float) -> Awaitable[None]:
        return asyncio.sleep(secs)

    async def close_async(self) -> None:
        """Nothing: the client belongs to whoever passed it."""


def _provider_error(error: stripe.StripeError) -> ProviderError:
    """An SDK error as Lyceum's: connection errors, rate limits, conflicts (a request
    with the same idempotency key still in flight) and Stripe's 5xx may pass."""
    status = error.http_status or 0
    transient = (
        isinstance(error, stripe.APIConnectionError | stripe.RateLimitError)
        or status == 409
        or status >= 500
    )
    detail = error.user_message or str(error) or type(error).__name__
    code = f" [{error.code}]" if error.code else ""
    return ProviderError(f"Stripe: {detail}{code}", transient=transient)


def _order_id(value: object) -> uuid.UUID | None:
    if not isinstance(value, str):
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def _metadata(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    metadata = obj.get("metadata")
    return metadata if isinstance(metadata, Mapping) else {}


def _id_of(value: object) -> str | None:
    """An expandable field's id, whether Stripe sent the id or the object."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping) and isinstance(value.get("id"), str):
        return str(value["id"])
    return None


class StripeProvider:
    """Checkout Sessions, signed webhooks, status checks and refunds at Stripe."""

    name = "stripe"

    def __init__(self, settings: Settings, http: httpx.AsyncClient | None = None) -> None:
        if settings.stripe_secret_key is None or settings.stripe_webhook_secret is None:
            raise RuntimeError(
                "Stripe is not configured (STRIPE_SECRET_KEY, STRIPE_WEBHOOK_SECRET)"
            )
        self._api_key = settings.stripe_secret_key.get_secret_value()
        self._webhook_secret = settings.stripe_webhook_secret.get_secret_value()
        self._api_base = str(settings.stripe_api_base).rstrip("/")
        self._currencies = frozenset(settings.stripe_currencies)
        self._http = http

    @asynccontextmanager
    async def _client(self) -> AsyncIterator[stripe.StripeClient]:
        """A StripeClient over the shared HTTP client, or over one opened for this call.
        Retries are Lyceum's (a checkout or refund is retried with its idempotency key,
        reconciliation asks again later), so the SDK makes none of its own."""
        if self._http is not None:
            yield self._stripe(self._http)
            return
        async with httpx.AsyncClient() as http:
            yield self._stripe(http)

    def _stripe(self, http: httpx.AsyncClient) -> stripe.StripeClient:
        return stripe.StripeClient(
            self._api_key,
            base_addresses={"api": self._api_base},
            http_client=_HttpxTransport(http),
            max_network_retries=0,
        )

    def supports(self, currency: str) -> bool:
        code = currency.upper()
        if self._currencies and code not in self._currencies:
            return False
        return stripe_decimals(code) is not None

    async def create_checkout(self, request: CheckoutRequest) -> Checkout:
        currency = request.currency.upper()
        if not self.supports(currency):
            raise ProviderError(f"Stripe is not set up to charge in {currency}")
        try:
            unit_amount = to_stripe_amount(request.amount, currency)
        except ValueError as error:
            raise ProviderError(str(error)) from error
        now = dt.datetime.now(dt.UTC)
        expires_at = min(
            max(request.expires_at, now + MIN_CHECKOUT_LIFETIME), now + MAX_CHECKOUT_LIFETIME
        )
        order_id = str(request.order_id)
        params: SessionCreateParams = {
            "mode": "payment",
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": currency.lower(),
                        "unit_amount": unit_amount,
                        "product_data": {"name": request.description},
                    },
                }
            ],
            "client_reference_id": order_id,
            "metadata": {"order_id": order_id},
            "payment_intent_data": {"metadata": {"order_id": order_id}},
            "customer_email": request.customer_email,
            "success_url": request.success_url,
            "cancel_url": request.cancel_url,
            "expires_at": int(expires_at.timestamp()),
        }
        try:
            async with self._client() as client:
                stripe_checkout = await client.v1.checkout.sessions.create_async(
                    params, {"idempotency_key": request.idempotency_key}
                )
        except stripe.StripeError as error:
            raise _provider_error(error) from error
        if not stripe_checkout.url:
            raise ProviderError(f"Stripe: Checkout Session {stripe_checkout.id} has no URL")
        return Checkout(
            provider_ref=stripe_checkout.id,
            url=stripe_checkout.url,
            payment_ref=_id_of(stripe_checkout.payment_intent),
        )

    async def parse_webhook(
        self, body: bytes, headers: Mapping[str, str], query: Mapping[str, str]
    ) -> list[ProviderEvent]:
        try:
            stripe.WebhookSignature.verify_header(
                body,
                headers.get("stripe-signature"),
                self._webhook_secret,
                stripe.Webhook.DEFAULT_TOLERANCE,
            )
            event = json.loads(body)
        except stripe.SignatureVerificationError as error:
            raise InvalidWebhook(f"Stripe signature: {error.user_message or error}") from error
        except TypeError as error:  # the SDK's compare refuses a non-ASCII signature
            raise InvalidWebhook("the Stripe-Signature header is not ASCII") from error
        except (ValueError, RecursionError) as error:  # not UTF-8, not JSON, too deep
            raise InvalidWebhook(f"unreadable Stripe event: {error}") from error
        try:
            event_id = event["id"]
            event_type = event["type"]
            obj = event["data"]["object"]
        except (KeyError, TypeError) as error:
            raise InvalidWebhook("not a Stripe event") from error
        if not isinstance(event_id, str) or not isinstance(event_type, str):
            raise InvalidWebhook("not a Stripe event")
        if not isinstance(obj, Mapping):
            raise InvalidWebhook("a Stripe event without its object")
        try:
            if event_type.startswith("checkout.session."):
                return [self._session_event(event_id, event_type, obj)]
            if event_type == "charge.refunded":
                return [await self._refund_event(event_id, event_type, obj)]
        except ValueError as error:
            raise ProviderError(f"Stripe event {event_id}: {error}") from error
        return [ProviderEvent(event_id=event_id, kind=EventKind.ignored, raw_type=event_type)]

    def _session_event(
        self, event_id: str, event_type: str, stripe_checkout: Mapping[str, Any]
    ) -> ProviderEvent:
        currency = str(stripe_checkout.get("currency") or "").upper()
        kind = {
            "checkout.session.completed": EventKind.paid,
            "checkout.session.async_payment_succeeded": EventKind.paid,
            "checkout.session.async_payment_failed": EventKind.failed,
            "checkout.session.expired": EventKind.expired,
        }.get(event_type, EventKind.ignored)
        summary = ""
        if kind is EventKind.paid and stripe_checkout.get("payment_status") != "paid":
            # A delayed payment method (bank debit, voucher): the money is not there yet;
            # async_payment_succeeded or _failed says how it ends.
            kind = EventKind.ignored
            summary = (
                f"payment_status {stripe_checkout.get('payment_status')}: awaiting the payment"
            )
        paid = kind is EventKind.paid
        amount_total = stripe_checkout.get("amount_total")
        return ProviderEvent(
            event_id=event_id,
            kind=kind,
            raw_type=event_type,
            order_id=_order_id(stripe_checkout.get("client_reference_id"))
            or _order_id(_metadata(stripe_checkout).get("order_id")),
            provider_ref=_id_of(stripe_checkout.get("id")),
            payment_ref=_id_of(stripe_checkout.get("payment_intent")),
            amount=from_stripe_amount(amount_total, currency)
            if paid and isinstance(amount_total, int)
            else None,
            currency=currency if paid else None,
            summary=summary,
        )

    async def _refund_event(
        self, event_id: str, event_type: str, charge: Mapping[str, Any]
    ) -> ProviderEvent:
        currency = str(charge.get("currency") or "").upper()
        refunded = charge.get("amount_refunded")
        refunds = charge.get("refunds")
        latest = refunds.get("data") if isinstance(refunds, Mapping) else None
        payment_intent = _id_of(charge.get("payment_intent"))
        order_id = _order_id(_metadata(charge).get("order_id"))
        provider_ref = None
        if order_id is None and payment_intent is not None:
            # A charge without the order's metadata (made before it was set, or edited in
            # the Dashboard): its Checkout Session names the order.
            order_id, provider_ref = await self._order_of_payment(payment_intent)
        return ProviderEvent(
            event_id=event_id,
            kind=EventKind.refunded,
            raw_type=event_type,
            order_id=order_id,
            provider_ref=provider_ref,
            payment_ref=payment_intent,
            currency=currency,
            refunded_total=from_stripe_amount(refunded, currency)
            if isinstance(refunded, int)
            else None,
            # Refunds come newest first, where the charge lists them.
            refund_ref=_id_of(latest[0]) if isinstance(latest, list) and latest else None,
        )

    async def _order_of_payment(self, payment_intent: str) -> tuple[uuid.UUID | None, str | None]:
        """The order and Checkout Session a PaymentIntent was made by, asked of Stripe
        (`GET /v1/checkout/sessions?payment_intent=...`); (None, None) if none was."""
        try:
            async with self._client() as client:
                found = await client.v1.checkout.sessions.list_async(
                    {"payment_intent": payment_intent, "limit": 1}
                )
        except stripe.StripeError as error:
            raise _provider_error(error) from error
        if not found.data:
            return None, None
        data = found.data[0].to_dict()
        order_id = _order_id(data.get("client_reference_id")) or _order_id(
            _metadata(data).get("order_id")
        )
        return order_id, _id_of(data.get("id"))

    async def fetch_status(self, order: OrderRef) -> PaymentStatus:
        if order.provider_ref is None:
            raise ProviderError(f"order {order.order_id} has no Stripe Checkout Session")
        try:
            async with self._client() as client:
                stripe_checkout = await client.v1.checkout.sessions.retrieve_async(
                    order.provider_ref, {"expand": ["payment_intent"]}
                )
        except stripe.StripeError as error:
            raise _provider_error(error) from error
        data = stripe_checkout.to_dict()
        intent = data.get("payment_intent")
        intent_id = _id_of(intent)
        intent_status = intent.get("status") if isinstance(intent, Mapping) else None
        if data.get("payment_status") == "paid":
            currency = str(data.get("currency") or order.currency).upper()
            amount = data.get("amount_total")
            try:
                paid = from_stripe_amount(amount, currency) if isinstance(amount, int) else None
            except ValueError as error:
                raise ProviderError(
                    f"Stripe Checkout Session {stripe_checkout.id}: {error}"
                ) from error
            return PaymentStatus(
                kind=EventKind.paid,
                payment_ref=intent_id,
                amount=paid,
                currency=currency,
                event_id=f"{intent_id or stripe_checkout.id}:paid",
            )
        if data.get("status") == "expired":
            return PaymentStatus(kind=EventKind.expired, event_id=f"{stripe_checkout.id}:expired")
        if data.get("status") == "complete" and intent_status in (
            "requires_payment_method",
            "canceled",
        ):
            # A delayed payment that failed: the session stays complete and unpaid, its
            # PaymentIntent goes back to wanting a payment method.
            return PaymentStatus(
                kind=EventKind.failed, payment_ref=intent_id, event_id=f"{intent_id}:failed"
            )
        return PaymentStatus(kind=None, payment_ref=intent_id)

    async def expire_checkout(self, order: OrderRef) -> None:
        if order.provider_ref is None:
            return
        try:
            async with self._client() as client:
                try:
                    await client.v1.checkout.sessions.expire_async(order.provider_ref)
                except stripe.InvalidRequestError:
                    # Only open sessions can be expired: one already closed (paid,
                    # expired) is left as it is; anything else is an error.
                    stripe_checkout = await client.v1.checkout.sessions.retrieve_async(
                        order.provider_ref
                    )
                    if stripe_checkout.status == "open":
                        raise
        except stripe.StripeError as error:
            raise _provider_error(error) from error

    async def refund(
        self, order: OrderRef, *, amount: int, reason: str, idempotency_key: str
    ) -> RefundResult:
        currency = order.currency.upper()
        try:
            stripe_amount = to_stripe_amount(amount, currency)
        except ValueError as error:
            raise ProviderError(str(error)) from error
        try:
            async with self._client() as client:
                payment_intent = order.payment_ref
                if payment_intent is None and order.provider_ref is not None:
                    stripe_checkout = await client.v1.checkout.sessions.retrieve_async(
                        order.provider_ref
                    )
                    payment_intent = _id_of(stripe_checkout.payment_intent)
                if payment_intent is None:
                    raise ProviderError(f"order {order.order_id} has no Stripe payment to refund")
                params: RefundCreateParams = {
                    "payment_intent": payment_intent,
                    "amount": stripe_amount,
                    "metadata": {
                        "order_id": str(order.order_id),
                        "reason": reason[:METADATA_VALUE_MAX],
                    },
                }
                refund = await client.v1.refunds.create_async(
                    params,
                    # Scoped to the order: Lyceum's keys are unique per order only.
                    {"idempotency_key": f"refund:{order.order_id}:{idempotency_key}"},
                )
        except stripe.StripeError as error:
            raise _provider_error(error) from error
        if refund.status in ("failed", "canceled"):
            raise ProviderError(
                f"Stripe refund {refund.id} {refund.status}: {refund.failure_reason or 'no reason'}"
            )
        return RefundResult(refund_ref=refund.id, succeeded=refund.status == "succeeded")
