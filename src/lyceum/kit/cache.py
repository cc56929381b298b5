"""A small cache interface with two backends: in-process memory, or Redis.

`REDIS_URL` unset means memory (one process); set, every replica shares Redis.
Values are bytes; `get_json` / `set_json` wrap them for structured data.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any, Protocol

import orjson
import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.kit.db import after_commit, after_rollback

KEY_PREFIX = "lyceum:"


class Cache(Protocol):
    backend: str

    async def get(self, key: str) -> bytes | None: ...
    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None: ...
    async def add(self, key: str, value: bytes, ttl: float | None = None) -> bool: ...
    async def delete(self, *keys: str) -> int: ...
    async def incr(self, key: str, ttl: float | None = None) -> int: ...
    async def ping(self) -> bool: ...
    async def close(self) -> None: ...


class MemoryCache:
    """Bounded LRU with per-key expiry; for a single process only."""

    backend = "memory"

    def __init__(self, max_entries: int = 10_000) -> None:
        self._data: OrderedDict[str, tuple[float | None, bytes]] = OrderedDict()
        self._max_entries = max_entries

    def _live(self, key: str) -> bytes | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        expires, value = entry
        if expires is not None and expires <= time.monotonic():
            del self._data[key]
            return None
        self._data.move_to_end(key)
        return value

    def _store(self, key: str, value: bytes, ttl: float | None) -> None:
        expires = time.monotonic() + ttl if ttl else None
        self._data[key] = (expires, value)
        self._data.move_to_end(key)
        while len(self._data) > self._max_entries:
            self._data.popitem(last=False)

    async def get(self, key: str) -> bytes | None:
        return self._live(key)

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        self._store(key, value, ttl)

    async def add(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        if self._live(key) is not None:
            return False
        self._store(key, value, ttl)
        return True

    async def delete(self, *keys: str) -> int:
        return sum(1 for key in keys if self._data.pop(key, None) is not None)

    async def incr(self, key: str, ttl: float | None = None) -> int:
        current = self._live(key)
        if current is None:
            self._store(key, b"1", ttl)
            return 1
        expires, _ = self._data[key]
        value = int(current) + 1
        self._data[key] = (expires, str(value).encode())
        return value

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        self._data.clear()


class RedisCache:
    """Redis-backed cache shared by every process; keys are prefixed `lyceum:`."""

    backend = "redis"

    def __init__(self, url: str) -> None:
        self._client: aioredis.Redis = aioredis.Redis.from_url(url)

    async def get(self, key: str) -> bytes | None:
        value: bytes | None = await self._client.get(KEY_PREFIX + key)  # type: ignore[assignment]
        return value

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        await self._client.set(KEY_PREFIX + key, value, px=int(ttl * 1000) if ttl else None)

    async def add(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        created = await self._client.set(
            KEY_PREFIX + key, value, px=int(ttl * 1000) if ttl else None, nx=True
        )
        return bool(created)

    async def delete(self, *keys: str) -> int:
        if not keys:
            return 0
        deleted: int = await self._client.delete(*(KEY_PREFIX + key for key in keys))
        return deleted

    async def incr(self, key: str, ttl: float | None = None) -> int:
        full_key = KEY_PREFIX + key
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.incr(full_key)
            if ttl:
                # NX: the window starts at the first increment and is not extended.
                pipe.pexpire(full_key, int(ttl * 1000), nx=True)
            results = await pipe.execute()
        return int(results[0])

    async def ping(self) -> bool:
        return bool(await self._client.ping())

    async def close(self) -> None:
        await self._client.aclose()


def create_cache(redis_url: str | None) -> Cache:
    return RedisCache(redis_url) if redis_url else MemoryCache()


async def get_json(cache: Cache, key: str) -> Any | None:
    raw = await cache.get(key)
    return None if raw is None else orjson.loads(raw)


async def set_json(cache: Cache, key: str, value: Any, ttl: float | None = None) -> None:
    await cache.set(key, orjson.dumps(value), ttl)


_PENDING_BUMPS = "lyceum.cache.pending_bumps"


def bump_after_commit(session: AsyncSession, cache: Cache, *keys: str) -> None:
    """Increment the version counters `keys` once the session's transaction commits
    (each key once per transaction, however often it is asked for). Readers key their
    entries on these versions: bumping before the commit would let a reader cache the
    old rows under the new version; bumping after it, a reader that saw the old rows
    stored them under a version nobody reads any more."""
    pending: set[str] | None = session.info.get(_PENDING_BUMPS)
    if pending is None:
        pending = session.info[_PENDING_BUMPS] = set()

        async def bump() -> None:
            for key in sorted(session.info.pop(_PENDING_BUMPS, ())):
                await cache.incr(key)

        async def forget() -> None:
            session.info.pop(_PENDING_BUMPS, None)

        after_commit(session, bump)
        after_rollback(session, forget)
    pending.update(keys)


async def version_of(cache: Cache, key: str) -> str:
    """The current value of a version counter ("0" before its first bump)."""
    return (await cache.get(key) or b"0").decode()
