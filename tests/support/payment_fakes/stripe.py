"""A fake Stripe API over real HTTP, written from Stripe's API reference
(docs.stripe.com/api): the calls a Checkout integration makes, answered the way Stripe
answers them, and webhook events signed the way Stripe signs them.

- Requests: `Authorization: Bearer <secret key>` (or HTTP basic with the key as the
  user name); form-encoded parameters with nested keys (`line_items[0][price_data]
  [currency]`, `metadata[order_id]`, `expand[0]`); on POST an `Idempotency-Key` replays
  the first answer (`Idempotent-Replayed: true`) and refuses different parameters
  (`idempotency_error`). Errors are `{"error": {"type", "message", "code", "param"}}` with
  Stripe's statuses (400 invalid request, 401 bad key, 404 missing object, 429, 5xx).
- `POST /v1/checkout/sessions` (mode=payment, line items priced inline, `expires_at` 30
  minutes to 24 hours ahead, amounts in Stripe's minor units with its currency rules),
  `GET /v1/checkout/sessions/{id}` (`expand[]=payment_intent`), `GET
  /v1/checkout/sessions` (`payment_intent`, `limit`), `POST
  /v1/checkout/sessions/{id}/expire`, `POST /v1/refunds`, `GET /v1/payment_intents/{id}`.
- What happens in the buyer's browser or the Dashboard, for tests: `pay`, `pay_later` +
  `settle` (a delayed payment method), `expire`, `refund_in_dashboard`. Each returns the
  event Stripe would send (and keeps it in `events`).
- Webhooks: `{"id": "evt_...", "object": "event", "api_version", "created", "data":
  {"object": ...}, "livemode": false, "type", ...}`, posted with `Stripe-Signature:
  t=<unix time>,v1=<hex HMAC-SHA256(endpoint secret, "<t>.<body>")>`
  (docs.stripe.com/webhooks#verify-manually): `signed_webhook(event)` gives the exact
  bytes and headers, `send_webhook(url, event)` posts them.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

import httpx

API_VERSION = "2026-10-28.endive"
SECRET_KEY = "sk_test_51LyceumFakeStripeSecretKey0123456789"
WEBHOOK_SECRET = "whsec_lyceumFakeStripeEndpointSecret0123456789"

# docs.stripe.com/currencies: the three-decimal currencies, whose amounts must end in 0
# (ISK, two-decimal in the API, takes amounts divisible by 100: checked on its own).
THREE_DECIMAL = frozenset({"bhd", "jod", "kwd", "omr", "tnd"})
# Checkout's documented window for `expires_at` (a few seconds of slack for the trip).
MIN_EXPIRY_SECONDS = 30 * 60 - 5
MAX_EXPIRY_SECONDS = 24 * 60 * 60 + 5


@dataclass
class Answer:
    status: int
    payload: Any
    headers: dict[str, str] = field(default_factory=dict)

    def body(self) -> bytes:
        return json.dumps(self.payload, indent=2).encode()


class StripeApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        error: dict[str, Any] = {"type": type, "message": message}
        if code is not None:
            error["code"] = code
        if param is not None:
            error["param"] = param
        self.answer = Answer(status, {"error": error})


@dataclass
class Recorded:
    method: str
    path: str
    params: dict[str, Any]
    headers: dict[str, str]


def decode_form(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's form encoding back into objects: `a[b][0][c]=v` is `{"a": {"b": [{"c":
    "v"}]}}`; `a[]=v` appends."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = [key.split("[", 1)[0], *re.findall(r"\[([^\]]*)\]", key)]
        node: Any = root
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            if part == "":
                part = str(len(node))
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, {})
    decoded: dict[str, Any] = _lists(root)
    return decoded


def _lists(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    converted = {key: _lists(value) for key, value in node.items()}
    if converted and all(key.isdigit() for key in converted):
        return [converted[key] for key in sorted(converted, key=int)]
    return converted


def _new_id(prefix: str) -> str:
    return f"{prefix}_test_{secrets.token_hex(12)}"


class FakeStripe:
    """Stripe's Checkout Sessions, PaymentIntents, Charges and Refunds, in memory."""

    def __init__(self, secret_key: str = SECRET_KEY, webhook_secret: str = WEBHOOK_SECRET) -> None:
        self.secret_key = secret_key
        self.webhook_secret = webhook_secret
        self.lock = threading.RLock()
        self.sessions: dict[str, dict[str, Any]] = {}
        self.payment_intents: dict[str, dict[str, Any]] = {}
        self.charges: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.requests: list[Recorded] = []
        self.failures: list[StripeApiError] = []
        self.hang_ups = 0
        self.next_refund_status = "succeeded"
        self._idempotent: dict[str, tuple[str, str, dict[str, Any], Answer]] = {}
        # What a session keeps that its API object does not show.
        self._session_extras: dict[str, dict[str, Any]] = {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {key.lower(): value for key, value in self.headers.items()}
                answer = outer.handle(self.command, self.path, headers, body)
                if answer is None:  # hang up without answering
                    self.close_connection = True
                    return
                data = answer.body()
                self.send_response(answer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Request-Id", "req_" + secrets.token_hex(7))
                self.send_header("Stripe-Version", headers.get("stripe-version", API_VERSION))
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the tests read what they need from the fake."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    # Lifecycle -------------------------------------------------------------------------

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

    # Test controls ---------------------------------------------------------------------

    def fail_next(
        self,
        status: int,
        message: str = "failed",
        *,
        type: str = "api_error",
        code: str | None = None,
    ) -> None:
        """The next API request answers this Stripe error instead."""
        with self.lock:
            self.failures.append(StripeApiError(status, message, type=type, code=code))

    def hang_up_next(self) -> None:
        """The next API request gets no answer: the connection drops."""
        with self.lock:
            self.hang_ups += 1

    def calls(self, method: str, path_prefix: str) -> list[Recorded]:
        with self.lock:
            return [
                r for r in self.requests if r.method == method and r.path.startswith(path_prefix)
            ]

    # HTTP ------------------------------------------------------------------------------

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer | None:
        route, _, query = path.partition("?")
        pairs = urllib.parse.parse_qsl(
            query if method == "GET" else body.decode(), keep_blank_values=True
        )
        params = decode_form(pairs)
        with self.lock:
            self.requests.append(Recorded(method, route, params, headers))
            try:
                self._authenticate(headers)
                if self.hang_ups:
                    self.hang_ups -= 1
                    return None
                if self.failures:
                    raise self.failures.pop(0)
                if method == "POST" and "idempotency-key" in headers:
                    return self._idempotent_answer(headers["idempotency-key"], route, params)
                return self._route(method, route, params)
            except StripeApiError as error:
                return error.answer

    def _authenticate(self, headers: Mapping[str, str]) -> None:
        authorization = headers.get("authorization", "")
        key = None
        if authorization.startswith("Bearer "):
            key = authorization.removeprefix("Bearer ")
        elif authorization.startswith("Basic "):
            key = base64.b64decode(authorization.removeprefix("Basic ")).decode().split(":")[0]
        if not key:
            raise StripeApiError(
                401,
                "You did not provide an API key. You need to provide your API key in the "
                "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
                "YOUR_SECRET_KEY').",
            )
        if key != self.secret_key:
            raise StripeApiError(
                401,
                f"Invalid API Key provided: {key[:8]}{'*' * 8}{key[-4:]}",
                code="api_key_invalid",
            )

    def _idempotent_answer(self, key: str, route: str, params: dict[str, Any]) -> Answer:
        known = self._idempotent.get(key)
        if known is not None:
            _, known_route, known_params, answer = known
            if known_route != route or known_params != params:
                raise StripeApiError(
                    400,
                    "Keys for idempotent requests can only be used with the same parameters "
                    "they were first used with. Try using a key other than "
                    f"'{key}' if you meant to execute a different request.",
                    type="idempotency_error",
                )
            return Answer(answer.status, answer.payload, {"Idempotent-Replayed": "true"})
        answer = self._route("POST", route, params)
        # Stripe saves a result once the endpoint ran; a refused request is not saved.
        self._idempotent[key] = ("POST", route, params, answer)
        return answer

    def _route(self, method: str, route: str, params: dict[str, Any]) -> Answer:
        if method == "POST" and route == "/v1/checkout/sessions":
            return Answer(200, self._create_session(params))
        if method == "GET" and route == "/v1/checkout/sessions":
            return Answer(200, self._list_sessions(params))
        match = re.fullmatch(r"/v1/checkout/sessions/([^/]+)(/expire)?", route)
        if match and method == "GET" and not match.group(2):
            return Answer(200, self._expanded(self._session(match.group(1)), params))
        if match and method == "POST" and match.group(2):
            self._expire(self._session(match.group(1)))
            return Answer(200, copy.deepcopy(self.sessions[match.group(1)]))
        if method == "POST" and route == "/v1/refunds":
            return Answer(200, self._create_refund(params))
        match = re.fullmatch(r"/v1/payment_intents/([^/]+)", route)
        if match and method == "GET":
            intent = self.payment_intents.get(match.group(1))
            if intent is None:
                raise self._missing("payment_intent", match.group(1), "intent")
            return Answer(200, copy.deepcopy(intent))
        raise StripeApiError(
            404, f"Unrecognized request URL ({method}: {route}).", code="resource_missing"
        )

    @staticmethod
    def _missing(kind: str, object_id: str, param: str) -> StripeApiError:
        return StripeApiError(
            404, f"No such {kind}: '{object_id}'", code="resource_missing", param=param
        )

    def _session(self, session_id: str) -> dict[str, Any]:
        session = self.sessions.get(session_id)
        if session is None:
            raise self._missing("checkout.session", session_id, "session")
        return session

    def _list_sessions(self, params: dict[str, Any]) -> dict[str, Any]:
        """`GET /v1/checkout/sessions`, newest first, filtered by `payment_intent`."""
        limit = self._integer(params.get("limit", "10"), "limit")
        if not 1 <= limit <= 100:
            raise StripeApiError(400, "Limit must be between 1 and 100.", param="limit")
        found = [
            session
            for session in reversed(self.sessions.values())
            if "payment_intent" not in params
            or session["payment_intent"] == params["payment_intent"]
        ]
        return {
            "object": "list",
            "data": copy.deepcopy(found[:limit]),
            "has_more": len(found) > limit,
            "url": "/v1/checkout/sessions",
        }

    def _expanded(self, session: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        answer = copy.deepcopy(session)
        expand = params.get("expand") or []
        if "payment_intent" in expand and answer["payment_intent"]:
            answer["payment_intent"] = copy.deepcopy(self.payment_intents[answer["payment_intent"]])
        return answer

    # Checkout Sessions -----------------------------------------------------------------

    @staticmethod
    def _required(params: Mapping[str, Any], name: str, param: str | None = None) -> Any:
        value = params.get(name)
        if value in (None, ""):
            raise StripeApiError(
                400,
                f"Missing required param: {param or name}.",
                code="parameter_missing",
                param=param or name,
            )
        return value

    @staticmethod
    def _integer(value: Any, param: str) -> int:
        if not isinstance(value, str) or not re.fullmatch(r"-?\d+", value):
            raise StripeApiError(
                400, f"Invalid integer: {value}", code="parameter_invalid_integer", param=param
            )
        return int(value)

    @staticmethod
    def _check_amount(amount: int, currency: str, param: str) -> None:
        if amount < 0:
            raise StripeApiError(
                400,
                "This value must be greater than or equal to 0.",
                code="parameter_invalid_integer",
                param=param,
            )
        if currency in THREE_DECIMAL and amount % 10:
            raise StripeApiError(
                400,
                f"Invalid amount. Three-decimal currency {currency.upper()} amounts must end "
                "in 0. See https://stripe.com/docs/currencies#three-decimal for more information.",
                code="invalid_amount",
                param=param,
            )
        if currency == "isk" and amount % 100:
            raise StripeApiError(
                400,
                "Invalid amount. Currency ISK has become effectively zero-decimal and charged "
                "amounts must be evenly divisible by 100. See "
                "https://stripe.com/docs/currencies#special-cases for more information.",
                code="invalid_charge_amount_no_decimal_compatible",
                param=param,
            )

    @staticmethod
    def _metadata(params: Mapping[str, Any], param: str) -> dict[str, str]:
        metadata = params.get(param) or {}
        if not isinstance(metadata, dict):
            raise StripeApiError(400, "Invalid object", param=param)
        for key, value in metadata.items():
            if len(key) > 40 or len(value) > 500:
                raise StripeApiError(
                    400,
                    "Metadata keys can be at most 40 characters and values at most 500.",
                    param=f"{param}[{key}]",
                )
        return dict(metadata)

    def _create_session(self, params: dict[str, Any]) -> dict[str, Any]:
        mode = self._required(params, "mode")
        if mode != "payment":
            raise StripeApiError(
                400, f"This fake only has `payment` mode, not {mode!r}.", param="mode"
            )
        items = self._required(params, "line_items")
        if not isinstance(items, list) or not items:
            raise StripeApiError(400, "Invalid array", param="line_items")
        currency = None
        total = 0
        line_items = []
        for index, item in enumerate(items):
            prefix = f"line_items[{index}]"
            price_data = self._required(item, "price_data", f"{prefix}[price_data]")
            item_currency = self._required(
                price_data, "currency", f"{prefix}[price_data][currency]"
            )
            if not re.fullmatch(r"[a-z]{3}", item_currency):
                raise StripeApiError(
                    400,
                    f"Invalid currency: {item_currency}. Stripe currently supports these "
                    "currencies: usd, aed, afn, ... (three-letter ISO codes in lowercase)",
                    param=f"{prefix}[price_data][currency]",
                )
            if currency is not None and item_currency != currency:
                raise StripeApiError(
                    400,
                    "All line items must have the same currency.",
                    param=f"{prefix}[price_data][currency]",
                )
            currency = item_currency
            unit_amount = self._integer(
                self._required(price_data, "unit_amount", f"{prefix}[price_data][unit_amount]"),
                f"{prefix}[price_data][unit_amount]",
            )
            self._check_amount(unit_amount, item_currency, f"{prefix}[price_data][unit_amount]")
            product = self._required(
                price_data, "product_data", f"{prefix}[price_data][product_data]"
            )
            name = self._required(product, "name", f"{prefix}[price_data][product_data][name]")
            quantity = self._integer(
                self._required(item, "quantity", f"{prefix}[quantity]"), f"{prefix}[quantity]"
            )
            if quantity < 1:
                raise StripeApiError(
                    400, "Quantity must be at least 1.", param=f"{prefix}[quantity]"
                )
            total += unit_amount * quantity
            line_items.append({"name": name, "unit_amount": unit_amount, "quantity": quantity})
        assert currency is not None
        now = int(time.time())
        expires_at = now + 24 * 60 * 60
        if "expires_at" in params:
            expires_at = self._integer(params["expires_at"], "expires_at")
            if not now + MIN_EXPIRY_SECONDS <= expires_at <= now + MAX_EXPIRY_SECONDS:
                raise StripeApiError(
                    400,
                    "The `expires_at` timestamp must be between 30 minutes and 24 hours "
                    "from Checkout Session creation.",
                    param="expires_at",
                )
        for url_param in ("success_url", "cancel_url"):
            url = params.get(url_param)
            if url is not None and not re.fullmatch(r"https?://\S+", url):
                raise StripeApiError(400, "Not a valid URL", code="url_invalid", param=url_param)
        intent_data = params.get("payment_intent_data") or {}
        session_id = "cs_test_" + secrets.token_hex(24)
        session = {
            "id": session_id,
            "object": "checkout.session",
            "amount_subtotal": total,
            "amount_total": total,
            "cancel_url": params.get("cancel_url"),
            "client_reference_id": params.get("client_reference_id"),
            "created": now,
            "currency": currency,
            "customer": None,
            "customer_details": None,
            "customer_email": params.get("customer_email"),
            "expires_at": expires_at,
            "livemode": False,
            "locale": params.get("locale"),
            "metadata": self._metadata(params, "metadata"),
            "mode": "payment",
            # Since API version 2022-08-01 the PaymentIntent is made when the buyer pays.
            "payment_intent": None,
            "payment_method_types": ["card"],
            "payment_status": "unpaid",
            "status": "open",
            "success_url": params.get("success_url"),
            "ui_mode": "hosted",
            "url": f"{self.base_url}/c/pay/{session_id}",
        }
        self.sessions[session_id] = session
        self._session_extras[session_id] = {
            "line_items": line_items,
            "intent_metadata": self._metadata(intent_data, "metadata")
            if isinstance(intent_data, dict)
            else {},
        }
        return copy.deepcopy(session)

    def _expire(self, session: dict[str, Any]) -> dict[str, Any]:
        if session["status"] != "open":
            raise StripeApiError(
                400,
                'Only Checkout Sessions with a status in ["open"] can be expired. This '
                f'Checkout Session has a status of "{session["status"]}".',
            )
        session["status"] = "expired"
        return self._event("checkout.session.expired", session)

    # Buyer and Dashboard -----------------------------------------------------------------

    def _intent_for(self, session: dict[str, Any], status: str) -> dict[str, Any]:
        intent_id = "pi_" + secrets.token_hex(12)
        intent = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": session["amount_total"],
            "amount_received": 0,
            "currency": session["currency"],
            "created": int(time.time()),
            "latest_charge": None,
            "livemode": False,
            "metadata": copy.deepcopy(self._session_extras[session["id"]]["intent_metadata"]),
            "status": status,
        }
        self.payment_intents[intent_id] = intent
        session["payment_intent"] = intent_id
        session["customer_details"] = {
            "email": session["customer_email"] or "buyer@example.com",
            "name": "Test Buyer",
        }
        return intent

    def _capture(self, intent: dict[str, Any]) -> dict[str, Any]:
        charge_id = "ch_" + secrets.token_hex(12)
        charge = {
            "id": charge_id,
            "object": "charge",
            "amount": intent["amount"],
            "amount_captured": intent["amount"],
            "amount_refunded": 0,
            "captured": True,
            "created": int(time.time()),
            "currency": intent["currency"],
            "livemode": False,
            # The PaymentIntent's metadata is on the charges it makes.
            "metadata": copy.deepcopy(intent["metadata"]),
            "paid": True,
            "payment_intent": intent["id"],
            "refunded": False,
            "status": "succeeded",
        }
        self.charges[charge_id] = charge
        intent["status"] = "succeeded"
        intent["amount_received"] = intent["amount"]
        intent["latest_charge"] = charge_id
        return charge

    def _open(self, session_id: str) -> dict[str, Any]:
        session = self._session(session_id)
        if session["status"] != "open":
            raise ValueError(f"session {session_id} is {session['status']}")
        return session

    def pay(self, session_id: str) -> dict[str, Any]:
        """The buyer pays by card: the session completes paid. Returns the
        `checkout.session.completed` event."""
        with self.lock:
            session = self._open(session_id)
            self._capture(self._intent_for(session, "processing"))
            session["status"] = "complete"
            session["payment_status"] = "paid"
            return self._event("checkout.session.completed", session)

    def pay_later(self, session_id: str) -> dict[str, Any]:
        """The buyer picks a delayed method (a bank debit): the session completes unpaid.
        Returns the `checkout.session.completed` event; `settle` ends it."""
        with self.lock:
            session = self._open(session_id)
            self._intent_for(session, "processing")
            session["status"] = "complete"
            return self._event("checkout.session.completed", session)

    def settle(self, session_id: str, *, succeeded: bool) -> dict[str, Any]:
        """The delayed payment clears or fails; returns
        `checkout.session.async_payment_succeeded` or `_failed`."""
        with self.lock:
            session = self._session(session_id)
            intent = self.payment_intents[session["payment_intent"]]
            if succeeded:
                self._capture(intent)
                session["payment_status"] = "paid"
                return self._event("checkout.session.async_payment_succeeded", session)
            intent["status"] = "requires_payment_method"
            intent["last_payment_error"] = {
                "type": "card_error",
                "code": "payment_method_provider_decline",
            }
            return self._event("checkout.session.async_payment_failed", session)

    def expire(self, session_id: str) -> dict[str, Any]:
        """The session's time runs out; returns `checkout.session.expired`."""
        with self.lock:
            return self._expire(self._session(session_id))

    def refund_in_dashboard(self, session_id: str, amount: int | None = None) -> dict[str, Any]:
        """Someone refunds the payment in the Dashboard; returns `charge.refunded`."""
        with self.lock:
            session = self._session(session_id)
            self._refund(session["payment_intent"], amount, metadata={}, reason=None)
            return self.events[-1]

    # Refunds -----------------------------------------------------------------------------

    def _create_refund(self, params: dict[str, Any]) -> dict[str, Any]:
        intent_id = params.get("payment_intent")
        if not intent_id:
            charge_id = self._required(params, "charge")
            charge = self.charges.get(charge_id)
            if charge is None:
                raise self._missing("charge", charge_id, "charge")
            intent_id = charge["payment_intent"]
        if intent_id not in self.payment_intents:
            raise self._missing("payment_intent", intent_id, "payment_intent")
        amount = self._integer(params["amount"], "amount") if "amount" in params else None
        reason = params.get("reason")
        if reason is not None and reason not in (
            "duplicate",
            "fraudulent",
            "requested_by_customer",
        ):
            raise StripeApiError(400, f"Invalid reason: {reason}", param="reason")
        return self._refund(
            intent_id, amount, metadata=self._metadata(params, "metadata"), reason=reason
        )

    def _refund(
        self,
        intent_id: str | None,
        amount: int | None,
        *,
        metadata: dict[str, str],
        reason: str | None,
    ) -> dict[str, Any]:
        intent = self.payment_intents.get(intent_id or "")
        if intent is None or intent["latest_charge"] is None:
            raise StripeApiError(
                400,
                f"This PaymentIntent ({intent_id}) does not have a successful charge to refund.",
                code="charge_not_refundable",
            )
        charge = self.charges[intent["latest_charge"]]
        remaining = charge["amount"] - charge["amount_refunded"]
        if remaining == 0:
            raise StripeApiError(
                400,
                f"Charge {charge['id']} has already been refunded.",
                code="charge_already_refunded",
            )
        amount = remaining if amount is None else amount
        if amount <= 0:
            raise StripeApiError(400, "Refund amount must be positive.", param="amount")
        if amount > remaining:
            raise StripeApiError(
                400,
                f"Refund amount ({amount}) is greater than unrefunded amount on charge ({remaining})",
                code="amount_too_large",
                param="amount",
            )
        self._check_amount(amount, charge["currency"], "amount")
        status = self.next_refund_status
        self.next_refund_status = "succeeded"
        refund = {
            "id": "re_" + secrets.token_hex(12),
            "object": "refund",
            "amount": amount,
            "charge": charge["id"],
            "created": int(time.time()),
            "currency": charge["currency"],
            "failure_reason": None,
            "metadata": metadata,
            "payment_intent": intent["id"],
            "reason": reason,
            "status": status,
        }
        self.refunds[refund["id"]] = refund
        if status in ("succeeded", "pending"):
            charge["amount_refunded"] += amount
            charge["refunded"] = charge["amount_refunded"] == charge["amount"]
            self._event("charge.refunded", charge)
        return copy.deepcopy(refund)

    # Events --------------------------------------------------------------------------------

    def _event(self, event_type: str, obj: Mapping[str, Any]) -> dict[str, Any]:
        event = {
            "id": "evt_" + secrets.token_hex(12),
            "object": "event",
            "api_version": API_VERSION,
            "created": int(time.time()),
            "data": {"object": copy.deepcopy(dict(obj))},
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": event_type,
        }
        self.events.append(event)
        return event

    def event(self, event_type: str, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Any other event Stripe may send (`payment_intent.created`, ...)."""
        with self.lock:
            return self._event(event_type, obj)

    def latest_event(self, event_type: str) -> dict[str, Any]:
        with self.lock:
            return next(e for e in reversed(self.events) if e["type"] == event_type)

    def signed_webhook(
        self,
        event: Mapping[str, Any],
        *,
        timestamp: int | None = None,
        secret: str | None = None,
    ) -> tuple[bytes, dict[str, str], dict[str, str]]:
        """The delivery Stripe makes: the body bytes, the headers (lower case, as the
        endpoint reads them) and the query (none)."""
        body = json.dumps(event, indent=2).encode()
        signed_at = int(time.time()) if timestamp is None else timestamp
        signature = hmac.new(
            (secret or self.webhook_secret).encode(),
            f"{signed_at}.".encode() + body,
            hashlib.sha256,
        ).hexdigest()
        headers = {
            "content-type": "application/json; charset=utf-8",
            "user-agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            "stripe-signature": f"t={signed_at},v1={signature}",
        }
        return body, headers, {}

    def send_webhook(
        self,
        url: str,
        event: Mapping[str, Any],
        *,
        timestamp: int | None = None,
        secret: str | None = None,
    ) -> httpx.Response:
        """POST the signed event to `url`, as Stripe delivers it."""
        body, headers, _ = self.signed_webhook(event, timestamp=timestamp, secret=secret)
        return httpx.post(url, content=body, headers=headers, timeout=10)


__all__ = ["API_VERSION", "SECRET_KEY", "WEBHOOK_SECRET", "FakeStripe", "decode_form"]
