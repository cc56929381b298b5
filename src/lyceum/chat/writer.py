"""Group commit for chat messages.

Every message that passed its checks is handed to this process's writer, which stores
whatever has queued up in one INSERT, then answers each sender. Alone, a message is
stored at once; under load, the messages that arrive while a batch is being written
share the next one, so the cost of a round trip and a commit is paid per batch, not
per message. The writer keeps one connection in autocommit mode: the INSERT is a single
statement, atomic by itself, so it needs no BEGIN and COMMIT round trips (nor the
pool's checkout ping), and the statement runs on the driver connection, without
SQLAlchemy's per-call work. This bends rule 1 (one request, one transaction) on purpose:
the rows are independent, each is stored or refused on its own terms, and nobody is
answered before the commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from lyceum.chat.repository import NewMessage, StoredMessage, insert_messages
from lyceum.chat.service import PendingMessage
from lyceum.kit.db import Database, driver_of
from lyceum.kit.errors import NotFound

logger = structlog.get_logger("lyceum.chat")

# Enough to amortise a transaction; small enough that one batch never holds a
# connection for long.
MAX_BATCH = 256

Waiting = tuple[PendingMessage, "asyncio.Future[StoredMessage | None]"]


def _row(pending: PendingMessage) -> NewMessage:
    return NewMessage(
        id=pending.id,
        room_id=pending.room_id,
        sender_id=pending.sender.id,
        client_id=pending.client_id,
        text=pending.text,
        mute_course_id=pending.mute_course_id,
    )


class MessageWriter:
    def __init__(self, database_of: Callable[[], Database], now: Callable[[], dt.datetime]) -> None:
        self._database_of = database_of
        self._now = now
        self._queue: list[Waiting] = []
        # Every message handed over and not yet answered (queued or being written).
        self._unanswered: set[asyncio.Future[StoredMessage | None]] = set()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # The pooled connection held for good, and its psycopg connection.
        self._connection: AsyncConnection | None = None
        self._driver: psycopg.AsyncConnection[Any] | None = None

    async def write(self, pending: PendingMessage) -> StoredMessage | None:
        """The stored row, or None if nothing was stored (a muted sender, or a client_id
        sent before). A database error is raised to this sender alone."""
        future: asyncio.Future[StoredMessage | None] = asyncio.get_running_loop().create_future()
        self._unanswered.add(future)
        future.add_done_callback(self._unanswered.discard)
        self._queue.append((pending, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="chat-message-writer")
        self._wakeup.set()
        return await future

    async def flush(self, within: float) -> int:
        """Wait (at most `within` seconds) until every message handed over so far is
        stored or refused: a shutdown answers its senders instead of failing them.
        Returns how many were waiting."""
        waiting = set(self._unanswered)
        if waiting:
            await asyncio.wait(waiting, timeout=within)
        return len(waiting)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._disconnect()
        for _, future in self._queue:
            if not future.done():
                future.set_exception(RuntimeError("the chat is shutting down"))
        self._queue.clear()

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._queue:
                batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
                if len(batch) == 1:
                    await self._insert_alone(batch[0])
                    continue
                try:
                    stored = await self._insert([pending for pending, _ in batch])
                except Exception:
                    # One bad row (say, its room was just deleted) must not sink the
                    # others: store them one by one.
                    for waiting in batch:
                        await self._insert_alone(waiting)
                    continue
                for pending, future in batch:
                    if not future.done():
                        future.set_result(stored.get(pending.id))

    async def _insert_alone(self, waiting: Waiting) -> None:
        pending, future = waiting
        try:
            stored = await self._insert([pending])
        except psycopg.IntegrityError:
            # The only reference that can fail is the room's: deleted with its course.
            _fail([waiting], NotFound("No such chat room."))
            return
        except Exception as error:
            logger.exception("chat_message_insert_failed", room_id=str(pending.room_id))
            _fail([waiting], error)
            return
        if not future.done():
            future.set_result(stored.get(pending.id))

    async def _insert(self, batch: list[PendingMessage]) -> dict[uuid.UUID, StoredMessage]:
        driver = self._driver
        if driver is None or driver.closed:
            driver = await self._connect()
        try:
            return await insert_messages(driver, [_row(pending) for pending in batch], self._now())
        except psycopg.IntegrityError:
            raise  # a bad row: the connection is fine
        except Exception:
            # The connection may be the problem (a restarted server): start afresh.
            await self._disconnect(invalidate=True)
            raise

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        connection = await self._database_of().engine.connect()
        try:
            connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
            driver = await driver_of(connection)
        except BaseException:
            await connection.close()
            raise
        self._connection, self._driver = connection, driver
        return driver

    async def _disconnect(self, *, invalidate: bool = False) -> None:
        connection, self._connection, self._driver = self._connection, None, None
        if connection is not None:
            with contextlib.suppress(Exception):
                if invalidate:
                    # Not back to the pool: SQLAlchemy did not see the error.
                    await connection.invalidate()
                await connection.close()


def _fail(batch: list[Waiting], error: Exception) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(error)
