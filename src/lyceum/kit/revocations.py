"""Revocations: access that has ended, announced to every process once it is committed.

A signed-out login session, a closed or deactivated account, a learner who left a
course: the database says so at once, but a live connection (a Socket.IO socket) was
authorised when it opened and would go on for the life of its token. Whoever ends the
access announces it with `announce_after_commit`; every process that holds connections
`listen`s and acts within moments. With REDIS_URL set the announcement travels over
Redis pub/sub to every replica; without it, it stays in this process.

Pub/sub delivers to whoever is subscribed at the moment, no more: a listener that is
reconnecting misses what was said meanwhile. Listeners therefore also re-check their
connections against the database now and then (the chat gateway does, every
CHAT_ACCESS_CHECK_SECONDS), and an announcement only makes that happen sooner.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import redis.asyncio as aioredis
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.kit.db import after_commit

logger = structlog.get_logger("lyceum.revocations")

CHANNEL = "lyceum:revocations"
# Pause before subscribing again after Redis went away.
RECONNECT_SECONDS = 1.0


class Ended(enum.StrEnum):
    # These login sessions were signed out (logout, revoked, password changed, a
    # refresh token replayed): connections opened with them end.
    sessions = "sessions"
    # The account was deactivated or deleted: every connection of it ends.
    account = "account"
    # The account's memberships changed (left a course, lost a role): connections
    # re-check the rooms they are in.
    membership = "membership"


@dataclass(frozen=True)
class Revocation:
    kind: Ended
    user_id: uuid.UUID
    reason: str
    session_ids: tuple[uuid.UUID, ...] = field(default=())

    def encode(self) -> str:
        return json.dumps(
            {
                "kind": self.kind.value,
                "user_id": str(self.user_id),
                "reason": self.reason,
                "session_ids": [str(session_id) for session_id in self.session_ids],
            }
        )

    @classmethod
    def decode(cls, raw: str | bytes) -> Revocation:
        data = json.loads(raw)
        return cls(
            kind=Ended(data["kind"]),
            user_id=uuid.UUID(data["user_id"]),
            reason=str(data["reason"]),
            session_ids=tuple(uuid.UUID(value) for value in data["session_ids"]),
        )


Listener = Callable[[Revocation], Awaitable[None]]


class Revocations:
    """One per process (`Runtime.revocations`)."""

    def __init__(self, redis_url: str | None) -> None:
        self._redis_url = redis_url
        self._listeners: list[Listener] = []
        self._client: aioredis.Redis | None = None
        self._reader: asyncio.Task[None] | None = None

    def announce_after_commit(self, session: AsyncSession, revocation: Revocation) -> None:
        """Announce `revocation` once the session's transaction has committed (never, if
        it rolls back): a listener that re-reads the database then sees the change."""

        async def announce() -> None:
            await self.publish(revocation)

        after_commit(session, announce)

    async def publish(self, revocation: Revocation) -> None:
        if self._redis_url is None:
            await self._deliver(revocation)
            return
        await self._redis().publish(CHANNEL, revocation.encode())

    async def listen(self, listener: Listener) -> Callable[[], None]:
        """Hear every revocation from now on; returns the function that stops it. With
        Redis, returns once the subscription is in place (or has been tried)."""
        self._listeners.append(listener)
        if self._redis_url is not None and self._reader is None:
            subscribed = asyncio.get_running_loop().create_future()
            self._reader = asyncio.create_task(self._read(subscribed), name="revocations")
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(subscribed), timeout=5)

        def stop() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return stop

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        self._listeners.clear()

    def _redis(self) -> aioredis.Redis:
        if self._client is None:
            assert self._redis_url is not None
            self._client = aioredis.Redis.from_url(self._redis_url)
        return self._client

    async def _deliver(self, revocation: Revocation) -> None:
        for listener in list(self._listeners):
            try:
                await listener(revocation)
            except Exception:
                logger.exception("revocation_listener_failed", kind=revocation.kind.value)

    async def _read(self, subscribed: asyncio.Future[None]) -> None:
        """Subscribe and deliver, subscribing again whenever Redis goes away."""
        while True:
            try:
                async with self._redis().pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(CHANNEL)
                    if not subscribed.done():
                        subscribed.set_result(None)
                    while True:
                        message = await pubsub.get_message(timeout=1.0)
                        if message is None or message.get("type") != "message":
                            continue
                        try:
                            revocation = Revocation.decode(message["data"])
                        except (ValueError, KeyError, TypeError):
                            logger.warning("revocation_unreadable")
                            continue
                        await self._deliver(revocation)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("revocations_subscription_lost")
                await asyncio.sleep(RECONNECT_SECONDS)
