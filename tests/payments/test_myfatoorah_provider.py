"""The MyFatoorah adapter against a MyFatoorah-shaped fake over real HTTP: invoice
creation with exact decimal amounts, webhook signatures (v1 and v2) verified and then
confirmed with GetPaymentStatus, normalisation, status, refunds and errors. No
database."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal

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
)
from lyceum.payments.providers.myfatoorah import (
    MyFatoorahProvider,
    myfatoorah_configured,
    sign,
    signed_string,
)
from tests.support.payment_fakes.myfatoorah import FakeMyFatoorah

TOKEN = "mf-test-token"
SECRET = "mf-webhook-secret"


@pytest.fixture
def fake() -> Iterator[FakeMyFatoorah]:
    with FakeMyFatoorah(
        TOKEN, SECRET, rates={"SAR": Decimal("0.082"), "EGP": Decimal("0.0063")}
    ) as server:
        yield server


def settings_for(fake: FakeMyFatoorah, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "myfatoorah_api_key": SecretStr(TOKEN),
        "myfatoorah_webhook_secret": SecretStr(SECRET),
        "myfatoorah_base_url": fake.base_url,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
async def provider(fake: FakeMyFatoorah) -> AsyncIterator[MyFatoorahProvider]:
    async with httpx.AsyncClient(timeout=5) as http:
        yield MyFatoorahProvider(settings_for(fake), http)


def checkout_request(
    amount: int, currency: str, order_id: uuid.UUID | None = None
) -> CheckoutRequest:
    return CheckoutRequest(
        order_id=order_id or uuid.uuid4(),
        amount=amount,
        currency=currency,
        description="Arabic calligraphy",
        customer_email="learner@example.org",
        customer_name="Layla Learner",
        customer_phone=None,
        success_url="https://lyceum.example/orders/1?paid=1",
        cancel_url="https://lyceum.example/orders/1?canceled=1",
        webhook_url="https://lyceum.example/api/v1/payments/webhooks/myfatoorah",
        expires_at=dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.UTC),
        idempotency_key="order-key-1",
    )


def order_ref(order_id: uuid.UUID, invoice_id: str | None, amount: int, currency: str) -> OrderRef:
    return OrderRef(
        order_id=order_id,
        provider_ref=invoice_id,
        payment_ref=None,
        amount=amount,
        currency=currency,
    )


async def test_configured_only_with_token_and_webhook_secret(fake: FakeMyFatoorah) -> None:
    assert myfatoorah_configured(settings_for(fake))
    assert not myfatoorah_configured(settings_for(fake, myfatoorah_webhook_secret=None))
    assert not myfatoorah_configured(settings_for(fake, myfatoorah_api_key=None))


async def test_currencies_setting_reads_a_comma_list_and_refuses_non_iso_codes(
    fake: FakeMyFatoorah,
) -> None:
    settings = settings_for(fake, myfatoorah_currencies="kwd, SAR")
    assert settings.myfatoorah_currencies == ["KWD", "SAR"]
    assert MyFatoorahProvider(settings).supports("SAR")
    assert not MyFatoorahProvider(settings).supports("USD")
    with pytest.raises(ValueError, match="XYZ"):
        settings_for(fake, myfatoorah_currencies="KWD,XYZ")


@pytest.mark.parametrize(
    ("amount", "currency", "wire"),
    [
        (12345, "KWD", "12.345"),
        (12000, "KWD", "12.000"),
        (1999, "SAR", "19.99"),
        (50000, "EGP", "500.00"),
    ],
)
async def test_checkout_sends_the_amount_as_an_exact_decimal_in_the_currency(
    fake: FakeMyFatoorah, provider: MyFatoorahProvider, amount: int, currency: str, wire: str
) -> None:
    request = checkout_request(amount, currency)
    checkout = await provider.create_checkout(request)

    raw = fake.raw_bodies("SendPayment")[-1]
    assert f'"InvoiceValue":{wire}'.encode() in raw  # a JSON number, written exactly
    sent = fake.bodies("SendPayment")[-1]
    assert sent["NotificationOption"] == "LNK"
    assert sent["DisplayCurrencyIso"] == currency
    assert sent["CustomerName"] == "Layla Learner"
    assert sent["CustomerEmail"] == "learner@example.org"
    assert sent["CustomerReference"] == str(request.order_id)
    assert sent["CallBackUrl"] == request.success_url
    assert sent["ErrorUrl"] == request.cancel_url
    assert sent["ExpiryDate"] == "2026-12-05T12:00:00Z"
    invoice = fake.invoice(checkout.provider_ref)
    assert invoice.display_value == Decimal(wire)
    assert checkout.url.endswith(f"/ie/{invoice.reference}")


async def test_checkout_in_an_unconfigured_currency_is_refused(
    provider: MyFatoorahProvider,
) -> None:
    with pytest.raises(ProviderError, match="USD"):
        await provider.create_checkout(checkout_request(1000, "USD"))


async def test_validation_errors_name_the_field(
    fake: FakeMyFatoorah, provider: MyFatoorahProvider
) -> None:
    request = checkout_request(1000, "KWD")
    bad = CheckoutRequest(**{**request.__dict__, "customer_name": ""})
    with pytest.raises(ProviderError) as caught:
        await provider.create_checkout(bad)
    assert "CustomerName" in str(caught.value)
    assert not caught.value.transient


@pytest.mark.parametrize(
    ("status", "transient"), [(500, True), (503, True), (429, True), (400, False)]
)
async def test_http_errors_are_provider_errors(
    fake: FakeMyFatoorah, provider: MyFatoorahProvider, status: int, transient: bool
) -> None:
    fake.fail_next(
        status, {"IsSuccess": False, "Message": "Oops", "ValidationErrors": None, "Data": None}
    )
    with pytest.raises(ProviderError) as caught:
        await provider.create_checkout(checkout_request(1000, "KWD"))
    assert caught.value.transient is transient


async def test_a_wrong_token_is_a_provider_error(fake: FakeMyFatoorah) -> None:
    provider = MyFatoorahProvider(settings_for(fake, myfatoorah_api_key=SecretStr("wrong")))
    with pytest.raises(ProviderError, match="401"):
        await provider.create_checkout(checkout_request(1000, "KWD"))


async def test_is_success_false_with_200_is_a_provider_error(
    fake: FakeMyFatoorah, provider: MyFatoorahProvider
) -> None:
    fake.fail_next(
        200, {"IsSuccess": False, "Message": "Something", "ValidationErrors": None, "Data": None}
    )
    with pytest.raises(ProviderError, match="Something"):
        await provider.create_checkout(checkout_request(1000, "KWD"))


async def test_timeouts_hang_ups_and_unreachable_servers_are_transient(
    fake: FakeMyFatoorah,
) -> None:
    unreachable = MyFatoorahProvider(settings_for(fake, myfatoorah_base_url="http://127.0.0.1:9"))
    with pytest.raises(ProviderError) as caught:
        await unreachable.create_checkout(checkout_request(1000, "KWD"))
    assert caught.value.transient

    async with httpx.AsyncClient(timeout=0.5) as http:
        provider = MyFatoorahProvider(settings_for(fake), http)
        fake.delay_next(2)
        with pytest.raises(ProviderError, match="timed out") as caught:
            await provider.fetch_status(order_ref(uuid.uuid4(), "600001", 1000, "KWD"))
        assert caught.value.transient
        fake.hang_up_next()
        with pytest.raises(ProviderError) as caught:
            await provider.create_checkout(checkout_request(1000, "KWD"))
        assert caught.value.transient


# Webhooks ----------------------------------------------------------------------------


def lower(headers: dict[str, str]) -> dict[str, str]:
    return {key.lower(): value for key, value in headers.items()}


async def paid_invoice(
    fake: FakeMyFatoorah, provider: MyFatoorahProvider, amount: int = 12345, currency: str = "KWD"
) -> tuple[uuid.UUID, str]:
    order_id = uuid.uuid4()
    checkout = await provider.create_checkout(checkout_request(amount, currency, order_id))
    fake.pay(checkout.provider_ref)
    return order_id, checkout.provider_ref


def test_the_signed_string_matches_the_documented_examples() -> None:
    v2 = {
        "Event": {"Code": 1, "Name": "PAYMENT_STATUS_CHANGED", "Reference": "WH-626519"},
        "Data": {
            "Invoice": {
                "Id": "6409988",
                "Status": "PAID",
                "ExternalIdentifier": "asdqwd-f13sdf-fasjkz",
            },
            "Transaction": {"Status": "SUCCESS", "PaymentId": "07076409988323998875"},
        },
    }
    assert signed_string(v2) == (
        "Invoice.Id=6409988,Invoice.Status=PAID,Transaction.Status=SUCCESS,"
        "Transaction.PaymentId=07076409988323998875,Invoice.ExternalIdentifier=asdqwd-f13sdf-fasjkz"
    )
    refund_v2 = {
        "Event": {"Code": 2, "Name": "REFUND_STATUS_CHANGED"},
        "Data": {
            "Refund": {"Id": "111147", "Status": "REFUNDED"},
            "Amount": {"ValueInBaseCurrency": "30"},
            "ReferencedInvoice": {"Id": "5620277"},
        },
    }
    assert signed_string(refund_v2) == (
        "Refund.Id=111147,Refund.Status=REFUNDED,Amount.ValueInBaseCurrency=30,ReferencedInvoice.Id=5620277"
    )
    refund_v1 = json.loads(
        '{"EventType":2,"Event":"RefundStatusChanged","DateTime":"04032021211057","Data":{'
        '"RefundId":2840,"RefundReference":"2021000019","CreatedDate":"04032021210447",'
        '"RefundStatus":"REFUNDED","Amount":"40","Comments":"Test Webhook","InvoiceId":"585757",'
        '"GatewayReference":{"PaymentId":"100202109798688317"}}}'
    )
    assert signed_string(refund_v1) == (
        "Amount=40,Comments=Test Webhook,CreatedDate=04032021210447,InvoiceId=585757,"
        "RefundId=2840,RefundReference=2021000019,RefundStatus=REFUNDED"
    )
    deposit_v1 = json.loads(
        '{"EventType":3,"Event":"BalanceTransferred","Data":{"DepositReference":"2021000002",'
        '"DepositedAmount":"6917.282","NumberOfTransactions":"24","DepositFor":"VENDOR","SupplierCode":null}}'
    )
    assert signed_string(deposit_v1) == (
        "DepositedAmount=6917.282,DepositFor=VENDOR,DepositReference=2021000002,"
        "NumberOfTransactions=24,SupplierCode="
    )


@pytest.mark.parametrize("version", [1, 2])
async def test_a_signed_paid_webhook_is_confirmed_and_normalised(
    fake: FakeMyFatoorah, provider: MyFatoorahProvider, version: int
) -> None:
    order_id, invoice_id = await paid_invoice(fake, provider)
    body, headers, query = fake.signed_webhook(invoice_id=invoice_id, version=version)
    calls_before = len(fake.bodies("GetPaymentStatus"))

    [event] = await provider.parse_webhook(body, lower(headers), query)

    payment_id = fake.invoice(invoice_id).transactions[-1].payment_id
    assert event.kind is EventKind.paid
    assert event.order_id == order_id
    assert event.provider_ref == invoice_id
    assert event.payment_ref == payment_id
    assert (event.amount, event.currency) == (12345, "KWD")
    assert event.event_id == f"{payment_id}:paid"
    # Confirmed with GetPaymentStatus, by the payment's id.
    confirm = fake.bodies("GetPaymentStatus")[calls_before:]
    assert confirm == [{"Key": payment_id, "KeyType": "PaymentId"}]
    # A redelivery is the same event.
    [again] = await provider.parse_webhook(body, lower(headers), query)
    assert again.event_id == event.event_id


async def test_a_sar_invoice_reports_the_display_amount(
    fake: FakeMyFatoorah, provider: MyFatoorahProvider
) -> None:
    _, invoice_id = await paid_invoice(fake, provider, 1999, "SAR")
    body, headers, query = fake.signed_webhook(invoice_id=invoice_id)
    [event] = await provider.parse_webhook(body, lower(headers), query)
    assert (event.kind, event.amount, event.currency) == (EventKind.paid, 1999, "SAR")


async def test_a_webhook_claiming_success_for_an_unpaid_invoice_is_not_paid(
    fake: FakeMyFatoorah, provider: MyFatoorahProvider
) -> None:
    checkout = await provider.create_checkout(checkout_request(12345, "KWD"))
    fake.start_attempt(checkout.provider_ref)
    body, headers, query = fake.signed_webhook(
        invoice_id=checkout.provider_ref, transaction_status="SUCCESS"
    )
    [event] = await provider.parse_webhook(body, lower(headers), query)
    assert event.kind is EventKind.ignored
    assert event.amount is None
    assert "SUCCESS" in event.summary and "Pending" in event.summary


async def test_a_declined_attempt_is_failed(
    fake: FakeMyFatoorah, provider: MyFatoorahProvider
) -> None:
    order_id = uuid.uuid4()
    checkout = await provider.create_checkout(checkout_request(12345, "KWD", order_id))
    declined = fake.decline(checkout.provider_ref)
    body, headers, query = fake.signed_webhook(invoice_id=checkout.provider_ref, version=1)
    [event] = await provider.parse_webhook(body, lower(headers), query)
    assert event.kind is EventKind.failed
    assert event.order_id == order_id
    assert event.event_id == f"{declined.payment_id}:failed"
    assert "not Captured" in event.summary


async def test_an_expired_invoice_is_expired(
    fake: FakeMyFatoorah, provider: MyFatoorahProvider
) -> None:
    checkout = await provider.create_checkout(checkout_request(12345, "KWD"))
    fake.decline(checkout.provider_ref)
    fake.expire(checkout.provider_ref)
    body, headers, query = fake.signed_webhook(invoice_id=checkout.provider_ref)
    [event] = await provider.parse_webhook(body, lower(headers), query)
    assert event.kind is EventKind.expired


@pytest.mark.parametrize("version", [1, 2])
async def test_forged_tampered_and_unsigned_webhooks_are_refused(
    fake: FakeMyFatoorah, provider: MyFatoorahProvider, version: int
) -> None:
    _, invoice_id = await paid_invoice(fake, provider)
    calls_before = len(fake.requests)
    forged = fake.signed_webhook(invoice_id=invoice_id, version=version, secret="not-the-secret")
    field = "PaymentId" if version == 1 else "Transaction.PaymentId"
    tampered = fake.signed_webhook(invoice_id=invoice_id, version=version, overrides={field: "999"})
    body, headers, query = fake.signed_webhook(invoice_id=invoice_id, version=version)
    for bad_body, bad_headers, bad_query in (
        forged,
        tampered,
        (body, {"Content-Type": "application/json"}, query),
        (b"not json", headers, query),
    ):
        with pytest.raises(InvalidWebhook):
            await provider.parse_webhook(bad_body, lower(bad_headers), bad_query)
    # Nothing was asked of MyFatoorah for an untrusted webhook.
    assert len(fake.requests) == calls_before


async def test_without_a_webhook_secret_nothing_is_trusted(fake: FakeMyFatoorah) -> None:
    provider = MyFatoorahProvider(settings_for(fake, myfatoorah_webhook_secret=None))
    with pytest.raises(InvalidWebhook):
        await provider.parse_webhook(b"{}", {"myfatoorah-signature": sign("", "")}, {})


async def test_an_undocumented_v2_event_cannot_be_verified(provider: MyFatoorahProvider) -> None:
    event = {"Event": {"Code": 9, "Name": "SOMETHING_NEW"}, "Data": {"X": "1"}}
    body = json.dumps(event).encode()
    with pytest.raises(InvalidWebhook):
        await provider.parse_webhook(body, {"myfatoorah-signature": sign(SECRET, "X=1")}, {})


async def test_other_verified_events_are_ignored_with_a_stable_id(
    provider: MyFatoorahProvider,
) -> None:
    event = {
        "EventType": 3,
        "Event": "BalanceTransferred",
        "DateTime": "04032021212041",
        "Data": {
            "DepositReference": "2021000002",
            "DepositedAmount": "6917.282",
            "NumberOfTransactions": "24",
        },
    }
    headers = {"myfatoorah-signature": sign(SECRET, signed_string(event))}
    [first] = await provider.parse_webhook(json.dumps(event).encode(), headers, {})
    [second] = await provider.parse_webhook(json.dumps(event).encode(), headers, {})
    assert first.kind is EventKind.ignored
    assert first.event_id == second.event_id


@pytest.mark.parametrize("version", [1, 2])
async def test_a_refund_webhook_reports_the_refunded_total(
    fake: FakeMyFatoorah, provider: MyFatoorahProvider, version: int
) -> None:
    order_id, invoice_id = await paid_invoice(fake, provider)
    first = fake.refund_in_portal(invoice_id, "2.000")
    second = fake.refund_in_portal(invoice_id, "3.345")
    body, headers, query = fake.signed_webhook(refund_id=second.refund_id, version=version)
    [event] = await provider.parse_webhook(body, lower(headers), query)
    assert event.kind is EventKind.refunded
    assert event.order_id == order_id
    assert event.provider_ref == invoice_id
    assert event.refund_ref == str(second.refund_id)
    assert (event.refunded_total, event.currency) == (5345, "KWD")
    assert event.event_id == f"refund:{second.refund_id}:refunded"
    assert first.refund_id != second.refund_id


async def test_a_refund_webhook_the_status_does_not_confirm_is_ignored(
    fake: FakeMyFatoorah, provider: MyFatoorahProvider
) -> None:
    _, invoice_id = await paid_invoice(fake, provider)
    result = await provider.refund(
        order_ref(uuid.uuid4(), invoice_id, 12345, "KWD"),
        amount=12345,
        reason="r",
        idempotency_key="k1",
    )
    refund = fake.refunds[int(result.refund_ref)]
    refund.status = "Refunded"  # what the webhook will claim
    body, headers, query = fake.signed_webhook(refund_id=refund.refund_id)
    refund.status = "Pending"  # what GetRefundStatus still says
    [event] = await provider.parse_webhook(body, lower(headers), query)
    assert event.kind is EventKind.ignored


# Status and refunds ------------------------------------------------------------------


async def test_fetch_status_follows_the_invoice(
    fake: FakeMyFatoorah, provider: MyFatoorahProvider
) -> None:
    order_id = uuid.uuid4()
    checkout = await provider.create_checkout(checkout_request(12345, "KWD", order_id))
    ref = order_ref(order_id, checkout.provider_ref, 12345, "KWD")
    assert (await provider.fetch_status(ref)).kind is None
    fake.decline(checkout.provider_ref)
    assert (await provider.fetch_status(ref)).kind is None  # may still be paid
    paid = fake.pay(checkout.provider_ref)
    status = await provider.fetch_status(ref)
    assert status.kind is EventKind.paid
    assert (status.payment_ref, status.amount, status.currency) == (paid.payment_id, 12345, "KWD")
    assert status.event_id == f"{paid.payment_id}:paid"
    assert fake.bodies("GetPaymentStatus")[-1] == {
        "Key": checkout.provider_ref,
        "KeyType": "InvoiceId",
    }
    # Without the invoice id, by Lyceum's order id.
    by_reference = await provider.fetch_status(order_ref(order_id, None, 12345, "KWD"))
    assert by_reference.kind is EventKind.paid
    assert fake.bodies("GetPaymentStatus")[-1] == {
        "Key": str(order_id),
        "KeyType": "CustomerReference",
    }


async def test_fetch_status_of_an_expired_invoice(
    fake: FakeMyFatoorah, provider: MyFatoorahProvider
) -> None:
    order_id = uuid.uuid4()
    checkout = await provider.create_checkout(checkout_request(12345, "KWD", order_id))
    fake.expire(checkout.provider_ref)
    status = await provider.fetch_status(order_ref(order_id, checkout.provider_ref, 12345, "KWD"))
    assert status.kind is EventKind.expired


async def test_fetch_status_of_an_unknown_invoice_is_a_provider_error(
    provider: MyFatoorahProvider,
) -> None:
    with pytest.raises(ProviderError, match="No data"):
        await provider.fetch_status(order_ref(uuid.uuid4(), "1", 100, "KWD"))


async def test_expire_checkout_asks_nothing(
    fake: FakeMyFatoorah, provider: MyFatoorahProvider
) -> None:
    checkout = await provider.create_checkout(checkout_request(12345, "KWD"))
    before = len(fake.requests)
    await provider.expire_checkout(order_ref(uuid.uuid4(), checkout.provider_ref, 12345, "KWD"))
    assert len(fake.requests) == before


async def test_full_and_partial_refunds(fake: FakeMyFatoorah, provider: MyFatoorahProvider) -> None:
    order_id, invoice_id = await paid_invoice(fake, provider)
    ref = order_ref(order_id, invoice_id, 12345, "KWD")

    partial = await provider.refund(
        ref, amount=2345, reason="changed mind", idempotency_key="refund-1"
    )
    assert not partial.succeeded  # pending MyFatoorah's review
    raw = fake.raw_bodies("MakeRefund")[-1]
    assert b'"Amount":2.345' in raw
    sent = fake.bodies("MakeRefund")[-1]
    assert sent["KeyType"] == "InvoiceId" and sent["Key"] == invoice_id
    assert sent["Comment"] == "changed mind"
    assert sent["ExternalIdentifier"] == "refund-1"
    assert sent["ServiceChargeOnCustomer"] is False

    rest = await provider.refund(ref, amount=10000, reason="the rest", idempotency_key="refund-2")
    assert rest.refund_ref != partial.refund_ref
    assert [r.amount for r in fake.refunds.values()] == [Decimal("2.345"), Decimal("10.000")]

    # More than is left is refused by MyFatoorah.
    with pytest.raises(ProviderError, match="exceeds"):
        await provider.refund(ref, amount=1, reason="too much", idempotency_key="refund-3")


async def test_a_refund_retried_with_the_same_key_is_not_requested_twice(
    fake: FakeMyFatoorah, provider: MyFatoorahProvider
) -> None:
    order_id, invoice_id = await paid_invoice(fake, provider)
    ref = order_ref(order_id, invoice_id, 12345, "KWD")
    first = await provider.refund(ref, amount=12345, reason="r", idempotency_key="same")
    second = await provider.refund(ref, amount=12345, reason="r", idempotency_key="same")
    assert first.refund_ref == second.refund_ref
    assert len(fake.refunds) == 1
    fake.settle_refund(first.refund_ref)
    settled = await provider.refund(ref, amount=12345, reason="r", idempotency_key="same")
    assert settled.succeeded


async def test_refunding_an_unpaid_invoice_is_refused(
    fake: FakeMyFatoorah, provider: MyFatoorahProvider
) -> None:
    checkout = await provider.create_checkout(checkout_request(12345, "KWD"))
    with pytest.raises(ProviderError, match="not paid"):
        await provider.refund(
            order_ref(uuid.uuid4(), checkout.provider_ref, 12345, "KWD"),
            amount=100,
            reason="r",
            idempotency_key="k",
        )


async def test_hostile_signatures_and_bodies_are_invalid_not_errors(
    provider: MyFatoorahProvider,
) -> None:
    """A non-ASCII signature or a body nested past the parser's depth is an untrusted
    webhook, never a crash."""
    for body, signature in (
        (b'{"EventType": 1, "Data": {}}', "\u00e9t\u00e9"),
        (b"[" * 100_000 + b"]" * 100_000, "c2lnbmF0dXJl"),
    ):
        with pytest.raises(InvalidWebhook):
            await provider.parse_webhook(body, {"myfatoorah-signature": signature}, {})
