"""A fake MyFatoorah (API v2) over real HTTP on a loopback port, written from
MyFatoorah's documentation (docs.myfatoorah.com), not from Lyceum's adapter:

- `POST /v2/SendPayment`, `/v2/GetPaymentStatus`, `/v2/MakeRefund`,
  `/v2/GetRefundStatus` behind `Authorization: Bearer <token>` (401 without it), every
  answer in the documented envelope `{IsSuccess, Message, ValidationErrors: [{Name,
  Error}], Data}`, invalid requests answered 400 with the offending fields named;
- invoices with state: created Pending, "Paid" once a transaction succeeds (spelled
  "Succss" as the documentation shows), transactions InProgress / Succss / Failed;
  the account has one base currency (`InvoiceValue`, refunds) and an invoice is shown in
  its `DisplayCurrencyIso` (`InvoiceDisplayValue`, "12,345.000 KD");
- refunds created Pending (MyFatoorah's finance team reviews them) unless
  `auto_refund`; the portal's actions as methods: `pay`, `decline`, `expire`,
  `refund_in_portal`, `settle_refund`;
- webhooks built and signed exactly as MyFatoorah does (docs/webhook-signature): v1
  (all `Data` properties but nested objects, ordered alphabetically ignoring case) or
  v2 (the fields each event documents, in order), `Key=value` joined by commas,
  HMAC-SHA256 with the webhook secret key, base64, in the `MyFatoorah-Signature` header:
  `signed_webhook(...) -> (body, headers, query)` and `send_webhook(url, ...)`.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import itertools
import json
import time
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx
from iso4217 import Currency

from tests.support.channel_fakes import Answer, _FakeServer, _json

# How MyFatoorah labels amounts in InvoiceDisplayValue and transactions.
LABELS = {"KWD": "KD", "SAR": "SR"}
NOTIFICATION_OPTIONS = {"EML", "SMS", "LNK", "ALL"}


def _exponent(code: str) -> int:
    for currency in Currency:
        if currency.code == code and currency.exponent is not None:
            return int(currency.exponent)
    raise KeyError(code)


def _shown(value: Decimal, currency: str) -> str:
    places = _exponent(currency)
    return f"{value:,.{places}f}"


def _sign(secret: str, text: str) -> str:
    return base64.b64encode(
        hmac.new(secret.encode(), text.encode(), hashlib.sha256).digest()
    ).decode()


def _text(value: object) -> str:
    return "" if value is None else str(value)


@dataclass
class Transaction:
    payment_id: str
    status: str  # InProgress, Succss, Failed, Canceled
    gateway: str = "KNET"
    error: str | None = None
    error_code: str = ""
    at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))


@dataclass
class Refund:
    refund_id: int
    reference: str
    invoice_id: int
    amount: Decimal  # base currency
    comment: str
    external_identifier: str | None
    status: str = "Pending"  # Pending, Refunded, Canceled
    at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))


@dataclass
class Invoice:
    invoice_id: int
    reference: str
    display_value: Decimal
    display_currency: str
    base_value: Decimal
    customer_name: str
    customer_email: str | None
    customer_reference: str | None
    callback_url: str | None
    error_url: str | None
    expiry: str | None
    request: dict[str, Any]
    status: str = "Pending"  # Pending, Paid, Expired
    transactions: list[Transaction] = field(default_factory=list)
    created: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))


class FakeMyFatoorah(_FakeServer):
    """MyFatoorah's v2 API for one vendor account (token, base currency, webhook key)."""

    def __init__(
        self,
        token: str,
        webhook_secret: str,
        *,
        base_currency: str = "KWD",
        rates: dict[str, Decimal] | None = None,
        auto_refund: bool = False,
    ) -> None:
        super().__init__()
        self.token = token
        self.webhook_secret = webhook_secret
        self.base_currency = base_currency
        # Base-currency units per display-currency unit, for invoices shown in another.
        self.rates = dict(rates or {})
        self.auto_refund = auto_refund
        self.invoices: dict[int, Invoice] = {}
        self.refunds: dict[int, Refund] = {}
        self.requests: list[tuple[str, bytes]] = []  # (endpoint, raw body) as received
        self.failures: list[tuple[int, bytes]] = []
        self.delays: list[float] = []
        self.hang_ups = 0
        self._invoice_ids = itertools.count(600_001)
        self._refund_ids = itertools.count(2_801)
        self._payment_ids = itertools.count(100_202_106_359_084_001)

    # Test controls ---------------------------------------------------------------------

    def fail_next(self, status: int, body: Any = None) -> None:
        """The next API call answers this status and JSON body (or no body)."""
        with self.lock:
            self.failures.append((status, b"" if body is None else json.dumps(body).encode()))

    def delay_next(self, seconds: float) -> None:
        """The next API call is answered only after `seconds` (a client times out)."""
        with self.lock:
            self.delays.append(seconds)

    def hang_up_next(self) -> None:
        """The next API call gets its connection closed without an answer."""
        with self.lock:
            self.hang_ups += 1

    def bodies(self, endpoint: str) -> list[dict[str, Any]]:
        return [json.loads(raw) for name, raw in self.requests if name == endpoint]

    def raw_bodies(self, endpoint: str) -> list[bytes]:
        return [raw for name, raw in self.requests if name == endpoint]

    def invoice(self, invoice_id: int | str) -> Invoice:
        return self.invoices[int(invoice_id)]

    # The portal and the payer ----------------------------------------------------------

    def pay(self, invoice_id: int | str, *, gateway: str = "KNET") -> Transaction:
        """The customer pays the invoice: a successful transaction, the invoice Paid."""
        with self.lock:
            invoice = self.invoice(invoice_id)
            transaction = Transaction(str(next(self._payment_ids)), "Succss", gateway)
            invoice.transactions.append(transaction)
            invoice.status = "Paid"
            return transaction

    def decline(
        self, invoice_id: int | str, *, error: str = "Transaction not Captured!"
    ) -> Transaction:
        """A failed attempt (MF002, declined by the issuer): the invoice stays Pending."""
        with self.lock:
            invoice = self.invoice(invoice_id)
            transaction = Transaction(
                str(next(self._payment_ids)), "Failed", "VISA/MASTER", error, "MF002"
            )
            invoice.transactions.append(transaction)
            return transaction

    def start_attempt(self, invoice_id: int | str) -> Transaction:
        """The customer opened the payment page: an InProgress transaction."""
        with self.lock:
            transaction = Transaction(str(next(self._payment_ids)), "InProgress")
            self.invoice(invoice_id).transactions.append(transaction)
            return transaction

    def expire(self, invoice_id: int | str) -> None:
        with self.lock:
            self.invoice(invoice_id).status = "Expired"

    def refund_in_portal(self, invoice_id: int | str, amount: Decimal | str) -> Refund:
        """A refund made in the portal and executed at once."""
        with self.lock:
            refund = self._new_refund(self.invoice(invoice_id), Decimal(amount), "portal", None)
            refund.status = "Refunded"
            return refund

    def settle_refund(self, refund_id: int | str, status: str = "Refunded") -> Refund:
        with self.lock:
            refund = self.refunds[int(refund_id)]
            refund.status = status
            return refund

    # Webhooks --------------------------------------------------------------------------

    def signed_webhook(
        self,
        *,
        invoice_id: int | str | None = None,
        refund_id: int | str | None = None,
        version: int = 2,
        transaction: Transaction | None = None,
        transaction_status: str | None = None,
        secret: str | None = None,
        overrides: dict[str, Any] | None = None,
    ) -> tuple[bytes, dict[str, str], dict[str, str]]:
        """The webhook MyFatoorah sends for the invoice's latest transaction (or
        `transaction`), or for a refund: body, headers, query. `transaction_status`
        claims another status than the fake's; `overrides` replaces Data fields after
        signing (a tampered body); `secret` signs with another key (a forgery)."""
        with self.lock:
            if refund_id is not None:
                event = self._refund_event(self.refunds[int(refund_id)], version)
            else:
                assert invoice_id is not None
                invoice = self.invoice(invoice_id)
                chosen = transaction or (invoice.transactions[-1] if invoice.transactions else None)
                assert chosen is not None, "no transaction to report"
                event = self._payment_event(invoice, chosen, version, transaction_status)
        signature = _sign(secret or self.webhook_secret, self.signed_string(event))
        for path, value in (overrides or {}).items():
            node = event["Data"]
            *parents, last = path.split(".")
            for part in parents:
                node = node[part]
            node[last] = value
        body = json.dumps(event).encode()
        headers = {"Content-Type": "application/json", "MyFatoorah-Signature": signature}
        return body, headers, {}

    def send_webhook(self, url: str, **kwargs: Any) -> int:
        """POST the signed webhook to `url`; the HTTP status it got."""
        body, headers, _ = self.signed_webhook(**kwargs)
        return httpx.post(url, content=body, headers=headers, timeout=30).status_code

    @staticmethod
    def signed_string(event: dict[str, Any]) -> str:
        data = event["Data"]
        if isinstance(event.get("Event"), dict):
            fields = {
                "PAYMENT_STATUS_CHANGED": [
                    "Invoice.Id",
                    "Invoice.Status",
                    "Transaction.Status",
                    "Transaction.PaymentId",
                    "Invoice.ExternalIdentifier",
                ],
                "REFUND_STATUS_CHANGED": [
                    "Refund.Id",
                    "Refund.Status",
                    "Amount.ValueInBaseCurrency",
                    "ReferencedInvoice.Id",
                ],
            }[event["Event"]["Name"]]
            parts = []
            for name in fields:
                node: Any = data
                for part in name.split("."):
                    node = node.get(part) if isinstance(node, dict) else None
                parts.append(f"{name}={_text(node)}")
            return ",".join(parts)
        # v1: drop the nested models (GatewayReference), order keys like strcasecmp.
        flat = {k: v for k, v in data.items() if not isinstance(v, dict | list)}
        return ",".join(f"{k}={_text(flat[k])}" for k in sorted(flat, key=str.lower))

    def _payment_event(
        self, invoice: Invoice, transaction: Transaction, version: int, claimed: str | None
    ) -> dict[str, Any]:
        status = claimed or (
            "SUCCESS" if transaction.status == "Succss" else transaction.status.upper()
        )
        when = transaction.at
        base = _shown(invoice.base_value, self.base_currency).replace(",", "")
        display = _shown(invoice.display_value, invoice.display_currency).replace(",", "")
        if version == 1:
            return {
                "EventType": 1,
                "Event": "TransactionsStatusChanged",
                "DateTime": when.strftime("%d%m%Y%H%M%S"),
                "CountryIsoCode": "KWT",
                "Data": {
                    "InvoiceId": invoice.invoice_id,
                    "InvoiceReference": invoice.reference,
                    "CreatedDate": invoice.created.strftime("%d%m%Y%H%M%S"),
                    "CustomerReference": invoice.customer_reference,
                    "CustomerName": invoice.customer_name,
                    "CustomerMobile": "",
                    "CustomerEmail": invoice.customer_email,
                    "TransactionStatus": status,
                    "PaymentMethod": transaction.gateway,
                    "UserDefinedField": None,
                    "ReferenceId": f"R{transaction.payment_id[-9:]}",
                    "TrackId": f"{when:%d-%m-%Y}_{transaction.payment_id[-6:]}",
                    "PaymentId": transaction.payment_id,
                    "AuthorizationId": "B68413",
                    "InvoiceValueInBaseCurrency": base,
                    "BaseCurrency": self.base_currency,
                    "InvoiceValueInDisplayCurreny": display,
                    "DisplayCurrency": invoice.display_currency,
                    "InvoiceValueInPayCurrency": display,
                    "PayCurrency": invoice.display_currency,
                },
            }
        return {
            "Event": {
                "Code": 1,
                "Name": "PAYMENT_STATUS_CHANGED",
                "CountryIsoCode": "KWT",
                "CreationDate": when.strftime("%Y-%m-%dT%H:%M:%S.%f0Z"),
                "Reference": f"WH-{transaction.payment_id[-6:]}",
            },
            "Data": {
                "Invoice": {
                    "Id": str(invoice.invoice_id),
                    "Status": invoice.status.upper(),
                    "Reference": invoice.reference,
                    "CreationDate": invoice.created.isoformat(),
                    "ExpirationDate": invoice.expiry,
                    "UserDefinedField": "",
                    "ExternalIdentifier": None,
                    "MetaData": None,
                },
                "Transaction": {
                    "Id": transaction.payment_id[-6:],
                    "Status": status,
                    "PaymentMethod": transaction.gateway,
                    "PaymentId": transaction.payment_id,
                    "Error": {"Code": transaction.error_code, "Message": _text(transaction.error)},
                },
                "Customer": {
                    "Name": invoice.customer_name,
                    "Mobile": "",
                    "Email": invoice.customer_email,
                },
                "Amount": {
                    "BaseCurrency": self.base_currency,
                    "ValueInBaseCurrency": base,
                    "DisplayCurrency": invoice.display_currency,
                    "ValueInDisplayCurrency": display,
                    "PayCurrency": invoice.display_currency,
                    "ValueInPayCurrency": display,
                },
                "Suppliers": [],
            },
        }

    def _refund_event(self, refund: Refund, version: int) -> dict[str, Any]:
        invoice = self.invoices[refund.invoice_id]
        amount = _shown(refund.amount, self.base_currency).replace(",", "")
        if version == 1:
            return {
                "EventType": 2,
                "Event": "RefundStatusChanged",
                "DateTime": refund.at.strftime("%d%m%Y%H%M%S"),
                "CountryIsoCode": "KWT",
                "Data": {
                    "RefundId": refund.refund_id,
                    "RefundReference": refund.reference,
                    "CreatedDate": refund.at.strftime("%d%m%Y%H%M%S"),
                    "RefundStatus": refund.status.upper(),
                    "Amount": amount,
                    "Comments": refund.comment,
                    "InvoiceId": str(refund.invoice_id),
                    "GatewayReference": {
                        "PaymentId": next(
                            (t.payment_id for t in invoice.transactions if t.status == "Succss"), ""
                        ),
                        "RefundAmount": amount,
                        "Currency": self.base_currency,
                    },
                },
            }
        paid = self._paid_base(invoice)
        remaining = paid - sum(
            (
                r.amount
                for r in self.refunds.values()
                if r.invoice_id == invoice.invoice_id and r.status == "Refunded"
            ),
            start=Decimal(0),
        )
        return {
            "Event": {
                "Code": 2,
                "Name": "REFUND_STATUS_CHANGED",
                "CountryIsoCode": "KWT",
                "CreationDate": refund.at.strftime("%Y-%m-%dT%H:%M:%S.%f0Z"),
                "Reference": f"WH-R{refund.refund_id}",
            },
            "Data": {
                "Refund": {
                    "Id": str(refund.refund_id),
                    "Reference": refund.reference,
                    "Status": refund.status.upper(),
                    "InvoiceId": str(refund.invoice_id + 500_000),
                    "CreationDate": refund.at.isoformat(),
                    "Comment": "",
                    "VendorComment": refund.comment,
                },
                "Amount": {
                    "BaseCurrency": self.base_currency,
                    "ValueInBaseCurrency": amount,
                },
                "ReferencedInvoice": {
                    "Id": str(refund.invoice_id),
                    "Reference": invoice.reference,
                    "ExternalIdentifier": None,
                    "PaymentMethod": "KNET",
                    "BaseCurrency": self.base_currency,
                    "ValueInBaseCurrency": _shown(invoice.base_value, self.base_currency).replace(
                        ",", ""
                    ),
                    "RemainingValueInBaseCurrency": _shown(remaining, self.base_currency).replace(
                        ",", ""
                    ),
                },
            },
        }

    # The API ---------------------------------------------------------------------------

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer | None:
        endpoint = path.split("?")[0].removeprefix("/v2/")
        with self.lock:
            delay = self.delays.pop(0) if self.delays else 0.0
        time.sleep(delay)
        with self.lock:
            self.requests.append((endpoint, body))
            if self.hang_ups:
                self.hang_ups -= 1
                return None
            if self.failures:
                status, payload = self.failures.pop(0)
                return Answer(status, payload)
            if headers.get("authorization") != f"Bearer {self.token}":
                return Answer(401, b"")
            if method != "POST":
                return Answer(405, b"")
            try:
                request = json.loads(body, parse_float=Decimal)
            except ValueError:
                return _fail("Invalid JSON", [("request", "The request is invalid.")])
            if not isinstance(request, dict):
                return _fail("Invalid JSON", [("request", "The request is invalid.")])
            handlers = {
                "SendPayment": self._send_payment,
                "GetPaymentStatus": self._get_payment_status,
                "MakeRefund": self._make_refund,
                "GetRefundStatus": self._get_refund_status,
            }
            if endpoint not in handlers:
                return Answer(404, b"")
            return handlers[endpoint](request)

    def _send_payment(self, request: dict[str, Any]) -> Answer:
        errors: list[tuple[str, str]] = []
        currency = request.get("DisplayCurrencyIso") or self.base_currency
        try:
            places = _exponent(currency)
        except KeyError:
            errors.append(("DisplayCurrencyIso", "The currency is not supported."))
            places = 3
        value = request.get("InvoiceValue")
        if not isinstance(value, Decimal | int) or isinstance(value, bool) or value <= 0:
            errors.append(("InvoiceValue", "The InvoiceValue must be a number greater than 0."))
        elif -Decimal(value).as_tuple().exponent > places:  # type: ignore[operator]
            errors.append(("InvoiceValue", f"The InvoiceValue has more than {places} decimals."))
        if not request.get("CustomerName"):
            errors.append(("CustomerName", "The CustomerName field is required."))
        if request.get("NotificationOption") not in NOTIFICATION_OPTIONS:
            errors.append(("NotificationOption", "The NotificationOption field is required."))
        if request.get("NotificationOption") in {"EML", "ALL"} and not request.get("CustomerEmail"):
            errors.append(("CustomerEmail", "The CustomerEmail field is required."))
        for name in ("CallBackUrl", "ErrorUrl"):
            url = request.get(name)
            if url is not None and not str(url).startswith(("http://", "https://")):
                errors.append((name, f"The {name} is not a valid URL."))
        if currency != self.base_currency and currency not in self.rates and not errors:
            errors.append(("DisplayCurrencyIso", "The currency is not enabled for the account."))
        if errors:
            return _fail("Invalid data", errors)
        display = Decimal(str(value))
        rate = Decimal(1) if currency == self.base_currency else self.rates[currency]
        base = (display * rate).quantize(Decimal(1).scaleb(-_exponent(self.base_currency)))
        invoice_id = next(self._invoice_ids)
        invoice = Invoice(
            invoice_id=invoice_id,
            reference=f"2026{invoice_id:06d}",
            display_value=display,
            display_currency=currency,
            base_value=base,
            customer_name=request["CustomerName"],
            customer_email=request.get("CustomerEmail"),
            customer_reference=request.get("CustomerReference"),
            callback_url=request.get("CallBackUrl"),
            error_url=request.get("ErrorUrl"),
            expiry=request.get("ExpiryDate"),
            request=request,
        )
        self.invoices[invoice_id] = invoice
        return _ok(
            {
                "InvoiceId": invoice_id,
                "InvoiceURL": f"{self.base_url}/KWT/ie/{invoice.reference}",
                "CustomerReference": invoice.customer_reference,
                "UserDefinedField": request.get("UserDefinedField"),
            },
            "Invoice Created Successfully!",
        )

    def _find(self, key: str, key_type: str) -> Invoice | None:
        kind = key_type.lower()
        if kind == "invoiceid":
            return self.invoices.get(int(key)) if key.isdigit() else None
        if kind == "paymentid":
            return next(
                (
                    i
                    for i in self.invoices.values()
                    if any(t.payment_id == key for t in i.transactions)
                ),
                None,
            )
        if kind == "customerreference":
            matching = [i for i in self.invoices.values() if i.customer_reference == key]
            return matching[-1] if matching else None  # "the last invoice created"
        return None

    def _get_payment_status(self, request: dict[str, Any]) -> Answer:
        key, key_type = str(request.get("Key") or ""), str(request.get("KeyType") or "")
        if key_type.lower() not in {"invoiceid", "paymentid", "customerreference"}:
            return _fail("Invalid data", [("KeyType", "The KeyType is invalid.")])
        invoice = self._find(key, key_type)
        if invoice is None:
            return _fail("No data match the given key value!", [])
        label = LABELS.get(self.base_currency, self.base_currency)
        paid_label = LABELS.get(invoice.display_currency, invoice.display_currency)
        return _ok(
            {
                "InvoiceId": invoice.invoice_id,
                "InvoiceStatus": invoice.status,
                "InvoiceReference": invoice.reference,
                "CustomerReference": invoice.customer_reference,
                "CreatedDate": invoice.created.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3],
                "ExpiryDate": invoice.expiry,
                "InvoiceValue": float(invoice.base_value),
                "Comments": "",
                "CustomerName": invoice.customer_name,
                "CustomerMobile": "",
                "CustomerEmail": invoice.customer_email,
                "UserDefinedField": None,
                "InvoiceDisplayValue": f"{_shown(invoice.display_value, invoice.display_currency)} {paid_label}",
                "InvoiceItems": [],
                "InvoiceTransactions": [
                    {
                        "TransactionDate": t.at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3],
                        "PaymentGateway": t.gateway,
                        "ReferenceId": f"R{t.payment_id[-9:]}",
                        "TrackId": f"{t.at:%d-%m-%Y}_{t.payment_id[-6:]}",
                        "TransactionId": t.payment_id[-15:],
                        "PaymentId": t.payment_id,
                        "AuthorizationId": "B77780",
                        "TransactionStatus": t.status,
                        "TransationValue": _shown(invoice.base_value, self.base_currency),
                        "CustomerServiceCharge": "0.000",
                        "DueValue": _shown(invoice.base_value, self.base_currency),
                        "PaidCurrency": paid_label,
                        "PaidCurrencyValue": _shown(
                            invoice.display_value, invoice.display_currency
                        ),
                        "Currency": label,
                        "Error": t.error,
                        "CardNumber": None,
                        "ErrorCode": t.error_code,
                    }
                    for t in invoice.transactions
                ],
                "Suppliers": [],
            }
        )

    def _paid_base(self, invoice: Invoice) -> Decimal:
        return invoice.base_value if invoice.status == "Paid" else Decimal(0)

    def _new_refund(
        self, invoice: Invoice, amount: Decimal, comment: str, external: str | None
    ) -> Refund:
        refund_id = next(self._refund_ids)
        refund = Refund(
            refund_id, f"2026{refund_id:06d}", invoice.invoice_id, amount, comment, external
        )
        self.refunds[refund_id] = refund
        return refund

    def _make_refund(self, request: dict[str, Any]) -> Answer:
        key, key_type = str(request.get("Key") or ""), str(request.get("KeyType") or "")
        if key_type.lower() not in {"invoiceid", "paymentid"}:
            return _fail(
                "Invalid data", [("KeyType", "The KeyType must be InvoiceId or PaymentId.")]
            )
        try:
            amount = Decimal(str(request["Amount"]))
        except (KeyError, InvalidOperation):
            return _fail("Invalid data", [("Amount", "The Amount field is required.")])
        invoice = self._find(key, key_type)
        if invoice is None:
            return _fail("No data match the given key value!", [])
        if invoice.status != "Paid":
            return _fail("The invoice is not paid, it cannot be refunded.", [])
        places = _exponent(self.base_currency)
        refunded = sum(
            (
                r.amount
                for r in self.refunds.values()
                if r.invoice_id == invoice.invoice_id and r.status != "Canceled"
            ),
            start=Decimal(0),
        )
        if amount <= 0 or -amount.as_tuple().exponent > places:  # type: ignore[operator]
            return _fail("Invalid data", [("Amount", "The Amount is invalid.")])
        if refunded + amount > invoice.base_value:
            return _fail("The refund amount exceeds the remaining invoice amount.", [])
        refund = self._new_refund(
            invoice, amount, str(request.get("Comment") or ""), request.get("ExternalIdentifier")
        )
        if self.auto_refund:
            refund.status = "Refunded"
        return _ok(
            {
                "Key": key,
                "RefundId": refund.refund_id,
                "RefundReference": refund.reference,
                "RefundInvoiceId": invoice.invoice_id + 500_000,
                "ExternalIdentifier": refund.external_identifier,
                "Amount": float(amount),
                "Comment": refund.comment,
            },
            "Refund Created Successfully!",
        )

    def _get_refund_status(self, request: dict[str, Any]) -> Answer:
        key, key_type = str(request.get("Key") or ""), str(request.get("KeyType") or "").lower()
        if key_type == "invoiceid":
            found = [r for r in self.refunds.values() if str(r.invoice_id) == key]
        elif key_type == "refundid":
            found = [r for r in self.refunds.values() if str(r.refund_id) == key]
        elif key_type == "refundreference":
            found = [r for r in self.refunds.values() if r.reference == key]
        else:
            return _fail("Invalid data", [("KeyType", "The KeyType is invalid.")])
        return _ok(
            {
                "RefundStatusResult": [
                    {
                        "RefundId": r.refund_id,
                        "RefundStatus": r.status,
                        "InvoiceId": r.invoice_id,
                        "Amount": float(r.amount),
                        "RefundReference": r.reference,
                        "ExternalIdentifier": r.external_identifier,
                        "RefundAmount": float(r.amount),
                        "RRN": "617614024566" if r.status == "Refunded" else None,
                        "BaseCurrency": self.base_currency,
                    }
                    for r in found
                ]
            }
        )


def _ok(data: dict[str, Any], message: str = "") -> Answer:
    return _json(
        200, {"IsSuccess": True, "Message": message, "ValidationErrors": None, "Data": data}
    )


def _fail(message: str, errors: list[tuple[str, str]]) -> Answer:
    return _json(
        400,
        {
            "IsSuccess": False,
            "Message": message,
            "ValidationErrors": [{"Name": name, "Error": error} for name, error in errors] or None,
            "Data": None,
        },
    )
