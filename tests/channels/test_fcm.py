"""Mobile push through FCM HTTP v1 to a fake FCM whose token endpoint checks the
service account's signed JWT assertion."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from lyceum.channels.service import send_push
from lyceum.kit.delivery import PermanentDeliveryError
from lyceum.kit.runtime import Runtime
from tests.channels.conftest import Live, Person, fcm_settings, live_app
from tests.support.channel_fakes import FCM_SCOPE, FakeFcm


@pytest.fixture
async def live(runtime: Runtime, fcm: FakeFcm, tmp_path: Path) -> AsyncIterator[Live]:
    async for value in live_app(runtime, **fcm_settings(fcm, tmp_path)):
        yield value


def device_token() -> str:
    return "fcm-" + uuid.uuid4().hex + ":APA91b" + uuid.uuid4().hex


async def device(live: Live, person: Person, token: str, platform: str = "android") -> str:
    answer = await live.http.post(
        "/api/v1/me/devices", json={"token": token, "platform": platform}, headers=person.headers
    )
    assert answer.status_code == 201, answer.text
    assert answer.headers["location"] == f"/api/v1/me/devices/{answer.json()['id']}"
    return str(answer.json()["id"])


async def push(live: Live, person: Person, key: str) -> int:
    async with live.runtime.database.sessionmaker() as session:
        reached = await send_push(
            session,
            live.runtime,
            user_id=person.id,
            title="Certificate issued",
            body="Optics is complete.",
            url="https://lyceum.test/certificates/X1",
            data={"kind": "certificate"},
            idempotency_key=key,
        )
        await session.commit()
        return reached


async def test_an_fcm_message_reaches_the_device(live: Live, fcm: FakeFcm) -> None:
    person = await live.person()
    token = device_token()
    await device(live, person, token)
    key = f"cert:{uuid.uuid4()}"
    assert await push(live, person, key) == 1
    [sent] = fcm.messages
    assert sent.message["token"] == token
    assert sent.message["notification"] == {
        "title": "Certificate issued",
        "body": "Optics is complete.",
    }
    assert sent.message["data"] == {
        "kind": "certificate",
        "url": "https://lyceum.test/certificates/X1",
    }
    # The access token came from the service account's own signed assertion.
    [assertion] = fcm.assertions
    assert assertion["iss"] == fcm.client_email
    assert FCM_SCOPE in assertion["scope"].split()
    # Once per key.
    assert await push(live, person, key) == 1
    assert len(fcm.messages) == 1
    # The token is reused for the next message.
    assert await push(live, person, f"cert:{uuid.uuid4()}") == 1
    assert len(fcm.assertions) == 1


async def test_an_unregistered_token_removes_the_device(live: Live, fcm: FakeFcm) -> None:
    person = await live.person()
    token = device_token()
    device_id = await device(live, person, token, platform="ios")
    fcm.unregistered.add(token)
    with pytest.raises(PermanentDeliveryError, match="UNREGISTERED"):
        await push(live, person, f"k:{uuid.uuid4()}")
    assert (await live.http.get("/api/v1/me/devices", headers=person.headers)).json()["items"] == []
    gone = await live.http.get(f"/api/v1/me/devices/{device_id}", headers=person.headers)
    assert gone.status_code == 404


async def test_without_a_service_account_mobile_push_is_skipped(runtime: Runtime) -> None:
    async for live in live_app(runtime, vapid_subject=None):
        person = await live.person()
        answer = await live.http.post(
            "/api/v1/me/devices",
            json={"token": device_token(), "platform": "android"},
            headers=person.headers,
        )
        assert answer.status_code == 409
        assert answer.json()["type"].endswith("/mobile-push-not-configured")
        assert await push(live, person, f"k:{uuid.uuid4()}") == 0
