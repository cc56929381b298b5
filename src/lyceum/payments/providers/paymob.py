"""Paymob as a payment provider: a Unified Checkout intention per order, the transaction
processed callback verified by its HMAC, the transaction inquiry for reconciliation, and
refunds through the void/refund API.

The documented scheme followed here (Paymob's developer documentation, read December 2026):

- Create Intention, https://developers.paymob.com/paymob-docs/developers/intention-apis/create-intention:
  `POST {base}/v1/intention/` with `Authorization: Token <secret key>`; body `amount`
  (an integer in the currency's smallest unit), `currency`, `payment_methods` (integration
  ids), `items`, `billing_data`, `customer`, `special_reference`, `notification_url`,
  `redirection_url`, `expiration` (seconds). The answer carries `id`, `client_secret`
  and `intention_order_id` (the Paymob order id the callback names as `order.id`).
  Paymob's official WooCommerce plugin (paymob-for-woocommerce, `includes/helper/paymob.php`
  and `paymob-order.php`) sends the same body and scales amounts by 1000 for Oman and 100
  elsewhere: the ISO 4217 exponent, so Lyceum's minor units go out unchanged.
- Unified Checkout: the buyer goes to `{base}/unifiedcheckout/?publicKey=<public key>
  &clientSecret=<client secret>` (the same plugin, `class-paymob-payment.php`).
- Transaction processed callback and its HMAC,
  https://developers.paymob.com/paymob-docs/developers/webhook-callbacks-and-hmac/hmac/hmac-transaction-callback
  (and docs.paymob.com/docs/hmac-calculation): a POST of `{"type": "TRANSACTION",
  "obj": {...}}` with `?hmac=` in the query; the values of `amount_cents, created_at,
  currency, error_occured, has_parent_transaction, obj.id, integration_id, is_3d_secure,
  is_auth, is_capture, is_refunded, is_standalone_payment, is_voided, order.id, owner,
  pending, source_data.pan, source_data.sub_type, source_data.type, success`, in that
  order, concatenated (booleans as `true`/`false`, as the documented sample string and the
  official plugin's `verifyAcceptHmac` write them), HMAC-SHA512 with the HMAC secret, hex
  lower case. The callback is verified before anything in it is used; the compare is
  constant-time.
- What a callback means, https://developers.paymob.com/paymob-docs/manage-callback/transaction-callbacks:
  `success`, `pending`; `is_refunded` and `refunded_amount_cents` (the total refunded so
  far: a payment may have several partial refunds); `is_voided`. A refund made later
  arrives as a transaction of its own (`is_refund`, `has_parent_transaction`, its own
  `amount_cents`; the official plugin books that amount), so the total comes from the
  payment it refunds (`parent_transaction`), asked for by id.
- Transaction inquiry, https://developers.paymob.com/paymob-docs/developers/transaction-inquiry-apis
  (and docs.paymob.com/docs/retrieve-a-transaction): `POST {base}/api/ecommerce/orders/
  transaction_inquiry` with `order_id` (or `merchant_order_id`), and `GET {base}/api/
  acceptance/transactions/{id}`, both authorised by the auth token `POST {base}/api/auth/
  tokens` trades the API key for (valid 60 minutes; reused for 50 here).
- Refund, https://developers.paymob.com/paymob-docs/developers/manage-payment-apis/refund
  and docs.paymob.com/docs/refund-transaction: `POST {base}/api/acceptance/void_refund/refund`
  with `transaction_id` and `amount_cents`, authorised with `Token <secret key>` as the
  official plugin's `refundPayment` does; the answer is the refund transaction.

What a callback is trusted for. The HMAC covers only the fields listed above; anything
else in the body (`order.merchant_order_id`, `is_refund`, `is_void`,
`refunded_amount_cents`, `parent_transaction`, ...) can be rewritten by whoever holds one
genuine callback (the buyer's redirect carries the signed fields and their hmac) without
breaking the signature. So after the check the adapter decides only from signed fields:

- the order is the signed `order.id` (the intention's `intention_order_id`, stored on
  Lyceum's order as its `provider_ref` by `create_checkout`); the event names it as
  `provider_ref` and never names `order_id` (`merchant_order_id` is unsigned, and the core
  prefers `order_id` when both are given);
- a payment's state comes from the signed `success`, `pending`, `amount_cents`,
  `currency` and `id`;
- anything about refunds or voids (signed `has_parent_transaction`, `is_refunded` or
  `is_voided` true) is confirmed through the API: the transaction is asked for by its
  signed `id` (`GET /api/acceptance/transactions/{id}`) and read from that answer, which
  must name the same `order.id`; a refund transaction's payment is the answer's
  `parent_transaction`, itself asked for, and the refunded total is that payment's
  `refunded_amount_cents` as the API gives it. The body's amounts are never used for a
  refund;
- event ids are built from the signed `id` and the API's answers only, so an edited
  unsigned field cannot make a redelivery look new;
- `data.message` is copied into the event's summary as text and decides nothing.

Event ids: Paymob's callback has no event id of its own, and the same transaction is
called back again when it is refunded or voided. An event id is therefore the
transaction id with the state the callback reports (`<id>:paid`, `<id>:failed`,
`<id>:refunded:<total so far, as the API gives it>`, `<id>:voided`, `<id>:refund` for a
refund transaction of its own): a redelivery is the same event, a later refund of the
same payment (or a second partial refund) is a new one. Reconciliation's `fetch_status`
answers with the same ids (its inquiry answer comes from the API, so it is trusted).

Not offered by Paymob, so not done: an idempotency key on intentions or refunds (Lyceum
creates one checkout per order and records each refund under its own key before calling),
and a way to close an open intention (it ends at its `expiration`; `expire_checkout` is a
no-op).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import httpx

from lyceum.config import Settings
from lyceum.kit.security import constant_time_equal
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

TIMEOUT_SECONDS = 20.0
# Paymob's auth tokens live 60 minutes; one is reused for 50 so none expires mid-call.
AUTH_TOKEN_REUSE_SECONDS = 50 * 60
# The transaction callback's HMAC fields, in the documented order (dotted: nested).
HMAC_FIELDS = (
    "amount_cents",
    "created_at",
    "currency",
    "error_occured",
    "has_parent_transaction",
    "id",
    "integration_id",
    "is_3d_secure",
    "is_auth",
    "is_capture",
    "is_refunded",
    "is_standalone_payment",
    "is_voided",
    "order.id",
    "owner",
    "pending",
    "source_data.pan",
    "source_data.sub_type",
    "source_data.type",
    "success",
)
_MISSING = object()


def paymob_configured(settings: Settings) -> bool:
    """Paymob is on when every key it needs is set and at least one integration id."""
    return bool(
        settings.paymob_secret_key
        and settings.paymob_public_key
        and settings.paymob_hmac_secret
        and settings.paymob_api_key
        and settings.paymob_integration_ids
    )


def _field(obj: Mapping[str, Any], dotted: str) -> object:
    value: object = obj
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _hmac_text(value: object) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return ""
    return str(value)


def transaction_hmac(secret: str, obj: Mapping[str, Any]) -> str:
    """The documented HMAC of a transaction callback's `obj`; KeyError names a missing
    field."""
    parts = []
    for name in HMAC_FIELDS:
        value = _field(obj, name)
        if value is _MISSING:
            raise KeyError(name)
        parts.append(_hmac_text(value))
    message = "".join(parts).encode("utf-8")
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha512).hexdigest()


def _flag(obj: Mapping[str, Any], name: str) -> bool:
    # Older samples in Paymob's documentation quote booleans ("false"); accept both.
    value = obj.get(name)
    return value is True or value == "true"


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def _signed_view(obj: Mapping[str, Any]) -> dict[str, Any]:
    """Only the fields the callback's HMAC covers (nested ones nested again), plus the
    decline text for the summary: everything else in the body is dropped, unread."""
    view: dict[str, Any] = {}
    for name in HMAC_FIELDS:
        value = _field(obj, name)
        if value is _MISSING:
            continue
        *parents, last = name.split(".")
        target = view
        for part in parents:
            target = target.setdefault(part, {})
        target[last] = value
    data = obj.get("data")
    message = data.get("message") if isinstance(data, Mapping) else None
    if isinstance(message, str):
        view["data"] = {"message": message}
    return view


class _Reading:
    """What one Paymob transaction object says, in Lyceum's terms."""

    def __init__(self, obj: Mapping[str, Any]) -> None:
        transaction_id = _int(obj.get("id"))
        if transaction_id is None:
            raise ValueError("the transaction has no id")
        self.transaction_id = str(transaction_id)
        self.amount = _int(obj.get("amount_cents"))
        currency = obj.get("currency")
        self.currency = currency.upper() if isinstance(currency, str) else None
        paymob_order = _field(obj, "order.id")
        self.paymob_order_id = None if paymob_order is _MISSING else _hmac_text(paymob_order)
        data = obj.get("data")
        message = data.get("message") if isinstance(data, Mapping) else None
        self.summary = message if isinstance(message, str) else ""
        self.parent_id = _int(obj.get("parent_transaction"))
        refunded_cents = _int(obj.get("refunded_amount_cents")) or 0

        is_child = _flag(obj, "has_parent_transaction")
        self.refunded_total: int | None = None
        if _flag(obj, "pending"):
            self.kind, self.state = EventKind.ignored, "pending"
        elif (
            _flag(obj, "is_refund")
            or _flag(obj, "is_void")
            or (is_child and not _flag(obj, "is_capture") and not _flag(obj, "is_auth"))
        ):
            # A refund (or void) transaction of its own, child of the payment. It names
            # only its own amount; the total refunded is the payment's
            # `refunded_amount_cents` (`parse_webhook` asks for it).
            if _flag(obj, "success"):
                self.kind, self.state = EventKind.refunded, "refund"
                self.refunded_total = refunded_cents or self.amount
            else:
                self.kind, self.state = EventKind.ignored, "refund-declined"
        elif _flag(obj, "is_voided"):
            self.kind, self.state = EventKind.refunded, "voided"
            self.refunded_total = self.amount
        elif _flag(obj, "is_refunded") or refunded_cents > 0:
            self.refunded_total = refunded_cents or self.amount
            self.kind, self.state = EventKind.refunded, f"refunded:{self.refunded_total}"
        elif _flag(obj, "success"):
            self.kind, self.state = EventKind.paid, "paid"
        else:
            self.kind, self.state = EventKind.failed, "failed"
            self.summary = self.summary or "declined"

    @property
    def event_id(self) -> str:
        return f"{self.transaction_id}:{self.state}"

    def event(self) -> ProviderEvent:
        # A refund transaction of its own is the refund; otherwise the callback is the
        # payment's, and the refund's own id is not in it.
        is_refund = self.state == "refund"
        parent = str(self.parent_id) if self.parent_id is not None else None
        return ProviderEvent(
            event_id=self.event_id,
            kind=self.kind,
            raw_type="TRANSACTION",
            # The signed `order.id` only: `merchant_order_id` is not covered by the HMAC.
            order_id=None,
            provider_ref=self.paymob_order_id,
            payment_ref=parent if is_refund else self.transaction_id,
            amount=self.amount if self.kind is EventKind.paid else None,
            currency=self.currency,
            refunded_total=self.refunded_total,
            refund_ref=self.transaction_id if is_refund else None,
            summary=self.summary,
        )


def _error_text(response: httpx.Response) -> str:
    try:
        payload = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    if isinstance(payload, Mapping):
        for key in ("detail", "message"):
            if isinstance(payload.get(key), str):
                return str(payload[key])
        for key, value in payload.items():  # field errors: {"amount": ["..."]}
            if isinstance(value, list) and value:
                return f"{key}: {value[0]}"
    return json.dumps(payload)[:200]


class PaymobProvider:
    name = "paymob"

    def __init__(self, settings: Settings, http: httpx.AsyncClient | None = None) -> None:
        self._settings = settings
        self._base = str(settings.paymob_base_url).rstrip("/")
        self._http = http
        self._auth_token: tuple[str, float] | None = None

    # Calls ---------------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None,
        authorization: str | None,
    ) -> httpx.Response:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if authorization:
            headers["Authorization"] = authorization
        url = f"{self._base}{path}"
        try:
            if self._http is not None:
                return await self._http.request(
                    method, url, json=body, headers=headers, timeout=TIMEOUT_SECONDS
                )
            async with httpx.AsyncClient(timeout=TIMEOUT_SECONDS) as http:
                return await http.request(method, url, json=body, headers=headers)
        except httpx.TimeoutException as error:
            raise ProviderError(f"Paymob {path}: timed out", transient=True) from error
        except httpx.HTTPError as error:
            raise ProviderError(f"Paymob {path}: {error}", transient=True) from error

    @staticmethod
    def _json(response: httpx.Response, path: str) -> dict[str, Any]:
        if response.status_code == 429 or response.status_code >= 500:
            raise ProviderError(
                f"Paymob {path}: {response.status_code} {_error_text(response)}", transient=True
            )
        if response.status_code >= 400:
            raise ProviderError(f"Paymob {path}: {response.status_code} {_error_text(response)}")
        try:
            payload = response.json()
        except ValueError as error:
            raise ProviderError(f"Paymob {path}: an answer that is not JSON") from error
        if not isinstance(payload, dict):
            raise ProviderError(f"Paymob {path}: an answer that is not an object")
        return payload

    def _secret(self) -> str:
        if self._settings.paymob_secret_key is None:
            raise ProviderError("PAYMOB_SECRET_KEY is not set")
        return f"Token {self._settings.paymob_secret_key.get_secret_value()}"

    async def _bearer(self) -> str:
        """The auth token the API key is traded for, reused while it is fresh."""
        now = time.monotonic()
        if self._auth_token is not None and self._auth_token[1] > now:
            return f"Bearer {self._auth_token[0]}"
        if self._settings.paymob_api_key is None:
            raise ProviderError("PAYMOB_API_KEY is not set")
        path = "/api/auth/tokens"
        body = {"api_key": self._settings.paymob_api_key.get_secret_value()}
        payload = self._json(await self._call("POST", path, body=body, authorization=None), path)
        token = payload.get("token")
        if not isinstance(token, str) or not token:
            raise ProviderError(f"Paymob {path}: no token in the answer")
        self._auth_token = (token, now + AUTH_TOKEN_REUSE_SECONDS)
        return f"Bearer {token}"

    # The protocol ----------------------------------------------------------------------

    def supports(self, currency: str) -> bool:
        return currency.upper() in self._settings.paymob_currencies

    async def create_checkout(self, request: CheckoutRequest) -> Checkout:
        if not self.supports(request.currency):
            raise ProviderError(f"Paymob is not set up for {request.currency}")
        first, _, last = request.customer_name.strip().rpartition(" ")
        if not first:  # one word: Paymob requires both names
            first, last = last, ""
        person = {
            "first_name": first or "NA",
            "last_name": last or "NA",
            "email": request.customer_email,
        }
        seconds_left = int((request.expires_at - dt.datetime.now(dt.UTC)).total_seconds())
        body = {
            "amount": request.amount,
            "currency": request.currency,
            "payment_methods": list(self._settings.paymob_integration_ids),
            "items": [
                {
                    "name": request.description[:50],
                    "amount": request.amount,
                    "description": request.description[:255],
                    "quantity": 1,
                }
            ],
            "billing_data": {**person, "phone_number": request.customer_phone or "NA"},
            "customer": person,
            "special_reference": str(request.order_id),
            "notification_url": request.webhook_url,
            # Paymob has one return address; it appends the outcome (`success=`) to it.
            "redirection_url": request.success_url,
            "expiration": max(seconds_left, 60),
        }
        path = "/v1/intention/"
        response = await self._call("POST", path, body=body, authorization=self._secret())
        payload = self._json(response, path)
        client_secret = payload.get("client_secret")
        order_number = _int(payload.get("intention_order_id"))
        if not isinstance(client_secret, str) or order_number is None:
            raise ProviderError(f"Paymob {path}: no client_secret or intention_order_id")
        query = urlencode(
            {"publicKey": self._settings.paymob_public_key or "", "clientSecret": client_secret}
        )
        # The checkout is known by the Paymob order id: the callback names it as
        # `order.id` and the transaction inquiry takes it.
        return Checkout(
            provider_ref=str(order_number), url=f"{self._base}/unifiedcheckout/?{query}"
        )

    async def parse_webhook(
        self, body: bytes, headers: Mapping[str, str], query: Mapping[str, str]
    ) -> list[ProviderEvent]:
        if self._settings.paymob_hmac_secret is None:
            raise InvalidWebhook("PAYMOB_HMAC_SECRET is not set")
        received = query.get("hmac")
        if not received:
            raise InvalidWebhook("no hmac in the callback's query")
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError) as error:  # not UTF-8, not JSON, too deep
            raise InvalidWebhook("the callback body is not JSON") from error
        obj = payload.get("obj") if isinstance(payload, dict) else None
        if not isinstance(obj, dict) or payload.get("type") != "TRANSACTION":
            raise InvalidWebhook("not a transaction callback")
        try:
            expected = transaction_hmac(self._settings.paymob_hmac_secret.get_secret_value(), obj)
        except KeyError as missing:
            raise InvalidWebhook(f"the callback lacks {missing.args[0]}") from None
        if not constant_time_equal(expected, received.strip().lower()):
            raise InvalidWebhook("the callback's hmac does not match")
        # Past this point only signed fields decide anything (see the module docstring).
        signed = _signed_view(obj)
        try:
            reading = _Reading(signed)
        except ValueError as error:
            raise InvalidWebhook(str(error)) from error
        if not (
            _flag(signed, "has_parent_transaction")
            or _flag(signed, "is_refunded")
            or _flag(signed, "is_voided")
        ):
            return [reading.event()]
        # A refund or a void: the body's amounts and links are unsigned, so the
        # transaction is read again from the API by its signed id.
        confirmed = await self._transaction(int(reading.transaction_id))
        held_order = confirmed.get("order")
        if isinstance(held_order, Mapping):  # an object, or (older answers) just its id
            held_order = held_order.get("id")
        if (
            str(_int(confirmed.get("id"))) != reading.transaction_id
            or _hmac_text(held_order) != reading.paymob_order_id
        ):
            raise InvalidWebhook("the callback's transaction is not the one Paymob holds")
        try:
            reading = _Reading(confirmed)
        except ValueError as error:
            raise ProviderError(f"Paymob transaction {reading.transaction_id}: {error}") from error
        if reading.state == "refund" and reading.parent_id is not None:
            # The refund transaction names its own amount only: the payment it refunds
            # (as the API names it) says how much has gone back in all.
            payment = await self._transaction(reading.parent_id)
            total = _int(payment.get("refunded_amount_cents"))
            if total:
                reading.refunded_total = total
        return [reading.event()]

    async def _transaction(self, transaction_id: int) -> dict[str, Any]:
        """One transaction, by id (the documented inquiry by transaction id)."""
        path = f"/api/acceptance/transactions/{transaction_id}"
        response = await self._call("GET", path, body=None, authorization=await self._bearer())
        payload = self._json(response, path)
        obj = payload.get("obj", payload)
        if not isinstance(obj, dict):
            raise ProviderError(f"Paymob {path}: not a transaction")
        return obj

    async def fetch_status(self, order: OrderRef) -> PaymentStatus:
        path = "/api/ecommerce/orders/transaction_inquiry"
        paymob_order = _int(order.provider_ref)
        body: dict[str, Any] = (
            {"order_id": paymob_order}
            if paymob_order is not None
            else {"merchant_order_id": str(order.order_id)}
        )
        response = await self._call("POST", path, body=body, authorization=await self._bearer())
        if response.status_code == 404:  # no transaction on the order yet
            return PaymentStatus(kind=None)
        payload = self._json(response, path)
        obj = payload.get("obj", payload)
        if not isinstance(obj, dict) or obj.get("id") is None:
            return PaymentStatus(kind=None)
        try:
            reading = _Reading(obj)
        except ValueError as error:
            raise ProviderError(f"Paymob {path}: {error}") from error
        if reading.kind is EventKind.ignored:
            return PaymentStatus(kind=None)
        refund = reading.kind is EventKind.refunded
        return PaymentStatus(
            kind=reading.kind,
            payment_ref=reading.transaction_id,
            # refunded: how much has gone back in all
            amount=reading.refunded_total if refund else reading.amount,
            currency=reading.currency,
            event_id=reading.event_id,
        )

    async def expire_checkout(self, order: OrderRef) -> None:
        """Paymob documents no way to close an intention; it ends at its `expiration`."""

    async def refund(
        self, order: OrderRef, *, amount: int, reason: str, idempotency_key: str
    ) -> RefundResult:
        transaction_id = _int(order.payment_ref)
        if transaction_id is None:
            raise ProviderError("the order has no Paymob transaction to refund")
        path = "/api/acceptance/void_refund/refund"
        body = {"transaction_id": transaction_id, "amount_cents": amount}
        response = await self._call("POST", path, body=body, authorization=self._secret())
        payload = self._json(response, path)
        refund_id = _int(payload.get("id"))
        if refund_id is None:
            raise ProviderError(f"Paymob {path}: {_error_text(response)}")
        pending = _flag(payload, "pending")
        if not _flag(payload, "success") and not pending:
            data = payload.get("data")
            message = data.get("message") if isinstance(data, Mapping) else None
            raise ProviderError(f"Paymob declined the refund: {message or 'no reason given'}")
        return RefundResult(refund_ref=str(refund_id), succeeded=not pending)
