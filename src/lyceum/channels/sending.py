"""Sending SMS and push messages once per idempotency key.

A send is looked up in `channel_sends` under an advisory lock on its key (held until
the caller's transaction ends, so a second run of the same job waits for the first),
and recorded in a transaction of its own the moment the provider accepts it: the
record survives whatever happens to the caller's transaction afterwards (a later step
failing, the worker being killed before its commit), so the retry finds it and sends
nothing. An SMS is also claimed before Twilio is called, so a run that died while
waiting for Twilio's answer leaves a trace, and its retry asks Twilio whether the
message went out before sending it (`sms_once`). Push messages carry a `Topic` /
collapse key derived from the key, so even a push repeated in the instant between the
provider's answer and its record shows once.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass, field

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.channels.repository import ChannelRepository
from lyceum.kit.delivery import DeliveryError, PermanentDeliveryError, TransientDeliveryError
from lyceum.kit.fcm import DeviceGone, fcm_sender
from lyceum.kit.jobs import Resources, transaction
from lyceum.kit.sms import SmsOutcomeUnknown, SmsSender, mask_phone_number
from lyceum.kit.webpush import Subscription, SubscriptionGone, WebPushSender, topic_for

logger = structlog.get_logger("lyceum.channels")

# Push services must accept 4096 bytes of encrypted body (RFC 8030); aes128gcm adds
# 103 (header, tag, padding delimiter). What is longer is cut to fit (`web_payload`).
MAX_WEB_PUSH_PAYLOAD_BYTES = 3800

PHONE_CODE_TTL = dt.timedelta(minutes=10)
PHONE_CODE_MAX_ATTEMPTS = 5


async def _record(
    runtime: Resources, key: str, *, channel: str, user_id: uuid.UUID, provider_id: str | None
) -> None:
    async with transaction(runtime) as own:
        await ChannelRepository(own).record_send(
            key, channel=channel, user_id=user_id, provider_id=provider_id
        )


async def sms_once(
    session: AsyncSession,
    runtime: Resources,
    *,
    user_id: uuid.UUID,
    number: str,
    text: str,
    idempotency_key: str,
) -> str:
    """Text `number` unless `idempotency_key` was sent; returns the message sid.

    The send is claimed (a record without a sid, committed) before Twilio is called and
    completed with the sid after. A claim left without a sid means an earlier run may
    have sent it and died before hearing back: Twilio's log of messages to the number
    since the claim is searched for the same text, and a message found there counts as
    this one. Twilio's own refusals drop the claim: nothing went out."""
    repo = ChannelRepository(session)
    await repo.lock_key(idempotency_key)
    sender = SmsSender(runtime.settings)
    claim = await repo.send_record(idempotency_key)
    if claim is not None and claim.provider_id is not None:
        logger.info("sms_already_sent", key=idempotency_key)
        return claim.provider_id
    if claim is not None:
        found = await sender.find_sent(number, text, claim.created_at)
        if found is not None:
            logger.info("sms_found_sent", key=idempotency_key, sid=found)
            await _complete(runtime, idempotency_key, found)
            return found
    else:
        await _record(runtime, idempotency_key, channel="sms", user_id=user_id, provider_id=None)
    try:
        sid = await sender.send(number, text)
    except SmsOutcomeUnknown:
        raise  # the claim stays: the retry looks for the message first
    except DeliveryError:
        async with transaction(runtime) as own:
            await ChannelRepository(own).forget_send(idempotency_key)
        raise
    await _complete(runtime, idempotency_key, sid)
    return sid


async def _complete(runtime: Resources, key: str, provider_id: str) -> None:
    async with transaction(runtime) as own:
        await ChannelRepository(own).complete_send(key, provider_id)


async def send_sms(
    session: AsyncSession,
    runtime: Resources,
    *,
    user_id: uuid.UUID,
    text: str,
    idempotency_key: str,
) -> str | None:
    """Text the user's verified phone; returns Twilio's message sid, or None when skipped
    (SMS not configured, or no verified phone). Never sends twice for one key; raises
    PermanentDeliveryError / TransientDeliveryError."""
    if not runtime.settings.sms_configured:
        logger.info("sms_skipped", reason="not configured", user_id=str(user_id))
        return None
    number = await ChannelRepository(session).verified_phone_number(user_id)
    if number is None:
        logger.info("sms_skipped", reason="no verified phone", user_id=str(user_id))
        return None
    sid = await sms_once(
        session, runtime, user_id=user_id, number=number, text=text, idempotency_key=idempotency_key
    )
    logger.info("sms_delivered", user_id=str(user_id), to=mask_phone_number(number))
    return sid


@dataclass
class _Fanout:
    """What a send to each target came to. The failures' reasons, not the exceptions:
    a caught exception's traceback holds the frame that caught it, which holds this,
    a cycle through the session left for the garbage collector."""

    reached: int = 0
    transient: list[str] = field(default_factory=list)
    permanent: list[str] = field(default_factory=list)


def web_payload(*, title: str, body: str, url: str | None, data: dict[str, str]) -> str:
    """The JSON a service worker receives, cut to what every push service accepts:
    `data` goes first, then the body is shortened (the link still leads to it all)."""
    message: dict[str, object] = {"title": title, "body": body, "url": url, "data": data}
    encoded = json.dumps(message, ensure_ascii=False)
    if len(encoded.encode()) <= MAX_WEB_PUSH_PAYLOAD_BYTES:
        return encoded
    message["data"] = {}
    while len(encoded.encode()) > MAX_WEB_PUSH_PAYLOAD_BYTES and len(str(message["body"])) > 1:
        text = str(message["body"])
        message["body"] = text[: len(text) * 3 // 4].rstrip() + "…"
        encoded = json.dumps(message, ensure_ascii=False)
    return encoded


async def _forget_subscription(runtime: Resources, subscription_id: uuid.UUID) -> None:
    async with transaction(runtime) as own:
        await ChannelRepository(own).delete_subscription(subscription_id)


async def _forget_device(runtime: Resources, device_id: uuid.UUID) -> None:
    async with transaction(runtime) as own:
        await ChannelRepository(own).delete_device(device_id)


async def send_push(
    session: AsyncSession,
    runtime: Resources,
    *,
    user_id: uuid.UUID,
    title: str,
    body: str,
    url: str | None,
    data: dict[str, str],
    idempotency_key: str,
) -> int:
    """Push to every browser subscription (Web Push) and mobile device (FCM) of the
    user; returns how many were reached (0 when none, or neither channel is on).

    Each target is recorded on its own, so a retry after a partial failure sends only to
    the targets not reached yet. Targets their service says are gone are removed at once
    (committed, whatever the caller does next). Raises TransientDeliveryError when a
    target should be tried again, PermanentDeliveryError when no target was reached and
    none can be."""
    settings = runtime.settings
    if not settings.webpush_configured and not settings.fcm_configured:
        logger.info("push_skipped", reason="not configured", user_id=str(user_id))
        return 0
    repo = ChannelRepository(session)
    subscriptions = await repo.subscriptions_of(user_id) if settings.webpush_configured else []
    devices = await repo.devices_of(user_id) if settings.fcm_configured else []
    if not subscriptions and not devices:
        logger.info("push_skipped", reason="no subscription or device", user_id=str(user_id))
        return 0
    await repo.lock_key(idempotency_key)
    sent = await repo.sends_under(idempotency_key)
    outcome = _Fanout()
    if subscriptions:
        payload = web_payload(title=title, body=body, url=url, data=data)
        web = WebPushSender(settings)
        topic = topic_for(idempotency_key)
        for subscription in subscriptions:
            key = f"{idempotency_key}:web:{subscription.id}"
            if key in sent:
                outcome.reached += 1
                continue
            target = Subscription(subscription.endpoint, subscription.p256dh, subscription.auth)
            try:
                await web.send(target, payload, topic=topic)
            except SubscriptionGone as gone:
                logger.info("push_subscription_gone", subscription_id=str(subscription.id))
                await _forget_subscription(runtime, subscription.id)
                outcome.permanent.append(gone.reason)
                continue
            except TransientDeliveryError as error:
                outcome.transient.append(error.reason)
                continue
            except PermanentDeliveryError as error:
                outcome.permanent.append(error.reason)
                continue
            await _record(runtime, key, channel="web_push", user_id=user_id, provider_id=None)
            outcome.reached += 1
    if devices:
        fcm = fcm_sender(settings)
        fcm_data = {**data, **({"url": url} if url else {})}
        collapse_key = topic_for(idempotency_key)
        for device in devices:
            key = f"{idempotency_key}:fcm:{device.id}"
            if key in sent:
                outcome.reached += 1
                continue
            try:
                name = await fcm.send(
                    device.token, title=title, body=body, data=fcm_data, collapse_key=collapse_key
                )
            except DeviceGone as gone:
                logger.info("push_device_gone", device_id=str(device.id))
                await _forget_device(runtime, device.id)
                outcome.permanent.append(gone.reason)
                continue
            except TransientDeliveryError as error:
                outcome.transient.append(error.reason)
                continue
            except PermanentDeliveryError as error:
                outcome.permanent.append(error.reason)
                continue
            await _record(runtime, key, channel="fcm", user_id=user_id, provider_id=name[:500])
            outcome.reached += 1
    if outcome.transient:
        raise TransientDeliveryError(
            f"{len(outcome.transient)} push target(s) to retry: {outcome.transient[0]}"
        )
    if outcome.reached == 0 and outcome.permanent:
        raise PermanentDeliveryError(f"no push target reachable: {outcome.permanent[0]}")
    logger.info("push_delivered", user_id=str(user_id), reached=outcome.reached)
    return outcome.reached
