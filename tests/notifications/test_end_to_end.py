"""A notification from notify() to what the person receives, through the real delivery
jobs: mail through a real SMTP server with the worker killed in the middle of the
send, and SMS and Web Push through the channels' fakes (the Twilio SDK to a fake
Twilio, pywebpush to a push service that decrypts the message)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import select, text

from lyceum.kit.db import libpq_url, unit_of_work
from lyceum.kit.jobs import Queue, requeue_stalled_jobs
from lyceum.kit.runtime import Runtime
from lyceum.models.notifications import (
    Category,
    Channel,
    DeliveryStatus,
    Notification,
    NotificationDelivery,
)
from lyceum.notifications.service import notify
from tests.channels.conftest import ACCOUNT_SID, AUTH_TOKEN, Live, live_app, twilio_settings
from tests.channels.test_sms import verified_phone
from tests.channels.test_web_push import register
from tests.notifications.conftest import MakeUser
from tests.support.channel_fakes import FakePushService, FakeTwilio
from tests.support.jobs import run_jobs, with_settings
from tests.support.servers import REPO_ROOT, free_port


class HangingInbox:
    """An SMTP server whose first message never gets its answer: the sender is killed
    while it waits, so the server never accepts it (SMTP accepts a message only with
    its 250). Every later message is accepted."""

    def __init__(self) -> None:
        self.hung = threading.Event()
        self.release = threading.Event()
        self.accepted: list[Envelope] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if not self.hung.is_set():
            self.hung.set()
            await asyncio.to_thread(self.release.wait, 120)
            return "451 4.3.0 try again later"
        self.accepted.append(envelope)
        return "250 Message accepted for delivery"


@pytest.fixture
def hanging_smtp() -> Iterator[tuple[int, HangingInbox]]:
    inbox = HangingInbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield port, inbox
    inbox.release.set()
    controller.stop()


async def notify_one(runtime: Runtime, user_id: uuid.UUID, **overrides: Any) -> uuid.UUID:
    arguments: dict[str, Any] = {
        "user_ids": [user_id],
        "category": Category.grades,
        "kind": "test.end_to_end",
        "title": "New grade in Optics",
        "body": "You scored 9 of 10.",
        "url": "/api/v1/courses",
        "template": "grade_released",
        "context": {"course_title": "Optics", "score": "9", "max_score": "10"},
    }
    arguments.update(overrides)
    async with runtime.database.sessionmaker() as session, unit_of_work(session):
        await notify(session, **arguments)
    async with runtime.database.sessionmaker() as session:
        found = await session.scalar(
            select(Notification.id).where(
                Notification.user_id == user_id, Notification.kind == arguments["kind"]
            )
        )
    assert found is not None
    return found


async def deliveries(runtime: Runtime, notification_id: uuid.UUID) -> dict[Channel, Any]:
    async with runtime.database.sessionmaker() as session:
        rows = await session.scalars(
            select(NotificationDelivery).where(
                NotificationDelivery.notification_id == notification_id
            )
        )
        return {row.channel: row for row in rows}


async def test_a_worker_killed_in_the_middle_of_a_send_sends_the_notification_once(
    runtime: Runtime,
    database_url: str,
    committed_user: MakeUser,
    hanging_smtp: tuple[int, HangingInbox],
) -> None:
    port, inbox = hanging_smtp
    learner = await committed_user()
    notification_id = await notify_one(runtime, learner.id)

    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.support.worker_process",
            libpq_url(database_url),
            Queue.mail.value,
        ],
        cwd=REPO_ROOT,
        env={
            **os.environ,
            "LOG_LEVEL": "WARNING",
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(port),
        },
    )
    try:
        started = await asyncio.to_thread(inbox.hung.wait, 60)
        assert started, "the worker never started sending"
        os.kill(worker.pid, signal.SIGKILL)  # while the SMTP server has not answered
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
        inbox.release.set()

    # The send's transaction died with the worker: nothing says it was sent.
    sent = await deliveries(runtime, notification_id)
    assert Channel.email not in sent or sent[Channel.email].status is DeliveryStatus.queued
    assert inbox.accepted == []

    await asyncio.sleep(1.5)  # no heartbeat for longer than the threshold below
    assert await requeue_stalled_jobs(seconds_since_heartbeat=1.0) >= 1
    smtp_runtime = with_settings(runtime, smtp_host="127.0.0.1", smtp_port=port)
    await run_jobs([Queue.mail.value], runtime=smtp_runtime)
    await run_jobs([Queue.mail.value], runtime=smtp_runtime)  # and again: nothing more

    mine = [envelope for envelope in inbox.accepted if envelope.rcpt_tos == [learner.email]]
    assert len(mine) == 1
    email = (await deliveries(runtime, notification_id))[Channel.email]
    assert email.status is DeliveryStatus.sent
    async with runtime.database.sessionmaker() as session:
        attempts = await session.scalar(
            text(
                "SELECT max(attempts) FROM procrastinate_jobs WHERE queue_name = 'mail' "
                "AND status = 'succeeded' AND args::text LIKE :id"
            ),
            {"id": f"%{notification_id}%"},
        )
    assert attempts == 2  # the killed run and the retry


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    with FakeTwilio(ACCOUNT_SID, AUTH_TOKEN) as fake:
        yield fake


@pytest.fixture
def push_service() -> Iterator[FakePushService]:
    with FakePushService() as fake:
        yield fake


@pytest.fixture
async def live(runtime: Runtime, twilio: FakeTwilio) -> AsyncIterator[Live]:
    async for value in live_app(runtime, **twilio_settings(twilio)):
        yield value


async def test_sms_and_web_push_arrive_through_the_real_channels_once(
    live: Live, twilio: FakeTwilio, push_service: FakePushService
) -> None:
    person = await verified_phone(live, twilio)
    await register(live, person, push_service.subscribe())
    chosen = await live.http.patch(
        "/api/v1/me/notification-preferences",
        json={"channels": {"grades": {"sms": True, "push": True}}},
        headers=person.headers,
    )
    assert chosen.status_code == 200, chosen.text
    codes = len(twilio.messages)

    notification_id = await notify_one(live.runtime, person.id)
    await live.run_jobs()
    await live.run_jobs()  # a second pass sends nothing again

    [sms] = twilio.messages[codes:]
    assert sms.body.startswith("New grade in Optics")
    [pushed] = push_service.delivered
    assert pushed.payload["title"] == "New grade in Optics"
    assert pushed.payload["body"] == "You scored 9 of 10."
    assert pushed.payload["data"]["notification_id"] == str(notification_id)
    sent = await deliveries(live.runtime, notification_id)
    assert sent[Channel.sms].status is DeliveryStatus.sent
    assert sent[Channel.sms].provider_id == sms.sid
    assert sent[Channel.push].status is DeliveryStatus.sent
