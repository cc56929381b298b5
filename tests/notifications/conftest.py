"""Committed people for the delivery tests (jobs run on connections of their own, so
what they read must be committed), removed afterwards."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import delete

from lyceum.kit.runtime import Runtime
from lyceum.models.identity import User
from lyceum.models.notifications import Notification

MakeUser = Callable[..., Awaitable[User]]


@pytest.fixture
async def committed_user(runtime: Runtime) -> AsyncIterator[MakeUser]:
    made: list[uuid.UUID] = []

    async def make(**fields: Any) -> User:
        user = User(
            id=uuid.uuid4(),
            email=f"d-{uuid.uuid4().hex[:12]}@example.com",
            full_name=fields.pop("full_name", "Ada Learner"),
            **fields,
        )
        async with runtime.database.sessionmaker() as session, session.begin():
            session.add(user)
        made.append(user.id)
        return user

    yield make
    async with runtime.database.sessionmaker() as session, session.begin():
        await session.execute(delete(Notification).where(Notification.user_id.in_(made)))
        await session.execute(delete(User).where(User.id.in_(made)))
