"""Fake notification providers over real HTTP on loopback ports, each speaking its
provider's wire protocol closely enough for the official clients:

- `FakeTwilio`: the Messages resource of Twilio's REST API (HTTP basic auth with the
  account sid and auth token, form fields, Twilio-shaped JSON answers and errors), for
  the `twilio` SDK;
- `FakePushService`: a Web Push service (RFC 8030) that checks the VAPID signature
  (RFC 8292) and decrypts each message (RFC 8291, `http_ece`) with the private key of a
  subscription it issued, as a browser would;
- `FakeFcm`: Firebase Cloud Messaging HTTP v1 and the OAuth2 token endpoint a service
  account trades its signed JWT assertion at (checked against the account's key).

Each is a `ThreadingHTTPServer` in a background thread; use them as context managers.
"""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import json
import secrets
import threading
import urllib.parse
from dataclasses import dataclass
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import http_ece
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from py_vapid import Vapid02


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass
class Answer:
    status: int
    body: bytes = b""
    content_type: str = "application/json"


class _FakeServer:
    """A threaded HTTP server whose `handle(method, path, headers, body)` answers."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
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
                self.send_response(answer.status)
                self.send_header("Content-Type", answer.content_type)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            do_GET = do_POST = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the tests read what they need from the fake."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer | None:
        raise NotImplementedError

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


def _json(status: int, payload: Any) -> Answer:
    return Answer(status, json.dumps(payload).encode())


# Twilio ------------------------------------------------------------------------------


@dataclass
class SentSms:
    sid: str
    to: str
    sender: str
    body: str
    at: dt.datetime
    created: str


class FakeTwilio(_FakeServer):
    """`POST /2010-04-01/Accounts/{sid}/Messages.json` as Twilio answers it."""

    def __init__(self, account_sid: str, auth_token: str) -> None:
        super().__init__()
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.messages: list[SentSms] = []
        self.failures: list[tuple[int, int, str]] = []
        self.hang_ups = 0
        self.lists: list[dict[str, str]] = []

    def hang_up_next(self) -> None:
        """The next message is accepted (and sent), but the connection drops before
        the answer: the sender cannot know it went out."""
        with self.lock:
            self.hang_ups += 1

    def fail_next(self, status: int, code: int, message: str = "failed") -> None:
        """The next message request answers this Twilio error instead."""
        with self.lock:
            self.failures.append((status, code, message))

    def _error(self, status: int, code: int, message: str) -> Answer:
        return _json(
            status,
            {
                "code": code,
                "message": message,
                "more_info": f"https://www.twilio.com/docs/errors/{code}",
                "status": status,
            },
        )

    def _resource(self, message: SentSms) -> dict[str, Any]:
        base = f"/2010-04-01/Accounts/{self.account_sid}/Messages"
        return {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": message.body,
            "date_created": message.created,
            "date_sent": None,
            "date_updated": message.created,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": None if message.sender.startswith("MG") else message.sender,
            "messaging_service_sid": message.sender if message.sender.startswith("MG") else None,
            "num_media": "0",
            "num_segments": "1",
            "price": None,
            "price_unit": "USD",
            "sid": message.sid,
            "status": "queued",
            "subresource_uris": {"media": f"{base}/{message.sid}/Media.json"},
            "to": message.to,
            "uri": f"{base}/{message.sid}.json",
        }

    def _list(self, query: dict[str, str]) -> Answer:
        """`GET Messages.json?To=...&DateSent>=...`: newest first, one page."""
        with self.lock:
            self.lists.append(query)
            found = [m for m in self.messages if m.to == query.get("To", m.to)]
        since = query.get("DateSent>")
        if since:
            after = dt.datetime.fromisoformat(since.replace("Z", "+00:00"))
            found = [m for m in found if m.at >= after]
        uri = f"/2010-04-01/Accounts/{self.account_sid}/Messages.json"
        return _json(
            200,
            {
                "messages": [self._resource(m) for m in reversed(found)],
                "end": max(len(found) - 1, 0),
                "first_page_uri": uri,
                "next_page_uri": None,
                "page": 0,
                "page_size": 50,
                "previous_page_uri": None,
                "start": 0,
                "uri": uri,
            },
        )

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer | None:
        expected = f"/2010-04-01/Accounts/{self.account_sid}/Messages.json"
        route, _, query_text = path.partition("?")
        if route != expected or method not in ("GET", "POST"):
            return self._error(404, 20404, f"The requested resource {path} was not found")
        credentials = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if headers.get("authorization") != f"Basic {credentials}":
            return self._error(401, 20003, "Authenticate")
        if method == "GET":
            query = {key: values[0] for key, values in urllib.parse.parse_qs(query_text).items()}
            return self._list(query)
        if not headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return self._error(400, 20001, "Expected a form body")
        form = {key: values[0] for key, values in urllib.parse.parse_qs(body.decode()).items()}
        if "To" not in form or "Body" not in form:
            return self._error(400, 21604, "A 'To' phone number and a 'Body' are required.")
        if "From" not in form and "MessagingServiceSid" not in form:
            return self._error(400, 21603, "A 'From' or 'MessagingServiceSid' is required.")
        with self.lock:
            if self.failures:
                return self._error(*self.failures.pop(0))
            sender = form.get("From") or form["MessagingServiceSid"]
            message = SentSms(
                "SM" + secrets.token_hex(16),
                form["To"],
                sender,
                form["Body"],
                dt.datetime.now(dt.UTC),
                formatdate(usegmt=True),
            )
            self.messages.append(message)
            if self.hang_ups:
                self.hang_ups -= 1
                return None
        return _json(201, self._resource(message))


# Web Push ----------------------------------------------------------------------------


@dataclass
class BrowserSubscription:
    """What a browser holds for one subscription: its keys, private one included."""

    id: str
    endpoint: str
    private_key: ec.EllipticCurvePrivateKey
    auth_secret: bytes

    def to_json(self) -> dict[str, Any]:
        """`PushSubscription.toJSON()`, as the browser posts it to the server."""
        return {
            "endpoint": self.endpoint,
            "expirationTime": None,
            "keys": browser_keys(self.private_key, self.auth_secret),
        }


def browser_keys(
    private_key: ec.EllipticCurvePrivateKey | None = None, auth_secret: bytes | None = None
) -> dict[str, str]:
    """A subscription's `keys` as a browser gives them (new ones unless given): its
    public key, an uncompressed P-256 point, and its 16-byte secret, base64url."""
    key = private_key or ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return {"p256dh": _b64url(public), "auth": _b64url(auth_secret or secrets.token_bytes(16))}


@dataclass
class PushDelivery:
    subscription_id: str
    headers: dict[str, str]
    payload: dict[str, Any]


class FakePushService(_FakeServer):
    """Receives `POST /push/{id}`, checks the VAPID header, decrypts the payload."""

    def __init__(self) -> None:
        super().__init__()
        self.subscriptions: dict[str, BrowserSubscription] = {}
        self.delivered: list[PushDelivery] = []
        self.gone: set[str] = set()
        self.failures: dict[str, list[int]] = {}
        self.errors: list[str] = []

    def subscribe(self) -> BrowserSubscription:
        subscription_id = secrets.token_hex(8)
        subscription = BrowserSubscription(
            id=subscription_id,
            endpoint=f"{self.base_url}/push/{subscription_id}",
            private_key=ec.generate_private_key(ec.SECP256R1()),
            auth_secret=secrets.token_bytes(16),
        )
        self.subscriptions[subscription_id] = subscription
        return subscription

    def fail_next(self, subscription: BrowserSubscription, status: int) -> None:
        with self.lock:
            self.failures.setdefault(subscription.id, []).append(status)

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        subscription_id = path.removeprefix("/push/")
        subscription = self.subscriptions.get(subscription_id)
        if method != "POST" or subscription is None or subscription_id in self.gone:
            return Answer(410 if subscription is not None else 404, b"")
        with self.lock:
            pending = self.failures.get(subscription_id)
            if pending:
                return Answer(pending.pop(0), b"")
        if len(body) > 4096:  # RFC 8030: what every push service must accept, no more
            return Answer(413, b"")
        try:
            if not Vapid02.verify(headers.get("authorization", "")):
                raise ValueError("VAPID signature does not verify")
            if headers.get("content-encoding") != "aes128gcm":
                raise ValueError(f"content-encoding {headers.get('content-encoding')}")
            if "ttl" not in headers:
                raise ValueError("no TTL header")
            plaintext = http_ece.decrypt(
                body,
                private_key=subscription.private_key,
                auth_secret=subscription.auth_secret,
                version="aes128gcm",
            )
            payload = json.loads(plaintext)
        except Exception as error:  # recorded: the test reports what the fake refused
            self.errors.append(repr(error))
            return Answer(400, b"")
        with self.lock:
            self.delivered.append(PushDelivery(subscription_id, headers, payload))
        return Answer(201, b"")


# Firebase Cloud Messaging ------------------------------------------------------------

GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"


@dataclass
class FcmMessage:
    project: str
    message: dict[str, Any]


class FakeFcm(_FakeServer):
    """The FCM v1 send endpoint and the OAuth2 token endpoint of its service account."""

    def __init__(self, project: str = "lyceum-test") -> None:
        super().__init__()
        self.project = project
        self.client_email = f"lyceum@{project}.iam.gserviceaccount.com"
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.tokens_issued: list[str] = []
        self.assertions: list[dict[str, Any]] = []
        self.messages: list[FcmMessage] = []
        self.unregistered: set[str] = set()
        self._names = itertools.count(1)

    def service_account_file(self, directory: Path) -> Path:
        """The service-account JSON Google hands out, pointing at this fake."""
        pem = self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        path = directory / "firebase-service-account.json"
        path.write_text(
            json.dumps(
                {
                    "type": "service_account",
                    "project_id": self.project,
                    "private_key_id": secrets.token_hex(20),
                    "private_key": pem,
                    "client_email": self.client_email,
                    "client_id": "1234567890",
                    "auth_uri": "https://accounts.google.com/o/oauth2/auth",
                    "token_uri": f"{self.base_url}/token",
                }
            ),
            encoding="utf-8",
        )
        return path

    def _token(self, body: bytes) -> Answer:
        form = {key: values[0] for key, values in urllib.parse.parse_qs(body.decode()).items()}
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return _json(400, {"error": "unsupported_grant_type"})
        try:
            claims = jwt.decode(
                form.get("assertion", ""),
                self.key.public_key(),
                algorithms=["RS256"],
                audience=GOOGLE_TOKEN_AUDIENCE,
                issuer=self.client_email,
            )
        except jwt.InvalidTokenError as error:
            return _json(400, {"error": "invalid_grant", "error_description": str(error)})
        if FCM_SCOPE not in str(claims.get("scope", "")).split():
            return _json(400, {"error": "invalid_scope"})
        token = "ya29.fake-" + secrets.token_urlsafe(24)
        with self.lock:
            self.assertions.append(claims)
            self.tokens_issued.append(token)
        return _json(200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"})

    def _error(self, status: int, google_status: str, fcm_code: str | None) -> Answer:
        details = (
            [
                {
                    "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                    "errorCode": fcm_code,
                }
            ]
            if fcm_code
            else []
        )
        return _json(
            status,
            {
                "error": {
                    "code": status,
                    "message": f"{fcm_code or google_status}",
                    "status": google_status,
                    "details": details,
                }
            },
        )

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        if method == "POST" and path == "/token":
            return self._token(body)
        if method != "POST" or path != f"/v1/projects/{self.project}/messages:send":
            return self._error(404, "NOT_FOUND", None)
        bearer = headers.get("authorization", "").removeprefix("Bearer ")
        if bearer not in self.tokens_issued:
            return self._error(401, "UNAUTHENTICATED", None)
        message = json.loads(body).get("message", {})
        if not isinstance(message.get("token"), str):
            return self._error(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT")
        if message["token"] in self.unregistered:
            return self._error(404, "NOT_FOUND", "UNREGISTERED")
        with self.lock:
            self.messages.append(FcmMessage(self.project, message))
            name = f"projects/{self.project}/messages/0:{next(self._names)}"
        return _json(200, {"name": name})


__all__ = [
    "BrowserSubscription",
    "FakeFcm",
    "FakePushService",
    "FakeTwilio",
]
