"""Web Push through pywebpush to a fake push service that verifies the VAPID signature
and decrypts each message with the subscription's private key, as the browser would."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr

from lyceum.channels.service import send_push
from lyceum.config import Environment
from lyceum.kit.delivery import PermanentDeliveryError, TransientDeliveryError
from lyceum.kit.runtime import Runtime
from lyceum.kit.webpush import WebPushSender, topic_for
from tests.channels.conftest import Live, Person, live_app
from tests.support.channel_fakes import BrowserSubscription, FakePushService


@pytest.fixture
async def live(runtime: Runtime) -> AsyncIterator[Live]:
    """Web Push on (outside production: the VAPID key generated into the data dir)."""
    async for value in live_app(runtime):
        yield value


async def subscribed(live: Live, push_service: FakePushService, person: Person) -> str:
    browser = push_service.subscribe()
    return await register(live, person, browser)


async def register(live: Live, person: Person, browser: BrowserSubscription) -> str:
    answer = await live.http.post(
        "/api/v1/me/push-subscriptions", json=browser.to_json(), headers=person.headers
    )
    assert answer.status_code == 201, answer.text
    assert answer.headers["location"] == f"/api/v1/me/push-subscriptions/{answer.json()['id']}"
    return str(answer.json()["id"])


async def push(live: Live, person: Person, key: str, title: str = "Grade released") -> int:
    async with live.runtime.database.sessionmaker() as session:
        reached = await send_push(
            session,
            live.runtime,
            user_id=person.id,
            title=title,
            body="Optics: 9/10",
            url="https://lyceum.test/courses/optics",
            data={"kind": "grade"},
            idempotency_key=key,
        )
        await session.commit()
        return reached


async def test_a_push_is_encrypted_for_the_browser_and_decrypts_there(
    live: Live, push_service: FakePushService
) -> None:
    person = await live.person()
    key_answer = await live.http.get(
        "/api/v1/notifications/push/vapid-public-key", headers=person.headers
    )
    assert key_answer.status_code == 200
    assert key_answer.json()["public_key"] == WebPushSender(live.runtime.settings).public_key
    await subscribed(live, push_service, person)

    key = f"grade:{uuid.uuid4()}"
    assert await push(live, person, key) == 1
    assert push_service.errors == []
    [delivery] = push_service.delivered
    assert delivery.payload == {
        "title": "Grade released",
        "body": "Optics: 9/10",
        "url": "https://lyceum.test/courses/optics",
        "data": {"kind": "grade"},
    }
    # Signed with the key browsers were given; a topic derived from the key.
    assert f"k={key_answer.json()['public_key']}" in delivery.headers["authorization"]
    assert delivery.headers["topic"] == topic_for(key)
    # The same key again: counted as reached, not sent.
    assert await push(live, person, key) == 1
    assert len(push_service.delivered) == 1


async def test_a_subscription_the_push_service_says_is_gone_is_removed(
    live: Live, push_service: FakePushService
) -> None:
    person = await live.person()
    subscription_id = await subscribed(live, push_service, person)
    push_service.gone.update(push_service.subscriptions)
    with pytest.raises(PermanentDeliveryError, match="410"):
        await push(live, person, f"k:{uuid.uuid4()}")
    listed = await live.http.get("/api/v1/me/push-subscriptions", headers=person.headers)
    assert listed.json()["items"] == []
    gone = await live.http.get(
        f"/api/v1/me/push-subscriptions/{subscription_id}", headers=person.headers
    )
    assert gone.status_code == 404
    assert await push(live, person, f"k:{uuid.uuid4()}") == 0


async def test_a_retry_after_a_partial_failure_sends_only_what_is_missing(
    live: Live, push_service: FakePushService
) -> None:
    person = await live.person()
    laptop, phone = push_service.subscribe(), push_service.subscribe()
    await register(live, person, laptop)
    await register(live, person, phone)
    push_service.fail_next(phone, 503)
    key = f"k:{uuid.uuid4()}"
    with pytest.raises(TransientDeliveryError, match="503"):
        await push(live, person, key)
    assert [d.subscription_id for d in push_service.delivered] == [laptop.id]
    assert await push(live, person, key) == 2
    assert sorted(d.subscription_id for d in push_service.delivered) == sorted(
        [laptop.id, phone.id]
    )


async def test_subscribing_again_keeps_one_subscription_and_deleting_it_works(
    live: Live, push_service: FakePushService
) -> None:
    person = await live.person()
    browser = push_service.subscribe()
    subscription_id = await register(live, person, browser)
    again = await live.http.post(
        "/api/v1/me/push-subscriptions", json=browser.to_json(), headers=person.headers
    )
    assert again.status_code == 200
    assert again.json()["id"] == subscription_id
    deleted = await live.http.delete(
        f"/api/v1/me/push-subscriptions/{subscription_id}", headers=person.headers
    )
    assert deleted.status_code == 204
    assert await push(live, person, f"k:{uuid.uuid4()}") == 0
    assert push_service.delivered == []


async def test_the_development_vapid_key_is_generated_once(live: Live) -> None:
    first = WebPushSender(live.runtime.settings).public_key
    assert WebPushSender(live.runtime.settings).public_key == first
    key_file = live.runtime.settings.data_dir / "vapid_private_key"
    assert key_file.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        ("p256dh", "short", "should match pattern"),
        # The right shape, but no point on P-256: every send would fail.
        ("p256dh", "B" + "A" * 86, "must be a point on the P-256 curve"),
        ("p256dh", "A" * 87, "should match pattern"),  # not an uncompressed point
        ("p256dh", "BQ" + "A" * 85, "should match pattern"),  # first byte 0x05
        ("p256dh", "BA" + "A" * 84 + "!", "should match pattern"),
        ("auth", "A" * 30, "should match pattern"),  # not 16 bytes
    ],
)
async def test_a_subscription_body_that_is_not_a_browser_subscription_is_422(
    live: Live, push_service: FakePushService, key: str, value: str, says: str
) -> None:
    person = await live.person()
    body = push_service.subscribe().to_json()
    body["keys"][key] = value
    answer = await live.http.post(
        "/api/v1/me/push-subscriptions", json=body, headers=person.headers
    )
    assert answer.status_code == 422, answer.text
    [error] = answer.json()["errors"]
    assert error["field"] == f"body.keys.{key}"
    assert says in error["message"]
    listed = await live.http.get("/api/v1/me/push-subscriptions", headers=person.headers)
    assert listed.json()["items"] == []


async def test_in_production_web_push_needs_its_key_and_takes_https_push_services_only(
    runtime: Runtime, push_service: FakePushService
) -> None:
    async for live in live_app(runtime, environment=Environment.production):
        person = await live.person()
        answer = await live.http.get(
            "/api/v1/notifications/push/vapid-public-key", headers=person.headers
        )
        assert answer.status_code == 409
        assert answer.json()["type"].endswith("/web-push-not-configured")
        assert await push(live, person, f"k:{uuid.uuid4()}") == 0

    private_key = WebPushSender(runtime.settings).vapid.private_key.private_numbers()
    raw = private_key.private_value.to_bytes(32, "big")
    configured = {
        "environment": Environment.production,
        "vapid_private_key": SecretStr(base64.urlsafe_b64encode(raw).rstrip(b"=").decode()),
        "vapid_subject": "mailto:ops@lyceum.test",
    }
    async for live in live_app(runtime, **configured):
        person = await live.person()
        answer = await live.http.get(
            "/api/v1/notifications/push/vapid-public-key", headers=person.headers
        )
        assert answer.json()["public_key"] == WebPushSender(runtime.settings).public_key
        for endpoint in (
            push_service.subscribe().endpoint,  # http://127.0.0.1:...
            "https://169.254.169.254/latest/meta-data",
            "https://localhost/push/1",
        ):
            body = {**push_service.subscribe().to_json(), "endpoint": endpoint}
            refused = await live.http.post(
                "/api/v1/me/push-subscriptions", json=body, headers=person.headers
            )
            assert refused.status_code == 422, endpoint
            assert [error["field"] for error in refused.json()["errors"]] == ["body.endpoint"]


async def test_a_long_message_is_cut_to_what_push_services_accept(
    live: Live, push_service: FakePushService
) -> None:
    person = await live.person()
    await subscribed(live, push_service, person)
    async with live.runtime.database.sessionmaker() as session:
        reached = await send_push(
            session,
            live.runtime,
            user_id=person.id,
            title="Announcement",
            body="Thông báo " * 1000,
            url="https://lyceum.test/a/1",
            data={"announcement_id": "1" * 500},
            idempotency_key=f"long:{uuid.uuid4()}",
        )
        await session.commit()
    assert reached == 1
    [delivery] = push_service.delivered
    assert delivery.payload["body"].startswith("Thông báo")
    assert delivery.payload["body"].endswith("\u2026")
    assert delivery.payload["url"] == "https://lyceum.test/a/1"
