"""Database engine, the one-transaction-per-request session, and migration checks.

Where transactions begin and end, all through `unit_of_work`:
- a request: `Session`, committed by its dependency once the endpoint returns, rolled
  back if it raises; services only `flush()`;
- an early commit of a request's transaction: `commit(session)`, called with a comment
  saying why (the tutor's stored question);
- work a request starts that outlives its session (the tutor's streamed answer):
  `new_transaction(database)`;
- a job step: `kit.jobs.transaction(runtime)`;
- a GET route marked `reads_only`: no transaction at all (each statement on its own,
  writes refused);
- an error that must keep the changes made before it: `DomainError.persist_changes`."""

from __future__ import annotations

import importlib
import json
import re
import threading
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Generic, TypeVar

import orjson
import psycopg
import structlog
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from fastapi import Depends, Request
from sqlalchemy import (
    JSON,
    Boolean,
    Connection,
    DateTime,
    Executable,
    Float,
    Integer,
    Numeric,
    String,
    Text,
    Uuid,
    cast,
    event,
    text,
)
from sqlalchemy import Enum as SAEnum
from sqlalchemy import exc as sqlalchemy_exc
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.dialects.postgresql.psycopg import PGCompiler_psycopg, PGDialect_psycopg
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session as SyncSession
from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry
from sqlalchemy.sql.elements import BindParameter, ColumnElement
from sqlalchemy.types import TypeEngine

from lyceum.kit import tracing
from lyceum.kit.errors import DomainError

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"

logger = structlog.get_logger("lyceum.db")


def libpq_url(url: str) -> str:
    """`postgresql://...` for psycopg / procrastinate, whatever the user wrote."""
    for prefix in ("postgresql+psycopg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url.removeprefix(prefix)
    return url


def sqlalchemy_url(url: str) -> str:
    """`postgresql+psycopg://...` so SQLAlchemy uses psycopg 3 (docs/architecture.md, rule 5: jobs share the connection)."""
    return "postgresql+psycopg://" + libpq_url(url).removeprefix("postgresql://")


# psycopg parses a statement's placeholders again on every execution when the statement
# is longer than MAX_CACHED_STATEMENT_LENGTH (4096 characters). `notify`'s fan-out
# statement is ~5,400: parsing it was ~40% of the CPU of sending it, on every graded quiz
# attempt and every enrollment. Statements up to 16 KiB are cached instead (psycopg's
# cache keeps 128); a statement with more than MAX_CACHED_STATEMENT_PARAMS (50)
# parameters, the many-row INSERTs the limit is there for, is still never cached.
STATEMENT_CACHE_MAX_LENGTH = 16_384
# The limit is psycopg's internal: a release without it leaves psycopg's own behaviour.
_psycopg_queries: Any
try:
    _psycopg_queries = importlib.import_module("psycopg._queries")
except ImportError:  # pragma: no cover (psycopg moved it)
    _psycopg_queries = None
if isinstance(getattr(_psycopg_queries, "MAX_CACHED_STATEMENT_LENGTH", None), int):
    _psycopg_queries.MAX_CACHED_STATEMENT_LENGTH = max(
        _psycopg_queries.MAX_CACHED_STATEMENT_LENGTH, STATEMENT_CACHE_MAX_LENGTH
    )

# A pooled connection that sat unused this long is pinged before it is handed out.
PING_AFTER_IDLE_SECONDS = 10.0
# An overflow connection (beyond DB_POOL_SIZE) stays open this long after its last use,
# so a load that keeps more than DB_POOL_SIZE requests in the database reuses it.
OVERFLOW_LINGER_SECONDS = 60.0
# How long a request waits for a pooled connection before it is refused with 503 and
# Retry-After (`kit.errors`): the default of DB_POOL_TIMEOUT, see `Settings`.
POOL_TIMEOUT_SECONDS = 15.0


class LingeringPool(AsyncAdaptedQueuePool):
    """SQLAlchemy's queue pool, except that an overflow connection is not closed the
    moment it is returned: it waits, for `linger` seconds, to serve the next checkout
    that finds the pool's `pool_size` connections all taken, and is closed by the first
    checkout or return after it has sat unused that long.

    QueuePool closes an overflow connection on its return, so a load that keeps a
    little more than `pool_size` requests in the database opens and closes a
    connection for nearly every request beyond them: a new PostgreSQL backend each
    time (a process started, authentication, its caches empty, every statement
    planned again). Under the capacity bench's mix that was 16 new backends a second,
    and PostgreSQL's CPU per request tripled. The bound is unchanged: at most
    `pool_size + max_overflow` connections are open, and a checkout beyond them
    waits (`timeout`) as before."""

    linger: float = OVERFLOW_LINGER_SECONDS

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        # Returned overflow connections, the most recently returned last.
        self._lingering: list[tuple[float, ConnectionPoolEntry]] = []
        self._lingering_lock = threading.Lock()

    def _do_return_conn(self, record: ConnectionPoolEntry) -> None:
        if self._pool.full():
            with self._lingering_lock:
                self._lingering.append((time.monotonic(), record))
        else:
            super()._do_return_conn(record)
        self._close_idle_overflow()

    def _do_get(self) -> ConnectionPoolEntry:
        # The pool's own connections first, so that lingering ones fall idle and close
        # once the load no longer needs them.
        self._close_idle_overflow()
        if not self._pool.empty():
            return super()._do_get()
        with self._lingering_lock:
            if self._lingering:
                return self._lingering.pop()[1]
        return super()._do_get()

    def _close_idle_overflow(self) -> None:
        if self._lingering:  # checked without the lock: most checkouts have none
            self._close_lingering(idle_since_before=time.monotonic() - self.linger)

    def close_lingering(self) -> None:
        """Close every returned overflow connection now (dispose, tests)."""
        self._close_lingering(idle_since_before=float("inf"))

    def _close_lingering(self, idle_since_before: float) -> None:
        with self._lingering_lock:
            idle = 0
            while idle < len(self._lingering) and self._lingering[idle][0] < idle_since_before:
                idle += 1
            closing = [record for _, record in self._lingering[:idle]]
            del self._lingering[:idle]
        for record in closing:
            try:
                record.close()
            finally:
                self._dec_overflow()

    def dispose(self) -> None:
        self.close_lingering()
        super().dispose()

    def recreate(self) -> LingeringPool:
        pool = super().recreate()
        assert isinstance(pool, LingeringPool)
        pool.linger = self.linger
        return pool

    def checkedin(self) -> int:
        return super().checkedin() + len(self._lingering)

    def checkedout(self) -> int:
        return super().checkedout() - len(self._lingering)


def create_engine(
    url: str,
    *,
    pool_size: int = 10,
    max_overflow: int = 10,
    pool_timeout: float = POOL_TIMEOUT_SECONDS,
    ping_after_idle: float = PING_AFTER_IDLE_SECONDS,
    overflow_linger: float = OVERFLOW_LINGER_SECONDS,
) -> AsyncEngine:
    """The engine of one process. Stale connections (a database restart, a proxy that
    closed an idle socket) are found by a ping, but only on connections idle for longer
    than `ping_after_idle` seconds: `pool_pre_ping` would spend a round trip on every
    checkout, that is on every request, while a connection in use a moment ago is alive.
    A connection that dies within the window fails its request with a disconnect error,
    which makes SQLAlchemy drop every pooled connection; the next requests reconnect.

    Queueing for a connection is bounded: a checkout that waits `pool_timeout` seconds
    raises `sqlalchemy.exc.TimeoutError`, which a request answers with 503 and
    Retry-After (`kit.errors`) instead of waiting on. Overflow connections stay open for
    `overflow_linger` seconds after their last use (`LingeringPool`)."""
    engine = create_async_engine(
        sqlalchemy_url(url),
        poolclass=LingeringPool,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout,
        pool_recycle=1800,
        # Errors and logs name the statement, never its parameters (a password hash, an
        # e-mail address): they reach logs and traces (docs/operations.md, "Tracing").
        hide_parameters=True,
        # JSON and JSONB values in and out through orjson (the driver's default is the
        # standard library's json, several times slower on an attempt's item snapshots).
        json_serializer=json_dumps,
        json_deserializer=json_loads,
    )
    pool = engine.sync_engine.pool
    assert isinstance(pool, LingeringPool)
    pool.linger = overflow_linger
    ping_idle_connections(engine, ping_after_idle)
    return engine


def json_dumps(value: Any) -> bytes | str:
    """A JSON value as the driver sends it: orjson, with non-string keys (an integer
    key) written as strings; what orjson refuses and the standard library writes (an
    integer past 64 bits, which PostgreSQL's numeric holds) goes through the latter."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return json.dumps(value)


def json_loads(text: bytes | str) -> Any:
    """A JSON or JSONB value as read: orjson, or the standard library for the numbers
    orjson cannot hold (past a double's range, such as 1e400 in a stored document)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def ping_idle_connections(engine: AsyncEngine, idle_seconds: float) -> None:
    """SQLAlchemy's documented pessimistic disconnect handling (a `checkout` listener
    raising `DisconnectionError`, which makes the pool replace the connection and try
    again), limited to connections idle for `idle_seconds`."""

    @event.listens_for(engine.sync_engine, "checkin")
    def _checked_in(dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < idle_seconds:
            return
        record.info["pings"] = record.info.get("pings", 0) + 1
        try:
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute("SELECT 1")
            finally:
                cursor.close()
            # The ping began a transaction (psycopg is not in autocommit mode): end it, or
            # the connection is handed out "in transaction", where changing its isolation
            # level fails (the chat writer's AUTOCOMMIT connection: "can't change
            # 'autocommit' now: connection in transaction status INTRANS").
            dbapi_connection.rollback()
        except Exception as error:
            raise sqlalchemy_exc.DisconnectionError(str(error)) from error


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", sqlalchemy_url(url).replace("%", "%%"))
    return config


@lru_cache(maxsize=1)
def head_revisions() -> frozenset[str]:
    script = ScriptDirectory(str(MIGRATIONS_DIR))
    return frozenset(script.get_heads())


@dataclass(frozen=True)
class MigrationState:
    current: set[str]
    heads: frozenset[str]

    @property
    def up_to_date(self) -> bool:
        return self.current == self.heads


def _current_revisions(sync_conn: Connection) -> set[str]:
    return set(MigrationContext.configure(sync_conn).get_current_heads())


async def migration_state(engine: AsyncEngine) -> MigrationState:
    async with engine.connect() as conn:
        current = await conn.run_sync(_current_revisions)
    return MigrationState(current=current, heads=head_revisions())


async def database_reachable(engine: AsyncEngine) -> bool:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
    return True


class Database:
    """The engine and session factory of one process."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        max_overflow: int = 10,
        pool_timeout: float = POOL_TIMEOUT_SECONDS,
    ) -> None:
        self.url = url
        self.engine = create_engine(
            url, pool_size=pool_size, max_overflow=max_overflow, pool_timeout=pool_timeout
        )
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        # Requests to routes marked `reads_only`: each statement runs on its own (the
        # connection in autocommit), so no BEGIN and no COMMIT round trips; writing
        # through such a session raises (`ReadOnlySessionError`).
        self.read_sessionmaker = async_sessionmaker(
            self.engine.execution_options(isolation_level="AUTOCOMMIT"),
            expire_on_commit=False,
            sync_session_class=ReadOnlySession,
        )

    async def dispose(self) -> None:
        await self.engine.dispose()

    def pool_stats(self) -> dict[str, int]:
        pool: Any = self.engine.pool
        return {
            "size": int(pool.size()),
            "checked_out": int(pool.checkedout()),
            "overflow": int(pool.overflow()),
        }


SideEffect = Callable[[], Awaitable[object]]
_AFTER_COMMIT = "lyceum.after_commit"
_AFTER_ROLLBACK = "lyceum.after_rollback"


def after_commit(session: AsyncSession, action: SideEffect) -> None:
    """Run `action` once the session's transaction has committed; never if it rolls back.

    Rule 13 of the architecture: everything outside the database (cache invalidation,
    object deletes, socket broadcasts, outgoing calls) happens here, so a rolled-back
    request leaves no trace anywhere and no reader sees a change before it is committed.
    Actions run in the order they were added; one that fails is logged and the others
    still run (the commit has happened, the request has succeeded)."""
    session.info.setdefault(_AFTER_COMMIT, []).append(action)


def after_rollback(session: AsyncSession, action: SideEffect) -> None:
    """Undo, if the transaction rolls back, a write made outside the database before the
    commit (an uploaded object whose row never commits). Dropped on commit."""
    session.info.setdefault(_AFTER_ROLLBACK, []).append(action)


_MEMO = "lyceum.memo"
COURSE_TITLES = "course_titles"
"""`transaction_memo` kind: course id -> title."""


def transaction_memo(session: AsyncSession, kind: str) -> dict[Any, Any]:
    """Values this transaction has read that a later step of it will ask for again, by
    kind (a graded attempt's notification names the course, whose title the attempt's
    read brought along): a step looks here before sending a statement of its own.
    Forgotten when the transaction ends (`commit`, `rollback`), so a later transaction
    of the same session reads afresh."""
    memo: dict[str, dict[Any, Any]] = session.info.setdefault(_MEMO, {})
    return memo.setdefault(kind, {})


async def _run(session: AsyncSession, run: str, drop: str) -> None:
    session.info.pop(_MEMO, None)
    actions: list[SideEffect] = session.info.pop(run, [])
    session.info.pop(drop, None)
    for action in actions:
        try:
            await action()
        except Exception:
            logger.exception(
                "side_effect_failed", hook=run, action=getattr(action, "__qualname__", repr(action))
            )


async def commit(session: AsyncSession) -> None:
    """Commit, then run the after-commit actions (and forget the after-rollback ones).

    `unit_of_work` commits through here. Anywhere else it is an early commit of the
    request's transaction, which must say why where it is called (the tutor stores the
    question before it answers, so the question stays whatever happens to the answer);
    the request's dependency then commits what follows."""
    await session.commit()
    await _run(session, _AFTER_COMMIT, _AFTER_ROLLBACK)


async def rollback(session: AsyncSession) -> None:
    """Roll back, then run the after-rollback actions (and forget the after-commit ones)."""
    await session.rollback()
    await _run(session, _AFTER_ROLLBACK, _AFTER_COMMIT)


@asynccontextmanager
async def unit_of_work(session: AsyncSession) -> AsyncIterator[AsyncSession]:
    """One transaction: commit if the block returns, roll back if it raises. Used by
    requests, jobs and socket events alike.

    The one place that honours `DomainError.persist_changes`: an error type that sets it
    (`TokenReuse`: a reused refresh token revokes its family and answers 401; the
    assessments' `TimeUp`: an attempt past its time is graded and answers 409) commits
    the work done before it on its way out, instead of rolling it back."""
    try:
        yield session
    except DomainError as error:
        if error.persist_changes:
            await commit(session)
        else:
            await rollback(session)
        raise
    except BaseException:
        await rollback(session)
        raise
    else:
        await commit(session)


@asynccontextmanager
async def new_transaction(database: Database) -> AsyncIterator[AsyncSession]:
    """A session and transaction of its own, outside any request's: for work a request
    starts that outlives its session (the tutor's answer, written while the response
    streams, after the request's transaction has committed). Committed if the block
    returns, rolled back if it raises, like `unit_of_work`. Services do not open
    sessions otherwise; jobs use `kit.jobs.transaction`."""
    async with database.sessionmaker() as session, unit_of_work(session):
        yield session


_READS_ONLY = "__lyceum_reads_only__"
Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


class ReadOnlySessionError(RuntimeError):
    """A write through the session of a route marked `reads_only`: a programming error
    (the route is not read-only after all), never a client's."""


def reads_only(endpoint: Endpoint) -> Endpoint:
    """Mark a GET endpoint whose request only reads the database, its dependencies
    included: its session runs each statement on its own, without the BEGIN and COMMIT
    round trips of a transaction. PostgreSQL's default isolation (read committed) gives
    every statement its own snapshot inside a transaction too, so the reads see the same
    data; what a route gives up is locking (`FOR UPDATE` holds nothing) and writing,
    which the session refuses. Put it under the route decorator."""
    setattr(endpoint, _READS_ONLY, True)
    return endpoint


class ReadOnlySession(SyncSession):
    """The session of a route marked `reads_only`: it refuses a flush with changes and
    an INSERT, UPDATE or DELETE statement (`driver_execute` checks for itself). The
    checks are listeners on this class only, so no other session pays for them."""


_WRITING = re.compile(r"\b(INSERT|UPDATE|DELETE|MERGE)\b", re.IGNORECASE)


@event.listens_for(ReadOnlySession, "before_flush")
def _refuse_read_only_flush(session: SyncSession, *_: Any) -> None:
    if session.new or session.dirty or session.deleted:
        raise ReadOnlySessionError("A read-only request's session has changes to write.")


@event.listens_for(ReadOnlySession, "do_orm_execute")
def _refuse_read_only_write(state: Any) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        raise ReadOnlySessionError("A read-only request's session was asked to write.")


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One request, one transaction: commit on success, roll back on any error.

    Services only `flush()`. Jobs deferred through `kit.jobs.defer` ride on this
    session's connection, so they commit or roll back with the data; side effects
    registered with `after_commit` run once the commit has happened. A route marked
    `reads_only` gets a session without a transaction instead.
    """
    database: Database = request.app.state.runtime.database
    factory = database.read_sessionmaker if route_reads_only(request) else database.sessionmaker
    async with factory() as session, unit_of_work(session):
        yield session


def route_reads_only(request: Request) -> bool:
    """Whether the request's route is marked `reads_only`."""
    route = request.scope.get("route")
    return bool(getattr(getattr(route, "endpoint", None), _READS_ONLY, False))


# scope="function": commit before the response is sent, so a client that sees 2xx can
# read what it wrote, and a failed commit still becomes an error response.
Session = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def raw_connection(session: AsyncSession) -> psycopg.AsyncConnection[Any]:
    """The psycopg connection under the session's current transaction."""
    return await driver_of(await session.connection())


def _flush_and_connect(session: SyncSession) -> psycopg.AsyncConnection[Any]:
    session.flush()
    pooled = session.connection().connection
    driver: psycopg.AsyncConnection[Any] = pooled.driver_connection  # type: ignore[assignment]
    return driver


_DRIVER = "lyceum.driver_connection"


async def flushed_driver_connection(session: AsyncSession) -> psycopg.AsyncConnection[Any]:
    """`raw_connection` after flushing what the session has pending (as an autoflush
    would before a statement), in one pass into SQLAlchemy's synchronous side where the
    two calls made three. Within a transaction that already found its connection, with
    nothing to flush, the connection is the one found before: no pass at all (a graded
    quiz attempt sends four driver statements in a row)."""
    sync = session.sync_session
    known: tuple[Callable[[], Any], psycopg.AsyncConnection[Any]] | None = sync.info.get(_DRIVER)
    # Keyed on the innermost transaction: a savepoint begun since is only sent
    # (SAVEPOINT) when its connection is asked for, so a new one takes the slow path.
    current = sync.get_nested_transaction() or sync.get_transaction()
    if known is not None:
        transaction, driver = known
        active = current is not None and current is transaction() and current.is_active
        if active and sync._is_clean():
            return driver
    driver = await session.run_sync(_flush_and_connect)
    found = sync.get_nested_transaction() or sync.get_transaction()
    # The transaction by weak reference: it refers to the session, whose `info` this is,
    # and a strong one made the session, its transaction and connection (~40 objects a
    # request) a reference cycle that only the garbage collector's full passes freed.
    if found is not None:
        sync.info[_DRIVER] = (weakref.ref(found), driver)
    return driver


async def driver_of(connection: AsyncConnection) -> psycopg.AsyncConnection[Any]:
    """The psycopg connection under a SQLAlchemy connection."""
    raw = await connection.get_raw_connection()
    driver: psycopg.AsyncConnection[Any] = raw.driver_connection  # type: ignore[assignment]
    return driver


_DRIVER_DIALECT = PGDialect_psycopg()  # type: ignore[no-untyped-call]


def driver_sql(statement: Executable) -> str:
    """A statement as psycopg runs it, for the few hot statements executed on the driver
    connection directly (SQLAlchemy's per-call work buys nothing for one fixed statement
    with a plain result). Compiled once at import: it must hold no literal values
    (`driver_statement` keeps them)."""
    return str(statement.compile(dialect=_DRIVER_DIALECT))  # type: ignore[attr-defined]


@dataclass(frozen=True)
class DriverStatement:
    """A statement as psycopg runs it, with the values of its constants (the literals
    SQLAlchemy sends as parameters: an enum member, a queue name, a batch size), already
    converted as SQLAlchemy would convert them: `driver_execute` sends them along with
    the caller's parameters."""

    sql: str
    constants: dict[str, Any]


class _InliningCompiler(PGCompiler_psycopg):
    """Renders a statement's constants (its bound values that the caller does not
    pass) as SQL literals, where their type renders one; the others stay parameters."""

    def visit_bindparam(self, bindparam: BindParameter[Any], **kw: Any) -> Any:  # type: ignore[override]
        if not bindparam.required and not bindparam.expanding:
            try:
                return self.render_literal_bindparam(bindparam, **kw)  # type: ignore[no-untyped-call]
            except (sqlalchemy_exc.CompileError, NotImplementedError):
                pass  # no literal form (JSONB, arrays): sent as a parameter
        return super().visit_bindparam(bindparam, **kw)  # type: ignore[no-untyped-call]


def driver_statement(statement: Executable, *, inline_constants: bool = False) -> DriverStatement:
    """`driver_sql` for a statement that holds literal values (built once, reused): the
    values are kept, converted by their types, as `constants`. A parameter left to the
    caller is a `bindparam` without a value; the caller passes it by its name.

    With `inline_constants`, the constants are written into the SQL as literals instead
    (those of a type that has a literal form): psycopg dumps every parameter of every
    execution, one by one, so a statement of many constants (the notification fan-out:
    39 of its 49 parameters) pays for each of them on each call."""
    compiled: Any = (
        _InliningCompiler(_DRIVER_DIALECT, statement)  # type: ignore[arg-type]
        if inline_constants
        else statement.compile(dialect=_DRIVER_DIALECT)  # type: ignore[attr-defined]
    )
    constants: dict[str, Any] = {}
    for bind, name in compiled.bind_names.items():
        if not bind.required:
            constants[name] = driver_converter(bind.type)(bind.effective_value)
    return DriverStatement(str(compiled), constants)


def driver_converter(type_: TypeEngine[Any]) -> Callable[[Any], Any]:
    """How SQLAlchemy would convert a value of `type_` before handing it to psycopg (a
    pgvector vector to its text form, an enum member to its name), for a value a caller
    passes to `driver_execute` itself."""
    processor = type_.dialect_impl(_DRIVER_DIALECT).bind_processor(_DRIVER_DIALECT)
    return processor if processor is not None else _unchanged


def _unchanged(value: Any) -> Any:
    return value


@dataclass(frozen=True)
class DriverResult:
    rows: list[tuple[Any, ...]]
    rowcount: int


_Entity = TypeVar("_Entity")


@dataclass(frozen=True)
class DriverEntity(Generic[_Entity]):
    """A mapped class read by a driver statement (`driver_statement`, `driver_execute`)
    instead of the ORM's loading: `columns` go into the statement's SELECT list, and
    `build` makes an instance from them. For the rows a hot request reads and then
    changes with explicit statements of its own (a quiz attempt and its items, read for
    an autosave or a submission): the ORM's per-row work (its identity map, a state
    and a populator per column, the result's processing per column) cost more CPU than
    the statement.

    The instance is transient (in no session, as `QuizRepository.insert_attempt`'s
    are): its attributes read as usual, a change to one is never flushed (the caller's
    own statement writes it) and a relationship does not load. Values need the
    conversion SQLAlchemy would make only for two kinds of column, done here: a numeric
    that Python reads as float (cast to double precision in the statement) and an enum
    (its member, from its text: cast to text in the statement). Any other type that
    SQLAlchemy would convert is refused when the entity is made, so a new column cannot
    come back unconverted."""

    model: type[_Entity]
    keys: tuple[str, ...]
    columns: tuple[ColumnElement[Any], ...]
    converters: tuple[tuple[int, Callable[[Any], Any]], ...]
    new_instance: Callable[[], _Entity]

    @classmethod
    def of(cls, model: type[_Entity]) -> DriverEntity[_Entity]:
        mapper = sa_inspect(model)
        keys: list[str] = []
        columns: list[ColumnElement[Any]] = []
        converters: list[tuple[int, Callable[[Any], Any]]] = []
        for index, attribute in enumerate(mapper.column_attrs):
            column = attribute.columns[0]
            type_ = column.type
            keys.append(attribute.key)
            if isinstance(type_, SAEnum) and type_.enum_class is not None:
                # As text: psycopg has no loader of its own for a PostgreSQL enum type,
                # and finding that out for each column of each result costs CPU.
                columns.append(cast(column, Text))
                converters.append((index, type_.enum_class))
            elif isinstance(type_, Numeric) and not isinstance(type_, Float):
                if type_.asdecimal:
                    raise TypeError(f"{model.__name__}.{attribute.key}: a Decimal column")
                columns.append(cast(column, Float))
            elif isinstance(type_, _PLAIN_TYPES):
                columns.append(column)
            else:
                raise TypeError(
                    f"{model.__name__}.{attribute.key}: {type_!r} needs SQLAlchemy's "
                    "conversion; read it through the ORM"
                )
        return cls(
            model,
            tuple(keys),
            tuple(columns),
            tuple(converters),
            mapper.class_manager.new_instance,
        )

    def build(self, row: Sequence[Any], start: int = 0) -> _Entity:
        """The instance from `row[start:start + len(columns)]`."""
        values = list(row[start : start + len(self.keys)])
        for index, convert in self.converters:
            if values[index] is not None:
                values[index] = convert(values[index])
        instance = self.new_instance()
        # A transient instance's attribute values live in its __dict__ (its state's
        # `dict`), where the ORM's own loading puts them too.
        instance.__dict__.update(zip(self.keys, values, strict=True))
        return instance


# The column types whose values psycopg reads as SQLAlchemy would hand them over.
_PLAIN_TYPES = (Uuid, DateTime, Boolean, Integer, String, JSON, Float)


async def driver_execute(session: AsyncSession, sql: str, params: dict[str, Any]) -> DriverResult:
    """Run one fixed hot statement (`driver_sql`) on the driver connection of the
    session's transaction, as a prepared statement, after flushing what the session has
    pending (as SQLAlchemy's autoflush would): its rows (none for a statement that
    returns none) and the rows it wrote. For the small statements a quiz submission's
    side effects send (the event row with its webhook subscribers, the notification's
    course title and its fan-out, the analytics fact): SQLAlchemy's per-call work costs
    more CPU than sending the statement."""
    if isinstance(session.sync_session, ReadOnlySession) and _WRITING.search(sql):
        raise ReadOnlySessionError("A read-only request's session was asked to write.")
    connection = await flushed_driver_connection(session)
    try:
        if not tracing.enabled():
            return await _run_on_driver(connection, sql, params)
        with tracing.sql_span(sql, session.get_bind().engine.url):
            return await _run_on_driver(connection, sql, params)
    except psycopg.Error as error:
        raise await _as_sqlalchemy_error(session, connection, sql, params, error) from error


async def _as_sqlalchemy_error(
    session: AsyncSession,
    driver: psycopg.AsyncConnection[Any],
    sql: str,
    params: dict[str, Any],
    error: psycopg.Error,
) -> sqlalchemy_exc.DBAPIError:
    """A driver error as SQLAlchemy raises it for a statement it sent: the same class
    (`IntegrityError` for a unique violation, which callers catch by that name), and on
    a lost connection the session's connection invalidated, so the pool drops it instead
    of handing the broken one out again."""
    dialect = session.get_bind().dialect
    # The dialect reads the driver connection's `closed`/`broken`, as for its own statements.
    lost = dialect.is_disconnect(error, driver, None)  # type: ignore[arg-type]
    if lost:
        connection = await session.connection()
        await connection.invalidate(error)
    wrapped = sqlalchemy_exc.DBAPIError.instance(
        sql, params, error, psycopg.Error, connection_invalidated=lost, dialect=dialect
    )
    assert isinstance(wrapped, sqlalchemy_exc.DBAPIError)
    return wrapped


async def _run_on_driver(
    connection: psycopg.AsyncConnection[Any], sql: str, params: dict[str, Any]
) -> DriverResult:
    async with psycopg.AsyncRawCursor(connection) as cursor:
        await run_on_cursor(cursor, sql, params)
        # Whether there are rows, from the result's status: `cursor.description` would
        # build a column object for each of its columns, on every call.
        result = cursor.pgresult
        returned = result is not None and result.status == psycopg.pq.ExecStatus.TUPLES_OK
        rows = await cursor.fetchall() if returned else []
        return DriverResult(rows, cursor.rowcount)


async def run_on_cursor(
    cursor: psycopg.AsyncRawCursor[Any], sql: str, params: dict[str, Any]
) -> None:
    """Execute one fixed statement (`driver_sql`: psycopg's `%(name)s` placeholders)
    on a raw cursor, as a prepared statement: its PostgreSQL form (`$1`, `$2`, ...) and
    the order of its parameters are worked out once per statement (`positional`).

    psycopg parses a query's placeholders again on every execution past its cache's
    limits: 4,096 characters (raised to `STATEMENT_CACHE_MAX_LENGTH` above) or 50
    parameters, which the notification fan-out (5.7 KB, 49 parameters) is one short
    of: parsing it again costs ~0.19 ms of CPU. Converted here, a driver statement
    never is, whatever its length or number of parameters."""
    query, names = positional(sql)
    await cursor.execute(query, [params[name] for name in names], prepare=True)


_PLACEHOLDER = re.compile(r"%%|%\((\w+)\)s")


@lru_cache(maxsize=512)
def positional(sql: str) -> tuple[bytes, tuple[str, ...]]:
    """`sql` as compiled for psycopg (`%(name)s` placeholders, `%%` for a percent sign)
    with PostgreSQL's own numbered placeholders, encoded, and the names of its
    parameters in their numbers' order (a name used twice keeps one number). Cached:
    the driver statements are a fixed set, compiled once each."""
    names: list[str] = []
    numbers: dict[str, int] = {}

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return "%"
        if name not in numbers:
            names.append(name)
            numbers[name] = len(names)
        return f"${numbers[name]}"

    return _PLACEHOLDER.sub(number, sql).encode(), tuple(names)
