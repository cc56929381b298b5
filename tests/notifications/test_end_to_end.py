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
from lyceum.models.channels import PushSubscription
from lyceum.models.notifications import (
    Category,
    Channel,
    DeliveryStatus,
    Notification,
    NotificationDelivery,
)
from lyceum.notifications.service import notify
from tests.channels.conftest import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    Live,
    Person,
    live_app,
    twilio_settings,
)
from tests.channels.test_sms import verified_phone
from tests.channels.test_web_push import register
from tests.notifications.conftest import MakeUser
from tests.support.channel_fakes import FakePushService, FakeTwilio
from tests.support.jobs import run_jobs, with_settings
from tests.support.servers import REPO_ROOT, free_port
from tests.test_reference_cycles import Window


class HangingInbox:
    """An SMTP server whose first message to `hang_for` never gets its answer: the
    sender is killed while it waits, so the server never accepts it (SMTP accepts a
    message only with its 250). Every other message is accepted, those that other
    tests queued and the worker sends first among them."""

    def __init__(self) -> None:
        self.hang_for = ""
        self.hung = threading.Event()
        self.release = threading.Event()
        self.accepted: list[Envelope] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if not self.hung.is_set() and envelope.rcpt_tos == [self.hang_for]:
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
    inbox.hang_for = learner.email
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
    assert [envelope for envelope in inbox.accepted if envelope.rcpt_tos == [learner.email]] == []

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


async def _unusable_subscription(live: Live, person: Person, push_service: FakePushService) -> None:
    """A subscription stored before its keys were checked on the way in: its public
    key is the right length but no point on the curve."""
    async with live.runtime.database.sessionmaker() as session, unit_of_work(session):
        session.add(
            PushSubscription(
                user_id=person.id,
                endpoint=f"{push_service.base_url}/push/unusable",
                p256dh="B" + "A" * 86,
                auth="A" * 22,
            )
        )


@pytest.mark.parametrize("failure", ["push service answers 503", "subscription keys unusable"])
async def test_a_failed_push_leaves_no_session_for_the_collector(
    live: Live, push_service: FakePushService, failure: str
) -> None:
    """A delivery job that fails (and is retried) or that finds a subscription no
    message can be encrypted for (which is removed, the delivery failed for good)
    leaves nothing of its database work in reference cycles."""
    person = await live.person()
    if failure == "push service answers 503":
        browser = push_service.subscribe()
        await register(live, person, browser)
        push_service.fail_next(browser, 503)
    else:
        await _unusable_subscription(live, person, push_service)
    chosen = await live.http.patch(
        "/api/v1/me/notification-preferences",
        json={"channels": {"grades": {"push": True}}},
        headers=person.headers,
    )
    assert chosen.status_code == 200, chosen.text
    notification_id = await notify_one(live.runtime, person.id)
    with Window(live.runtime.database.engine.sync_engine) as window:
        await live.run_jobs()
        left = window.left()
    assert not left, left

    push = (await deliveries(live.runtime, notification_id))[Channel.push]
    listed = await live.http.get("/api/v1/me/push-subscriptions", headers=person.headers)
    if failure == "push service answers 503":
        assert push.status is DeliveryStatus.queued  # the job's retry sends it
        assert "503" in push.last_error
        [subscription] = listed.json()["items"]
        # The push service goes with the test: the retry finds nothing to send to.
        removed = await live.http.delete(
            f"/api/v1/me/push-subscriptions/{subscription['id']}", headers=person.headers
        )
        assert removed.status_code == 204, removed.text
    else:
        assert push.status is DeliveryStatus.failed  # not retried: it never could be sent
        assert "p256dh must be a point on the P-256 curve" in push.last_error
        assert listed.json()["items"] == []  # forgotten, as a subscription gone is
    assert push_service.delivered == []
