"""The Paymob adapter against a fake Paymob speaking the documented HTTP API: the
intention it opens, the callbacks it trusts (and those it refuses), what each callback
means to Lyceum, the inquiry reconciliation asks and refunds."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from lyceum.config import Settings
from lyceum.payments.providers.base import (
    CheckoutRequest,
    EventKind,
    InvalidWebhook,
    OrderRef,
    ProviderError,
)
from lyceum.payments.providers.paymob import (
    PaymobProvider,
    paymob_configured,
    transaction_hmac,
)
from tests.support.payment_fakes.paymob import FakeOrder, FakePaymob


@pytest.fixture(scope="module")
def fake() -> Iterator[FakePaymob]:
    with FakePaymob(currencies=("EGP", "OMR")) as server:
        yield server


def paymob_settings(fake: FakePaymob, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "paymob_secret_key": fake.secret_key,
        "paymob_public_key": fake.public_key,
        "paymob_hmac_secret": fake.hmac_secret,
        "paymob_api_key": fake.api_key,
        "paymob_integration_ids": list(fake.integration_ids),
        "paymob_base_url": fake.base_url,
        "paymob_currencies": ["EGP", "OMR"],
        **overrides,
    }
    return Settings(_env_file=None, **values)


@pytest.fixture
async def provider(fake: FakePaymob) -> AsyncIterator[PaymobProvider]:
    async with httpx.AsyncClient() as http:
        yield PaymobProvider(paymob_settings(fake), http)


def checkout_request(
    amount: int = 125_050, currency: str = "EGP", **overrides: Any
) -> CheckoutRequest:
    order_id = uuid.uuid4()
    values: dict[str, Any] = {
        "order_id": order_id,
        "amount": amount,
        "currency": currency,
        "description": "Arabic calligraphy for beginners",
        "customer_email": "salma@example.org",
        "customer_name": "Salma Abdel Fattah",
        "customer_phone": "+201001234567",
        "success_url": f"https://lyceum.test/orders/{order_id}/done",
        "cancel_url": f"https://lyceum.test/orders/{order_id}/canceled",
        "webhook_url": "https://lyceum.test/api/v1/payments/webhooks/paymob",
        "expires_at": dt.datetime.now(dt.UTC) + dt.timedelta(minutes=30),
        "idempotency_key": str(order_id),
        **overrides,
    }
    return CheckoutRequest(**values)


async def open_checkout(
    provider: PaymobProvider, fake: FakePaymob, **overrides: Any
) -> tuple[CheckoutRequest, FakeOrder]:
    request = checkout_request(**overrides)
    checkout = await provider.create_checkout(request)
    secret = urllib.parse.parse_qs(urllib.parse.urlsplit(checkout.url).query)["clientSecret"][0]
    order = fake.order_for(secret)
    assert checkout.provider_ref == str(order.id)
    return request, order


def ref(request: CheckoutRequest, order: FakeOrder, payment_ref: str | None = None) -> OrderRef:
    return OrderRef(request.order_id, str(order.id), payment_ref, request.amount, request.currency)


# Configuration and checkout ----------------------------------------------------------


def test_paymob_is_configured_only_with_every_key_and_an_integration(fake: FakePaymob) -> None:
    assert paymob_configured(paymob_settings(fake))
    assert not paymob_configured(paymob_settings(fake, paymob_integration_ids=[]))
    assert not paymob_configured(paymob_settings(fake, paymob_hmac_secret=None))
    assert not paymob_configured(paymob_settings(fake, paymob_api_key=None))


async def test_supports_only_the_configured_currencies(provider: PaymobProvider) -> None:
    assert provider.supports("EGP") and provider.supports("omr")
    assert not provider.supports("USD")
    with pytest.raises(ProviderError):
        await provider.create_checkout(checkout_request(currency="USD"))


async def test_the_intention_carries_the_order_amount_and_urls(
    provider: PaymobProvider, fake: FakePaymob
) -> None:
    request = checkout_request(amount=125_050)
    checkout = await provider.create_checkout(request)

    method, route, headers, body = fake.requests[-1]
    assert (method, route) == ("POST", "/v1/intention/")
    assert headers["authorization"] == f"Token {fake.secret_key}"
    assert body["amount"] == 125_050  # 1250.50 EGP in piasters
    assert body["currency"] == "EGP"
    assert body["payment_methods"] == list(fake.integration_ids)
    assert body["special_reference"] == str(request.order_id)
    assert body["notification_url"] == request.webhook_url
    assert body["redirection_url"] == request.success_url
    assert 1700 <= body["expiration"] <= 1800
    assert body["billing_data"]["first_name"] == "Salma Abdel"
    assert body["billing_data"]["last_name"] == "Fattah"
    assert body["billing_data"]["phone_number"] == "+201001234567"
    assert body["items"] == [
        {
            "name": "Arabic calligraphy for beginners",
            "amount": 125_050,
            "description": "Arabic calligraphy for beginners",
            "quantity": 1,
        }
    ]

    url = urllib.parse.urlsplit(checkout.url)
    assert f"{url.scheme}://{url.netloc}" == fake.base_url
    assert url.path == "/unifiedcheckout/"
    query = urllib.parse.parse_qs(url.query)
    order = fake.order_for(query["clientSecret"][0])
    assert query["publicKey"] == [fake.public_key]
    assert checkout.provider_ref == str(order.id)
    assert order.merchant_order_id == str(request.order_id)


async def test_three_decimal_currencies_go_out_in_their_own_minor_unit(
    provider: PaymobProvider, fake: FakePaymob
) -> None:
    await provider.create_checkout(checkout_request(amount=12_345, currency="OMR"))
    assert fake.requests[-1][3]["amount"] == 12_345  # 12.345 OMR in baisa


async def test_a_buyer_without_phone_or_surname_still_makes_valid_billing_data(
    provider: PaymobProvider, fake: FakePaymob
) -> None:
    await provider.create_checkout(checkout_request(customer_name="Salma", customer_phone=None))
    billing = fake.requests[-1][3]["billing_data"]
    assert (billing["first_name"], billing["last_name"], billing["phone_number"]) == (
        "Salma",
        "NA",
        "NA",
    )


async def test_paymob_errors_become_provider_errors(fake: FakePaymob) -> None:
    async with httpx.AsyncClient() as http:
        unknown_integration = PaymobProvider(
            paymob_settings(fake, paymob_integration_ids=[999]), http
        )
        with pytest.raises(ProviderError) as refused:
            await unknown_integration.create_checkout(checkout_request())
        assert not refused.value.transient
        assert "Integration ID" in str(refused.value)

        wrong_key = PaymobProvider(paymob_settings(fake, paymob_secret_key="egy_sk_test_x"), http)
        with pytest.raises(ProviderError) as unauthorised:
            await wrong_key.create_checkout(checkout_request())
        assert not unauthorised.value.transient

        provider = PaymobProvider(paymob_settings(fake), http)
        for status in (500, 502, 429):
            fake.fail_next(status)
            with pytest.raises(ProviderError) as outage:
                await provider.create_checkout(checkout_request())
            assert outage.value.transient

    async with httpx.AsyncClient(timeout=0.5) as http:
        nowhere = PaymobProvider(paymob_settings(fake, paymob_base_url="http://127.0.0.1:9"), http)
        with pytest.raises(ProviderError) as unreachable:
            await nowhere.create_checkout(checkout_request())
        assert unreachable.value.transient


async def test_the_same_order_cannot_open_two_intentions(
    provider: PaymobProvider, fake: FakePaymob
) -> None:
    request = checkout_request()
    await provider.create_checkout(request)
    with pytest.raises(ProviderError) as duplicate:
        await provider.create_checkout(request)
    assert "special_reference" in str(duplicate.value)


# Callbacks: trust ---------------------------------------------------------------------


async def test_a_signed_callback_is_accepted(provider: PaymobProvider, fake: FakePaymob) -> None:
    _, order = await open_checkout(provider, fake)
    body, headers, query = fake.signed_webhook(fake.pay(order))
    [event] = await provider.parse_webhook(body, headers, query)
    assert event.kind is EventKind.paid


async def test_a_callback_without_hmac_is_refused(
    provider: PaymobProvider, fake: FakePaymob
) -> None:
    _, order = await open_checkout(provider, fake)
    body, headers, _ = fake.signed_webhook(fake.pay(order))
    with pytest.raises(InvalidWebhook):
        await provider.parse_webhook(body, headers, {})


async def test_a_callback_signed_with_another_secret_is_refused(
    provider: PaymobProvider, fake: FakePaymob
) -> None:
    _, order = await open_checkout(provider, fake)
    transaction = fake.pay(order)
    with FakePaymob(hmac_secret="not-the-merchant's-secret") as forger:
        body, headers, query = forger.signed_webhook(transaction)
    with pytest.raises(InvalidWebhook):
        await provider.parse_webhook(body, headers, query)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("amount_cents",), 1),
        (("success",), True),
        (("pending",), True),
        (("is_refunded",), True),
        (("order", "id"), 1),
        (("id",), 42),
        (("source_data", "pan"), "0000"),
    ],
)
async def test_a_tampered_signed_field_is_refused(
    provider: PaymobProvider, fake: FakePaymob, path: tuple[str, ...], value: object
) -> None:
    _, order = await open_checkout(provider, fake)
    transaction = fake.decline(order) if value is True and path == ("success",) else fake.pay(order)
    body, headers, query = fake.signed_webhook(transaction)
    payload = json.loads(body)
    target = payload["obj"]
    for key in path[:-1]:
        target = target[key]
    if target[path[-1]] == value:
        value = "changed"
    target[path[-1]] = value
    with pytest.raises(InvalidWebhook):
        await provider.parse_webhook(json.dumps(payload).encode(), headers, query)


async def test_a_callback_missing_a_signed_field_or_not_json_is_refused(
    provider: PaymobProvider, fake: FakePaymob
) -> None:
    _, order = await open_checkout(provider, fake)
    body, headers, query = fake.signed_webhook(fake.pay(order))
    payload = json.loads(body)
    del payload["obj"]["source_data"]
    for unreadable in (json.dumps(payload).encode(), b"{not json", b"[]", b'{"type": "TOKEN"}'):
        with pytest.raises(InvalidWebhook):
            await provider.parse_webhook(unreadable, headers, query)


async def test_the_hmac_matches_paymobs_documented_sample_string(fake: FakePaymob) -> None:
    """The concatenation of Paymob's documented sample callback, field by field."""
    sample = {
        "amount_cents": 100000,
        "created_at": "2024-06-13T11:33:44.592345",
        "currency": "EGP",
        "error_occured": False,
        "has_parent_transaction": False,
        "id": 192036465,
        "integration_id": 4097558,
        "is_3d_secure": True,
        "is_auth": False,
        "is_capture": False,
        "is_refunded": False,
        "is_standalone_payment": True,
        "is_voided": False,
        "order": {"id": 217503754},
        "owner": 302852,
        "pending": False,
        "source_data": {"pan": "2346", "sub_type": "MasterCard", "type": "card"},
        "success": True,
    }
    documented = (
        "1000002024-06-13T11:33:44.592345EGPfalsefalse1920364654097558truefalsefalsefalse"
        "truefalse217503754302852false2346MasterCardcardtrue"
    )
    expected = hmac.new(b"secret", documented.encode(), hashlib.sha512).hexdigest()
    assert transaction_hmac("secret", sample) == expected


# Callbacks: meaning ---------------------------------------------------------------------


async def test_a_successful_payment_is_paid(provider: PaymobProvider, fake: FakePaymob) -> None:
    request, order = await open_checkout(provider, fake)
    transaction = fake.pay(order)
    [event] = await provider.parse_webhook(*fake.signed_webhook(transaction))
    assert event.kind is EventKind.paid
    assert event.order_id is None  # merchant_order_id is unsigned: the order is order.id
    assert event.provider_ref == str(order.id)
    assert event.payment_ref == str(transaction["id"])
    assert (event.amount, event.currency) == (request.amount, "EGP")
    assert event.event_id == f"{transaction['id']}:paid"
    assert event.raw_type == "TRANSACTION"


async def test_a_declined_payment_fails_with_its_reason(
    provider: PaymobProvider, fake: FakePaymob
) -> None:
    _, order = await open_checkout(provider, fake)
    transaction = fake.decline(order)
    [event] = await provider.parse_webhook(*fake.signed_webhook(transaction))
    assert event.kind is EventKind.failed
    assert (event.order_id, event.provider_ref) == (None, str(order.id))
    assert event.amount is None
    assert event.summary == "Do not honour"
    assert event.event_id == f"{transaction['id']}:failed"


async def test_a_pending_payment_is_recorded_but_not_acted_on(
    provider: PaymobProvider, fake: FakePaymob
) -> None:
    _, order = await open_checkout(provider, fake)
    [event] = await provider.parse_webhook(*fake.signed_webhook(fake.leave_pending(order)))
    assert event.kind is EventKind.ignored


async def test_refunds_from_the_dashboard_are_refunds_with_the_total_so_far(
    provider: PaymobProvider, fake: FakePaymob
) -> None:
    _, order = await open_checkout(provider, fake, amount=50_000)
    payment = fake.pay(order)
    [paid] = await provider.parse_webhook(*fake.signed_webhook(payment))

    first = fake.refund_in_dashboard(payment["id"], 20_000)
    [partial] = await provider.parse_webhook(*fake.signed_webhook(first))
    assert partial.kind is EventKind.refunded
    assert partial.refunded_total == 20_000
    assert (partial.order_id, partial.provider_ref) == (None, str(order.id))
    assert partial.payment_ref == str(payment["id"])

    second = fake.refund_in_dashboard(payment["id"], 30_000)
    [full] = await provider.parse_webhook(*fake.signed_webhook(second))
    assert full.refunded_total == 50_000
    # One payment, three happenings: three events; a redelivery repeats its own id.
    assert len({paid.event_id, partial.event_id, full.event_id}) == 3
    [again] = await provider.parse_webhook(*fake.signed_webhook(second))
    assert again.event_id == full.event_id


async def test_a_refund_transaction_of_its_own_counts_every_refund_of_the_payment(
    provider: PaymobProvider, fake: FakePaymob
) -> None:
    _, order = await open_checkout(provider, fake, amount=50_000)
    payment = fake.pay(order)
    fake.refund_in_dashboard(payment["id"], 20_000)
    fake.refund_in_dashboard(payment["id"], 10_000)
    child = fake.transaction(order.transactions[-1]["id"])
    assert child["has_parent_transaction"] and child["is_refund"]
    assert child["amount_cents"] == 10_000
    [event] = await provider.parse_webhook(*fake.signed_webhook(child))
    assert event.kind is EventKind.refunded
    assert event.refunded_total == 30_000  # the payment's total, asked for by id
    assert (event.order_id, event.provider_ref) == (None, str(order.id))
    assert event.payment_ref == str(payment["id"])
    assert event.refund_ref == str(child["id"])
    assert event.event_id == f"{child['id']}:refund"
    # The refund itself by its signed id, then the payment the API says it refunds.
    asked = [(r[0], r[1]) for r in fake.requests[-2:]]
    assert asked == [
        ("GET", f"/api/acceptance/transactions/{child['id']}"),
        ("GET", f"/api/acceptance/transactions/{payment['id']}"),
    ]

    fake.fail_next(502)
    with pytest.raises(ProviderError) as unconfirmed:  # Paymob will call back again
        await provider.parse_webhook(*fake.signed_webhook(child))
    assert unconfirmed.value.transient


# Callbacks: unsigned fields decide nothing ----------------------------------------------


def edited(
    fake: FakePaymob, transaction: dict[str, Any], **changes: Any
) -> tuple[bytes, dict[str, str], dict[str, str]]:
    """A genuine signed callback with unsigned fields rewritten; its hmac still matches."""
    body, headers, query = fake.signed_webhook(transaction)
    payload = json.loads(body)
    for name, value in changes.items():
        if name == "merchant_order_id":
            payload["obj"]["order"]["merchant_order_id"] = value
        else:
            payload["obj"][name] = value
    return json.dumps(payload).encode(), headers, query


async def test_an_edited_merchant_order_id_does_not_name_another_order(
    provider: PaymobProvider, fake: FakePaymob
) -> None:
    _, mine = await open_checkout(provider, fake)
    victim, theirs = await open_checkout(provider, fake)
    payment = fake.pay(mine)
    [event] = await provider.parse_webhook(
        *edited(fake, payment, merchant_order_id=str(victim.order_id))
    )
    assert event.order_id is None
    assert event.provider_ref == str(mine.id) != str(theirs.id)
    assert event.event_id == f"{payment['id']}:paid"

    fake.refund_in_dashboard(payment["id"], 1_000)
    child = fake.transaction(mine.transactions[-1]["id"])
    [refund] = await provider.parse_webhook(
        *edited(fake, child, merchant_order_id=str(victim.order_id))
    )
    assert (refund.order_id, refund.provider_ref) == (None, str(mine.id))


@pytest.mark.parametrize(
    "changes",
    [
        {"is_refund": True},
        {"is_void": True},
        {"refunded_amount_cents": 125_050},
        {"is_refund": True, "refunded_amount_cents": 125_050, "parent_transaction": 1},
    ],
)
async def test_a_payment_callback_made_to_look_like_a_refund_stays_the_payment(
    provider: PaymobProvider, fake: FakePaymob, changes: dict[str, Any]
) -> None:
    _, order = await open_checkout(provider, fake)
    payment = fake.pay(order)
    [genuine] = await provider.parse_webhook(*fake.signed_webhook(payment))
    [forged] = await provider.parse_webhook(*edited(fake, payment, **changes))
    assert forged.kind is EventKind.paid and forged.refunded_total is None
    assert forged.event_id == genuine.event_id  # the core sees a duplicate


async def test_a_refund_callback_takes_its_total_and_payment_from_the_api_only(
    provider: PaymobProvider, fake: FakePaymob
) -> None:
    _, order = await open_checkout(provider, fake, amount=50_000)
    payment = fake.pay(order)
    _, other_order = await open_checkout(provider, fake, amount=50_000)
    other = fake.pay(other_order)
    fake.refund_in_dashboard(payment["id"], 10_000)
    child = fake.transaction(order.transactions[-1]["id"])
    [genuine] = await provider.parse_webhook(*fake.signed_webhook(child))
    assert (genuine.refunded_total, genuine.payment_ref) == (10_000, str(payment["id"]))
    for changes in (
        {"refunded_amount_cents": 50_000},
        {"parent_transaction": other["id"]},
        {"parent_transaction": None, "refunded_amount_cents": 50_000, "is_refund": False},
        {"is_void": True},
    ):
        [forged] = await provider.parse_webhook(*edited(fake, child, **changes))
        assert forged.kind is EventKind.refunded
        assert forged.refunded_total == 10_000
        assert forged.payment_ref == str(payment["id"])
        assert forged.provider_ref == str(order.id)
        assert forged.event_id == genuine.event_id
    assert fake.transaction(other["id"])["refunded_amount_cents"] == 0


async def test_a_refunded_payment_callback_takes_its_total_from_the_api(
    provider: PaymobProvider, fake: FakePaymob
) -> None:
    _, order = await open_checkout(provider, fake, amount=50_000)
    payment = fake.pay(order)
    refunded = fake.refund_in_dashboard(payment["id"], 20_000)
    [genuine] = await provider.parse_webhook(*fake.signed_webhook(refunded))
    assert genuine.event_id == f"{payment['id']}:refunded:20000"
    for total in (50_000, 20_001, 1, 0):
        [forged] = await provider.parse_webhook(
            *edited(fake, refunded, refunded_amount_cents=total)
        )
        assert forged.refunded_total == 20_000
        assert forged.event_id == genuine.event_id
    asked = fake.requests[-1]
    assert (asked[0], asked[1]) == ("GET", f"/api/acceptance/transactions/{payment['id']}")


async def test_a_callback_for_a_transaction_of_another_order_is_refused(
    provider: PaymobProvider, fake: FakePaymob
) -> None:
    """The API's answer for the signed id must name the signed order.id."""
    _, order = await open_checkout(provider, fake)
    payment = fake.refund_in_dashboard(fake.pay(order)["id"], 100)
    await provider.parse_webhook(*fake.signed_webhook(payment))  # the auth token, fetched
    fake.fail_next(200, {**fake.transaction(payment["id"]), "order": {"id": 1}})
    with pytest.raises(InvalidWebhook):
        await provider.parse_webhook(*fake.signed_webhook(payment))


# Reconciliation and refunds ----------------------------------------------------------------


async def test_fetch_status_follows_the_payment(provider: PaymobProvider, fake: FakePaymob) -> None:
    request, order = await open_checkout(provider, fake)
    calls_before = len(fake.requests)
    assert (await provider.fetch_status(ref(request, order))).kind is None

    fake.leave_pending(order)
    assert (await provider.fetch_status(ref(request, order))).kind is None

    transaction = fake.pay(order)
    status = await provider.fetch_status(ref(request, order))
    assert status.kind is EventKind.paid
    assert status.payment_ref == str(transaction["id"])
    assert (status.amount, status.currency) == (request.amount, "EGP")
    # The id a later callback for the same payment carries.
    [event] = await provider.parse_webhook(*fake.signed_webhook(transaction))
    assert status.event_id == event.event_id

    fake.refund_in_dashboard(transaction["id"], request.amount)
    refunded = await provider.fetch_status(ref(request, order))
    assert refunded.kind is EventKind.refunded
    assert refunded.amount == request.amount

    calls = fake.requests[calls_before:]
    inquiry = [r for r in calls if r[1] == "/api/ecommerce/orders/transaction_inquiry"]
    assert inquiry[-1][3] == {"order_id": order.id}
    assert inquiry[-1][2]["authorization"].startswith("Bearer ")
    # One auth token, reused.
    assert len([r for r in calls if r[1] == "/api/auth/tokens"]) == 1


async def test_fetch_status_of_a_declined_payment_and_by_merchant_order_id(
    provider: PaymobProvider, fake: FakePaymob
) -> None:
    request, order = await open_checkout(provider, fake)
    fake.decline(order)
    without_checkout_ref = OrderRef(request.order_id, None, None, request.amount, "EGP")
    status = await provider.fetch_status(without_checkout_ref)
    assert status.kind is EventKind.failed
    assert fake.requests[-1][3] == {"merchant_order_id": str(request.order_id)}


async def test_fetch_status_with_a_wrong_api_key_is_a_provider_error(fake: FakePaymob) -> None:
    async with httpx.AsyncClient() as http:
        provider = PaymobProvider(paymob_settings(fake, paymob_api_key="wrong"), http)
        with pytest.raises(ProviderError) as refused:
            await provider.fetch_status(OrderRef(uuid.uuid4(), "1", None, 100, "EGP"))
    assert not refused.value.transient


async def test_refund_in_full_and_in_parts(provider: PaymobProvider, fake: FakePaymob) -> None:
    request, order = await open_checkout(provider, fake, amount=90_000)
    payment = fake.pay(order)
    paid = ref(request, order, str(payment["id"]))

    part = await provider.refund(paid, amount=30_000, reason="requested", idempotency_key="r1")
    assert part.succeeded
    _, route, headers, body = fake.requests[-1]
    assert route == "/api/acceptance/void_refund/refund"
    assert headers["authorization"] == f"Token {fake.secret_key}"
    assert body == {"transaction_id": payment["id"], "amount_cents": 30_000}
    assert fake.transaction(payment["id"])["refunded_amount_cents"] == 30_000

    rest = await provider.refund(paid, amount=60_000, reason="requested", idempotency_key="r2")
    assert rest.succeeded and rest.refund_ref != part.refund_ref
    after = fake.transaction(payment["id"])
    assert after["is_refunded"] and after["refunded_amount_cents"] == 90_000

    with pytest.raises(ProviderError) as too_much:
        await provider.refund(paid, amount=1, reason="requested", idempotency_key="r3")
    assert not too_much.value.transient


async def test_refund_needs_a_payment_and_reports_outages(
    provider: PaymobProvider, fake: FakePaymob
) -> None:
    request, order = await open_checkout(provider, fake)
    with pytest.raises(ProviderError):
        await provider.refund(ref(request, order), amount=1, reason="", idempotency_key="k")
    payment = fake.pay(order)
    fake.fail_next(503)
    with pytest.raises(ProviderError) as outage:
        await provider.refund(
            ref(request, order, str(payment["id"])), amount=1, reason="", idempotency_key="k"
        )
    assert outage.value.transient


async def test_expiring_a_checkout_is_a_no_op(provider: PaymobProvider, fake: FakePaymob) -> None:
    request, order = await open_checkout(provider, fake)
    calls = len(fake.requests)
    await provider.expire_checkout(ref(request, order))
    assert len(fake.requests) == calls


async def test_hostile_hmacs_and_bodies_are_invalid_not_errors(provider: PaymobProvider) -> None:
    """A non-ASCII `hmac` or a body nested past the parser's depth is an untrusted
    callback, never a crash."""
    for body, hmac_value in (
        (b'{"type": "TRANSACTION", "obj": {}}', "\u00e9t\u00e9"),
        (b"[" * 100_000 + b"]" * 100_000, "00"),
    ):
        with pytest.raises(InvalidWebhook):
            await provider.parse_webhook(body, {}, {"hmac": hmac_value})
