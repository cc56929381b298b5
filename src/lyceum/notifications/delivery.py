"""Sending a notification on one channel, exactly once.

`notify` queues one job per batch of recipients and channel. The job sends to each
recipient in a transaction of its own: it first claims the delivery (a row under a
unique key, `<notification id>:<channel>`, locked), and sends only if that row is not
finished; the send and the row's new status commit together. A job retried after a
crash, or run twice, finds the finished rows and sends nothing again (mail also carries
a Message-ID derived from the key, and the SMS and push adapters take the key as their
idempotency key).

Each channel's sender is registered in `CHANNEL_SENDERS`; a channel without one (not
configured in this deployment) is recorded as skipped, never as an error.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import structlog
from procrastinate import RetryStrategy
from procrastinate.jobs import Job
from procrastinate.retry import RetryDecision
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.channels.service import send_push, send_sms
from lyceum.kit.delivery import PermanentDeliveryError
from lyceum.kit.jobs import Resources, transaction
from lyceum.kit.mail import language_of, message_id_for
from lyceum.models.identity import User
from lyceum.models.notifications import Channel, DeliveryStatus, Notification
from lyceum.notifications.repository import NotificationRepository
from lyceum.notifications.service import is_locked, unsubscribe_url

logger = structlog.get_logger("lyceum.notifications")


class JitteredBackoff(RetryStrategy):
    """Exponential backoff (2 s, 4 s, 8 s, ... doubled per attempt) with full jitter: a
    provider outage does not bring every waiting send back at the same second."""

    def get_retry_decision(self, *, exception: BaseException, job: Job) -> RetryDecision | None:
        if isinstance(exception, PermanentDeliveryError):
            return None
        if self.max_attempts and job.attempts >= self.max_attempts:
            return None
        ceiling = self.exponential_wait ** (job.attempts + 1)
        return RetryDecision(retry_in={"seconds": random.randint(ceiling // 2, ceiling)})


DELIVERY_RETRY = JitteredBackoff(max_attempts=8, exponential_wait=2)


@dataclass(frozen=True)
class Outgoing:
    """One send: the notification, its recipient, and what the mail needs."""

    notification: Notification
    user: User
    template: str
    context: dict[str, Any]
    key: str


Sender = Callable[[AsyncSession, Resources, Outgoing], Awaitable[str | None]]
"""`await sender(session, runtime, outgoing)`: the provider's id of the send, or None
when it was skipped (nothing to send to). Raises PermanentDeliveryError /
TransientDeliveryError."""


async def email_sender(session: AsyncSession, runtime: Resources, outgoing: Outgoing) -> str | None:
    user, notification = outgoing.user, outgoing.notification
    settings = runtime.settings
    headers: dict[str, str] = {}
    link: str | None = None
    if not is_locked(notification.category, Channel.email):
        link = unsubscribe_url(settings, user.id, notification.category)
        # RFC 8058: one-click unsubscribe; mail clients POST to the link.
        headers = {
            "List-Unsubscribe": f"<{link}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        }
    key = f"notification:{outgoing.key}"
    base = settings.base_url()
    # Links are API paths in the notification and its context; a mail needs them whole.
    context = {
        "url": notification.url,
        **outgoing.context,
        "full_name": user.full_name,
        "email": user.email,
        "unsubscribe_url": link,
    }
    context = {
        name: f"{base}{value}" if isinstance(value, str) and value.startswith("/api/") else value
        for name, value in context.items()
    }
    await runtime.mailer.send_once(
        session,
        key=key,
        template=outgoing.template,
        to=user.email,
        context=context,
        language=language_of(user.locale),
        headers=headers,
    )
    return message_id_for(key, settings.mail_from)


class SendSms(Protocol):
    async def __call__(
        self,
        session: AsyncSession,
        runtime: Resources,
        *,
        user_id: uuid.UUID,
        text: str,
        idempotency_key: str,
    ) -> str | None: ...


class SendPush(Protocol):
    async def __call__(
        self,
        session: AsyncSession,
        runtime: Resources,
        *,
        user_id: uuid.UUID,
        title: str,
        body: str,
        url: str | None,
        data: dict[str, str],
        idempotency_key: str,
    ) -> int: ...


SMS_MAX_CHARS = 300


def sms_sender(send_sms: SendSms) -> Sender:
    """The SMS channel over `channels.service.send_sms`."""

    async def send(session: AsyncSession, runtime: Resources, outgoing: Outgoing) -> str | None:
        notification = outgoing.notification
        text = " ".join(part for part in (notification.title, notification.url) if part)
        return await send_sms(
            session,
            runtime,
            user_id=outgoing.user.id,
            text=text[:SMS_MAX_CHARS],
            idempotency_key=outgoing.key,
        )

    return send


def push_sender(send_push: SendPush) -> Sender:
    """The push channel (Web Push and FCM) over `channels.service.send_push`."""

    async def send(session: AsyncSession, runtime: Resources, outgoing: Outgoing) -> str | None:
        notification = outgoing.notification
        reached = await send_push(
            session,
            runtime,
            user_id=outgoing.user.id,
            title=notification.title,
            body=notification.body[:500],
            url=notification.url,
            data={
                "notification_id": str(notification.id),
                "category": notification.category.value,
                "kind": notification.kind,
            },
            idempotency_key=outgoing.key,
        )
        return f"{reached} device(s)" if reached else None

    return send


CHANNEL_SENDERS: dict[Channel, Sender] = {
    Channel.email: email_sender,
    Channel.sms: sms_sender(send_sms),
    Channel.push: push_sender(send_push),
}


async def deliver_batch(
    runtime: Resources,
    notification_ids: Sequence[str],
    channel: Channel,
    template: str,
    context: dict[str, Any],
) -> None:
    """Send `channel` for each notification; a transient failure of one send fails the
    job after the others were tried (the retry sends only what is not done yet)."""
    ids = [uuid.UUID(value) for value in notification_ids]
    async with transaction(runtime) as session:
        recipients = await NotificationRepository(session).recipients_of(ids)
    failure: Exception | None = None
    for notification, user in recipients:
        try:
            await deliver_one(runtime, notification, user, channel, template, context)
        except Exception as error:
            failure = failure or error
    if failure is not None:
        raise failure


async def deliver_one(
    runtime: Resources,
    notification: Notification,
    user: User,
    channel: Channel,
    template: str,
    context: dict[str, Any],
) -> None:
    key = f"{notification.id}:{channel.value}"
    try:
        async with transaction(runtime) as session:
            delivery = await NotificationRepository(session).claim(
                key, notification_id=notification.id, user_id=user.id, channel=channel
            )
            if delivery.status is not DeliveryStatus.queued:
                return
            delivery.attempts += 1
            sender = CHANNEL_SENDERS.get(channel)
            if sender is None or not user.is_active:
                delivery.status = DeliveryStatus.skipped
                delivery.last_error = (
                    "channel not configured" if sender is None else "account inactive"
                )
                logger.info("delivery_skipped", key=key, reason=delivery.last_error)
                return
            try:
                provider_id = await sender(
                    session, runtime, Outgoing(notification, user, template, context, key)
                )
            except PermanentDeliveryError as error:
                delivery.status = DeliveryStatus.failed
                delivery.last_error = error.reason
                logger.warning("delivery_failed", key=key, reason=error.reason)
                return
            delivery.status = DeliveryStatus.sent if provider_id else DeliveryStatus.skipped
            delivery.provider_id = provider_id[:200] if provider_id else None
            if provider_id is None:
                delivery.last_error = "nothing to send to"
    except Exception as error:
        # The send's transaction rolled back: record the attempt for the admins' log,
        # then let the job's retry policy run it again.
        async with transaction(runtime) as session:
            delivery = await NotificationRepository(session).claim(
                key, notification_id=notification.id, user_id=user.id, channel=channel
            )
            if delivery.status is DeliveryStatus.queued:
                delivery.attempts += 1
                delivery.last_error = (getattr(error, "reason", None) or repr(error))[:500]
        logger.warning("delivery_retrying", key=key, error=repr(error))
        raise
