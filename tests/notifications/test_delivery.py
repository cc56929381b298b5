"""Delivery jobs over real parts: mail through a real SMTP server (aiosmtpd), each send
claimed once, permanent failures recorded and not retried, unconfigured channels
skipped, and the SMS / push adapters calling the channels' functions."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from procrastinate.jobs import Job
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.kit.db import unit_of_work
from lyceum.kit.delivery import PermanentDeliveryError, TransientDeliveryError
from lyceum.kit.jobs import Queue, Resources
from lyceum.kit.runtime import Runtime
from lyceum.models.notifications import (
    Category,
    Channel,
    DeliveryStatus,
    Notification,
    NotificationDelivery,
)
from lyceum.notifications import delivery
from lyceum.notifications.delivery import (
    CHANNEL_SENDERS,
    DELIVERY_RETRY,
    Outgoing,
    deliver_batch,
    push_sender,
    sms_sender,
)
from lyceum.notifications.service import notify
from tests.kit.test_mail import Inbox, parts, smtp_server  # noqa: F401 (fixture)
from tests.notifications.conftest import MakeUser
from tests.support.jobs import run_jobs, with_settings


async def notified(runtime: Runtime, users: list[Any], **overrides: Any) -> list[str]:
    arguments: dict[str, Any] = {
        "user_ids": [user.id for user in users],
        "category": Category.grades,
        "kind": "test",
        "title": "New grade",
        "body": "8 of 10",
        "url": "/api/v1/courses",
        "template": "grade_released",
        "context": {"course_title": "Python", "score": "8", "max_score": "10"},
    }
    arguments.update(overrides)
    async with runtime.database.sessionmaker() as session, unit_of_work(session):
        await notify(session, **arguments)
    async with runtime.database.sessionmaker() as session:
        rows = await session.scalars(
            select(Notification.id).where(Notification.user_id.in_(arguments["user_ids"]))
        )
        return [str(value) for value in rows]


async def deliveries_of(
    runtime: Runtime, notification_ids: list[str]
) -> list[NotificationDelivery]:
    async with runtime.database.sessionmaker() as session:
        rows = await session.scalars(
            select(NotificationDelivery).where(
                NotificationDelivery.notification_id.in_([uuid.UUID(i) for i in notification_ids])
            )
        )
        return list(rows)


@pytest.fixture
def smtp_runtime(runtime: Runtime, smtp_server: tuple[int, Inbox]) -> Runtime:  # noqa: F811
    port, _ = smtp_server
    return with_settings(runtime, smtp_host="127.0.0.1", smtp_port=port)


@pytest.fixture
def senders() -> Iterator[dict[Channel, Any]]:
    saved = dict(CHANNEL_SENDERS)
    yield CHANNEL_SENDERS
    CHANNEL_SENDERS.clear()
    CHANNEL_SENDERS.update(saved)


async def test_mail_goes_out_once_with_one_click_unsubscribe(
    smtp_runtime: Runtime,
    smtp_server: tuple[int, Inbox],  # noqa: F811
    committed_user: MakeUser,
) -> None:
    _, inbox = smtp_server
    learner = await committed_user(locale="vi-VN", full_name="Nguyễn Thị Minh Khai")
    ids = await notified(smtp_runtime, [learner])
    await run_jobs([Queue.mail.value], runtime=smtp_runtime)
    mine = [message for envelope, message in inbox.messages if envelope.rcpt_tos == [learner.email]]
    assert len(mine) == 1
    message = mine[0]
    assert message["Subject"] == "Điểm mới trong khóa học Python"  # the learner's language
    link = message["List-Unsubscribe"].strip("<>")
    assert link.startswith("http://lyceum.test/api/v1/notifications/unsubscribe?token=")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # On the wire the URL is bare, in angle brackets (RFC 2369), never an encoded word
    # that mail clients would not read as a link.
    [raw] = [
        e.original_content
        for e in [envelope for envelope, _ in inbox.messages]
        if e.rcpt_tos == [learner.email]
    ]
    assert f"\r\nList-Unsubscribe: <{link}>\r\n".encode() in raw
    text, html = parts(message)
    assert "http://lyceum.test/api/v1/courses" in text and link in html
    [sent] = await deliveries_of(smtp_runtime, ids)
    assert (sent.channel, sent.status, sent.attempts) == (Channel.email, DeliveryStatus.sent, 1)
    assert sent.provider_id and sent.provider_id.startswith("<lyceum-")

    # The same batch again (a retried job): nothing is sent twice.
    await deliver_batch(
        smtp_runtime,
        ids,
        Channel.email,
        "grade_released",
        {"course_title": "Python", "score": "8", "max_score": "10"},
    )
    mine = [message for envelope, message in inbox.messages if envelope.rcpt_tos == [learner.email]]
    assert len(mine) == 1


async def test_security_mail_has_no_unsubscribe(
    smtp_runtime: Runtime,
    smtp_server: tuple[int, Inbox],  # noqa: F811
    committed_user: MakeUser,
) -> None:
    _, inbox = smtp_server
    learner = await committed_user()
    await notified(
        smtp_runtime,
        [learner],
        category=Category.security,
        template="password_reset",
        context={"link": "http://lyceum.test/reset-password?token=x"},
    )
    await run_jobs([Queue.mail.value], runtime=smtp_runtime)
    [message] = [m for envelope, m in inbox.messages if envelope.rcpt_tos == [learner.email]]
    assert message["List-Unsubscribe"] is None
    assert "nsubscribe" not in parts(message)[0]


async def test_unconfigured_channels_are_skipped_not_failed(
    runtime: Runtime, committed_user: MakeUser, senders: dict[Channel, Any]
) -> None:
    learner = await committed_user()
    senders.pop(Channel.push, None)
    ids = await notified(runtime, [learner])
    await deliver_batch(runtime, ids, Channel.push, "grade_released", {})
    [skipped] = await deliveries_of(runtime, ids)
    assert (skipped.status, skipped.last_error) == (
        DeliveryStatus.skipped,
        "channel not configured",
    )


async def test_a_permanent_failure_is_recorded_and_not_retried(
    runtime: Runtime, committed_user: MakeUser, senders: dict[Channel, Any]
) -> None:
    calls: list[str] = []

    async def gone(session: AsyncSession, runtime: Resources, outgoing: Outgoing) -> str | None:
        calls.append(outgoing.key)
        raise PermanentDeliveryError("subscription gone (410)")

    senders[Channel.push] = gone
    learner = await committed_user()
    ids = await notified(runtime, [learner])
    await deliver_batch(runtime, ids, Channel.push, "grade_released", {})  # no exception
    await deliver_batch(runtime, ids, Channel.push, "grade_released", {})
    [failed] = await deliveries_of(runtime, ids)
    assert (failed.status, failed.last_error, failed.attempts) == (
        DeliveryStatus.failed,
        "subscription gone (410)",
        1,
    )
    assert len(calls) == 1
    job = Job(id=1, queue="notifications", lock=None, queueing_lock=None, task_name="t", attempts=0)
    assert DELIVERY_RETRY.get_retry_decision(exception=PermanentDeliveryError("x"), job=job) is None


async def test_a_transient_failure_is_retried_with_jittered_backoff_and_sends_once(
    runtime: Runtime, committed_user: MakeUser, senders: dict[Channel, Any]
) -> None:
    calls: list[str] = []

    async def flaky(session: AsyncSession, runtime: Resources, outgoing: Outgoing) -> str | None:
        calls.append(outgoing.key)
        if len(calls) == 1:
            raise TransientDeliveryError("provider busy (503)")
        return "provider-1"

    senders[Channel.push] = flaky
    first, second = await committed_user(), await committed_user()
    ids = await notified(runtime, [first, second])
    with pytest.raises(TransientDeliveryError):
        await deliver_batch(runtime, ids, Channel.push, "grade_released", {})
    # The other recipient was still served; the retry sends only what failed.
    await deliver_batch(runtime, ids, Channel.push, "grade_released", {})
    await deliver_batch(runtime, ids, Channel.push, "grade_released", {})
    rows = await deliveries_of(runtime, ids)
    assert sorted((row.status, row.attempts) for row in rows) == [
        (DeliveryStatus.sent, 1),
        (DeliveryStatus.sent, 2),
    ]
    assert len(calls) == 3
    job = Job(id=1, queue="notifications", lock=None, queueing_lock=None, task_name="t", attempts=3)
    waits = set()
    for _ in range(50):
        before = dt.datetime.now(dt.UTC)
        decision = DELIVERY_RETRY.get_retry_decision(exception=RuntimeError(), job=job)
        assert decision is not None and decision.retry_at is not None
        waits.add(round((decision.retry_at - before).total_seconds()))
    assert min(waits) >= 8 and max(waits) <= 16 and len(waits) > 1


async def test_sms_and_push_adapters_call_the_channel_functions(
    runtime: Runtime, committed_user: MakeUser, senders: dict[Channel, Any]
) -> None:
    recorded: list[tuple[str, dict[str, Any]]] = []

    async def send_sms(
        session: AsyncSession,
        runtime: Resources,
        *,
        user_id: uuid.UUID,
        text: str,
        idempotency_key: str,
    ) -> str | None:
        recorded.append(("sms", {"user_id": user_id, "text": text, "key": idempotency_key}))
        return "SM123"

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
        recorded.append(("push", {"user_id": user_id, "title": title, "data": data}))
        return 0  # no device: skipped

    senders[Channel.sms] = sms_sender(send_sms)
    senders[Channel.push] = push_sender(send_push)
    learner = await committed_user()
    [notification_id] = await notified(runtime, [learner])
    for channel in (Channel.sms, Channel.push):
        await deliver_batch(runtime, [notification_id], channel, "grade_released", {})
    assert recorded[0] == (
        "sms",
        {
            "user_id": learner.id,
            "text": "New grade /api/v1/courses",
            "key": f"{notification_id}:sms",
        },
    )
    assert recorded[1][1]["data"]["notification_id"] == notification_id
    statuses = {
        row.channel: (row.status, row.provider_id)
        for row in await deliveries_of(runtime, [notification_id])
    }
    assert statuses == {
        Channel.sms: (DeliveryStatus.sent, "SM123"),
        Channel.push: (DeliveryStatus.skipped, None),
    }


def test_the_email_channel_is_registered() -> None:
    assert delivery.CHANNEL_SENDERS[Channel.email] is delivery.email_sender
