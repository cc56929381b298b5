"""Rate limiting with moving windows: in this process, or in Redis when REDIS_URL is set.

In Redis (the `limits` library) the moving-window strategy runs as one Lua script, so a
limit holds exactly across every replica hitting the same key at once. In memory it is
`MemoryWindows` below: `limits`' own memory storage, once its expiry task has finished,
starts another on the next hit that walks every key with a thread hop per key; with a
thousand chat users that walk cost more CPU than the messages themselves.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.aio.storage import Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from lyceum.kit.errors import RateLimited


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    # Seconds until a hit would be allowed again (0 when this one was).
    retry_after: int
    # Unix time at which the oldest hit still in the window leaves it, freeing a slot
    # (now, when the window is empty).
    reset_at: float

    def headers(self) -> dict[str, str]:
        """`X-RateLimit-Limit`, `-Remaining` and `-Reset` (Unix seconds, rounded up: by
        then at least one more request is allowed)."""
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(max(self.remaining, 0)),
            "X-RateLimit-Reset": str(math.ceil(self.reset_at)),
        }


def storage_uri(redis_url: str | None) -> str:
    if not redis_url:
        return "async+memory://"
    return "async+" + redis_url


class MemoryWindows:
    """Moving windows held by this process: per rule and key, the times of the hits still
    inside the window, oldest first. A hit costs O(hits that just left the window); keys
    idle for longer than their window are dropped by a sweep at most once a minute."""

    SWEEP_EVERY = 60.0

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._windows: dict[tuple[str, ...], tuple[float, deque[float]]] = {}
        self._next_sweep = clock() + self.SWEEP_EVERY

    def hit(self, key: tuple[str, ...], amount: int, window: float) -> tuple[bool, int, float]:
        """Count a hit if the window has room; (allowed, remaining, seconds until the
        oldest hit in the window leaves it)."""
        now = self._clock()
        if now >= self._next_sweep:
            self._sweep(now)
        entry = self._windows.get(key)
        if entry is None:
            entry = self._windows[key] = (window, deque())
        hits = entry[1]
        cutoff = now - window
        while hits and hits[0] <= cutoff:
            hits.popleft()
        allowed = len(hits) < amount
        if allowed:
            hits.append(now)
        reset_in = hits[0] + window - now if hits else 0.0
        return allowed, max(0, amount - len(hits)), reset_in

    def forget(self, key: tuple[str, ...]) -> None:
        self._windows.pop(key, None)

    def _sweep(self, now: float) -> None:
        self._next_sweep = now + self.SWEEP_EVERY
        idle = [
            key
            for key, (window, hits) in self._windows.items()
            if not hits or hits[-1] <= now - window
        ]
        for key in idle:
            del self._windows[key]

    def clear(self) -> None:
        self._windows.clear()

    def __len__(self) -> int:
        return len(self._windows)


class RateLimiter:
    def __init__(self, redis_url: str | None) -> None:
        self.memory: MemoryWindows | None = None
        self.storage: Storage | None = None
        if redis_url:
            storage = storage_from_string(
                storage_uri(redis_url), key_prefix="lyceum-rl", implementation="redispy"
            )
            assert isinstance(storage, Storage)  # the async+ scheme gives an asyncio storage
            self.storage = storage
            self._limiter = MovingWindowRateLimiter(storage)
        else:
            self.memory = MemoryWindows()
        self._rules: dict[str, RateLimitItem] = {}

    def _rule(self, rule: str) -> RateLimitItem:
        item = self._rules.get(rule)
        if item is None:
            item = self._rules[rule] = parse(rule)
        return item

    async def hit(self, rule: str, *key: str) -> RateDecision:
        """Count one hit for `key` under `rule` (e.g. "5/15 minutes")."""
        item = self._rule(rule)
        if self.memory is not None:
            allowed, remaining, reset_in = self.memory.hit(
                (rule, *key), item.amount, float(item.get_expiry())
            )
            retry_after = 0 if allowed else max(1, math.ceil(reset_in))
            return RateDecision(
                allowed, item.amount, remaining, retry_after, time.time() + reset_in
            )
        allowed = await self._limiter.hit(item, *key)
        # The moving window's oldest entry plus the window: when a slot frees up.
        stats = await self._limiter.get_window_stats(item, *key)
        retry_after = 0 if allowed else max(1, math.ceil(stats.reset_time - time.time()))
        return RateDecision(allowed, item.amount, stats.remaining, retry_after, stats.reset_time)

    async def check(self, rule: str, *key: str) -> None:
        """Hit and raise `RateLimited` (429 with Retry-After) when over the limit."""
        decision = await self.hit(rule, *key)
        if not decision.allowed:
            raise RateLimited(
                f"Rate limit of {rule} exceeded; retry in {decision.retry_after} s.",
                retry_after=decision.retry_after,
            )

    async def clear(self, rule: str, *key: str) -> None:
        """Forget every hit of `key` under `rule` (a successful sign-in clears the count
        of failed ones)."""
        if self.memory is not None:
            self.memory.forget((rule, *key))
        else:
            await self._limiter.clear(self._rule(rule), *key)

    async def reset(self) -> None:
        if self.memory is not None:
            self.memory.clear()
        else:
            assert self.storage is not None
            await self.storage.reset()

    async def ping(self) -> bool:
        if self.storage is None:
            return True
        return bool(await self.storage.check())
