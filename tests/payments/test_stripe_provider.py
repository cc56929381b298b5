"""The Stripe adapter against a fake Stripe written from Stripe's API reference: what a
checkout sends (and in which units per currency), webhook signatures (good, forged,
stale, tampered), every handled event, status checks, expiry, refunds, and errors. No
database: the adapter is pure I/O with Stripe."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from lyceum.config import Settings
from lyceum.payments.providers.base import (
    CheckoutRequest,
    EventKind,
    InvalidWebhook,
    OrderRef,
    ProviderError,
    ProviderEvent,
)
from lyceum.payments.providers.stripe import (
    StripeProvider,
    from_stripe_amount,
    stripe_configured,
    to_stripe_amount,
)
from tests.support.payment_fakes.stripe import SECRET_KEY, WEBHOOK_SECRET, FakeStripe


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    with FakeStripe() as server:
        yield server


def stripe_settings(fake: FakeStripe, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "stripe_secret_key": SecretStr(SECRET_KEY),
        "stripe_webhook_secret": SecretStr(WEBHOOK_SECRET),
        "stripe_api_base": fake.base_url,
        **overrides,
    }
    return Settings(**values)


@pytest.fixture
def provider(fake: FakeStripe) -> StripeProvider:
    return StripeProvider(stripe_settings(fake))


def checkout_request(
    amount: int = 1999,
    currency: str = "USD",
    *,
    order_id: uuid.UUID | None = None,
    expires_in: dt.timedelta = dt.timedelta(hours=2),
    key: str | None = None,
) -> CheckoutRequest:
    order = order_id or uuid.uuid4()
    return CheckoutRequest(
        order_id=order,
        amount=amount,
        currency=currency,
        description="Arabic for beginners",
        customer_email="learner@example.com",
        customer_name="Layla Learner",
        customer_phone=None,
        success_url=f"https://lyceum.example.org/orders/{order}?paid=1",
        cancel_url=f"https://lyceum.example.org/orders/{order}?canceled=1",
        webhook_url="https://lyceum.example.org/api/v1/payments/webhooks/stripe",
        expires_at=dt.datetime.now(dt.UTC) + expires_in,
        idempotency_key=key or f"checkout-{order}",
    )


def order_ref(
    request: CheckoutRequest, provider_ref: str | None, payment_ref: str | None = None
) -> OrderRef:
    return OrderRef(
        order_id=request.order_id,
        provider_ref=provider_ref,
        payment_ref=payment_ref,
        amount=request.amount,
        currency=request.currency,
    )


def stripe_signature(body: bytes, secret: str = WEBHOOK_SECRET) -> str:
    """Stripe's scheme, for bodies the fake does not serialise itself."""
    stamp = int(time.time())
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}"


async def parse(
    provider: StripeProvider, fake: FakeStripe, event: dict[str, Any], **signing: Any
) -> ProviderEvent:
    body, headers, query = fake.signed_webhook(event, **signing)
    (parsed,) = await provider.parse_webhook(body, headers, query)
    return parsed


# Configuration and currencies -----------------------------------------------------------


def test_configured_only_with_both_keys(fake: FakeStripe) -> None:
    assert stripe_configured(stripe_settings(fake))
    assert not stripe_configured(stripe_settings(fake, stripe_webhook_secret=None))
    assert not stripe_configured(stripe_settings(fake, stripe_secret_key=None))
    assert not stripe_configured(Settings())


def test_supports_what_stripe_takes_and_the_settings_allow(fake: FakeStripe) -> None:
    provider = StripeProvider(stripe_settings(fake))
    for currency in ("USD", "usd", "JPY", "KWD", "EGP", "ISK", "MGA", "VND"):
        assert provider.supports(currency), currency
    # Not ISO 4217, no minor unit (gold), three decimals Stripe does not list (IQD, LYD).
    for currency in ("XYZ", "XAU", "IQD", "LYD", "CLF"):
        assert not provider.supports(currency), currency
    limited = StripeProvider(stripe_settings(fake, stripe_currencies="usd, eur"))
    assert limited.supports("USD") and limited.supports("eur")
    assert not limited.supports("JPY")


@pytest.mark.parametrize(
    ("amount", "currency", "stripe_amount"),
    [
        (1999, "USD", 1999),  # two decimals both ways
        (500, "JPY", 500),  # zero-decimal both ways
        (12340, "KWD", 12340),  # three decimals, last digit 0
        (1230, "BHD", 1230),
        (500, "ISK", 50000),  # ISO: no decimals; Stripe: two, in hundreds
        (500000, "MGA", 5000),  # ISO: two decimals; Stripe: zero-decimal
    ],
)
async def test_checkout_sends_the_amount_in_stripes_unit(
    provider: StripeProvider, fake: FakeStripe, amount: int, currency: str, stripe_amount: int
) -> None:
    assert to_stripe_amount(amount, currency) == stripe_amount
    assert from_stripe_amount(stripe_amount, currency) == amount
    request = checkout_request(amount, currency)
    checkout = await provider.create_checkout(request)
    (call,) = fake.calls("POST", "/v1/checkout/sessions")
    price = call.params["line_items"][0]["price_data"]
    assert price["currency"] == currency.lower()
    assert price["unit_amount"] == str(stripe_amount)
    assert fake.sessions[checkout.provider_ref]["amount_total"] == stripe_amount


@pytest.mark.parametrize(
    ("amount", "currency"),
    [(12345, "KWD"), (5001, "OMR"), (123456, "MGA"), (100, "IQD"), (100, "XAU")],
)
async def test_amounts_stripe_cannot_take_exactly_are_refused_not_rounded(
    provider: StripeProvider, fake: FakeStripe, amount: int, currency: str
) -> None:
    with pytest.raises(ProviderError) as refused:
        await provider.create_checkout(checkout_request(amount, currency))
    assert not refused.value.transient
    assert fake.requests == []


# Checkout ---------------------------------------------------------------------------------


async def test_checkout_session_request_follows_stripes_reference(
    provider: StripeProvider, fake: FakeStripe
) -> None:
    request = checkout_request()
    checkout = await provider.create_checkout(request)

    (call,) = fake.calls("POST", "/v1/checkout/sessions")
    assert call.headers["authorization"] == f"Bearer {SECRET_KEY}"
    assert call.headers["content-type"].startswith("application/x-www-form-urlencoded")
    assert call.headers["idempotency-key"] == request.idempotency_key
    params = call.params
    assert params["mode"] == "payment"
    assert params["line_items"] == [
        {
            "quantity": "1",
            "price_data": {
                "currency": "usd",
                "unit_amount": "1999",
                "product_data": {"name": "Arabic for beginners"},
            },
        }
    ]
    assert params["client_reference_id"] == str(request.order_id)
    assert params["metadata"] == {"order_id": str(request.order_id)}
    assert params["payment_intent_data"] == {"metadata": {"order_id": str(request.order_id)}}
    assert params["customer_email"] == "learner@example.com"
    assert params["success_url"] == request.success_url
    assert params["cancel_url"] == request.cancel_url
    assert int(params["expires_at"]) == int(request.expires_at.timestamp())

    session = fake.sessions[checkout.provider_ref]
    assert checkout.provider_ref.startswith("cs_test_")
    assert checkout.url == session["url"]
    assert checkout.payment_ref is None  # Stripe makes the PaymentIntent when the buyer pays
    assert session["status"] == "open" and session["payment_status"] == "unpaid"


async def test_checkout_expiry_is_kept_inside_stripes_window(
    provider: StripeProvider, fake: FakeStripe
) -> None:
    soon = await provider.create_checkout(checkout_request(expires_in=dt.timedelta(minutes=5)))
    late = await provider.create_checkout(checkout_request(expires_in=dt.timedelta(days=3)))
    now = time.time()
    assert fake.sessions[soon.provider_ref]["expires_at"] >= now + 30 * 60
    assert fake.sessions[late.provider_ref]["expires_at"] <= now + 24 * 60 * 60


async def test_a_retried_checkout_creation_opens_one_session(
    provider: StripeProvider, fake: FakeStripe
) -> None:
    request = checkout_request()
    first = await provider.create_checkout(request)
    again = await provider.create_checkout(request)
    assert again == first
    assert len(fake.sessions) == 1
    # The same key with other parameters is Stripe's idempotency_error: not retried.
    changed = checkout_request(2999, order_id=request.order_id, key=request.idempotency_key)
    with pytest.raises(ProviderError) as refused:
        await provider.create_checkout(changed)
    assert not refused.value.transient
    assert len(fake.sessions) == 1


async def test_a_shared_http_client_is_used_and_left_open(fake: FakeStripe) -> None:
    async with httpx.AsyncClient() as http:
        provider = StripeProvider(stripe_settings(fake), http=http)
        checkout = await provider.create_checkout(checkout_request())
        await provider.fetch_status(order_ref(checkout_request(), checkout.provider_ref))
        assert not http.is_closed
    assert len(fake.requests) == 2


# Webhook signatures ---------------------------------------------------------------------------


async def test_a_signed_event_is_accepted(provider: StripeProvider, fake: FakeStripe) -> None:
    request = checkout_request()
    checkout = await provider.create_checkout(request)
    event = fake.pay(checkout.provider_ref)
    parsed = await parse(provider, fake, event)
    session = fake.sessions[checkout.provider_ref]
    assert parsed == ProviderEvent(
        event_id=event["id"],
        kind=EventKind.paid,
        raw_type="checkout.session.completed",
        order_id=request.order_id,
        provider_ref=checkout.provider_ref,
        payment_ref=session["payment_intent"],
        amount=1999,
        currency="USD",
    )


class Receiver:
    """A webhook endpoint on a loopback port that keeps what it is sent."""

    def __init__(self) -> None:
        self.received: list[tuple[bytes, dict[str, str]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.received.append((body, {k.lower(): v for k, v in self.headers.items()}))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/api/v1/payments/webhooks/stripe"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


async def test_a_delivery_over_http_carries_the_signed_bytes(
    provider: StripeProvider, fake: FakeStripe
) -> None:
    checkout = await provider.create_checkout(checkout_request())
    event = fake.pay(checkout.provider_ref)
    with Receiver() as receiver:
        response = await asyncio.to_thread(fake.send_webhook, receiver.url, event)
    assert response.status_code == 200
    ((body, headers),) = receiver.received
    assert headers["content-type"] == "application/json; charset=utf-8"
    assert json.loads(body) == event
    (parsed,) = await provider.parse_webhook(body, headers, {})
    assert (parsed.event_id, parsed.kind) == (event["id"], EventKind.paid)


@pytest.mark.parametrize("age", [0, 200, 299])
async def test_recent_signatures_pass(provider: StripeProvider, fake: FakeStripe, age: int) -> None:
    event = fake.event("payment_intent.created", {"id": "pi_x", "object": "payment_intent"})
    parsed = await parse(provider, fake, event, timestamp=int(time.time()) - age)
    assert parsed.kind is EventKind.ignored


async def test_a_stale_signature_is_refused(provider: StripeProvider, fake: FakeStripe) -> None:
    """Older than the SDK's default tolerance (300 s): a replayed delivery."""
    event = fake.event("payment_intent.created", {"id": "pi_x", "object": "payment_intent"})
    with pytest.raises(InvalidWebhook, match="tolerance"):
        await parse(provider, fake, event, timestamp=int(time.time()) - 301)


async def test_a_forged_signature_is_refused(provider: StripeProvider, fake: FakeStripe) -> None:
    checkout = await provider.create_checkout(checkout_request())
    event = fake.pay(checkout.provider_ref)
    with pytest.raises(InvalidWebhook):
        await parse(provider, fake, event, secret="whsec_someone_elses_secret")


async def test_a_tampered_body_is_refused(provider: StripeProvider, fake: FakeStripe) -> None:
    checkout = await provider.create_checkout(checkout_request())
    event = fake.pay(checkout.provider_ref)
    body, headers, query = fake.signed_webhook(event)
    tampered = body.replace(b'"amount_total": 1999', b'"amount_total": 1')
    assert tampered != body
    with pytest.raises(InvalidWebhook):
        await provider.parse_webhook(tampered, headers, query)


@pytest.mark.parametrize(
    "signature",
    [None, "", "v1=abc", "t=notanumber,v1=abc", "t=1700000000", "garbage"],
)
async def test_missing_or_malformed_signature_headers_are_refused(
    provider: StripeProvider, fake: FakeStripe, signature: str | None
) -> None:
    event = fake.event("payment_intent.created", {"id": "pi_x"})
    body, headers, query = fake.signed_webhook(event)
    headers = {k: v for k, v in headers.items() if k != "stripe-signature"}
    if signature is not None:
        headers["stripe-signature"] = signature
    with pytest.raises(InvalidWebhook):
        await provider.parse_webhook(body, headers, query)


async def test_a_signature_among_several_is_found(
    provider: StripeProvider, fake: FakeStripe
) -> None:
    """While an endpoint secret is rolled, Stripe signs with both: several v1 entries."""
    event = fake.event("payment_intent.created", {"id": "pi_x"})
    body, headers, query = fake.signed_webhook(event)
    timestamp, good = headers["stripe-signature"].split(",")
    headers["stripe-signature"] = f"{timestamp},v1={'0' * 64},{good}"
    (parsed,) = await provider.parse_webhook(body, headers, query)
    assert parsed.event_id == event["id"]


async def test_a_signed_body_that_is_not_an_event_is_refused(
    provider: StripeProvider, fake: FakeStripe
) -> None:
    for payload in ([1, 2], {"id": "evt_1"}, {"id": "evt_1", "type": "x", "data": {}}):
        body = json.dumps(payload).encode()
        with pytest.raises(InvalidWebhook):
            await provider.parse_webhook(body, {"stripe-signature": stripe_signature(body)}, {})
    latin1 = "café".encode("latin-1")
    with pytest.raises(InvalidWebhook):
        await provider.parse_webhook(latin1, {"stripe-signature": "t=1,v1=00"}, {})


# Events ---------------------------------------------------------------------------------------


async def test_a_delayed_payment_is_ignored_until_it_settles(
    provider: StripeProvider, fake: FakeStripe
) -> None:
    request = checkout_request()
    checkout = await provider.create_checkout(request)
    completed = await parse(provider, fake, fake.pay_later(checkout.provider_ref))
    assert completed.kind is EventKind.ignored
    assert completed.raw_type == "checkout.session.completed"
    assert "unpaid" in completed.summary

    succeeded = await parse(provider, fake, fake.settle(checkout.provider_ref, succeeded=True))
    assert succeeded.kind is EventKind.paid
    assert succeeded.raw_type == "checkout.session.async_payment_succeeded"
    assert (succeeded.order_id, succeeded.amount, succeeded.currency) == (
        request.order_id,
        1999,
        "USD",
    )
    assert succeeded.payment_ref == fake.sessions[checkout.provider_ref]["payment_intent"]


async def test_a_failed_delayed_payment_is_failed(
    provider: StripeProvider, fake: FakeStripe
) -> None:
    request = checkout_request()
    checkout = await provider.create_checkout(request)
    fake.pay_later(checkout.provider_ref)
    failed = await parse(provider, fake, fake.settle(checkout.provider_ref, succeeded=False))
    assert failed.kind is EventKind.failed
    assert failed.raw_type == "checkout.session.async_payment_failed"
    assert failed.order_id == request.order_id
    assert failed.amount is None


async def test_an_expired_session_is_expired(provider: StripeProvider, fake: FakeStripe) -> None:
    request = checkout_request()
    checkout = await provider.create_checkout(request)
    expired = await parse(provider, fake, fake.expire(checkout.provider_ref))
    assert expired.kind is EventKind.expired
    assert (expired.order_id, expired.provider_ref) == (request.order_id, checkout.provider_ref)


async def test_refunds_in_the_dashboard_report_the_total_so_far(
    provider: StripeProvider, fake: FakeStripe
) -> None:
    request = checkout_request()
    checkout = await provider.create_checkout(request)
    fake.pay(checkout.provider_ref)
    intent = fake.sessions[checkout.provider_ref]["payment_intent"]

    first = await parse(provider, fake, fake.refund_in_dashboard(checkout.provider_ref, 500))
    assert first.kind is EventKind.refunded
    assert first.raw_type == "charge.refunded"
    assert (first.order_id, first.payment_ref) == (request.order_id, intent)
    assert (first.refunded_total, first.currency) == (500, "USD")

    rest = await parse(provider, fake, fake.refund_in_dashboard(checkout.provider_ref))
    assert rest.refunded_total == 1999
    assert rest.event_id != first.event_id


async def test_a_refunded_charge_without_metadata_is_found_through_its_session(
    provider: StripeProvider, fake: FakeStripe
) -> None:
    """A charge that does not carry the order id (metadata cleared in the Dashboard):
    the Checkout Session its PaymentIntent was made by names the order."""
    request = checkout_request(500, "ISK")
    checkout = await provider.create_checkout(request)
    fake.pay(checkout.provider_ref)
    event = fake.refund_in_dashboard(checkout.provider_ref)
    event["data"]["object"]["metadata"] = {}
    refunded = await parse(provider, fake, event)
    assert (refunded.order_id, refunded.provider_ref) == (request.order_id, checkout.provider_ref)
    assert refunded.payment_ref == fake.sessions[checkout.provider_ref]["payment_intent"]
    assert (refunded.refunded_total, refunded.currency) == (500, "ISK")  # 50000 at Stripe
    (lookup,) = fake.calls("GET", "/v1/checkout/sessions")
    assert lookup.params == {"payment_intent": refunded.payment_ref, "limit": "1"}

    # A payment made outside Checkout: nothing names an order; the payment id is all.
    event["data"]["object"]["payment_intent"] = "pi_not_from_checkout"
    stranger = await parse(provider, fake, event)
    assert (stranger.order_id, stranger.provider_ref) == (None, None)
    assert stranger.payment_ref == "pi_not_from_checkout"


async def test_a_failed_lookup_is_a_provider_error_so_stripe_redelivers(
    provider: StripeProvider, fake: FakeStripe
) -> None:
    checkout = await provider.create_checkout(checkout_request())
    fake.pay(checkout.provider_ref)
    event = fake.refund_in_dashboard(checkout.provider_ref)
    event["data"]["object"]["metadata"] = {}
    fake.fail_next(503, "Stripe is down")
    with pytest.raises(ProviderError) as failed:
        await parse(provider, fake, event)
    assert failed.value.transient


async def test_other_events_are_verified_and_ignored(
    provider: StripeProvider, fake: FakeStripe
) -> None:
    for event_type in ("payment_intent.succeeded", "charge.succeeded", "customer.created"):
        event = fake.event(event_type, {"id": "x_1", "object": event_type.split(".")[0]})
        parsed = await parse(provider, fake, event)
        assert (parsed.kind, parsed.raw_type, parsed.event_id) == (
            EventKind.ignored,
            event_type,
            event["id"],
        )


async def test_paid_amounts_come_back_in_iso_minor_units(
    provider: StripeProvider, fake: FakeStripe
) -> None:
    for amount, currency in ((500, "ISK"), (500000, "MGA"), (12340, "KWD"), (700, "JPY")):
        checkout = await provider.create_checkout(checkout_request(amount, currency))
        paid = await parse(provider, fake, fake.pay(checkout.provider_ref))
        assert (paid.amount, paid.currency) == (amount, currency)


# Status, expiry ---------------------------------------------------------------------------------


async def test_fetch_status_follows_the_session(provider: StripeProvider, fake: FakeStripe) -> None:
    request = checkout_request()
    checkout = await provider.create_checkout(request)
    ref = order_ref(request, checkout.provider_ref)

    assert (await provider.fetch_status(ref)).kind is None  # open

    fake.pay(checkout.provider_ref)
    intent = fake.sessions[checkout.provider_ref]["payment_intent"]
    paid = await provider.fetch_status(ref)
    assert (paid.kind, paid.payment_ref, paid.amount, paid.currency) == (
        EventKind.paid,
        intent,
        1999,
        "USD",
    )
    assert paid.event_id == f"{intent}:paid"
    (call, *_) = fake.calls("GET", f"/v1/checkout/sessions/{checkout.provider_ref}")
    assert call.params["expand"] == ["payment_intent"]


async def test_fetch_status_of_delayed_and_expired_sessions(
    provider: StripeProvider, fake: FakeStripe
) -> None:
    pending_request = checkout_request()
    pending = await provider.create_checkout(pending_request)
    fake.pay_later(pending.provider_ref)
    pending_ref = order_ref(pending_request, pending.provider_ref)
    assert (await provider.fetch_status(pending_ref)).kind is None  # still clearing
    fake.settle(pending.provider_ref, succeeded=False)
    failed = await provider.fetch_status(pending_ref)
    assert failed.kind is EventKind.failed
    assert failed.event_id == f"{fake.sessions[pending.provider_ref]['payment_intent']}:failed"

    expired_request = checkout_request()
    expired = await provider.create_checkout(expired_request)
    fake.expire(expired.provider_ref)
    status = await provider.fetch_status(order_ref(expired_request, expired.provider_ref))
    assert (status.kind, status.event_id) == (EventKind.expired, f"{expired.provider_ref}:expired")


async def test_fetch_status_without_or_with_an_unknown_session_is_an_error(
    provider: StripeProvider,
) -> None:
    request = checkout_request()
    with pytest.raises(ProviderError):
        await provider.fetch_status(order_ref(request, None))
    with pytest.raises(ProviderError) as missing:
        await provider.fetch_status(order_ref(request, "cs_test_nope"))
    assert not missing.value.transient
    assert "No such checkout.session" in str(missing.value)


async def test_expire_checkout_closes_an_open_session_and_leaves_closed_ones(
    provider: StripeProvider, fake: FakeStripe
) -> None:
    request = checkout_request()
    checkout = await provider.create_checkout(request)
    ref = order_ref(request, checkout.provider_ref)
    await provider.expire_checkout(ref)
    assert fake.sessions[checkout.provider_ref]["status"] == "expired"
    await provider.expire_checkout(ref)  # already expired: nothing to do

    paid_request = checkout_request()
    paid = await provider.create_checkout(paid_request)
    fake.pay(paid.provider_ref)
    await provider.expire_checkout(order_ref(paid_request, paid.provider_ref))
    assert fake.sessions[paid.provider_ref]["status"] == "complete"

    await provider.expire_checkout(order_ref(request, None))  # never opened


# Refunds --------------------------------------------------------------------------------------


async def paid_order(provider: StripeProvider, fake: FakeStripe, **kwargs: Any) -> OrderRef:
    request = checkout_request(**kwargs)
    checkout = await provider.create_checkout(request)
    fake.pay(checkout.provider_ref)
    return order_ref(
        request, checkout.provider_ref, fake.sessions[checkout.provider_ref]["payment_intent"]
    )


async def test_partial_then_full_refund(provider: StripeProvider, fake: FakeStripe) -> None:
    order = await paid_order(provider, fake)
    partial = await provider.refund(order, amount=500, reason="asked nicely", idempotency_key="r1")
    assert partial.succeeded
    (call,) = fake.calls("POST", "/v1/refunds")
    assert call.params == {
        "payment_intent": order.payment_ref,
        "amount": "500",
        "metadata": {"order_id": str(order.order_id), "reason": "asked nicely"},
    }
    assert call.headers["idempotency-key"] == f"refund:{order.order_id}:r1"
    assert fake.refunds[partial.refund_ref]["amount"] == 500

    rest = await provider.refund(order, amount=1499, reason="course closed", idempotency_key="r2")
    assert rest.succeeded and rest.refund_ref != partial.refund_ref
    charge = next(iter(fake.charges.values()))
    assert (charge["amount_refunded"], charge["refunded"]) == (1999, True)
    refunded = await parse(provider, fake, fake.latest_event("charge.refunded"))
    assert (refunded.kind, refunded.refunded_total) == (EventKind.refunded, 1999)


async def test_a_retried_refund_refunds_once(provider: StripeProvider, fake: FakeStripe) -> None:
    order = await paid_order(provider, fake)
    first = await provider.refund(order, amount=700, reason="r", idempotency_key="same")
    again = await provider.refund(order, amount=700, reason="r", idempotency_key="same")
    assert again == first
    assert len(fake.refunds) == 1
    assert next(iter(fake.charges.values()))["amount_refunded"] == 700


async def test_a_refund_finds_the_payment_through_the_session(
    provider: StripeProvider, fake: FakeStripe
) -> None:
    order = await paid_order(provider, fake)
    without_payment = OrderRef(
        order.order_id, order.provider_ref, None, order.amount, order.currency
    )
    result = await provider.refund(without_payment, amount=1999, reason="", idempotency_key="k")
    assert fake.refunds[result.refund_ref]["payment_intent"] == order.payment_ref


async def test_a_pending_refund_is_not_yet_succeeded(
    provider: StripeProvider, fake: FakeStripe
) -> None:
    order = await paid_order(provider, fake)
    fake.next_refund_status = "pending"
    result = await provider.refund(order, amount=100, reason="", idempotency_key="k")
    assert not result.succeeded


async def test_refunds_stripe_refuses_are_errors(
    provider: StripeProvider, fake: FakeStripe
) -> None:
    order = await paid_order(provider, fake)
    with pytest.raises(ProviderError) as too_much:
        await provider.refund(order, amount=5000, reason="", idempotency_key="k1")
    assert not too_much.value.transient
    assert "amount_too_large" in str(too_much.value)

    kwd = await paid_order(provider, fake, amount=12340, currency="KWD")
    with pytest.raises(ProviderError):  # not a whole 10 fils: refused before Stripe
        await provider.refund(kwd, amount=1235, reason="", idempotency_key="k2")
    assert len(fake.calls("POST", "/v1/refunds")) == 1


# Errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error_type", "transient"),
    [
        (500, "api_error", True),
        (503, "api_error", True),
        (429, "invalid_request_error", True),
        (409, "invalid_request_error", True),
        (400, "invalid_request_error", False),
        (402, "card_error", False),
        (403, "invalid_request_error", False),
    ],
)
async def test_stripe_errors_become_provider_errors(
    provider: StripeProvider, fake: FakeStripe, status: int, error_type: str, transient: bool
) -> None:
    fake.fail_next(status, "Stripe says no", type=error_type, code="some_code")
    with pytest.raises(ProviderError) as failed:
        await provider.create_checkout(checkout_request())
    assert failed.value.transient is transient
    assert "Stripe says no" in str(failed.value)
    assert fake.sessions == {}


async def test_a_wrong_key_is_not_transient(fake: FakeStripe) -> None:
    provider = StripeProvider(stripe_settings(fake, stripe_secret_key=SecretStr("sk_test_wrong")))
    with pytest.raises(ProviderError) as refused:
        await provider.create_checkout(checkout_request())
    assert not refused.value.transient
    assert "Invalid API Key" in str(refused.value)


async def test_connection_failures_are_transient(fake: FakeStripe) -> None:
    provider = StripeProvider(stripe_settings(fake))
    fake.hang_up_next()
    with pytest.raises(ProviderError) as dropped:
        await provider.create_checkout(checkout_request())
    assert dropped.value.transient

    with FakeStripe() as gone:
        address = gone.base_url
    unreachable = StripeProvider(stripe_settings(fake, stripe_api_base=address))
    with pytest.raises(ProviderError) as refused:
        await unreachable.refund(
            order_ref(checkout_request(), "cs_x", "pi_x"),
            amount=1,
            reason="",
            idempotency_key="k",
        )
    assert refused.value.transient


async def test_hostile_signature_headers_and_bodies_are_invalid_not_errors(
    provider: StripeProvider,
) -> None:
    """Anyone can post to the webhook URL: a non-ASCII signature (the SDK's compare
    raises TypeError on it) or a body nested past the parser's depth is refused as an
    untrusted webhook, never a crash."""
    deep = b"[" * 100_000 + b"]" * 100_000
    for body, signature in (
        (b'{"id": "evt_1"}', "t=1,v1=\u00e9\u00e9"),
        (deep, stripe_signature(deep)),
    ):
        with pytest.raises(InvalidWebhook):
            await provider.parse_webhook(body, {"stripe-signature": signature}, {})
