"""Every error is application/problem+json: unknown routes, wrong methods, invalid and
malformed bodies, oversized bodies, domain errors and unhandled exceptions."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request
from pydantic import BaseModel, Field
from sqlalchemy import text
from starlette.types import ASGIApp, Receive, Scope, Send

from lyceum.config import Settings
from lyceum.kit.db import POOL_TIMEOUT_SECONDS, Database
from lyceum.kit.errors import Conflict, NotFound
from lyceum.kit.runtime import Runtime
from tests.conftest import client_for, make_app

PROBLEM = "application/problem+json"


class Echo(BaseModel):
    name: str = Field(min_length=1)
    count: int = Field(ge=0)


probe = APIRouter(prefix="/api/v1/probe")


@probe.post("/echo")
async def echo(body: Echo) -> Echo:
    return body


@probe.get("/missing")
async def missing() -> None:
    raise NotFound("Course 123 does not exist.")


@probe.post("/conflict")
async def conflict() -> None:
    raise Conflict("That email is already registered.")


@probe.get("/boom")
async def boom() -> None:
    raise RuntimeError("secret internal detail: password=hunter2")


@probe.get("/pool-exhausted")
async def pool_exhausted(request: Request) -> None:
    """Takes the only connection of a one-connection pool, then asks for another."""
    from sqlalchemy.ext.asyncio import create_async_engine

    url = request.app.state.runtime.database_url.replace("postgresql://", "postgresql+psycopg://")
    engine = create_async_engine(url, pool_size=1, max_overflow=0, pool_timeout=0.2)
    try:
        async with engine.connect(), engine.connect():
            pass
    finally:
        await engine.dispose()


@pytest.fixture
def app(app: FastAPI) -> FastAPI:
    app.include_router(probe)
    return app


def assert_problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, object] = response.json()
    assert body["status"] == status
    assert str(body["type"]).startswith("https://")
    assert body["title"]
    assert body["detail"]
    return body


async def test_unknown_route_is_a_404_problem(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.get("/api/v1/does-not-exist"), 404)
    assert "/api/v1/does-not-exist" in str(body["detail"])


async def test_wrong_method_is_a_405_problem(client: httpx.AsyncClient) -> None:
    response = await client.delete("/health/live")
    assert_problem(response, 405)
    assert "GET" in response.headers["allow"]


async def test_validation_error_names_every_field(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.post("/api/v1/probe/echo", json={"count": -1}), 422)
    fields = {error["field"] for error in body["errors"]}  # type: ignore[attr-defined]
    assert fields == {"body.name", "body.count"}


async def test_malformed_json_is_a_400_not_a_500(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/probe/echo",
        content=b'{"name": "x", "count": ',
        headers={"content-type": "application/json"},
    )
    body = assert_problem(response, 400)
    assert body["type"] == "https://lyceum.dev/problems/malformed-json"


def stranger(runtime: Runtime) -> dict[str, str]:
    """The headers of a valid access token for an account that does not exist: its
    request's first query (the caller's account) needs a database connection."""
    token, _, _ = runtime.tokens.encode(
        subject=uuid.uuid4(),
        role="student",
        token_type="access",
        now=dt.datetime.now(dt.UTC),
        lifetime=dt.timedelta(minutes=5),
        extra={"sid": str(uuid.uuid4())},
    )
    return {"Authorization": f"Bearer {token}"}


async def test_a_database_that_refuses_connections_is_a_503_with_retry_after(
    settings: Settings, runtime: Runtime
) -> None:
    """The class of "too many clients already" (found with two API processes whose pools
    together passed PostgreSQL's max_connections): the database refusing a connection
    is transient, so the caller gets 503 and Retry-After, not a 500. Here the app's own
    session dependency points at a port with no server, and an authenticated request
    (its first query is the caller's account) needs a connection."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    down = Database(f"postgresql://lyceum@127.0.0.1:{port}/lyceum", pool_size=1, max_overflow=0)
    app = make_app(settings, dataclasses.replace(runtime, database=down, tasks=[]), None)
    try:
        async with client_for(app) as http:
            response = await http.get("/api/v1/users/me", headers=stranger(runtime))
        body = assert_problem(response, 503)
        assert body["type"] == "https://lyceum.dev/problems/database-unavailable"
        assert int(response.headers["retry-after"]) >= 1
    finally:
        await down.dispose()


async def test_domain_errors_map_to_their_status(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.get("/api/v1/probe/missing"), 404)
    assert body["detail"] == "Course 123 does not exist."
    assert_problem(await client.post("/api/v1/probe/conflict"), 409)


async def test_an_exhausted_connection_pool_is_a_503_with_retry_after(
    client: httpx.AsyncClient,
) -> None:
    """Overload is not a server bug: clients are told to come back, not shown a 500."""
    response = await client.get("/api/v1/probe/pool-exhausted")
    body = assert_problem(response, 503)
    assert body["type"] == "https://lyceum.dev/problems/overloaded"
    assert int(response.headers["retry-after"]) >= 1


async def test_a_request_waiting_past_the_pool_timeout_gets_503_with_retry_after(
    settings: Settings, runtime: Runtime
) -> None:
    """Bounded queueing: the app's own session dependency on a pool of one connection
    with a short DB_POOL_TIMEOUT. While the connection is taken, an authenticated
    request (its first query is the caller's account) is refused with 503 and
    Retry-After instead of queueing on; once it is free, requests are served again."""
    tiny = Database(runtime.database_url, pool_size=1, max_overflow=0, pool_timeout=0.05)
    app = make_app(settings, dataclasses.replace(runtime, database=tiny, tasks=[]), None)
    headers = stranger(runtime)
    try:
        async with client_for(app) as http:
            async with tiny.engine.connect() as taken:
                await taken.execute(text("SELECT 1"))
                response = await http.get("/api/v1/users/me", headers=headers)
            body = assert_problem(response, 503)
            assert body["type"] == "https://lyceum.dev/problems/overloaded"
            assert int(response.headers["retry-after"]) >= 1
            # The connection is back: the same request is served (401: no such account).
            assert_problem(await http.get("/api/v1/users/me", headers=headers), 401)
    finally:
        await tiny.dispose()


def test_db_pool_timeout_reaches_the_pool(settings: Settings, runtime: Runtime) -> None:
    pool: Any = runtime.database.engine.pool
    assert pool.timeout() == settings.db_pool_timeout == POOL_TIMEOUT_SECONDS


async def test_unhandled_exception_is_logged_and_hides_internals(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        response = await client.get("/api/v1/probe/boom", headers={"x-request-id": "req-boom-1"})
    body = assert_problem(response, 500)
    assert "hunter2" not in response.text
    assert "RuntimeError" not in response.text
    assert body["type"] == "https://lyceum.dev/problems/internal-error"
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "unhandled_exception" in logged
    assert "req-boom-1" in logged


async def test_oversized_body_is_refused_with_413(client: httpx.AsyncClient, app: FastAPI) -> None:
    limit = app.state.settings.max_request_body_bytes
    response = await client.post(
        "/api/v1/probe/echo",
        content=b"x" * (limit + 1),
        headers={"content-type": "application/json"},
    )
    assert_problem(response, 413)


async def test_oversized_streamed_body_without_length_is_refused(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    limit = app.state.settings.max_request_body_bytes
    chunk = b" " * 65536

    async def body():  # type: ignore[no-untyped-def]
        sent = 0
        while sent <= limit:
            sent += len(chunk)
            yield chunk

    response = await client.post(
        "/api/v1/probe/echo", content=body(), headers={"content-type": "application/json"}
    )
    assert_problem(response, 413)


class FailingMiddleware:
    """A middleware that fails before the app answers, like a broken cache lookup."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/api/v1/probe/middleware-boom":
            raise RuntimeError("the middleware broke")
        await self.app(scope, receive, send)


SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "strict-origin-when-cross-origin",
    "cross-origin-opener-policy": "same-origin",
}


def oversized_stream(limit: int) -> Callable[[], AsyncIterator[bytes]]:
    async def body() -> AsyncIterator[bytes]:
        sent = 0
        while sent <= limit:
            sent += 65536
            yield b" " * 65536

    return body


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("GET", "/health/live", {}, 200),
        ("GET", "/verify-email", {}, 200),
        ("GET", "/api/v1/nothing-here", {}, 404),
        ("DELETE", "/health/live", {}, 405),
        ("POST", "/api/v1/probe/echo", {"json": {"count": -1}}, 422),
        ("POST", "/api/v1/probe/echo", {"content": b"{", "type": "application/json"}, 400),
        ("POST", "/api/v1/probe/echo", {"content": b"x" * (13 * 1024 * 1024)}, 413),
        ("POST", "/api/v1/probe/echo", {"stream": True}, 413),
        ("GET", "/api/v1/probe/missing", {}, 404),
        ("GET", "/api/v1/probe/boom", {}, 500),
        ("GET", "/api/v1/probe/middleware-boom", {}, 500),
        ("GET", "/socket.io/?EIO=4&transport=bogus", {}, 400),
    ],
)
async def test_every_response_carries_the_request_id_and_security_headers(
    app: FastAPI, method: str, path: str, kwargs: dict[str, Any], status: int
) -> None:
    """Unhandled errors, errors raised in middleware, refusals of the body limit and
    Socket.IO's own HTTP answers included: a client (or an operator reading a report)
    always has the id that finds the request's log line."""
    app.add_middleware(FailingMiddleware)
    arguments = dict(kwargs)
    headers = {"X-Request-ID": "req-every-1"}
    if "type" in arguments:
        headers["Content-Type"] = arguments.pop("type")
    if arguments.pop("stream", False):
        arguments["content"] = oversized_stream(app.state.settings.max_request_body_bytes)()
    async with client_for(app) as http:
        response = await http.request(method, path, headers=headers, **arguments)
    assert response.status_code == status, response.text
    assert response.headers["x-request-id"] == "req-every-1"
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, name


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/courses?category=%00",
        "/api/v1/courses?q=optics%00",
        "/api/v1/courses/%00",
        "/api/v1/me/notifications?unread=%00true",
    ],
)
async def test_a_nul_anywhere_in_the_path_or_query_is_a_422_naming_it(
    settings: Settings, runtime: Runtime, url: str
) -> None:
    """PostgreSQL cannot hold NUL in text: every route refuses it before any parameter
    is parsed (one once reached the catalog's category filter and answered 500)."""
    async with client_for(make_app(settings, runtime, None)) as http:
        response = await http.get(url)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert "NUL" in problem["detail"]
    assert problem["errors"][0]["field"] in {"path", "query"}
