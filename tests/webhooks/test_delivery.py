"""Real deliveries to a real HTTP receiver, verified with the `standardwebhooks`
package; retries on the schedule, disabling and the admins' mail, redelivery, the test
event, and the delivery log's retention."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import httpx
import pytest
from sqlalchemy import insert, select, text, update
from standardwebhooks.webhooks import Webhook

from lyceum.config import Settings
from lyceum.kit.jobs import defer, transaction
from lyceum.kit.runtime import Runtime
from lyceum.models.events import Event
from lyceum.models.identity import Role
from lyceum.models.webhooks import WebhookDelivery, WebhookDeliveryStatus, WebhookEndpoint
from lyceum.webhooks.service import RETRY_DELAYS
from lyceum.webhooks.tasks import purge_webhook_deliveries
from tests.content.helpers import course_with_lesson, enroll, person
from tests.identity.flows_helpers import mails_to
from tests.support.jobs import run_jobs, with_settings
from tests.webhooks.helpers import API, deliveries, register_endpoint
from tests.webhooks.receiver import Receiver


def verified(secret: str, received: object) -> dict[str, object]:
    """What `standardwebhooks` accepts as a genuine delivery (it raises otherwise)."""
    payload: dict[str, object] = Webhook(secret).verify(
        received.body,  # type: ignore[attr-defined]
        received.headers,  # type: ignore[attr-defined]
    )
    return payload


async def test_an_enrollment_is_delivered_signed_to_the_subscribed_endpoint(
    live: httpx.AsyncClient, runtime: Runtime, allowed: Runtime, hook: Receiver
) -> None:
    admin = await person(live, runtime, Role.admin)
    teacher = await person(live, runtime, Role.instructor)
    learner = await person(live, runtime)
    endpoint = await register_endpoint(live, admin, hook.url, "enrollment.created")
    secret = endpoint["secret"]
    assert secret.startswith("whsec_")
    shown = (await live.get(f"{API}/{endpoint['id']}", headers=admin.headers)).json()
    assert "secret" not in shown and shown["event_types"] == ["enrollment.created"]
    course, _ = await course_with_lesson(live, teacher)

    await enroll(live, course["id"], learner)
    await run_jobs(["webhooks"], runtime=allowed)

    assert len(hook.requests) == 1
    received = hook.requests[0]
    assert received.path == "/hooks/lyceum"
    payload = verified(secret, received)
    assert payload["type"] == "enrollment.created" and payload["version"] == "v1"
    assert payload["id"] == received.headers["webhook-id"]
    data = payload["data"]
    assert isinstance(data, dict)
    assert data["user_id"] == str(learner.id) and data["course_id"] == course["id"]
    uuid.UUID(str(data["enrollment_id"]))
    with pytest.raises(Exception):  # noqa: B017, PT011 (any verification error)
        Webhook("whsec_" + "A" * 44).verify(received.body, received.headers)

    [logged] = await deliveries(live, admin, endpoint["id"])
    assert logged["status"] == "succeeded" and logged["attempts"] == 1
    assert logged["status_code"] == 200 and logged["duration_ms"] >= 0
    assert logged["response_body"] == '{"ok": true}'
    assert logged["event_id"] == payload["id"]


async def test_an_unsubscribed_or_inactive_endpoint_gets_nothing(
    live: httpx.AsyncClient, runtime: Runtime, allowed: Runtime, hook: Receiver
) -> None:
    admin = await person(live, runtime, Role.admin)
    teacher = await person(live, runtime, Role.instructor)
    learner = await person(live, runtime)
    other = await register_endpoint(live, admin, hook.url, "certificate.issued")
    paused = await register_endpoint(live, admin, hook.url, "enrollment.created")
    await live.patch(f"{API}/{paused['id']}", json={"is_active": False}, headers=admin.headers)
    course, _ = await course_with_lesson(live, teacher)
    await enroll(live, course["id"], learner)
    await run_jobs(["webhooks"], runtime=allowed)
    assert hook.requests == []
    assert await deliveries(live, admin, other["id"]) == []


async def test_the_test_event_and_a_redelivery_carry_the_same_message(
    live: httpx.AsyncClient, runtime: Runtime, allowed: Runtime, hook: Receiver
) -> None:
    admin = await person(live, runtime, Role.admin)
    endpoint = await register_endpoint(live, admin, hook.url, "course.completed")
    sent = await live.post(f"{API}/{endpoint['id']}/test", headers=admin.headers)
    assert sent.status_code == 202, sent.text
    await run_jobs(["webhooks"], runtime=allowed)
    first = verified(endpoint["secret"], hook.requests[0])
    assert first["type"] == "webhook.test"
    assert first["data"] == {"endpoint_id": endpoint["id"]}

    again = await live.post(
        f"{API}/{endpoint['id']}/deliveries/{sent.json()['id']}/redeliver", headers=admin.headers
    )
    assert again.status_code == 202, again.text
    await run_jobs(["webhooks"], runtime=allowed)
    assert len(hook.requests) == 2
    second = verified(endpoint["secret"], hook.requests[1])
    assert second == first
    assert hook.requests[1].headers["webhook-id"] == hook.requests[0].headers["webhook-id"]
    log = await deliveries(live, admin, endpoint["id"])
    assert [item["status"] for item in log] == ["succeeded", "succeeded"]

    rotated = await live.post(f"{API}/{endpoint['id']}/secret", headers=admin.headers)
    new_secret = rotated.json()["secret"]
    assert new_secret != endpoint["secret"]
    await live.post(f"{API}/{endpoint['id']}/test", headers=admin.headers)
    await run_jobs(["webhooks"], runtime=allowed)
    assert verified(new_secret, hook.requests[2])["type"] == "webhook.test"


async def _due_now(runtime: Runtime) -> None:
    """Move the scheduled retries of webhook deliveries to now."""
    async with runtime.database.engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE procrastinate_jobs SET scheduled_at = now() "
                "WHERE queue_name = 'webhooks' AND status = 'todo'"
            )
        )


async def test_a_failing_endpoint_is_retried_on_the_schedule_then_disabled_and_admins_mailed(
    live: httpx.AsyncClient,
    runtime: Runtime,
    allowed: Runtime,
    hook: Receiver,
    settings: Settings,
) -> None:
    admin = await person(live, runtime, Role.admin)
    admin_email = (await live.get("/api/v1/users/me", headers=admin.headers)).json()["email"]
    endpoint = await register_endpoint(live, admin, hook.url, "enrollment.created")
    hook.status, hook.answer = 503, b"busy " * 1000
    await live.post(f"{API}/{endpoint['id']}/test", headers=admin.headers)

    before = dt.datetime.now(dt.UTC)
    await run_jobs(["webhooks"], runtime=allowed)
    [logged] = await deliveries(live, admin, endpoint["id"])
    assert logged["status"] == "pending" and logged["attempts"] == 1
    assert logged["status_code"] == 503 and logged["last_error"] == "HTTP 503"
    assert len(logged["response_body"]) == 2048  # the read is capped
    next_at = dt.datetime.fromisoformat(logged["next_attempt_at"])
    assert before + RETRY_DELAYS[0] <= next_at <= dt.datetime.now(dt.UTC) + RETRY_DELAYS[0]
    async with runtime.database.engine.connect() as conn:
        scheduled = (
            await conn.execute(
                text(
                    "SELECT scheduled_at FROM procrastinate_jobs WHERE queue_name = 'webhooks' "
                    "AND status = 'todo' AND args->>'delivery_id' = :id"
                ),
                {"id": logged["id"]},
            )
        ).scalar_one()
    assert abs((scheduled - next_at).total_seconds()) < 1

    # The second attempt fails too: the next one waits longer.
    await _due_now(runtime)
    await run_jobs(["webhooks"], runtime=allowed)
    [logged] = await deliveries(live, admin, endpoint["id"])
    assert logged["attempts"] == 2
    wait = dt.datetime.fromisoformat(logged["next_attempt_at"]) - dt.datetime.fromisoformat(
        logged["last_attempt_at"]
    )
    assert wait == RETRY_DELAYS[1]
    assert sum(RETRY_DELAYS, dt.timedelta()) >= dt.timedelta(hours=20)

    # Failing for longer than WEBHOOK_DISABLE_AFTER_SECONDS: disabled, admins mailed.
    async with runtime.database.engine.begin() as conn:
        await conn.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == uuid.UUID(endpoint["id"]))
            .values(failing_since=dt.datetime.now(dt.UTC) - dt.timedelta(days=2))
        )
    await _due_now(runtime)
    await run_jobs(["webhooks"], runtime=allowed)
    await run_jobs(["mail"], runtime=allowed)
    shown = (await live.get(f"{API}/{endpoint['id']}", headers=admin.headers)).json()
    assert shown["is_active"] is False and "failed continuously" in shown["disabled_reason"]
    [logged] = await deliveries(live, admin, endpoint["id"])
    assert logged["status"] == "failed" and logged["attempts"] == 3
    assert logged["next_attempt_at"] is None
    [mail] = [m for m in mails_to(settings, admin_email) if "disabled" in m["Subject"]]
    assert hook.url in mail["Subject"] and hook.url in str(mail.get_body(("plain",)))
    assert mail.get_body(("html",)) is not None

    # A disabled endpoint takes no test events until re-activated.
    refused = await live.post(f"{API}/{endpoint['id']}/test", headers=admin.headers)
    assert refused.status_code == 409
    assert refused.headers["content-type"] == "application/problem+json"
    reactivated = await live.patch(
        f"{API}/{endpoint['id']}", json={"is_active": True}, headers=admin.headers
    )
    assert reactivated.json()["failing_since"] is None
    assert reactivated.json()["disabled_reason"] is None


async def test_410_gone_disables_the_endpoint_at_once(
    live: httpx.AsyncClient, runtime: Runtime, allowed: Runtime, hook: Receiver
) -> None:
    admin = await person(live, runtime, Role.admin)
    endpoint = await register_endpoint(live, admin, hook.url)
    hook.status = 410
    await live.post(f"{API}/{endpoint['id']}/test", headers=admin.headers)
    await run_jobs(["webhooks"], runtime=allowed)
    shown = (await live.get(f"{API}/{endpoint['id']}", headers=admin.headers)).json()
    assert shown["is_active"] is False and "410" in shown["disabled_reason"]
    [logged] = await deliveries(live, admin, endpoint["id"])
    assert logged["status"] == "failed" and logged["next_attempt_at"] is None


async def test_a_delivery_to_a_refused_address_is_not_attempted(
    live: httpx.AsyncClient, runtime: Runtime, hook: Receiver
) -> None:
    """Registered while private networks were allowed; delivered by a worker that
    refuses them: no request reaches the receiver."""
    admin = await person(live, runtime, Role.admin)
    endpoint = await register_endpoint(live, admin, hook.url)
    await live.post(f"{API}/{endpoint['id']}/test", headers=admin.headers)
    await run_jobs(["webhooks"], runtime=runtime)
    assert hook.requests == []
    [logged] = await deliveries(live, admin, endpoint["id"])
    assert logged["status"] == "failed"
    assert "refused" in logged["last_error"] and "loopback" in logged["last_error"]


async def test_old_deliveries_are_purged(
    live: httpx.AsyncClient, runtime: Runtime, allowed: Runtime, hook: Receiver
) -> None:
    admin = await person(live, runtime, Role.admin)
    endpoint = await register_endpoint(live, admin, hook.url)
    await live.post(f"{API}/{endpoint['id']}/test", headers=admin.headers)
    await live.post(f"{API}/{endpoint['id']}/test", headers=admin.headers)
    await run_jobs(["webhooks"], runtime=allowed)
    [newer, older] = await deliveries(live, admin, endpoint["id"])
    async with runtime.database.engine.begin() as conn:
        await conn.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == uuid.UUID(older["id"]))
            .values(created_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=31))
        )
    old_event, new_event = uuid.uuid4(), uuid.uuid4()
    async with runtime.database.engine.begin() as conn:
        for event_id, days in ((old_event, 31), (new_event, 29)):
            await conn.execute(
                insert(Event).values(
                    id=event_id,
                    type="webhook.test",
                    version="v1",
                    occurred_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=days),
                    payload={},
                )
            )
    short = with_settings(runtime, webhook_delivery_retention_days=30)
    async with transaction(short) as session:
        # A worker started by an earlier test in this database may have queued the
        # periodic run (its queueing lock allows one, seen in CI): this test queues its own.
        await session.execute(
            text("DELETE FROM procrastinate_jobs WHERE task_name = :task AND status = 'todo'"),
            {"task": purge_webhook_deliveries.name},
        )
        await defer(session, purge_webhook_deliveries, timestamp=int(dt.datetime.now().timestamp()))
    await run_jobs(["maintenance"], runtime=short)
    async with transaction(runtime) as session:
        left = await session.scalars(
            select(WebhookDelivery.id).where(
                WebhookDelivery.endpoint_id == uuid.UUID(endpoint["id"])
            )
        )
        assert [str(found) for found in left] == [newer["id"]]
        kept = await session.scalars(select(Event.id).where(Event.id.in_([old_event, new_event])))
        assert list(kept) == [new_event]
    assert {item["status"] for item in [newer]} == {WebhookDeliveryStatus.succeeded.value}
    assert json.loads(hook.requests[0].body)["type"] == "webhook.test"
