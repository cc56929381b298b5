"""Who is online in each room, shared by every replica.

One entry per connection in a room, scored by when it expires. The process holding the
connection refreshes its entries; a crashed process's entries simply run out, so a
room never shows someone online forever. With REDIS_URL set the entries are a sorted
set per room in Redis; otherwise a dict in this process.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Protocol

import redis.asyncio as aioredis

KEY_PREFIX = "lyceum:chat:presence:"


@dataclass(frozen=True)
class PresenceEntry:
    sid: str
    user_id: uuid.UUID
    full_name: str

    def encode(self) -> str:
        return f"{self.sid}|{self.user_id}|{self.full_name}"

    @classmethod
    def decode(cls, raw: str) -> PresenceEntry:
        sid, user_id, full_name = raw.split("|", 2)
        return cls(sid, uuid.UUID(user_id), full_name)


def distinct_users(entries: list[PresenceEntry]) -> list[PresenceEntry]:
    """One entry per user (several tabs are one person), in a stable order."""
    seen: dict[uuid.UUID, PresenceEntry] = {}
    for entry in entries:
        seen.setdefault(entry.user_id, entry)
    return sorted(seen.values(), key=lambda entry: (entry.full_name, str(entry.user_id)))


class PresenceStore(Protocol):
    async def add(self, room: str, entry: PresenceEntry) -> None: ...
    async def remove(self, room: str, entry: PresenceEntry) -> None: ...
    async def entries(self, room: str) -> list[PresenceEntry]: ...
    async def refresh(self, held: list[tuple[str, PresenceEntry]]) -> None: ...
    async def close(self) -> None: ...


class MemoryPresence:
    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._rooms: dict[str, dict[str, float]] = {}

    async def add(self, room: str, entry: PresenceEntry) -> None:
        self._rooms.setdefault(room, {})[entry.encode()] = time.time() + self.ttl

    async def remove(self, room: str, entry: PresenceEntry) -> None:
        members = self._rooms.get(room)
        if members is not None:
            members.pop(entry.encode(), None)
            if not members:
                del self._rooms[room]

    async def entries(self, room: str) -> list[PresenceEntry]:
        members = self._rooms.get(room, {})
        now = time.time()
        for raw in [raw for raw, expires in members.items() if expires <= now]:
            del members[raw]
        return [PresenceEntry.decode(raw) for raw in members]

    async def refresh(self, held: list[tuple[str, PresenceEntry]]) -> None:
        for room, entry in held:
            await self.add(room, entry)

    async def close(self) -> None:
        self._rooms.clear()


class RedisPresence:
    def __init__(self, url: str, ttl: float) -> None:
        self.ttl = ttl
        # A blocking pool: a burst waits for a connection instead of failing.
        pool = aioredis.BlockingConnectionPool.from_url(
            url, max_connections=32, timeout=10, decode_responses=True
        )
        self._client: aioredis.Redis = aioredis.Redis(connection_pool=pool)

    async def add(self, room: str, entry: PresenceEntry) -> None:
        await self.refresh([(room, entry)])

    async def remove(self, room: str, entry: PresenceEntry) -> None:
        await self._client.zrem(KEY_PREFIX + room, entry.encode())

    async def entries(self, room: str) -> list[PresenceEntry]:
        key = KEY_PREFIX + room
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.zremrangebyscore(key, "-inf", time.time())
            pipe.zrange(key, 0, -1)
            _, members = await pipe.execute()
        return [PresenceEntry.decode(raw) for raw in members]

    async def refresh(self, held: list[tuple[str, PresenceEntry]]) -> None:
        if not held:
            return
        expires = time.time() + self.ttl
        async with self._client.pipeline(transaction=False) as pipe:
            for room, entry in held:
                key = KEY_PREFIX + room
                pipe.zadd(key, {entry.encode(): expires})
                # The key itself goes once nobody has refreshed it for a while.
                pipe.expire(key, int(self.ttl * 2))
            await pipe.execute()

    async def close(self) -> None:
        await self._client.aclose()
        await self._client.connection_pool.disconnect()


def create_presence(redis_url: str | None, ttl: float) -> PresenceStore:
    return RedisPresence(redis_url, ttl) if redis_url else MemoryPresence(ttl)
