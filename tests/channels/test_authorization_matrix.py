"""Every channel route with an object in its path, called by each kind of caller: a
phone, push subscription or device is reachable by its owner only (404 to everyone
else, admins included: they are personal delivery addresses)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from lyceum.config import Settings
from lyceum.kit.db import get_session
from lyceum.kit.runtime import Runtime
from lyceum.models.channels import PushDevice, PushSubscription, UserPhone
from lyceum.models.identity import Role
from tests.chat.helpers import Member, member_in
from tests.conftest import client_for, make_app
from tests.support.channel_fakes import browser_keys
from tests.support.clock import FrozenClock

CALLERS = ["anonymous", "enrolled", "other_learner", "instructor", "other_instructor", "admin"]


@pytest.fixture(scope="module")
def shared_app(settings: Settings, runtime: Runtime) -> FastAPI:
    return make_app(settings, runtime, None)


@pytest.fixture
async def client(
    shared_app: FastAPI, connection: AsyncConnection, clock: FrozenClock
) -> AsyncIterator[httpx.AsyncClient]:
    """The shared app with its sessions inside this test's transaction (rolled back)."""

    async def session_in_test_transaction() -> AsyncIterator[AsyncSession]:
        async with AsyncSession(
            bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        ) as session:
            try:
                yield session
            except BaseException:
                await session.rollback()
                raise
            else:
                await session.commit()

    shared_app.dependency_overrides[get_session] = session_in_test_transaction
    shared_app.state.clock = clock
    async with client_for(shared_app) as http:
        yield http
    shared_app.dependency_overrides.clear()


@dataclass
class World:
    people: dict[str, Member | None]
    # The owner's phone, a subscription and a device, made afresh for each caller.
    fresh: Callable[[], Awaitable[dict[str, str]]]


async def _add(connection: AsyncConnection, row: Any) -> None:
    async with AsyncSession(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    ) as session:
        await session.merge(row)
        await session.commit()


@pytest.fixture
async def world(connection: AsyncConnection, runtime: Runtime, clock: FrozenClock) -> World:
    async def make(role: Role, name: str) -> Member:
        return await member_in(connection, runtime.tokens, clock.now(), role, name)

    owner = await make(Role.student, "Ada Owner")
    people: dict[str, Member | None] = {
        "anonymous": None,
        "enrolled": owner,
        "other_learner": await make(Role.student, "Eve Other"),
        "instructor": await make(Role.instructor, "Grace Teacher"),
        "other_instructor": await make(Role.instructor, "Olga Other"),
        "admin": await make(Role.admin, "Root Admin"),
    }

    async def fresh() -> dict[str, str]:
        subscription = PushSubscription(
            id=uuid.uuid4(),
            user_id=owner.id,
            endpoint=f"https://push.example.org/{uuid.uuid4()}",
            **browser_keys(),
        )
        device = PushDevice(
            id=uuid.uuid4(), user_id=owner.id, token=f"tok-{uuid.uuid4()}", platform="android"
        )
        await _add(connection, subscription)
        await _add(connection, device)
        await _add(
            connection, UserPhone(user_id=owner.id, number="+14155550123", verified_at=clock.now())
        )
        return {"subscription": str(subscription.id), "device": str(device.id)}

    return World(people, fresh)


OWNER_ONLY = [401, 200, 404, 404, 404, 404]
OWNER_DELETES = [401, 204, 404, 404, 404, 404]
SIGNED_IN = [401, 200, 200, 200, 200, 200]

# (method, path template, body, expected status per caller in CALLERS order)
MATRIX: list[tuple[str, str, Any, list[int]]] = [
    ("GET", "/api/v1/me/push-subscriptions/{subscription}", None, OWNER_ONLY),
    ("DELETE", "/api/v1/me/push-subscriptions/{subscription}", None, OWNER_DELETES),
    ("GET", "/api/v1/me/devices/{device}", None, OWNER_ONLY),
    ("DELETE", "/api/v1/me/devices/{device}", None, OWNER_DELETES),
    ("GET", "/api/v1/me/phone", None, OWNER_ONLY),
    ("DELETE", "/api/v1/me/phone", None, OWNER_DELETES),
    ("GET", "/api/v1/me/push-subscriptions", None, SIGNED_IN),
    ("GET", "/api/v1/me/devices", None, SIGNED_IN),
    ("GET", "/api/v1/notifications/push/vapid-public-key", None, SIGNED_IN),
]


@pytest.mark.parametrize(("method", "template", "body", "expected"), MATRIX)
async def test_authorization_matrix(
    client: httpx.AsyncClient,
    world: World,
    method: str,
    template: str,
    body: Any,
    expected: list[int],
) -> None:
    answers = {}
    for who in CALLERS:
        path = template.format(**await world.fresh())
        caller = world.people[who]
        response = await client.request(
            method, path, json=body, headers=caller.headers if caller else {}
        )
        answers[who] = response.status_code
        if response.status_code >= 400:
            assert response.headers["content-type"] == "application/problem+json"
    assert answers == dict(zip(CALLERS, expected, strict=True))


async def test_lists_hold_the_callers_own_objects_only(
    client: httpx.AsyncClient, world: World
) -> None:
    await world.fresh()
    owner, other = world.people["enrolled"], world.people["admin"]
    assert owner is not None and other is not None
    for path in ("/api/v1/me/push-subscriptions", "/api/v1/me/devices"):
        mine = await client.get(path, headers=owner.headers)
        assert mine.json()["total"] == 1
        theirs = await client.get(path, headers=other.headers)
        assert theirs.json()["items"] == []
