"""One app per module for these tests instead of one per test: building the whole app
costs about half a second, more than most of these tests. Each test still gets its
own rolled-back transaction: the app's sessions join the connection of the test that
is running (the same savepoint rules as `tests.conftest.make_app`)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from lyceum.config import Settings
from lyceum.kit.db import get_session
from lyceum.kit.errors import DomainError
from lyceum.kit.runtime import Runtime
from tests.conftest import make_app
from tests.support.clock import FrozenClock


class _CurrentConnection:
    connection: AsyncConnection | None = None


@pytest.fixture(scope="module")
def shared_app(settings: Settings, runtime: Runtime) -> tuple[FastAPI, _CurrentConnection]:
    application = make_app(settings, runtime, None)
    current = _CurrentConnection()

    async def session_in_test_transaction() -> AsyncIterator[AsyncSession]:
        assert current.connection is not None
        async with AsyncSession(
            bind=current.connection,
            join_transaction_mode="create_savepoint",
            expire_on_commit=False,
        ) as db_session:
            try:
                yield db_session
            except DomainError as error:
                if error.persist_changes:
                    await db_session.commit()
                else:
                    await db_session.rollback()
                raise
            except BaseException:
                await db_session.rollback()
                raise
            else:
                await db_session.commit()

    application.dependency_overrides[get_session] = session_in_test_transaction
    return application, current


@pytest.fixture
def app(
    shared_app: tuple[FastAPI, _CurrentConnection],
    connection: AsyncConnection,
    clock: FrozenClock,
) -> FastAPI:
    application, current = shared_app
    current.connection = connection
    application.state.clock = clock
    return application
