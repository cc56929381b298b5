"""Web Push (RFC 8030) with `pywebpush`: payloads encrypted for the browser's
subscription (RFC 8291, aes128gcm) and signed with the server's VAPID key (RFC 8292).

The VAPID key comes from VAPID_PRIVATE_KEY in production; elsewhere one is generated
once into the data dir, so a development server keeps its subscriptions across
restarts. Browsers subscribe with the public key (`application_server_key`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import structlog
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from py_vapid import Vapid02
from pywebpush import WebPushException, webpush

from lyceum.config import Settings
from lyceum.kit.delivery import PermanentDeliveryError, TransientDeliveryError

logger = structlog.get_logger("lyceum.webpush")

DEV_VAPID_KEY_FILE = "vapid_private_key"
# The contact push services see when VAPID_SUBJECT is unset (outside production only).
DEV_VAPID_SUBJECT = "mailto:no-reply@lyceum.local"
PUSH_TIMEOUT_SECONDS = 10.0
# How long a push service keeps a message for a device that is offline.
PUSH_TTL_SECONDS = 24 * 3600


class SubscriptionGone(PermanentDeliveryError):
    """The push service no longer knows the subscription (404/410), or its keys cannot
    be encrypted for: forget it."""


# RFC 8291: the browser's key is an uncompressed P-256 point, its secret 16 bytes.
P256_POINT_BYTES = 65
AUTH_SECRET_BYTES = 16


@dataclass(frozen=True)
class Subscription:
    endpoint: str
    p256dh: str
    auth: str


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    stripped = text.rstrip("=")
    try:
        return base64.b64decode(
            stripped + "=" * (-len(stripped) % 4), altchars=b"-_", validate=True
        )
    except binascii.Error:
        raise ValueError("must be base64url") from None


def check_p256dh(value: str) -> str:
    """`value` if it is a browser's public key (base64url of an uncompressed point on
    P-256, as `PushSubscription.toJSON()` gives it); ValueError saying why not."""
    raw = _b64url_decode(value)
    if len(raw) != P256_POINT_BYTES or raw[0] != 4:
        raise ValueError(
            f"must be an uncompressed P-256 point ({P256_POINT_BYTES} bytes starting with "
            f"0x04, base64url); this is {len(raw)} bytes"
        )
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
    except ValueError:
        raise ValueError("must be a point on the P-256 curve; this one is not") from None
    return value


def check_auth(value: str) -> str:
    """`value` if it is a subscription's authentication secret (16 bytes, base64url);
    ValueError saying why not."""
    raw = _b64url_decode(value)
    if len(raw) != AUTH_SECRET_BYTES:
        raise ValueError(
            f"must be a {AUTH_SECRET_BYTES}-byte secret (base64url); this is {len(raw)} bytes"
        )
    return value


def unusable_keys(subscription: Subscription) -> str | None:
    """Why no message can be encrypted for `subscription`'s keys, or None."""
    for name, check, value in (
        ("p256dh", check_p256dh, subscription.p256dh),
        ("auth", check_auth, subscription.auth),
    ):
        try:
            check(value)
        except ValueError as error:
            return f"{name} {error}"
    return None


def _raw_private_key(key: ec.EllipticCurvePrivateKey) -> str:
    return _b64url(key.private_numbers().private_value.to_bytes(32, "big"))


def load_vapid(settings: Settings) -> Vapid02:
    """The VAPID key: VAPID_PRIVATE_KEY, or the development key in the data dir
    (generated on first use, readable by its owner only)."""
    if settings.vapid_private_key is not None:
        return Vapid02.from_string(settings.vapid_private_key.get_secret_value())
    path: Path = settings.data_dir / DEV_VAPID_KEY_FILE
    if not path.exists():
        vapid = Vapid02()
        vapid.generate_keys()
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}")
        temporary.write_text(_raw_private_key(vapid.private_key), encoding="utf-8")
        temporary.chmod(0o600)
        temporary.replace(path)
    return Vapid02.from_string(path.read_text(encoding="utf-8").strip())


def topic_for(key: str) -> str:
    """The push `Topic` header of a logical message (at most 32 URL-safe characters): a
    push service replaces an undelivered message with a newer one of the same topic, so
    a send repeated after a crash reaches the browser once."""
    return _b64url(hashlib.sha256(key.encode()).digest())[:32]


class WebPushSender:
    """Encrypts and posts push messages with the process's VAPID key."""

    def __init__(self, settings: Settings) -> None:
        self.vapid = load_vapid(settings)
        self.subject = settings.vapid_subject or DEV_VAPID_SUBJECT

    @property
    def public_key(self) -> str:
        """The application server key browsers subscribe with (base64url, uncompressed
        P-256 point)."""
        point = self.vapid.public_key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        return _b64url(point)

    def _send(self, subscription: Subscription, payload: str, topic: str) -> int:
        problem = unusable_keys(subscription)
        if problem is not None:
            # Stored before keys were checked on the way in: no attempt can ever
            # encrypt for it.
            raise SubscriptionGone(f"subscription keys unusable: {problem}")
        try:
            response = webpush(
                subscription_info={
                    "endpoint": subscription.endpoint,
                    "keys": {"p256dh": subscription.p256dh, "auth": subscription.auth},
                },
                data=payload,
                vapid_private_key=self.vapid,
                vapid_claims={"sub": self.subject},
                timeout=PUSH_TIMEOUT_SECONDS,
                ttl=PUSH_TTL_SECONDS,
                headers={"Topic": topic, "Urgency": "normal"},
            )
        except WebPushException as error:
            raise delivery_error(error) from error
        except OSError as error:  # requests' connection errors and timeouts
            raise TransientDeliveryError(f"push service unreachable: {error}") from error
        status: int = getattr(response, "status_code", 201)
        return status

    async def send(self, subscription: Subscription, payload: str, *, topic: str) -> None:
        """Encrypt `payload` for `subscription` and hand it to its push service."""
        status = await asyncio.to_thread(self._send, subscription, payload, topic)
        logger.info("web_push_sent", endpoint=subscription.endpoint[:80], status=status)


def delivery_error(error: WebPushException) -> PermanentDeliveryError | TransientDeliveryError:
    status = error.status_code
    reason = f"push service answered {status}: {error.message}"
    if status in (404, 410):
        return SubscriptionGone(reason)
    if status is None or status == 429 or status >= 500:
        return TransientDeliveryError(reason)
    return PermanentDeliveryError(reason)


__all__ = [
    "Subscription",
    "SubscriptionGone",
    "WebPushSender",
    "check_auth",
    "check_p256dh",
    "load_vapid",
    "topic_for",
]
