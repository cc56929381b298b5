"""Rate limiting through the `limits` library: memory:// or redis://, chosen by REDIS_URL.

The moving-window strategy runs as one Lua script in Redis, so a limit holds exactly
across every replica hitting the same key at once.
"""

from __future__ import annotations

import math
import time
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
    retry_after: int


def storage_uri(redis_url: str | None) -> str:
    if not redis_url:
        return "async+memory://"
    return "async+" + redis_url


class RateLimiter:
    def __init__(self, redis_url: str | None) -> None:
        uri = storage_uri(redis_url)
        options = {"implementation": "redispy"} if redis_url else {}
        storage = storage_from_string(uri, key_prefix="lyceum-rl", **options)
        assert isinstance(storage, Storage)  # the async+ scheme gives an asyncio storage
        self.storage = storage
        self._limiter = MovingWindowRateLimiter(self.storage)
        self._rules: dict[str, RateLimitItem] = {}

    def _rule(self, rule: str) -> RateLimitItem:
        item = self._rules.get(rule)
        if item is None:
            item = self._rules[rule] = parse(rule)
        return item

    async def hit(self, rule: str, *key: str) -> RateDecision:
        """Count one hit for `key` under `rule` (e.g. "5/15 minutes")."""
        item = self._rule(rule)
        allowed = await self._limiter.hit(item, *key)
        stats = await self._limiter.get_window_stats(item, *key)
        retry_after = 0 if allowed else max(1, math.ceil(stats.reset_time - time.time()))
        return RateDecision(allowed, item.amount, stats.remaining, retry_after)

    async def check(self, rule: str, *key: str) -> None:
        """Hit and raise `RateLimited` (429 with Retry-After) when over the limit."""
        decision = await self.hit(rule, *key)
        if not decision.allowed:
            raise RateLimited(
                f"Rate limit of {rule} exceeded; retry in {decision.retry_after} s.",
                retry_after=decision.retry_after,
            )

    async def reset(self) -> None:
        await self.storage.reset()

    async def ping(self) -> bool:
        return bool(await self.storage.check())
