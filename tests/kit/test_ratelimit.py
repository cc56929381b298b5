"""Rate limits: exact in memory, and atomic across processes with a real Redis."""

from __future__ import annotations

import asyncio
import math
import multiprocessing
import time
import uuid

import pytest
from fastapi import APIRouter, FastAPI, Request

from lyceum.config import Settings
from lyceum.kit.ratelimit import MemoryWindows, RateLimiter
from lyceum.kit.runtime import Runtime
from tests.conftest import client_for, make_app


async def test_memory_limit_allows_exactly_n_then_says_when_to_retry() -> None:
    limiter = RateLimiter(None)
    decisions = [await limiter.hit("3/minute", "login", "a@example.com") for _ in range(5)]
    assert [d.allowed for d in decisions] == [True, True, True, False, False]
    assert decisions[2].remaining == 0
    assert 1 <= decisions[3].retry_after <= 60
    # Other keys have their own budget.
    assert (await limiter.hit("3/minute", "login", "b@example.com")).allowed


def test_memory_window_moves_and_idle_keys_are_swept() -> None:
    now = [1000.0]
    windows = MemoryWindows(clock=lambda: now[0])
    key = ("2/10 seconds", "chat", "u1")
    assert windows.hit(key, 2, 10.0) == (True, 1, 10.0)
    now[0] += 4
    assert windows.hit(key, 2, 10.0) == (True, 0, 6.0)
    now[0] += 1
    # Full: the oldest hit leaves the window 5 s from now.
    assert windows.hit(key, 2, 10.0) == (False, 0, 5.0)
    now[0] += 5  # the first hit has left; the second stays 4 s more
    assert windows.hit(key, 2, 10.0) == (True, 0, 4.0)
    windows.hit(("2/10 seconds", "chat", "u2"), 2, 10.0)
    assert len(windows) == 2
    # A minute on, both keys are idle: the next hit sweeps them before counting itself.
    now[0] += MemoryWindows.SWEEP_EVERY
    assert windows.hit(("2/10 seconds", "chat", "u3"), 2, 10.0)[0]
    assert len(windows) == 1


@pytest.fixture(params=["memory", "redis"])
def limiter(request: pytest.FixtureRequest) -> RateLimiter:
    if request.param == "memory":
        return RateLimiter(None)
    return RateLimiter(request.getfixturevalue("redis_url"))


async def test_the_reset_time_is_when_the_oldest_hit_leaves_the_window(
    limiter: RateLimiter,
) -> None:
    key = uuid.uuid4().hex
    before = time.time()
    first = await limiter.hit("2/minute", key)
    after = time.time()
    # Not "now": the first hit frees its slot a minute after it was made. Redis keeps
    # the hit's time with 0.1 ms resolution (a float rounded by its script), hence the
    # millisecond of slack.
    assert before + 60 - 0.001 <= first.reset_at <= after + 60 + 0.001
    second = await limiter.hit("2/minute", key)
    assert second.reset_at == pytest.approx(first.reset_at, abs=0.01)
    asked = time.time()
    refused = await limiter.hit("2/minute", key)
    answered = time.time()
    assert not refused.allowed and refused.remaining == 0
    assert refused.reset_at == pytest.approx(first.reset_at, abs=0.01)
    # Seconds until the slot frees, counted from some moment during the call (a loaded
    # machine may take a while over it).
    assert (
        math.ceil(refused.reset_at - answered)
        <= refused.retry_after
        <= math.ceil(refused.reset_at - asked)
    )
    headers = refused.headers()
    assert headers["X-RateLimit-Limit"] == "2" and headers["X-RateLimit-Remaining"] == "0"
    assert int(headers["X-RateLimit-Reset"]) == math.ceil(first.reset_at)


async def test_clearing_a_key_gives_its_budget_back(limiter: RateLimiter) -> None:
    key, other = uuid.uuid4().hex, uuid.uuid4().hex
    for _ in range(3):
        await limiter.hit("3/hour", "failures", key)
        await limiter.hit("3/hour", "failures", other)
    assert not (await limiter.hit("3/hour", "failures", key)).allowed
    await limiter.clear("3/hour", "failures", key)
    assert [(await limiter.hit("3/hour", "failures", key)).allowed for _ in range(4)] == [
        True,
        True,
        True,
        False,
    ]
    # Only that key.
    assert not (await limiter.hit("3/hour", "failures", other)).allowed


async def test_concurrent_hits_against_redis_let_exactly_n_through(redis_url: str) -> None:
    limiter = RateLimiter(redis_url)
    key = uuid.uuid4().hex
    decisions = await asyncio.gather(*(limiter.hit("7/minute", key) for _ in range(50)))
    assert sum(d.allowed for d in decisions) == 7
    await limiter.reset()


def _hammer(redis_url: str, key: str, hits: int, results: multiprocessing.Queue[int]) -> None:
    async def run() -> int:
        limiter = RateLimiter(redis_url)
        decisions = await asyncio.gather(*(limiter.hit("10/minute", key) for _ in range(hits)))
        return sum(d.allowed for d in decisions)

    results.put(asyncio.run(run()))


@pytest.mark.slow
def test_limit_is_atomic_across_processes(redis_url: str) -> None:
    """Two processes, 25 concurrent hits each, one shared limit of 10."""
    context = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue[int] = context.Queue()
    key = uuid.uuid4().hex
    processes = [
        context.Process(target=_hammer, args=(redis_url, key, 25, results)) for _ in range(2)
    ]
    for process in processes:
        process.start()
    allowed = [results.get(timeout=60) for _ in processes]
    for process in processes:
        process.join(timeout=30)
        assert process.exitcode == 0
    assert sum(allowed) == 10


probe = APIRouter(prefix="/api/v1/probe")


@probe.post("/limited/{key}")
async def limited(key: str, request: Request) -> dict[str, bool]:
    runtime: Runtime = request.app.state.runtime
    await runtime.rate_limiter.check("5/15 minutes", "probe", key)
    return {"ok": True}


async def test_http_limit_under_50_concurrent_requests_against_redis(
    settings: Settings, runtime: Runtime, redis_url: str
) -> None:
    with_redis = Runtime(
        settings=settings,
        database_url=runtime.database_url,
        database=runtime.database,
        cache=runtime.cache,
        rate_limiter=RateLimiter(redis_url),
    )
    app: FastAPI = make_app(settings, with_redis, None)
    app.include_router(probe)
    key = uuid.uuid4().hex
    async with client_for(app) as http:
        responses = await asyncio.gather(
            *(http.post(f"/api/v1/probe/limited/{key}") for _ in range(50))
        )
    statuses = [response.status_code for response in responses]
    assert statuses.count(200) == 5
    assert statuses.count(429) == 45
    refused = next(response for response in responses if response.status_code == 429)
    assert refused.headers["content-type"] == "application/problem+json"
    assert 1 <= int(refused.headers["retry-after"]) <= 15 * 60


async def test_browsers_may_read_the_rate_limit_headers(
    settings: Settings, runtime: Runtime
) -> None:
    """A web app on another origin reads X-RateLimit-* only if CORS exposes them."""
    origin = "https://app.example"
    app = make_app(settings.model_copy(update={"cors_origins": [origin]}), runtime, None)
    async with client_for(app) as http:
        response = await http.get("/health/live", headers={"Origin": origin})
    exposed = {
        name.strip().lower()
        for name in response.headers["access-control-expose-headers"].split(",")
    }
    assert {"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"} <= exposed
    assert "retry-after" in exposed
