"""Webhook rules: registering endpoints (URL checks, the signing secret), fanning a
public event out to the endpoints subscribed to it, signing and sending one attempt
(Standard Webhooks), and what an attempt's outcome means (success, a retry on the
schedule, giving up, disabling the endpoint)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import secrets
import ssl
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.config import Settings
from lyceum.kit.errors import Conflict, Invalid, NotFound
from lyceum.kit.events import PublicEvent, catalogue
from lyceum.kit.metrics import WEBHOOK_DELIVERIES, WEBHOOK_DELIVERY_DURATION
from lyceum.kit.security import SecretBox
from lyceum.kit.ssrf import RefusedAddress, check_url, post
from lyceum.models.identity import User
from lyceum.models.webhooks import WebhookDelivery, WebhookDeliveryStatus, WebhookEndpoint
from lyceum.webhooks import schemas
from lyceum.webhooks.repository import WebhookRepository

TEST_EVENT = "webhook.test"
SECRET_PREFIX = "whsec_"  # noqa: S105 (the prefix, not a secret)
# After the first attempt fails, attempt n + 1 follows attempt n by RETRY_DELAYS[n - 1]:
# 8 attempts over about 28 hours, then the delivery is given up.
RETRY_DELAYS: tuple[dt.timedelta, ...] = (
    dt.timedelta(seconds=5),
    dt.timedelta(minutes=5),
    dt.timedelta(minutes=30),
    dt.timedelta(hours=2),
    dt.timedelta(hours=5),
    dt.timedelta(hours=10),
    dt.timedelta(hours=10),
)
# What is read of a receiver's answer, and kept in the log.
RESPONSE_BODY_BYTES = 2048
USER_AGENT = "Lyceum-Webhooks/1"
# Built once: creating a TLS context per attempt costs more than the attempt's own CPU.
TLS_CONTEXT = ssl.create_default_context()

Enqueue = Callable[[AsyncSession, WebhookDelivery], Awaitable[None]]


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def signature(secret: str, message_id: str, timestamp: int, body: str) -> str:
    """The `webhook-signature` value: `v1,` + base64 HMAC-SHA256, keyed by the secret's
    decoded bytes, of `id.timestamp.body`."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.{body}".encode()
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def encode(envelope: dict[str, object]) -> str:
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False)


def subscribable() -> set[str]:
    return {name for name in catalogue() if name != TEST_EVENT}


def endpoint_out(endpoint: WebhookEndpoint) -> schemas.EndpointOut:
    return schemas.EndpointOut.model_validate(endpoint, from_attributes=True)


def delivery_out(delivery: WebhookDelivery) -> schemas.WebhookDeliveryOut:
    return schemas.WebhookDeliveryOut.model_validate(delivery, from_attributes=True)


async def check_endpoint_url(url: str, settings: Settings) -> None:
    """422 for a URL Lyceum will not call: not http(s), plain http where private
    networks are not allowed, credentials in it, or a host on a refused address."""
    allow_private = settings.webhook_allow_private_networks
    try:
        parts = urlsplit(url)  # refuses a malformed [IPv6] host
        port_ok = parts.port != 0  # refuses ports above 65535
    except ValueError:
        raise Invalid("The URL is malformed.", field="body.url") from None
    if parts.scheme not in ("https", "http") or not parts.hostname or not port_ok:
        raise Invalid("The URL must be an absolute https:// URL.", field="body.url")
    if parts.scheme == "http" and not allow_private:
        raise Invalid("The URL must use https://.", field="body.url", slug="insecure-url")
    if parts.username or parts.password:
        raise Invalid("The URL must not carry credentials.", field="body.url")
    try:
        await check_url(url, allow_private=allow_private)
    except RefusedAddress as exc:
        raise Invalid(
            f"The URL is refused: {exc}. Webhooks go to public addresses only.",
            field="body.url",
            slug="refused-url",
        ) from exc


def check_event_types(event_types: Sequence[str]) -> list[str]:
    unknown = sorted(set(event_types) - subscribable())
    if unknown:
        raise Invalid(
            f"Unknown event type(s): {', '.join(unknown)}. Known: "
            f"{', '.join(sorted(subscribable()))}.",
            field="body.event_types",
        )
    return list(dict.fromkeys(event_types))


class WebhookService:
    def __init__(
        self,
        session: AsyncSession,
        settings: Settings,
        box: SecretBox,
        now: dt.datetime,
        enqueue: Enqueue,
    ) -> None:
        self.session = session
        self.repo = WebhookRepository(session)
        self.settings = settings
        self.box = box
        self.now = now
        self.enqueue = enqueue

    async def endpoint(
        self, endpoint_id: uuid.UUID, *, for_update: bool = False
    ) -> WebhookEndpoint:
        endpoint = await self.repo.endpoint(endpoint_id, for_update=for_update)
        if endpoint is None:
            raise NotFound("No such webhook endpoint.")
        return endpoint

    async def create(self, admin: User, data: schemas.EndpointIn) -> tuple[WebhookEndpoint, str]:
        event_types = check_event_types(data.event_types)
        await check_endpoint_url(data.url, self.settings)
        secret = new_secret()
        endpoint = WebhookEndpoint(
            url=data.url,
            description=data.description,
            event_types=event_types,
            is_active=data.is_active,
            secret=self.box.seal(secret),
            created_by=admin.id,
        )
        await self.repo.add(endpoint)
        await self.session.refresh(endpoint)
        return endpoint, secret

    async def listing(self, offset: int, limit: int) -> tuple[list[schemas.EndpointOut], int]:
        rows, total = await self.repo.endpoints(offset, limit)
        return [endpoint_out(row) for row in rows], total

    async def update(
        self, endpoint: WebhookEndpoint, data: schemas.EndpointUpdate
    ) -> WebhookEndpoint:
        if data.url is not None:
            await check_endpoint_url(data.url, self.settings)
            endpoint.url = data.url
        if data.event_types is not None:
            endpoint.event_types = check_event_types(data.event_types)
        if data.description is not None:
            endpoint.description = data.description
        if data.is_active is not None:
            if data.is_active and not endpoint.is_active:
                endpoint.failing_since = None
                endpoint.disabled_reason = None
            endpoint.is_active = data.is_active
        await self.session.flush()
        await self.session.refresh(endpoint)
        return endpoint

    async def delete(self, endpoint: WebhookEndpoint) -> None:
        await self.repo.delete_endpoint(endpoint)

    async def rotate_secret(self, endpoint: WebhookEndpoint) -> str:
        secret = new_secret()
        endpoint.secret = self.box.seal(secret)
        await self.session.flush()
        return secret

    async def deliveries(
        self,
        endpoint: WebhookEndpoint,
        status: WebhookDeliveryStatus | None,
        offset: int,
        limit: int,
    ) -> tuple[list[schemas.WebhookDeliveryOut], int]:
        rows, total = await self.repo.deliveries(endpoint.id, status, offset, limit)
        return [delivery_out(row) for row in rows], total

    async def delivery(self, endpoint: WebhookEndpoint, delivery_id: uuid.UUID) -> WebhookDelivery:
        delivery = await self.repo.delivery(delivery_id)
        if delivery is None or delivery.endpoint_id != endpoint.id:
            raise NotFound("No such delivery of this endpoint.")
        return delivery

    def _require_active(self, endpoint: WebhookEndpoint) -> None:
        if not endpoint.is_active:
            raise Conflict(
                "The endpoint is disabled: activate it first (PATCH is_active=true).",
                slug="endpoint-disabled",
            )

    async def redeliver(self, endpoint: WebhookEndpoint, delivery_id: uuid.UUID) -> WebhookDelivery:
        """A new delivery of the same message (same `webhook-id` and body)."""
        self._require_active(endpoint)
        original = await self.delivery(endpoint, delivery_id)
        copy = WebhookDelivery(
            id=uuid.uuid4(),
            endpoint_id=endpoint.id,
            event_id=original.event_id,
            event_type=original.event_type,
            body=original.body,
            created_at=self.now,
        )
        await self.repo.add(copy)
        await self.enqueue(self.session, copy)
        return copy

    async def send_test(self, endpoint: WebhookEndpoint) -> WebhookDelivery:
        self._require_active(endpoint)
        entry = catalogue()[TEST_EVENT]
        data = entry.payload.model_validate({"endpoint_id": str(endpoint.id)}).model_dump()
        event = PublicEvent(uuid.uuid4(), TEST_EVENT, entry.version, self.now, data)
        delivery = WebhookDelivery(
            id=uuid.uuid4(),
            endpoint_id=endpoint.id,
            event_id=event.id,
            event_type=TEST_EVENT,
            body=encode(event.envelope()),
            created_at=self.now,
        )
        await self.repo.add(delivery)
        await self.enqueue(self.session, delivery)
        return delivery


# The name of the question the event row's INSERT answers for webhooks: the endpoints
# subscribed to the event (`repository.subscribed_ids`, asked in `tasks`).
SUBSCRIBED = "webhook_endpoints"


async def fan_out(session: AsyncSession, event: PublicEvent, enqueue: Enqueue) -> int:
    """A delivery row and a job per endpoint subscribed to the event, in its transaction.
    The subscribed endpoints come with the event when its INSERT answered them."""
    repo = WebhookRepository(session)
    if SUBSCRIBED in event.answers:
        endpoint_ids: list[uuid.UUID] = list(event.answers[SUBSCRIBED] or [])
    else:
        endpoint_ids = await repo.subscribed_to(event.type)
    if not endpoint_ids:
        return 0
    body = encode(event.envelope())
    deliveries = [
        WebhookDelivery(
            id=uuid.uuid4(),
            endpoint_id=endpoint_id,
            event_id=event.id,
            event_type=event.type,
            body=body,
            created_at=event.occurred_at,
        )
        for endpoint_id in endpoint_ids
    ]
    await repo.add_deliveries(deliveries)
    for delivery in deliveries:
        await enqueue(session, delivery)
    return len(deliveries)


# One attempt ------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    status_code: int | None = None
    duration_ms: int | None = None
    response_body: str | None = None
    error: str | None = None
    permanent: bool = False  # not worth retrying (the address is refused)

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def headers(secret: str, message_id: str, timestamp: int, body: str) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret, message_id, timestamp, body),
    }


async def attempt(
    client: httpx.AsyncClient,
    settings: Settings,
    *,
    url: str,
    secret: str,
    message_id: str,
    body: str,
    now: dt.datetime,
) -> Outcome:
    """POST the signed body once; every failure is an `Outcome`, never an exception."""
    started = time.perf_counter()
    outcome = await _post_once(client, settings, url, secret, message_id, body, now)
    WEBHOOK_DELIVERY_DURATION.observe(time.perf_counter() - started)
    WEBHOOK_DELIVERIES.labels("delivered" if outcome.succeeded else "failed").inc()
    return outcome


async def _post_once(
    client: httpx.AsyncClient,
    settings: Settings,
    url: str,
    secret: str,
    message_id: str,
    body: str,
    now: dt.datetime,
) -> Outcome:
    try:
        response = await post(
            client,
            url,
            content=body.encode(),
            headers=headers(secret, message_id, int(now.timestamp()), body),
            allow_private=settings.webhook_allow_private_networks,
            timeout_seconds=settings.webhook_timeout_seconds,
            max_body_bytes=RESPONSE_BODY_BYTES,
        )
    except RefusedAddress as exc:
        return Outcome(error=f"refused: {exc}", permanent=True)
    except httpx.TimeoutException:
        return Outcome(error=f"timed out after {settings.webhook_timeout_seconds:g} s")
    except httpx.HTTPError as exc:
        return Outcome(error=f"{type(exc).__name__}: {exc}"[:1000])
    return Outcome(
        status_code=response.status_code,
        duration_ms=response.duration_ms,
        response_body=response.body.decode("utf-8", errors="replace"),
    )


async def disabled_endpoints(session: AsyncSession) -> int:
    """How many endpoints Lyceum disabled after failures (an admin's own switch-off
    is not counted), for `lyceum_webhook_endpoints_disabled`."""
    return await WebhookRepository(session).count_disabled()


def new_client() -> httpx.AsyncClient:
    """A client for one job's attempt: no redirects, no proxies from the environment."""
    return httpx.AsyncClient(verify=TLS_CONTEXT, follow_redirects=False, trust_env=False)


@dataclass(frozen=True)
class Settled:
    retry_at: dt.datetime | None  # when the next attempt is due (None: no more)
    disabled: bool  # this outcome disabled the endpoint


def settle(
    delivery: WebhookDelivery,
    endpoint: WebhookEndpoint,
    outcome: Outcome,
    now: dt.datetime,
    disable_after_seconds: int,
) -> Settled:
    """Record the attempt; decide the next one, and whether the endpoint is disabled
    (it answered 410 Gone, or it has failed without a success for too long)."""
    delivery.attempts += 1
    delivery.last_attempt_at = now
    delivery.status_code = outcome.status_code
    delivery.duration_ms = outcome.duration_ms
    delivery.response_body = outcome.response_body
    delivery.last_error = outcome.error
    delivery.next_attempt_at = None
    if outcome.succeeded:
        delivery.status = WebhookDeliveryStatus.succeeded
        endpoint.failing_since = None
        return Settled(None, False)
    if delivery.last_error is None:
        delivery.last_error = f"HTTP {outcome.status_code}"
    if endpoint.failing_since is None:
        endpoint.failing_since = now
    reason = None
    if outcome.status_code == 410:
        reason = "The endpoint answered 410 Gone."
    elif (now - endpoint.failing_since).total_seconds() >= disable_after_seconds:
        reason = f"Deliveries failed continuously since {endpoint.failing_since.isoformat()}."
    if reason is not None and endpoint.is_active:
        endpoint.is_active = False
        endpoint.disabled_reason = reason
    disabled = reason is not None
    if disabled or outcome.permanent or delivery.attempts > len(RETRY_DELAYS):
        delivery.status = WebhookDeliveryStatus.failed
        return Settled(None, disabled)
    delivery.next_attempt_at = now + RETRY_DELAYS[delivery.attempts - 1]
    return Settled(delivery.next_attempt_at, False)
