"""The cache interface behaves the same on memory and on a real Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from lyceum.kit.cache import Cache, MemoryCache, RedisCache, get_json, set_json


@pytest.fixture(params=["memory", "redis"])
async def cache(request: pytest.FixtureRequest) -> AsyncIterator[Cache]:
    backend: Cache
    if request.param == "memory":
        backend = MemoryCache()
    else:
        backend = RedisCache(request.getfixturevalue("redis_url"))
    yield backend
    await backend.close()


async def test_set_get_delete(cache: Cache) -> None:
    key = uuid.uuid4().hex
    assert await cache.get(key) is None
    await cache.set(key, b"value")
    assert await cache.get(key) == b"value"
    assert await cache.delete(key) == 1
    assert await cache.get(key) is None


async def test_ttl_expires(cache: Cache) -> None:
    key = uuid.uuid4().hex
    await cache.set(key, b"short", ttl=0.2)
    assert await cache.get(key) == b"short"
    await asyncio.sleep(0.35)
    assert await cache.get(key) is None


async def test_add_only_sets_missing_keys(cache: Cache) -> None:
    key = uuid.uuid4().hex
    assert await cache.add(key, b"first", ttl=10)
    assert not await cache.add(key, b"second", ttl=10)
    assert await cache.get(key) == b"first"


async def test_incr_counts_within_a_window(cache: Cache) -> None:
    key = uuid.uuid4().hex
    assert [await cache.incr(key, ttl=10) for _ in range(3)] == [1, 2, 3]


async def test_json_round_trip(cache: Cache) -> None:
    key = uuid.uuid4().hex
    await set_json(cache, key, {"title": "Lập trình", "n": [1, 2]}, ttl=10)
    assert await get_json(cache, key) == {"title": "Lập trình", "n": [1, 2]}


async def test_memory_cache_is_bounded() -> None:
    cache = MemoryCache(max_entries=3)
    for index in range(5):
        await cache.set(str(index), b"x")
    assert await cache.get("0") is None
    assert await cache.get("4") == b"x"
