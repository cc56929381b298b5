"""Webhook tests run on committed data (the delivery job reads it from its own
connection); every endpoint a test registers is deleted afterwards, so no other test's
events are delivered to a receiver that is gone."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from sqlalchemy import delete, text

from lyceum.config import Settings
from lyceum.kit.runtime import Runtime
from lyceum.models.webhooks import WebhookEndpoint
from tests.conftest import client_for, make_app
from tests.support.clock import FrozenClock
from tests.support.jobs import with_settings
from tests.webhooks.receiver import Receiver, receiver


@pytest.fixture
async def live(settings: Settings, runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """The app on committed data, letting endpoints on private networks be registered
    (the receiver listens on 127.0.0.1)."""
    await runtime.rate_limiter.reset()
    app = make_app(settings, runtime, None)
    app.state.clock = FrozenClock()
    app.state.runtime = with_settings(runtime, webhook_allow_private_networks=True)
    async with client_for(app) as http:
        yield http
    async with runtime.database.engine.begin() as conn:
        await conn.execute(delete(WebhookEndpoint))
        await conn.execute(
            text("DELETE FROM procrastinate_jobs WHERE queue_name = 'webhooks' AND status = 'todo'")
        )


@pytest.fixture
def allowed(runtime: Runtime) -> Runtime:
    """What the delivery job runs with: private networks allowed."""
    return with_settings(runtime, webhook_allow_private_networks=True)


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with receiver() as state:
        yield state
