"""Test fixtures: real PostgreSQL (embedded, one database per xdist worker, migrated with
`alembic upgrade head`), each test inside a transaction rolled back at the end."""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from alembic import command
from fastapi import FastAPI, Request
from pydantic import AnyHttpUrl, SecretStr
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import Session as SyncSession

from lyceum.app import create_app
from lyceum.config import AIProvider, Environment, Settings, get_settings
from lyceum.kit.db import (
    ReadOnlySession,
    alembic_config,
    get_session,
    route_reads_only,
    unit_of_work,
)
from lyceum.kit.embedded_pg import EmbeddedPostgres
from lyceum.kit.runtime import Runtime
from tests.support import jobs as test_jobs
from tests.support.clock import FrozenClock
from tests.support.fake_llm import FakeLLM
from tests.support.servers import REPO_ROOT, redis_server

TEST_SECRET = "test-secret-key-that-is-long-enough-0123456789"
PGDATA = Path(os.environ.get("LYCEUM_TEST_PGDATA", REPO_ROOT / ".pytest-lyceum" / "pg"))


def _worker_id() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(scope="session")
def embedded_pg() -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(PGDATA)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def database_url(embedded_pg: EmbeddedPostgres) -> str:
    """A fresh database for this xdist worker, built by the real migrations."""
    url = embedded_pg.ensure_database(f"lyceum_test_{_worker_id()}", fresh=True)
    command.upgrade(alembic_config(url), "head")
    return url


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("lyceum-data")


@pytest.fixture(scope="session")
def settings(database_url: str, data_dir: Path) -> Iterator[Settings]:
    env = {
        "ENVIRONMENT": Environment.test.value,
        "DATABASE_URL": database_url,
        "LYCEUM_DATA_DIR": str(data_dir),
        "SECRET_KEY": TEST_SECRET,
        "PUBLIC_BASE_URL": "http://lyceum.test",
        "LOG_LEVEL": "WARNING",
    }
    previous = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    for key in ("REDIS_URL", "SMTP_HOST"):
        os.environ.pop(key, None)
    get_settings.cache_clear()
    yield get_settings()
    for key, value in previous.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    get_settings.cache_clear()


@pytest.fixture(scope="session")
async def runtime(settings: Settings, database_url: str) -> AsyncIterator[Runtime]:
    started = await Runtime.start(settings, database_url=database_url, migrate=False)
    test_jobs.bind(started)
    yield started
    test_jobs.bind(None)
    await started.stop()


@pytest.fixture
async def connection(runtime: Runtime) -> AsyncIterator[AsyncConnection]:
    """The test's outer transaction; everything a test writes is rolled back."""
    async with runtime.database.engine.connect() as conn:
        transaction = await conn.begin()
        yield conn
        if transaction.is_active:
            await transaction.rollback()


@pytest.fixture
async def session(connection: AsyncConnection) -> AsyncIterator[AsyncSession]:
    async with AsyncSession(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    ) as db_session:
        yield db_session


def make_app(settings: Settings, runtime: Runtime, connection: AsyncConnection | None) -> FastAPI:
    """The real app; with `connection`, request sessions join the test transaction
    (commit releases a savepoint, errors roll back to it), so nothing persists."""
    app = create_app(settings, runtime=runtime)
    if connection is not None:

        async def session_in_test_transaction(request: Request) -> AsyncIterator[AsyncSession]:
            # A route marked `reads_only` gets the read-only guard here too, so a write
            # in one fails every test that calls it.
            async with (
                AsyncSession(
                    bind=connection,
                    join_transaction_mode="create_savepoint",
                    expire_on_commit=False,
                    sync_session_class=(
                        ReadOnlySession if route_reads_only(request) else SyncSession
                    ),
                ) as db_session,
                unit_of_work(db_session),
            ):
                yield db_session

        app.dependency_overrides[get_session] = session_in_test_transaction
    return app


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def app(
    settings: Settings, runtime: Runtime, connection: AsyncConnection, clock: FrozenClock
) -> FastAPI:
    application = make_app(settings, runtime, connection)
    application.state.clock = clock
    return application


_client_numbers = itertools.count()


def client_for(app: FastAPI) -> httpx.AsyncClient:
    """An in-process client with an address of its own (in 198.18.0.0/15, the range set
    aside for tests): per-IP limits (registration, sign-in) count per test, as they
    would per machine, not across the whole run."""
    number = next(_client_numbers)
    address = f"198.{18 + number // 65536 % 2}.{number // 256 % 256}.{number % 256}"
    transport = httpx.ASGITransport(
        app=app, raise_app_exceptions=False, client=(address, 50000 + number % 10000)
    )
    return httpx.AsyncClient(transport=transport, base_url="http://lyceum.test")


@asynccontextmanager
async def committing_client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app as a server runs it: outside any test transaction, so every
    request commits (jobs and other sessions see what it wrote), on a frozen clock, with
    the runtime's current settings and its rate limits reset."""
    await runtime.rate_limiter.reset()
    application = make_app(runtime.settings, runtime, None)
    application.state.clock = FrozenClock()
    async with client_for(application) as http:
        yield http


@asynccontextmanager
async def client_on_fake_provider(
    runtime: Runtime,
    fake: FakeLLM,
    provider: AIProvider = AIProvider.claude,
    **settings: object,
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app outside any test transaction (its requests commit, as a
    server's do) with `provider` pointed at the fake model server, and `settings` on top.
    The runtime's settings, rate limits and the fake's script are reset around it."""
    original = runtime.settings
    base = fake.base_url if provider is AIProvider.claude else fake.openai_base_url
    runtime.settings = original.model_copy(
        update={
            "ai_provider": provider,
            "ai_api_key": SecretStr("test-key"),
            "ai_base_url": AnyHttpUrl(base),
            **settings,
        }
    )
    fake.reset()
    try:
        async with committing_client(runtime) as http:
            yield http
    finally:
        runtime.settings = original
        fake.reset()


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app) as http:
        yield http


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real redis-server, started for the tests that exercise Redis behaviour."""
    with redis_server() as url:
        yield url
