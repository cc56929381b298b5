"""A fake Paymob over real HTTP on a loopback port, written from Paymob's developer
documentation (developers.paymob.com, docs.paymob.com) and its official WooCommerce
plugin, not from Lyceum's adapter:

- `POST /v1/intention/` (Create Intention): `Authorization: Token <secret key>`; the body
  checked as Paymob checks it (a positive integer amount in the smallest unit, a known
  currency, known integration ids, billing data with names, email and phone, items adding
  up to the amount, a `special_reference` not used before); answers the intention with
  `id`, `client_secret`, `intention_order_id`, `payment_keys`, ... or Paymob's errors
  (`{"detail": ...}`, field errors `{"field": ["..."]}`);
- `POST /api/auth/tokens`: the API key traded for an auth token;
- `POST /api/ecommerce/orders/transaction_inquiry` (bearer auth token): the order's
  payment transaction by `order_id` or `merchant_order_id` (404 while it has none), and
  `GET /api/acceptance/transactions/{id}`: one transaction;
- `POST /api/acceptance/void_refund/refund` (`Token <secret key>`): a refund transaction,
  child of the payment, whose `is_refunded` and `refunded_amount_cents` grow.

Test operations act like the buyer or the merchant: `pay`, `decline`, `leave_pending`,
`refund_in_dashboard`. `signed_webhook(transaction)` builds the transaction processed
callback `{"type": "TRANSACTION", "obj": ...}` and its `?hmac=` (HMAC-SHA512, hex, over
the documented fields in the documented order, booleans written `true`/`false`), and
`send_webhook(url, transaction)` POSTs it as Paymob does.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import hmac
import itertools
import json
import secrets
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

import httpx

# The documented HMAC fields of a transaction callback, in the documented order.
CALLBACK_HMAC_KEYS = (
    ("amount_cents",),
    ("created_at",),
    ("currency",),
    ("error_occured",),
    ("has_parent_transaction",),
    ("id",),
    ("integration_id",),
    ("is_3d_secure",),
    ("is_auth",),
    ("is_capture",),
    ("is_refunded",),
    ("is_standalone_payment",),
    ("is_voided",),
    ("order", "id"),
    ("owner",),
    ("pending",),
    ("source_data", "pan"),
    ("source_data", "sub_type"),
    ("source_data", "type"),
    ("success",),
)
MERCHANT_ID = 100427
INTEGRATION_ERROR = (
    "Integration ID/Name does not exist in our system . You can find the list of "
    "Integration ID'/Names from Merchant Dashboard under Developers → Payment Integrations Tab"
)


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(timespec="microseconds")


def callback_hmac(secret: str, obj: dict[str, Any]) -> str:
    parts = []
    for path in CALLBACK_HMAC_KEYS:
        value: Any = obj
        for key in path:
            value = value[key]
        parts.append("true" if value is True else "false" if value is False else str(value))
    return hmac.new(secret.encode(), "".join(parts).encode(), hashlib.sha512).hexdigest()


@dataclass
class Answer:
    status: int
    payload: Any


@dataclass
class FakeOrder:
    id: int
    intention_id: str
    client_secret: str
    merchant_order_id: str
    amount: int
    currency: str
    integration_ids: list[int]
    notification_url: str | None
    redirection_url: str | None
    items: list[dict[str, Any]]
    billing: dict[str, Any]
    created_at: str = field(default_factory=_now)
    transactions: list[dict[str, Any]] = field(default_factory=list)

    def payment(self) -> dict[str, Any] | None:
        """The latest payment transaction (refunds are its children)."""
        payments = [t for t in self.transactions if not t["has_parent_transaction"]]
        return payments[-1] if payments else None


class FakePaymob:
    def __init__(
        self,
        *,
        secret_key: str = "egy_sk_test_" + "a1" * 24,
        public_key: str = "egy_pk_test_" + "b2" * 16,
        hmac_secret: str = "C" * 32,
        api_key: str = "ZXlKaGJHY2lPaUpJVXpVeE1pSXNJblI1Y0NJNklrcFhWQ0o5",
        integration_ids: tuple[int, ...] = (4012345, 4012346),
        currencies: tuple[str, ...] = ("EGP",),
    ) -> None:
        self.secret_key = secret_key
        self.public_key = public_key
        self.hmac_secret = hmac_secret
        self.api_key = api_key
        self.integration_ids = integration_ids
        self.currencies = currencies
        self.lock = threading.Lock()
        self.orders: dict[int, FakeOrder] = {}
        self.requests: list[tuple[str, str, dict[str, str], Any]] = []
        self.failures: list[Answer] = []
        self.auth_tokens: set[str] = set()
        self._ids = itertools.count(1_900_000_001)
        self._transaction_ids = itertools.count(280_000_001)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {key.lower(): value for key, value in self.headers.items()}
                answer = outer.handle(self.command, self.path, headers, body)
                data = json.dumps(answer.payload).encode()
                self.send_response(answer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _serve

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the tests read what they need from the fake."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def fail_next(self, status: int, payload: Any = None) -> None:
        """The next API call answers this instead."""
        with self.lock:
            self.failures.append(Answer(status, payload or {"detail": "Server Error (500)"}))

    # HTTP ------------------------------------------------------------------------------

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        route = urllib.parse.urlsplit(path).path
        try:
            payload = json.loads(body) if body else {}
        except ValueError:
            return Answer(400, {"detail": "JSON parse error"})
        with self.lock:
            self.requests.append((method, route, headers, payload))
            if self.failures:
                return self.failures.pop(0)
            if method == "GET" and route.startswith("/api/acceptance/transactions/"):
                return self._with_token(headers) or self._retrieve(route.rsplit("/", 1)[1])
            if method != "POST":
                return Answer(405, {"detail": f'Method "{method}" not allowed.'})
            if route == "/api/auth/tokens":
                return self._auth(payload)
            if route == "/v1/intention/":
                return self._with_secret(headers) or self._intention(payload)
            if route == "/api/ecommerce/orders/transaction_inquiry":
                return self._with_token(headers) or self._inquiry(payload)
            if route == "/api/acceptance/void_refund/refund":
                return self._with_secret(headers) or self._refund(payload)
        return Answer(404, {"detail": "Not found."})

    def _with_secret(self, headers: dict[str, str]) -> Answer | None:
        given = headers.get("authorization")
        if not given:
            return Answer(401, {"detail": "Authentication credentials were not provided."})
        if given != f"Token {self.secret_key}":
            return Answer(401, {"detail": "Invalid token."})
        return None

    def _with_token(self, headers: dict[str, str]) -> Answer | None:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme != "Bearer" or token not in self.auth_tokens:
            return Answer(401, {"detail": "Authentication credentials were not provided."})
        return None

    def _auth(self, payload: dict[str, Any]) -> Answer:
        if payload.get("api_key") != self.api_key:
            return Answer(403, {"detail": "incorrect credentials"})
        token = "ZXlK" + secrets.token_urlsafe(48)
        self.auth_tokens.add(token)
        return Answer(201, {"token": token, "profile": {"id": MERCHANT_ID}})

    def _intention(self, body: dict[str, Any]) -> Answer:
        amount = body.get("amount")
        if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
            return Answer(400, {"amount": ["A valid integer is required."]})
        currency = body.get("currency")
        if currency not in self.currencies:
            return Answer(400, {"currency": [f'"{currency}" is not a valid choice.']})
        methods = body.get("payment_methods")
        if not isinstance(methods, list) or not methods:
            return Answer(400, {"payment_methods": ["This field is required."]})
        if any(method not in self.integration_ids for method in methods):
            return Answer(404, {"detail": INTEGRATION_ERROR})
        billing = body.get("billing_data")
        if not isinstance(billing, dict):
            return Answer(400, {"billing_data": ["This field is required."]})
        missing = [
            key
            for key in ("first_name", "last_name", "email", "phone_number")
            if not isinstance(billing.get(key), str) or not billing[key]
        ]
        if missing:
            return Answer(
                400, {"billing_data": {key: ["This field is required."] for key in missing}}
            )
        items = body.get("items", [])
        if not isinstance(items, list):
            return Answer(400, {"items": ["Expected a list of items."]})
        if (
            items
            and sum(int(i.get("amount", 0)) * int(i.get("quantity", 1)) for i in items) != amount
        ):
            return Answer(
                400, {"detail": "Intention amount is not equal to the total items amount"}
            )
        reference = body.get("special_reference")
        if reference is not None and any(
            o.merchant_order_id == str(reference) for o in self.orders.values()
        ):
            return Answer(
                400,
                {"special_reference": ["Intention with this special reference already exists."]},
            )
        for key in ("notification_url", "redirection_url"):
            if key in body and not str(body[key]).startswith(("http://", "https://")):
                return Answer(400, {key: ["Enter a valid URL."]})
        expiration = body.get("expiration")
        if expiration is not None and (not isinstance(expiration, int) or expiration <= 0):
            return Answer(400, {"expiration": ["A valid integer is required."]})
        order = FakeOrder(
            id=next(self._ids),
            intention_id="pi_test_" + secrets.token_hex(16),
            client_secret="egy_csk_test_" + secrets.token_hex(16),
            merchant_order_id=str(reference) if reference is not None else secrets.token_hex(8),
            amount=amount,
            currency=currency,
            integration_ids=list(methods),
            notification_url=body.get("notification_url"),
            redirection_url=body.get("redirection_url"),
            items=items,
            billing=billing,
        )
        self.orders[order.id] = order
        return Answer(
            201,
            {
                "payment_keys": [
                    {
                        "integration": method,
                        "key": "ZXlK" + secrets.token_urlsafe(32),
                        "gateway_type": "VPC",
                        "iframe_id": None,
                        "order_id": order.id,
                        "redirection_url": order.redirection_url,
                        "save_card": False,
                    }
                    for method in methods
                ],
                "intention_order_id": order.id,
                "id": order.intention_id,
                "intention_detail": {
                    "amount": amount,
                    "items": items,
                    "currency": currency,
                    "billing_data": billing,
                },
                "client_secret": order.client_secret,
                "payment_methods": [
                    {
                        "integration_id": method,
                        "alias": None,
                        "name": None,
                        "method_type": "card",
                        "currency": currency,
                        "live": False,
                        "use_cvc_with_moto": False,
                    }
                    for method in methods
                ],
                "special_reference": reference,
                "extras": {"creation_extras": body.get("extras"), "confirmation_extras": None},
                "confirmed": False,
                "status": "intended",
                "created": order.created_at,
                "card_detail": None,
                "card_tokens": [],
                "object": "paymentintention",
            },
        )

    def _find(self, payload: dict[str, Any]) -> FakeOrder | None:
        if "order_id" in payload:
            try:
                return self.orders.get(int(payload["order_id"]))
            except (TypeError, ValueError):
                return None
        reference = payload.get("merchant_order_id")
        return next((o for o in self.orders.values() if o.merchant_order_id == reference), None)

    def _inquiry(self, payload: dict[str, Any]) -> Answer:
        order = self._find(payload)
        payment = order.payment() if order else None
        if payment is None:
            return Answer(404, {"detail": "Not found."})
        return Answer(200, copy.deepcopy(payment))

    def _retrieve(self, transaction_id: str) -> Answer:
        for order in self.orders.values():
            for transaction in order.transactions:
                if str(transaction["id"]) == transaction_id:
                    return Answer(200, copy.deepcopy(transaction))
        return Answer(404, {"detail": "Not found."})

    def _refund(self, payload: dict[str, Any]) -> Answer:
        transaction_id, amount = payload.get("transaction_id"), payload.get("amount_cents")
        if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
            return Answer(400, {"amount_cents": ["A valid integer is required."]})
        for order in self.orders.values():
            for transaction in order.transactions:
                if str(transaction["id"]) == str(transaction_id):
                    return self._refund_of(order, transaction, amount)
        return Answer(404, {"detail": "Not found."})

    def _refund_of(self, order: FakeOrder, payment: dict[str, Any], amount: int) -> Answer:
        if not payment["success"] or payment["has_parent_transaction"] or payment["is_voided"]:
            return Answer(400, {"message": "Transaction can't be refunded"})
        if payment["refunded_amount_cents"] + amount > payment["amount_cents"]:
            return Answer(
                400, {"amount_cents": ["Refunded amount exceeds the transaction's amount."]}
            )
        payment["refunded_amount_cents"] += amount
        payment["is_refunded"] = True
        payment["updated_at"] = _now()
        child = self._transaction(order, amount=amount, success=True, pending=False)
        child.update(
            has_parent_transaction=True,
            is_refund=True,
            is_standalone_payment=False,
            parent_transaction=payment["id"],
            data={"message": "Approved", "txn_response_code": "APPROVED", "klass": "VPCRefund"},
        )
        order.transactions.append(child)
        return Answer(200, copy.deepcopy(child))

    # The transaction object ------------------------------------------------------------

    def _transaction(
        self, order: FakeOrder, *, amount: int, success: bool, pending: bool
    ) -> dict[str, Any]:
        created = _now()
        message = "Approved" if success else "Pending" if pending else "Do not honour"
        return {
            "id": next(self._transaction_ids),
            "pending": pending,
            "amount_cents": amount,
            "success": success,
            "is_auth": False,
            "is_capture": False,
            "is_standalone_payment": True,
            "is_voided": False,
            "is_refunded": False,
            "is_3d_secure": True,
            "integration_id": order.integration_ids[0],
            "profile_id": MERCHANT_ID,
            "has_parent_transaction": False,
            "order": {
                "id": order.id,
                "created_at": order.created_at,
                "delivery_needed": False,
                "merchant": {"id": MERCHANT_ID, "company_name": "Lyceum test school"},
                "collector": None,
                "amount_cents": order.amount,
                "shipping_data": None,
                "currency": order.currency,
                "is_payment_locked": False,
                "merchant_order_id": order.merchant_order_id,
                "wallet_notification": None,
                "paid_amount_cents": amount if success else 0,
                "items": order.items,
            },
            "created_at": created,
            "updated_at": created,
            "transaction_processed_callback_responses": [],
            "currency": order.currency,
            "source_data": {"pan": "2346", "type": "card", "sub_type": "MasterCard"},
            "api_source": "IFRAME",
            "terminal_id": None,
            "merchant_commission": 0,
            "installment": None,
            "discount_details": [],
            "is_void": False,
            "is_refund": False,
            "data": {
                "message": message,
                "txn_response_code": "APPROVED" if success else "DECLINED",
            },
            "is_hidden": False,
            "error_occured": False,
            "is_live": False,
            "other_endpoint_reference": None,
            "refunded_amount_cents": 0,
            "source_id": -1,
            "is_captured": False,
            "captured_amount": 0,
            "merchant_staff_tag": None,
            "owner": MERCHANT_ID + 1,
            "parent_transaction": None,
        }

    # What buyers and merchants do --------------------------------------------------------

    def order_for(self, client_secret: str) -> FakeOrder:
        with self.lock:
            return next(o for o in self.orders.values() if o.client_secret == client_secret)

    def _attempt(
        self, order: FakeOrder, *, success: bool, pending: bool, amount: int | None
    ) -> dict[str, Any]:
        with self.lock:
            transaction = self._transaction(
                order,
                amount=order.amount if amount is None else amount,
                success=success,
                pending=pending,
            )
            order.transactions.append(transaction)
            return copy.deepcopy(transaction)

    def pay(self, order: FakeOrder, *, amount: int | None = None) -> dict[str, Any]:
        """The buyer pays on the Unified Checkout page; the transaction is returned."""
        return self._attempt(order, success=True, pending=False, amount=amount)

    def decline(self, order: FakeOrder) -> dict[str, Any]:
        return self._attempt(order, success=False, pending=False, amount=None)

    def leave_pending(self, order: FakeOrder) -> dict[str, Any]:
        """A payment awaiting the buyer (a kiosk reference, a wallet confirmation)."""
        return self._attempt(order, success=False, pending=True, amount=None)

    def refund_in_dashboard(self, transaction_id: int, amount: int) -> dict[str, Any]:
        """The merchant refunds from the dashboard; the payment as it now stands (its
        callback is what Paymob sends) is returned."""
        with self.lock:
            for order in self.orders.values():
                for transaction in order.transactions:
                    if transaction["id"] == transaction_id:
                        answer = self._refund_of(order, transaction, amount)
                        assert answer.status == 200, answer.payload
                        return copy.deepcopy(transaction)
        raise KeyError(transaction_id)

    def transaction(self, transaction_id: int) -> dict[str, Any]:
        with self.lock:
            for order in self.orders.values():
                for transaction in order.transactions:
                    if transaction["id"] == transaction_id:
                        return copy.deepcopy(transaction)
        raise KeyError(transaction_id)

    # Callbacks ---------------------------------------------------------------------------

    def signed_webhook(
        self, transaction: dict[str, Any]
    ) -> tuple[bytes, dict[str, str], dict[str, str]]:
        """The transaction processed callback for `transaction`: body, headers, query."""
        body = json.dumps(
            {
                "type": "TRANSACTION",
                "obj": transaction,
                "issuer_bank": None,
                "transaction_processing_time": 2.31,
            }
        ).encode()
        headers = {"content-type": "application/json", "user-agent": "python-requests/2.31.0"}
        return body, headers, {"hmac": callback_hmac(self.hmac_secret, transaction)}

    def send_webhook(self, url: str, transaction: dict[str, Any]) -> httpx.Response:
        body, headers, query = self.signed_webhook(transaction)
        return httpx.post(url, params=query, content=body, headers=headers, timeout=10)
