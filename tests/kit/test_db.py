"""The unit of work: side effects outside the database happen only after the commit;
writes made outside it before a rollback are undone."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import enum
import gc
import uuid
import weakref
from typing import Any

import psycopg
import pytest
import sqlalchemy.exc
from sqlalchemy import Enum, Integer, Interval, String, bindparam, event, literal, select, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from lyceum.kit.db import (
    after_commit,
    after_rollback,
    commit,
    driver_execute,
    driver_statement,
    flushed_driver_connection,
    new_transaction,
    positional,
    rollback,
    transaction_memo,
    unit_of_work,
)
from lyceum.kit.errors import Conflict, TokenReuse
from lyceum.kit.runtime import Runtime


async def test_after_commit_runs_once_the_commit_is_visible(runtime: Runtime) -> None:
    seen: list[int] = []

    async def read_back() -> None:
        # Another connection sees the committed row when the effect runs.
        async with runtime.database.engine.connect() as other:
            seen.append(
                int((await other.execute(text("SELECT count(*) FROM probe_uow"))).scalar_one())
            )

    async with runtime.database.engine.begin() as conn:
        await conn.execute(text("CREATE TABLE IF NOT EXISTS probe_uow (n int)"))
        await conn.execute(text("TRUNCATE probe_uow"))
    async with runtime.database.sessionmaker() as session, unit_of_work(session):
        await session.execute(text("INSERT INTO probe_uow VALUES (1)"))
        after_commit(session, read_back)
        assert seen == []  # nothing happens before the commit
    assert seen == [1]


async def test_a_rollback_drops_after_commit_effects_and_runs_undo_actions(
    runtime: Runtime,
) -> None:
    effects: list[str] = []

    async def effect() -> None:
        effects.append("committed")

    async def undo() -> None:
        effects.append("undone")

    async def request() -> None:
        async with runtime.database.sessionmaker() as session, unit_of_work(session):
            after_commit(session, effect)
            after_rollback(session, undo)
            raise Conflict("no")

    with pytest.raises(Conflict):
        await request()
    assert effects == ["undone"]


async def test_an_error_that_persists_its_changes_commits_and_runs_the_effects(
    runtime: Runtime,
) -> None:
    effects: list[str] = []

    async def effect() -> None:
        effects.append("committed")

    async def request() -> None:
        async with runtime.database.sessionmaker() as session, unit_of_work(session):
            after_commit(session, effect)
            raise TokenReuse("reused")

    with pytest.raises(TokenReuse):
        await request()
    assert effects == ["committed"]


async def test_a_failing_effect_is_logged_and_the_others_still_run(runtime: Runtime) -> None:
    effects: list[str] = []

    async def broken() -> None:
        raise RuntimeError("cache down")

    async def effect() -> None:
        effects.append("ran")

    async with runtime.database.sessionmaker() as session, unit_of_work(session):
        after_commit(session, broken)
        after_commit(session, effect)
    assert effects == ["ran"]


async def test_a_transaction_of_its_own_commits_when_its_block_returns(runtime: Runtime) -> None:
    """`new_transaction`: what the tutor stores after the request's session is gone."""
    async with runtime.database.engine.begin() as conn:
        await conn.execute(text("CREATE TABLE IF NOT EXISTS probe_own (n int)"))
        await conn.execute(text("TRUNCATE probe_own"))
    async with new_transaction(runtime.database) as session:
        await session.execute(text("INSERT INTO probe_own VALUES (1)"))

    async def failing() -> None:
        async with new_transaction(runtime.database) as session:
            await session.execute(text("INSERT INTO probe_own VALUES (2)"))
            raise Conflict("no")

    with pytest.raises(Conflict):
        await failing()
    async with runtime.database.engine.connect() as other:
        rows = (await other.execute(text("SELECT n FROM probe_own"))).scalars().all()
    assert rows == [1]


async def test_an_idle_connection_killed_by_the_server_is_replaced_by_the_ping(
    runtime: Runtime,
) -> None:
    """A connection the server closed while it sat in the pool (a restart, a proxy's idle
    timeout) is found by the ping on checkout and replaced: the request never sees it."""
    from lyceum.kit.db import create_engine

    engine = create_engine(runtime.database.url, pool_size=1, max_overflow=0, ping_after_idle=0)
    try:
        async with engine.connect() as conn:
            pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        async with runtime.database.engine.connect() as other:
            await other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        async with engine.connect() as conn:
            fresh = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        assert fresh != pid
    finally:
        await engine.dispose()


async def test_a_pinged_connection_is_handed_out_outside_a_transaction(runtime: Runtime) -> None:
    """The ping must not leave its transaction open: a connection switched to AUTOCOMMIT
    after checkout (the chat's message writer) failed with psycopg's "can't change
    'autocommit' now" whenever its connection had been idle past the window."""
    from lyceum.kit.db import create_engine

    engine = create_engine(runtime.database.url, pool_size=1, max_overflow=0, ping_after_idle=0)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        async with engine.connect() as conn:
            raw = await conn.get_raw_connection()
            assert raw._connection_record is not None
            assert raw._connection_record.info.get("pings", 0) == 1
            autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
            assert (await autocommit.execute(text("SELECT 1"))).scalar_one() == 1
    finally:
        await engine.dispose()


@pytest.mark.parametrize(("idle_after", "pings"), [(60.0, 0), (0.0, 4)])
async def test_only_connections_idle_past_the_window_are_pinged(
    runtime: Runtime, idle_after: float, pings: int
) -> None:
    """The ping costs a round trip, so a busy pool (every request's checkout) skips it;
    with a zero window every checkout after the first (of five) pings."""
    from lyceum.kit.db import create_engine

    engine = create_engine(
        runtime.database.url, pool_size=1, max_overflow=0, ping_after_idle=idle_after
    )
    try:
        for _ in range(4):
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        async with engine.connect() as conn:
            raw = await conn.get_raw_connection()
            assert raw._connection_record is not None
            assert raw._connection_record.info.get("pings", 0) == pings
    finally:
        await engine.dispose()


async def _hold(engine: AsyncEngine, count: int) -> list[int]:
    """Check out `count` connections at once, each running a statement, then return them
    all; the backends' pids."""
    async with contextlib.AsyncExitStack() as stack:
        connections = [await stack.enter_async_context(engine.connect()) for _ in range(count)]
        return [
            (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            for conn in connections
        ]


def _count_pool_events(engine: AsyncEngine) -> dict[str, int]:
    counts = {"connect": 0, "close": 0}

    @event.listens_for(engine.sync_engine, "connect")
    def _connected(*_: Any) -> None:
        counts["connect"] += 1

    @event.listens_for(engine.sync_engine, "close")
    def _closed(*_: Any) -> None:
        counts["close"] += 1

    return counts


async def test_overflow_connections_are_reused_while_the_load_needs_them(
    runtime: Runtime,
) -> None:
    """A load that keeps more requests in the database than the pool's size reuses its
    overflow connections: SQLAlchemy's QueuePool closed each one on its return, so every
    request beyond the pool opened a new PostgreSQL backend (16 a second under the
    capacity bench's mix, and the database's CPU per request tripled)."""
    from lyceum.kit.db import create_engine

    engine = create_engine(runtime.database.url, pool_size=1, max_overflow=2)
    counts = _count_pool_events(engine)
    try:
        first = await _hold(engine, 3)
        for _ in range(5):
            assert sorted(await _hold(engine, 3)) == sorted(first)
        assert counts == {"connect": 3, "close": 0}
        pool = engine.sync_engine.pool
        assert (pool.checkedout(), pool.checkedin(), pool.overflow()) == (0, 3, 2)  # type: ignore[attr-defined]
    finally:
        await engine.dispose()
    assert counts == {"connect": 3, "close": 3}


async def test_overflow_connections_close_once_idle_past_the_linger(runtime: Runtime) -> None:
    """Only the pool's own size stays open once the load is gone."""
    from lyceum.kit.db import create_engine

    engine = create_engine(runtime.database.url, pool_size=1, max_overflow=2, overflow_linger=0.05)
    counts = _count_pool_events(engine)
    try:
        await _hold(engine, 3)
        await asyncio.sleep(0.1)
        await _hold(engine, 1)
        assert counts == {"connect": 3, "close": 2}
        pool = engine.sync_engine.pool
        assert (pool.checkedout(), pool.checkedin(), pool.overflow()) == (0, 1, 0)  # type: ignore[attr-defined]
        # The next burst opens overflow connections again, within the bound.
        await _hold(engine, 3)
        assert counts == {"connect": 5, "close": 2}
    finally:
        await engine.dispose()


async def test_lingering_connections_keep_the_pool_bounded(runtime: Runtime) -> None:
    """At most pool_size + max_overflow connections are open: a checkout beyond them waits
    for one and gives up after the pool timeout (a 503 in a request), and a lingering
    connection is handed to the next checkout instead of a new one."""
    from lyceum.kit.db import create_engine

    engine = create_engine(runtime.database.url, pool_size=1, max_overflow=1, pool_timeout=0.2)
    counts = _count_pool_events(engine)
    try:
        await _hold(engine, 2)
        async with engine.connect() as one, engine.connect() as two:
            await one.execute(text("SELECT 1"))
            await two.execute(text("SELECT 1"))
            with pytest.raises(sqlalchemy.exc.TimeoutError):
                async with engine.connect() as third:
                    await third.execute(text("SELECT 1"))
        assert counts["connect"] == 2
    finally:
        await engine.dispose()


class Colour(enum.Enum):
    red = "r"


async def test_a_driver_statement_sends_its_constants_as_sqlalchemy_converts_them(
    session: AsyncSession,
) -> None:
    """The literals of a statement built once (an enum member stored by its name, an
    interval) travel with it, converted by their types; a bindparam without a value is
    the caller's."""
    prepared = driver_statement(
        select(
            literal(Colour.red, Enum(Colour, native_enum=False)).label("colour"),
            literal(dt.timedelta(days=1), Interval()).label("day"),
            bindparam("wanted", type_=Integer()).label("wanted"),
        )
    )
    assert set(prepared.constants) == {"param_1", "param_2"}
    found = await driver_execute(session, prepared.sql, {**prepared.constants, "wanted": 3})
    assert found.rows == [("red", dt.timedelta(days=1), 3)]


async def test_a_driver_statement_can_write_its_constants_into_the_sql(
    session: AsyncSession,
) -> None:
    """With `inline_constants` the constants that have a literal form are in the SQL
    (quotes and percent signs escaped), so psycopg has fewer parameters to dump; the
    others (JSON here) and the caller's stay parameters. The values are the same."""
    statement = select(
        literal(Colour.red, Enum(Colour, native_enum=False)).label("colour"),
        literal("it's 100% done", String()).label("text"),
        literal(7, Integer()).label("seven"),
        literal({"a": [1, "%s"]}, JSONB()).label("document"),
        bindparam("wanted", type_=Integer()).label("wanted"),
    )
    inlined = driver_statement(statement, inline_constants=True)
    assert "'red'" in inlined.sql and "7" in inlined.sql
    assert len(inlined.constants) == 1  # the JSON document
    found = await driver_execute(session, inlined.sql, {**inlined.constants, "wanted": 3})
    expected = [("red", "it's 100% done", 7, {"a": [1, "%s"]}, 3)]
    assert found.rows == expected
    plain = driver_statement(statement)
    assert len(plain.constants) == 4
    again = await driver_execute(session, plain.sql, {**plain.constants, "wanted": 3})
    assert again.rows == expected


async def test_a_driver_statement_fails_with_the_error_sqlalchemy_would_raise(
    runtime: Runtime,
) -> None:
    """`driver_execute` sends on psycopg directly, but callers catch SQLAlchemy's classes
    (`except IntegrityError` around a race): a unique violation is SQLAlchemy's
    `IntegrityError`, with psycopg's error as its cause, and the transaction rolls back."""
    async with runtime.database.engine.begin() as conn:
        await conn.execute(text("CREATE TABLE IF NOT EXISTS probe_driver_unique (n int UNIQUE)"))
        await conn.execute(text("TRUNCATE probe_driver_unique"))
    insert = "INSERT INTO probe_driver_unique VALUES (%(n)s)"
    async with runtime.database.sessionmaker() as session:
        await driver_execute(session, insert, {"n": 1})
        with pytest.raises(sqlalchemy.exc.IntegrityError) as raised:
            await driver_execute(session, insert, {"n": 1})
        assert isinstance(raised.value.orig, psycopg.errors.UniqueViolation)
        assert not raised.value.connection_invalidated
        await session.rollback()
        assert (
            await session.execute(text("SELECT count(*) FROM probe_driver_unique"))
        ).scalar() == 0


async def test_a_connection_lost_under_a_driver_statement_is_not_handed_out_again(
    runtime: Runtime,
) -> None:
    """The server ends the backend mid-transaction (a failover, an admin's kill): the
    error is SQLAlchemy's, marked as a lost connection, and the pool drops that
    connection, so the next session gets a working one instead of the dead one."""
    from lyceum.kit.db import create_engine

    engine = create_engine(runtime.database.url, pool_size=1, max_overflow=0)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    try:
        async with sessions() as session:
            pid = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            async with runtime.database.engine.connect() as other:
                await other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            with pytest.raises(sqlalchemy.exc.DBAPIError) as raised:
                await driver_execute(session, "SELECT 1 AS probe", {})
            assert raised.value.connection_invalidated
            assert isinstance(raised.value.orig, psycopg.OperationalError)
            await session.rollback()
        async with sessions() as session:
            fresh = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        assert fresh != pid
    finally:
        await engine.dispose()


def test_driver_statements_are_sent_with_postgresql_numbered_placeholders() -> None:
    query, names = positional(
        "SELECT %(a)s::int + %(b)s::int, %(a)s::int, 'x' LIKE 'x%%' WHERE %(c)s IS NULL"
    )
    assert query == b"SELECT $1::int + $2::int, $1::int, 'x' LIKE 'x%' WHERE $3 IS NULL"
    assert names == ("a", "b", "c")


async def test_a_long_driver_statement_is_not_parsed_again_on_every_execution(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """psycopg caches a query's parsed placeholders only up to a length and 50
    parameters; past either it parses the whole query again on every execution (for a
    statement the size of the notification fan-out, 5.7 KB, ~0.19 ms of CPU). Driver
    statements are converted once, whatever their size, and give the same rows."""
    import psycopg._queries

    parsed: list[object] = []
    parse = psycopg._queries._query2pg_nocache

    def counted(*args: Any) -> Any:
        parsed.append(args[0])
        return parse(*args)

    monkeypatch.setattr(psycopg._queries, "_query2pg_nocache", counted)
    terms = [f"%(n{i})s::int" for i in range(60)]
    sql = "SELECT " + " + ".join(terms) + ", 'a%%b' AS kept, %(n0)s::int AS again"
    sql += " WHERE " + " AND ".join(["1 = 1"] * 400)
    assert len(sql) > 4096
    params = {f"n{i}": i for i in range(60)}
    async with runtime.database.sessionmaker() as session:
        for _ in range(3):
            found = await driver_execute(session, sql, params)
            assert found.rows == [(sum(range(60)), "a%b", 0)]
    assert parsed == []


async def test_a_driver_statement_flushes_pending_changes_and_follows_the_transaction(
    runtime: Runtime,
) -> None:
    """The driver connection is looked up once per transaction while nothing waits to
    be flushed; a pending change is still flushed before the next driver statement,
    and a later transaction of the same session uses its own connection."""
    from lyceum.models.events import Event

    async with runtime.database.sessionmaker() as session:
        first = await flushed_driver_connection(session)
        passes = 0
        run_sync = session.run_sync

        async def counted(*args: Any, **kwargs: Any) -> Any:
            nonlocal passes
            passes += 1
            return await run_sync(*args, **kwargs)

        session.run_sync = counted  # type: ignore[method-assign]
        assert await flushed_driver_connection(session) is first
        assert passes == 0  # the same transaction, nothing to flush: no pass at all
        event = Event(
            id=uuid.uuid4(),
            type="probe.driver",
            version="1",
            occurred_at=dt.datetime.now(dt.UTC),
            payload={},
        )
        session.add(event)
        count = "SELECT count(*) FROM events WHERE id = %(id)s"
        assert (await driver_execute(session, count, {"id": event.id})).rows == [(1,)]
        await rollback(session)
        assert (await driver_execute(session, count, {"id": event.id})).rows == [(0,)]
        connection = await session.connection()
        assert (
            await flushed_driver_connection(session)
            is (await connection.get_raw_connection()).driver_connection
        )
        # A savepoint begun since is sent before the next driver statement, which it
        # then holds: rolled back with it.
        nested = await session.begin_nested()
        await driver_execute(
            session,
            "INSERT INTO events (id, type, version, occurred_at, payload) "
            "VALUES (%(id)s, 'probe.driver', '1', now(), '{}')",
            {"id": event.id},
        )
        await nested.rollback()
        assert (await driver_execute(session, count, {"id": event.id})).rows == [(0,)]
        await rollback(session)


async def test_a_session_that_used_its_driver_connection_is_freed_without_the_collector(
    runtime: Runtime,
) -> None:
    """No reference cycle through the session: once the request's block is done, its
    session (with its transaction, connection and their event dispatchers) is freed by
    reference counting. The driver connection's memo once held the transaction, which
    holds the session: ~40 objects a request that only the collector's full passes freed
    (41,000 at a time in a burst of quiz submissions, 70-260 ms each)."""
    gc.disable()  # what goes now goes by reference counting alone
    try:
        async with runtime.database.sessionmaker() as session, unit_of_work(session):
            assert (await driver_execute(session, "SELECT 1", {})).rows == [(1,)]
            await commit(session)  # an early commit, then the next transaction's
            assert (await driver_execute(session, "SELECT 2", {})).rows == [(2,)]
            sync = weakref.ref(session.sync_session)
            transaction = weakref.ref(session.sync_session.get_transaction())
        del session
        assert sync() is None
        assert transaction() is None
    finally:
        gc.enable()


async def test_a_transaction_memo_is_forgotten_when_the_transaction_ends(
    runtime: Runtime,
) -> None:
    async with runtime.database.sessionmaker() as session:
        transaction_memo(session, "titles")["course"] = "Old title"
        assert transaction_memo(session, "titles") == {"course": "Old title"}
        assert transaction_memo(session, "other") == {}
        await commit(session)
        assert transaction_memo(session, "titles") == {}
        transaction_memo(session, "titles")["course"] = "Another"
        await rollback(session)
        assert transaction_memo(session, "titles") == {}


async def test_json_values_keep_what_orjson_cannot_hold(runtime: Runtime) -> None:
    """JSONB goes through orjson, and through the standard library for the values
    orjson refuses: an integer past 64 bits written, a number past a double read."""
    big = 2**70
    async with runtime.database.sessionmaker() as session:
        stored = await session.scalar(
            select(bindparam("doc", type_=JSONB())), {"doc": {"n": big, 3: "int key"}}
        )
        assert stored == {"n": big, "3": "int key"}
        huge = await session.scalar(text("SELECT CAST('{\"x\": 1e400}' AS jsonb)"))
        assert huge == {"x": 10**400}  # PostgreSQL writes it out in full
