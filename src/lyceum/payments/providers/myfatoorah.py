"""MyFatoorah (API v2) as a payment provider: an invoice link for the hosted payment
page, webhooks verified by their documented signature and then confirmed with
GetPaymentStatus, refunds through MakeRefund.

What this follows, from MyFatoorah's documentation (docs.myfatoorah.com):

- Every call: `POST {MYFATOORAH_BASE_URL}/v2/<Endpoint>` with `Authorization: Bearer
  <token>` and a JSON body; every answer is the common envelope `{IsSuccess, Message,
  ValidationErrors: [{Name, Error}], Data}` (docs/response-model).
- Checkout: `SendPayment` with `NotificationOption: "LNK"` (the invoice link comes
  back in the answer, nothing is mailed or texted) answers `Data.InvoiceId` and
  `Data.InvoiceURL`, the hosted payment page (docs/send-payment, docs/invoice-link).
  `InvoiceValue` is the amount as a decimal in `DisplayCurrencyIso` ("2.500"): written
  from the order's minor units by `lyceum.payments.money`, exact, no float on the way.
  `CustomerReference` carries Lyceum's order id; `ExpiryDate` closes the invoice.
- Status: `GetPaymentStatus` with `Key` and `KeyType` (`InvoiceId`, `PaymentId`,
  `CustomerReference`) answers `Data.InvoiceStatus` ("Paid" once one transaction
  succeeded, else "Pending"), `InvoiceDisplayValue` ("12,345.000 KD": the invoice value
  in the currency it was displayed in; `InvoiceValue` is in the account's base currency),
  `CustomerReference` and `InvoiceTransactions[]` (`PaymentId`, `TransactionStatus`:
  InProgress, Succss [sic], Failed, Authorize, Canceled; `Error`) (docs/payment-inquiry,
  docs/get-payment-status). A webhook is trusted for nothing but "look again": the
  documentation recommends relying on GetPaymentStatus, and the v2 signature does not
  cover the amounts.
- Refunds: `MakeRefund` with `KeyType: "InvoiceId"`, `Key`, `Amount` (in the account's
  base currency: the request has no currency), `Comment`, `ServiceChargeOnCustomer` and
  `ExternalIdentifier` (echoed by the refund webhook and GetRefundStatus); a refund
  request is reviewed by MyFatoorah's finance team, so it starts pending
  (docs/refund, docs/make-refund). `GetRefundStatus` (`KeyType` InvoiceId, RefundId or
  RefundReference) lists an invoice's refunds with `RefundStatus` Refunded, Canceled or
  Pending, `Amount` and `BaseCurrency` (docs/getrefundstatus). MakeRefund has no
  idempotency key, so Lyceum's key goes in `ExternalIdentifier` and a refund already
  requested under it is found through GetRefundStatus before asking again.
- There is no documented call that cancels an unpaid invoice (UpdatePaymentStatus
  captures or releases an authorisation, CancelToken forgets a saved card), so
  `expire_checkout` does nothing: the invoice closes at the ExpiryDate Lyceum set.

Webhooks (docs/webhook, docs/webhook-signature): header `MyFatoorah-Signature`, the
base64 of HMAC-SHA256 keyed with the webhook secret key (UTF-8) over a string of
`Key=value` pairs joined by commas, nulls written as empty strings. Which pairs depends
on the webhook version chosen in the portal, and both are accepted:

- v1 (`{"EventType": 1, "Event": "TransactionsStatusChanged", "DateTime", "Data": {...}}`,
  docs/webhook-v1, docs/transaction-data-model, docs/refund-data-model): every property
  of `Data` except the nested objects (`GatewayReference`, `KycFeedback`, documented as
  left out), ordered alphabetically without regard to case, as the documentation's
  sample code does (`uksort($data, 'strcasecmp')`, docs/webhook-sample-code). Values are
  written as the JSON has them.
- v2 (`{"Event": {"Code", "Name", "Reference", ...}, "Data": {...}}`, docs/webhook-v2):
  the fields each event's page lists, in that order: PAYMENT_STATUS_CHANGED
  `Invoice.Id, Invoice.Status, Transaction.Status, Transaction.PaymentId,
  Invoice.ExternalIdentifier` (docs/webhook-v2-payment-status-data-model),
  REFUND_STATUS_CHANGED `Refund.Id, Refund.Status, Amount.ValueInBaseCurrency,
  ReferencedInvoice.Id` (docs/webhook-v2-refund-data-model), BALANCE_TRANSFERRED
  `Deposit.Reference, Deposit.ValueInBaseCurrency, Deposit.NumberOfTransactions`. An
  event whose signed fields are not documented cannot be verified and is refused.

Normalised events and their ids (unique per happening, the same on a redelivery, which
carries the same fields; webhook v1 has no event id at all):

- a payment status change is confirmed with GetPaymentStatus by its PaymentId: the
  invoice Paid -> `paid` ("<PaymentId>:paid", the id `fetch_status` gives too, so a
  reconciled payment and its late webhook are one event), the amount from
  `InvoiceDisplayValue` and the currency the webhook names as the display currency
  (`DisplayCurrency`, signed in v1; `Amount.DisplayCurrency` in v2), the order from the
  confirmed `CustomerReference`; the attempt Failed or Canceled -> `failed`
  ("<PaymentId>:failed"); the invoice Expired or Canceled -> `expired`; anything else,
  a webhook saying SUCCESS while the invoice is not Paid included -> `ignored`
  ("<PaymentId>:<claimed status>:unconfirmed").
- a refund status change is confirmed with GetRefundStatus on the original invoice:
  Refunded -> `refunded` ("refund:<RefundId>:refunded") with `refunded_total` the sum of
  the invoice's Refunded refunds, in the account's base currency; Canceled -> `ignored`.
- any other verified event -> `ignored`, its id a digest of the signed string.

MyFatoorah's signatures carry no timestamp (v2's `Event.CreationDate` is not signed), so
there is no staleness to check: a replayed webhook is harmless because nothing is taken
from it but ids to look up, and its event id is one Lyceum has already recorded.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

from lyceum.config import Settings
from lyceum.kit.security import constant_time_equal
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

SIGNATURE_HEADER = "myfatoorah-signature"
# The documentation advises a timeout of at least 30 seconds for GetPaymentStatus.
TIMEOUT_SECONDS = 30.0

# Webhook v2: the fields each event signs, in the documented order.
V2_SIGNED_FIELDS: dict[str, tuple[str, ...]] = {
    "PAYMENT_STATUS_CHANGED": (
        "Invoice.Id",
        "Invoice.Status",
        "Transaction.Status",
        "Transaction.PaymentId",
        "Invoice.ExternalIdentifier",
    ),
    "REFUND_STATUS_CHANGED": (
        "Refund.Id",
        "Refund.Status",
        "Amount.ValueInBaseCurrency",
        "ReferencedInvoice.Id",
    ),
    "BALANCE_TRANSFERRED": (
        "Deposit.Reference",
        "Deposit.ValueInBaseCurrency",
        "Deposit.NumberOfTransactions",
    ),
}
V1_PAYMENT_EVENT = "TransactionsStatusChanged"
V1_REFUND_EVENT = "RefundStatusChanged"


def myfatoorah_configured(settings: Settings) -> bool:
    """MyFatoorah is on when both its API token and its webhook secret key are set
    (webhook v2 makes the secret mandatory; Lyceum refuses unsigned webhooks)."""
    return bool(
        settings.myfatoorah_api_key
        and settings.myfatoorah_api_key.get_secret_value()
        and settings.myfatoorah_webhook_secret
        and settings.myfatoorah_webhook_secret.get_secret_value()
    )


def sign(secret: str, signed_string: str) -> str:
    """The `MyFatoorah-Signature` of a signed string: base64(HMAC-SHA256(secret, it))."""
    digest = hmac.new(secret.encode(), signed_string.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def _text(value: object) -> str:
    """A value as the signed string writes it: null as empty, JSON numbers as sent."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _path(data: Mapping[str, Any], dotted: str) -> object:
    node: object = data
    for part in dotted.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def signed_string(event: Mapping[str, Any]) -> str:
    """The string MyFatoorah signs for this webhook body (v1 or v2); InvalidWebhook
    when the body is neither, or names a v2 event whose signed fields are unknown."""
    data = event.get("Data")
    if not isinstance(data, Mapping):
        raise InvalidWebhook("the webhook has no Data object")
    header = event.get("Event")
    if isinstance(header, Mapping):
        name = header.get("Name")
        fields = V2_SIGNED_FIELDS.get(name) if isinstance(name, str) else None
        if fields is None:
            raise InvalidWebhook(f"no documented signature for the v2 event {name!r}")
        return ",".join(f"{field}={_text(_path(data, field))}" for field in fields)
    if "EventType" in event:
        flat = {k: v for k, v in data.items() if not isinstance(v, Mapping | list)}
        ordered = sorted(flat, key=str.lower)
        return ",".join(f"{key}={_text(flat[key])}" for key in ordered)
    raise InvalidWebhook("neither a v1 nor a v2 MyFatoorah webhook")


def _decimal(value: object) -> Decimal:
    try:
        return Decimal(str(value).replace(",", "").strip())
    except InvalidOperation:
        raise ProviderError(f"MyFatoorah sent an amount that is not a number: {value!r}") from None


def _display_amount(data: Mapping[str, Any], currency: str) -> int:
    """The invoice's value in its display currency, minor units: the number in
    `InvoiceDisplayValue` ("12,345.000 KD"), else `InvoiceValue`."""
    display = data.get("InvoiceDisplayValue")
    raw = str(display).split()[0] if isinstance(display, str) and display.strip() else None
    value = _decimal(raw if raw is not None else data.get("InvoiceValue"))
    try:
        return money.from_decimal(value, currency)
    except (ValueError, KeyError) as error:
        raise ProviderError(f"MyFatoorah amount {value} in {currency}: {error}") from None


def _order_id(value: object) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


def _succeeded(transaction: Mapping[str, Any]) -> bool:
    # The documented spelling is "Succss"; the webhook's is "SUCCESS".
    return str(transaction.get("TransactionStatus", "")).lower() in {"succss", "success"}


def _transactions(data: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    found = data.get("InvoiceTransactions")
    return [t for t in found if isinstance(t, Mapping)] if isinstance(found, list) else []


def _invoice_closed(data: Mapping[str, Any]) -> bool:
    return str(data.get("InvoiceStatus", "")).lower() in {"expired", "canceled", "cancelled"}


class MyFatoorahProvider:
    name = "myfatoorah"

    def __init__(self, settings: Settings, http: httpx.AsyncClient | None = None) -> None:
        self._settings = settings
        self._http = http
        self._base = str(settings.myfatoorah_base_url).rstrip("/")
        self._currencies = frozenset(settings.myfatoorah_currencies)

    def supports(self, currency: str) -> bool:
        return currency in self._currencies

    # The API ---------------------------------------------------------------------------

    def _token(self) -> str:
        key = self._settings.myfatoorah_api_key
        if key is None or not key.get_secret_value():
            raise ProviderError("MYFATOORAH_API_KEY is not set")
        return key.get_secret_value()

    async def _call(self, endpoint: str, body: Mapping[str, object]) -> Mapping[str, Any]:
        """POST a v2 endpoint; the envelope's `Data`, or ProviderError (transient for
        timeouts, network failures, 429 and 5xx)."""
        headers = {
            "Authorization": f"Bearer {self._token()}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        url = f"{self._base}/v2/{endpoint}"
        content = _json_body(body)
        try:
            if self._http is not None:
                response = await self._http.post(url, content=content, headers=headers)
            else:
                async with httpx.AsyncClient(timeout=TIMEOUT_SECONDS) as client:
                    response = await client.post(url, content=content, headers=headers)
        except httpx.TimeoutException as error:
            raise ProviderError(
                f"MyFatoorah {endpoint} timed out: {error}", transient=True
            ) from None
        except httpx.HTTPError as error:
            raise ProviderError(f"MyFatoorah {endpoint} failed: {error}", transient=True) from None
        try:
            envelope = json.loads(response.content, parse_float=Decimal)
        except ValueError:
            envelope = None
        if response.status_code == 429 or response.status_code >= 500:
            raise ProviderError(
                f"MyFatoorah {endpoint} answered {response.status_code}", transient=True
            )
        if not isinstance(envelope, Mapping):
            raise ProviderError(
                f"MyFatoorah {endpoint} answered {response.status_code} without a JSON envelope"
            )
        if response.status_code >= 400 or envelope.get("IsSuccess") is not True:
            raise ProviderError(
                f"MyFatoorah {endpoint} refused ({response.status_code}): {_reason(envelope)}"
            )
        data = envelope.get("Data")
        if not isinstance(data, Mapping):
            raise ProviderError(f"MyFatoorah {endpoint} answered no Data")
        return data

    async def _payment_status(self, key: str, key_type: str) -> Mapping[str, Any]:
        return await self._call("GetPaymentStatus", {"Key": key, "KeyType": key_type})

    async def _refunds(self, invoice_id: str) -> list[Mapping[str, Any]]:
        data = await self._call("GetRefundStatus", {"Key": invoice_id, "KeyType": "InvoiceId"})
        found = data.get("RefundStatusResult")
        return [r for r in found if isinstance(r, Mapping)] if isinstance(found, list) else []

    # The protocol ----------------------------------------------------------------------

    async def create_checkout(self, request: CheckoutRequest) -> Checkout:
        if not self.supports(request.currency):
            raise ProviderError(f"MyFatoorah is not set up to charge in {request.currency}")
        body: dict[str, object] = {
            "NotificationOption": "LNK",
            "CustomerName": request.customer_name,
            "CustomerEmail": request.customer_email,
            "InvoiceValue": money.to_decimal(request.amount, request.currency),
            "DisplayCurrencyIso": request.currency,
            "CallBackUrl": request.success_url,
            "ErrorUrl": request.cancel_url,
            "Language": "en",
            "CustomerReference": str(request.order_id),
            "ExpiryDate": request.expires_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        data = await self._call("SendPayment", body)
        invoice_id, url = data.get("InvoiceId"), data.get("InvoiceURL")
        if invoice_id is None or not isinstance(url, str) or not url:
            raise ProviderError("MyFatoorah SendPayment answered no InvoiceId or InvoiceURL")
        return Checkout(provider_ref=str(invoice_id), url=url)

    async def parse_webhook(
        self, body: bytes, headers: Mapping[str, str], query: Mapping[str, str]
    ) -> list[ProviderEvent]:
        secret = self._settings.myfatoorah_webhook_secret
        if secret is None or not secret.get_secret_value():
            raise InvalidWebhook("MYFATOORAH_WEBHOOK_SECRET is not set")
        signature = headers.get(SIGNATURE_HEADER, "").strip()
        if not signature:
            raise InvalidWebhook("no MyFatoorah-Signature header")
        try:
            # Numbers keep the text they were sent with: the signature covers that text.
            event = json.loads(body, parse_float=str)
        except (ValueError, RecursionError):  # not UTF-8, not JSON, or nested too deep
            raise InvalidWebhook("the body is not JSON") from None
        if not isinstance(event, Mapping):
            raise InvalidWebhook("the body is not a JSON object")
        signed = signed_string(event)
        if not constant_time_equal(sign(secret.get_secret_value(), signed), signature):
            raise InvalidWebhook("the MyFatoorah-Signature does not match")
        return [await self._normalise(event, signed)]

    async def _normalise(self, event: Mapping[str, Any], signed: str) -> ProviderEvent:
        data: Mapping[str, Any] = event["Data"]
        header = event.get("Event")
        if isinstance(header, Mapping):  # v2
            name = str(header.get("Name"))
            if name == "PAYMENT_STATUS_CHANGED":
                return await self._payment_event(
                    raw_type=name,
                    invoice_id=_text(_path(data, "Invoice.Id")),
                    payment_id=_text(_path(data, "Transaction.PaymentId")),
                    claimed=_text(_path(data, "Transaction.Status")),
                    currency=_text(_path(data, "Amount.DisplayCurrency")),
                )
            if name == "REFUND_STATUS_CHANGED":
                return await self._refund_event(
                    raw_type=name,
                    refund_id=_text(_path(data, "Refund.Id")),
                    invoice_id=_text(_path(data, "ReferencedInvoice.Id")),
                )
        else:  # v1
            name = str(event.get("Event"))
            if name == V1_PAYMENT_EVENT:
                return await self._payment_event(
                    raw_type=name,
                    invoice_id=_text(data.get("InvoiceId")),
                    payment_id=_text(data.get("PaymentId")),
                    claimed=_text(data.get("TransactionStatus")),
                    currency=_text(data.get("DisplayCurrency")),
                )
            if name == V1_REFUND_EVENT:
                return await self._refund_event(
                    raw_type=name,
                    refund_id=_text(data.get("RefundId")),
                    invoice_id=_text(data.get("InvoiceId")),
                )
        digest = hashlib.sha256(f"{name}|{signed}".encode()).hexdigest()[:32]
        return ProviderEvent(
            event_id=f"event:{name}:{digest}", kind=EventKind.ignored, raw_type=name
        )

    async def _payment_event(
        self, *, raw_type: str, invoice_id: str, payment_id: str, claimed: str, currency: str
    ) -> ProviderEvent:
        if payment_id:
            status = await self._payment_status(payment_id, "PaymentId")
        elif invoice_id:
            status = await self._payment_status(invoice_id, "InvoiceId")
        else:
            raise InvalidWebhook("a payment webhook naming neither invoice nor payment")
        provider_ref = _text(status.get("InvoiceId")) or invoice_id
        order_id = _order_id(status.get("CustomerReference"))
        transactions = _transactions(status)
        mine = next((t for t in transactions if _text(t.get("PaymentId")) == payment_id), None)
        common: dict[str, Any] = {
            "raw_type": raw_type,
            "order_id": order_id,
            "provider_ref": provider_ref,
        }
        if str(status.get("InvoiceStatus", "")).lower() == "paid":
            paid = next((t for t in transactions if _succeeded(t)), mine)
            paid_id = _text(paid.get("PaymentId")) if paid else payment_id
            if not money.is_currency(currency):
                raise ProviderError(f"MyFatoorah named no known display currency: {currency!r}")
            return ProviderEvent(
                event_id=f"{paid_id}:paid",
                kind=EventKind.paid,
                payment_ref=paid_id,
                amount=_display_amount(status, currency),
                currency=currency,
                **common,
            )
        if _invoice_closed(status):
            return ProviderEvent(
                event_id=f"invoice:{provider_ref}:expired",
                kind=EventKind.expired,
                summary=f"invoice {status.get('InvoiceStatus')}",
                **common,
            )
        mine_status = str(mine.get("TransactionStatus", "")).lower() if mine else ""
        if mine is not None and mine_status in {"failed", "canceled", "cancelled"}:
            return ProviderEvent(
                event_id=f"{payment_id}:failed",
                kind=EventKind.failed,
                payment_ref=payment_id,
                summary=_text(mine.get("Error")) or _text(mine.get("ErrorCode")) or mine_status,
                **common,
            )
        return ProviderEvent(
            event_id=f"{payment_id or invoice_id}:{claimed.lower()}:unconfirmed",
            kind=EventKind.ignored,
            payment_ref=payment_id or None,
            summary=(
                f"the webhook said {claimed}; GetPaymentStatus says the invoice is "
                f"{status.get('InvoiceStatus')}"
                + (f" and the attempt {mine.get('TransactionStatus')}" if mine else "")
            ),
            **common,
        )

    async def _refund_event(
        self, *, raw_type: str, refund_id: str, invoice_id: str
    ) -> ProviderEvent:
        if not invoice_id or not refund_id:
            raise InvalidWebhook("a refund webhook naming no refund or invoice")
        refunds = await self._refunds(invoice_id)
        this = next((r for r in refunds if _text(r.get("RefundId")) == refund_id), None)
        status = await self._payment_status(invoice_id, "InvoiceId")
        order_id = _order_id(status.get("CustomerReference"))
        paid = next((t for t in _transactions(status) if _succeeded(t)), None)
        payment_ref = _text(paid.get("PaymentId")) if paid else None
        confirmed = str(this.get("RefundStatus", "")).lower() if this else ""
        if confirmed != "refunded":
            return ProviderEvent(
                event_id=f"refund:{refund_id}:{confirmed or 'unknown'}",
                kind=EventKind.ignored,
                raw_type=raw_type,
                order_id=order_id,
                provider_ref=invoice_id,
                payment_ref=payment_ref,
                refund_ref=refund_id,
                summary=f"GetRefundStatus says the refund is {confirmed or 'unknown'}",
            )
        refunded = [r for r in refunds if str(r.get("RefundStatus", "")).lower() == "refunded"]
        currency = _text(this.get("BaseCurrency") if this else None)
        if not money.is_currency(currency):
            raise ProviderError(f"MyFatoorah named no known base currency: {currency!r}")
        total = sum(
            (money.from_decimal(_decimal(r.get("Amount")), currency) for r in refunded), start=0
        )
        return ProviderEvent(
            event_id=f"refund:{refund_id}:refunded",
            kind=EventKind.refunded,
            raw_type=raw_type,
            order_id=order_id,
            provider_ref=invoice_id,
            payment_ref=payment_ref,
            currency=currency,
            refunded_total=total,
            refund_ref=refund_id,
        )

    async def fetch_status(self, order: OrderRef) -> PaymentStatus:
        if order.provider_ref:
            status = await self._payment_status(order.provider_ref, "InvoiceId")
        else:
            status = await self._payment_status(str(order.order_id), "CustomerReference")
        if str(status.get("InvoiceStatus", "")).lower() == "paid":
            paid = next((t for t in _transactions(status) if _succeeded(t)), None)
            payment_id = _text(paid.get("PaymentId")) if paid else ""
            return PaymentStatus(
                kind=EventKind.paid,
                payment_ref=payment_id or None,
                amount=_display_amount(status, order.currency),
                currency=order.currency,
                event_id=f"{payment_id or 'invoice:' + _text(status.get('InvoiceId'))}:paid",
            )
        if _invoice_closed(status):
            return PaymentStatus(
                kind=EventKind.expired,
                event_id=f"invoice:{_text(status.get('InvoiceId'))}:expired",
            )
        # Pending: failed attempts leave the invoice open to another try until it expires.
        return PaymentStatus(kind=None)

    async def expire_checkout(self, order: OrderRef) -> None:
        """MyFatoorah documents no call that cancels an unpaid invoice; it closes at the
        ExpiryDate the checkout set."""

    async def refund(
        self, order: OrderRef, *, amount: int, reason: str, idempotency_key: str
    ) -> RefundResult:
        if order.provider_ref:
            key, key_type = order.provider_ref, "InvoiceId"
        elif order.payment_ref:
            key, key_type = order.payment_ref, "PaymentId"
        else:
            raise ProviderError("the order has no MyFatoorah invoice or payment to refund")
        if key_type == "InvoiceId":
            for earlier in await self._refunds(key):
                if _text(earlier.get("ExternalIdentifier")) != idempotency_key:
                    continue
                state = str(earlier.get("RefundStatus", "")).lower()
                if state != "canceled":
                    return RefundResult(
                        refund_ref=_text(earlier.get("RefundId")), succeeded=state == "refunded"
                    )
        data = await self._call(
            "MakeRefund",
            {
                "KeyType": key_type,
                "Key": key,
                "Amount": money.to_decimal(amount, order.currency),
                "Comment": reason[:500],
                "ServiceChargeOnCustomer": False,
                "ExternalIdentifier": idempotency_key,
            },
        )
        refund_id = _text(data.get("RefundId"))
        if not refund_id:
            raise ProviderError("MyFatoorah MakeRefund answered no RefundId")
        # Reviewed by MyFatoorah's finance team: settled by the refund webhook.
        return RefundResult(refund_ref=refund_id, succeeded=False)


def _reason(envelope: Mapping[str, Any]) -> str:
    errors = envelope.get("ValidationErrors") or envelope.get("FieldsErrors")
    details: Sequence[Any] = errors if isinstance(errors, list) else []
    named = [f"{e.get('Name')}: {e.get('Error')}" for e in details if isinstance(e, Mapping)]
    message = _text(envelope.get("Message"))
    return "; ".join([message, *named]) if named else message or "no message"


def _json_body(body: Mapping[str, object]) -> bytes:
    """JSON with Decimal amounts written as JSON numbers from their exact text."""

    def encode(value: object) -> str:
        if isinstance(value, Decimal):
            return str(value)
        if isinstance(value, Mapping):
            return (
                "{" + ",".join(f"{json.dumps(str(k))}:{encode(v)}" for k, v in value.items()) + "}"
            )
        if isinstance(value, list):
            return "[" + ",".join(encode(v) for v in value) + "]"
        return json.dumps(value)

    return encode(body).encode()
