"""Routes marked `reads_only` run their statements without a transaction (no BEGIN and
COMMIT round trips) and cannot write."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.routing import iter_route_contexts
from sqlalchemy import event, insert

from lyceum.kit.db import ReadOnlySession, ReadOnlySessionError, driver_execute
from lyceum.kit.runtime import Runtime
from lyceum.models.identity import User
from tests.conftest import client_for, make_app
from tests.identity.helpers import login, register, unique_email

MARKED = {
    ("GET", "/api/v1/users/me"),
    ("GET", "/api/v1/me/enrollments"),
    ("GET", "/api/v1/courses/{course_id}"),
    ("GET", "/api/v1/courses/{course_id}/modules"),
    ("GET", "/api/v1/courses/{course_id}/progress"),
    ("GET", "/api/v1/lessons/{lesson_id}"),
}


def test_only_get_routes_are_marked_and_the_marked_ones_are_these(runtime: Runtime) -> None:
    app = make_app(runtime.settings, runtime, None)
    marked = {
        (method, context.path_format)
        for context in iter_route_contexts(app.routes)
        if getattr(context.endpoint, "__lyceum_reads_only__", False)
        for method in (context.methods or set()) - {"HEAD"}
    }
    assert marked == MARKED


async def test_a_read_only_route_sends_its_statements_outside_a_transaction(
    runtime: Runtime,
) -> None:
    """Outside the test transaction (a server's own sessions): every statement of
    `GET /users/me` runs on a connection in autocommit (psycopg sends no BEGIN, and so
    no COMMIT), while `PATCH /users/me` runs in a transaction."""
    app = make_app(runtime.settings, runtime, None)
    seen: list[tuple[str, bool]] = []

    def _record(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        seen.append((statement.split()[0], bool(conn.connection.driver_connection.autocommit)))

    engine = runtime.database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", _record)
    try:
        async with client_for(app) as client:
            email = unique_email("read-only")
            await register(client, email)
            headers = {"Authorization": f"Bearer {(await login(client, email))['access_token']}"}
            seen.clear()
            read = await client.get("/api/v1/users/me", headers=headers)
            assert read.status_code == 200, read.text
            assert seen and all(autocommit for _, autocommit in seen), seen
            seen.clear()
            patched = await client.patch(
                "/api/v1/users/me", headers=headers, json={"full_name": "Ada King"}
            )
            assert patched.status_code == 200, patched.text
            assert seen and not any(autocommit for _, autocommit in seen), seen
    finally:
        event.remove(engine, "before_cursor_execute", _record)


async def test_a_read_only_session_refuses_every_kind_of_write(runtime: Runtime) -> None:
    async with runtime.database.read_sessionmaker() as session:
        assert isinstance(session.sync_session, ReadOnlySession)
        session.add(User(email=f"ro-{uuid.uuid4().hex[:8]}@example.com", full_name="X"))
        with pytest.raises(ReadOnlySessionError):
            await session.flush()
        session.expunge_all()
        with pytest.raises(ReadOnlySessionError):
            await session.execute(insert(User).values(email="x@example.com", full_name="X"))
        with pytest.raises(ReadOnlySessionError):
            await driver_execute(session, "UPDATE users SET full_name = full_name", {})
        # Reads go through, on the fast path too.
        result = await driver_execute(session, "SELECT 1", {})
        assert result.rows == [(1,)]
