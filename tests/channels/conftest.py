"""The channels' tests run on committed data (sends are recorded, and gone subscriptions
removed, in transactions of their own; the code job runs in a worker), against fake
providers over HTTP, with a runtime whose settings point at them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from lyceum.kit.runtime import Runtime
from tests.conftest import client_for, make_app
from tests.identity.helpers import login, register, unique_email
from tests.support.channel_fakes import FakeFcm, FakePushService, FakeTwilio
from tests.support.clock import FrozenClock
from tests.support.jobs import run_jobs, with_settings

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "twilio-test-auth-token-0123456789"
FROM_NUMBER = "+15005550006"


@dataclass
class Person:
    id: uuid.UUID
    headers: dict[str, str]


@dataclass
class Live:
    """The app on committed data, with its runtime, clock and HTTP client."""

    runtime: Runtime
    http: httpx.AsyncClient
    clock: FrozenClock

    async def person(self) -> Person:
        email = unique_email("channels")
        user = await register(self.http, email)
        tokens = await login(self.http, email)
        return Person(
            uuid.UUID(str(user["id"])), {"Authorization": f"Bearer {tokens['access_token']}"}
        )

    async def run_jobs(self) -> None:
        await run_jobs(["notifications"], runtime=self.runtime)


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    with FakeTwilio(ACCOUNT_SID, AUTH_TOKEN) as fake:
        yield fake


@pytest.fixture
def push_service() -> Iterator[FakePushService]:
    with FakePushService() as fake:
        yield fake


@pytest.fixture
def fcm() -> Iterator[FakeFcm]:
    with FakeFcm() as fake:
        yield fake


def twilio_settings(twilio: FakeTwilio) -> dict[str, Any]:
    return {
        "twilio_account_sid": ACCOUNT_SID,
        "twilio_auth_token": SecretStr(AUTH_TOKEN),
        "twilio_from_number": FROM_NUMBER,
        "twilio_api_base_url": twilio.base_url,
    }


def fcm_settings(fcm: FakeFcm, directory: Path) -> dict[str, Any]:
    return {
        "fcm_service_account_file": fcm.service_account_file(directory),
        "fcm_api_base_url": fcm.base_url,
    }


async def live_app(runtime: Runtime, **changes: Any) -> AsyncIterator[Live]:
    configured = with_settings(runtime, **changes)
    await configured.rate_limiter.reset()
    app = make_app(configured.settings, configured, None)
    clock = FrozenClock()
    app.state.clock = clock
    async with client_for(app) as http:
        yield Live(configured, http, clock)


@pytest.fixture
async def live(runtime: Runtime, twilio: FakeTwilio) -> AsyncIterator[Live]:
    """SMS on, through the fake Twilio."""
    async for value in live_app(runtime, **twilio_settings(twilio)):
        yield value
