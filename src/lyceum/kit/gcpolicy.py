"""Keep full garbage collections short in a long-running server.

CPython's full (generation 2) collection walks every tracked object. In a server holding
a thousand chat connections that is ~270,000 objects (each socket keeps a handful of
tasks, their coroutine chains, queues and timers), and a full collection stops the event
loop for 50-150 ms on a busy 2-core machine: every message delivered in that window is
late, which is the whole p99 of `bench/chat.py`.

Objects that survived a full collection are mostly long-lived (connections, caches,
pools), so after each full collection `GcPolicy` freezes them (`gc.freeze()`): later
full collections walk only what arrived since. Reference counting still frees frozen
objects that die; only reference cycles among frozen objects wait, until the policy
unfreezes everything (every `unfreeze_every` seconds, 15 minutes by default) so that
the next full collection walks, and frees, the lot. The price is one full-length pause
per period instead of one every few seconds under load.

Freezing also switches off CPython's own brake on full collections: one runs only when
the objects promoted since the last exceed a quarter of the long-lived ones, and with
those frozen the quarter is of almost nothing. Full collections then came with every
10th middle-generation collection, every ~2 s at 1,000 chat messages/s, each walking the
sockets' in-flight objects for 15-35 ms. While the policy runs, the third threshold is
raised (`full_every` middle collections, 100: every ~15-20 s under that load).

The policy never asks `gc.get_freeze_count()`: that walks every frozen object (80 ms for
the million of a server with 1,000 chat sockets).
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable

import structlog

logger = structlog.get_logger("lyceum.gc")


class GcPolicy:
    def __init__(
        self,
        *,
        unfreeze_every: float = 900.0,
        full_every: int = 100,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.unfreeze_every = unfreeze_every
        self.full_every = full_every
        self._clock = clock
        self._full_collections = self._full_count()
        self._next_unfreeze = clock() + unfreeze_every

    @staticmethod
    def _full_count() -> int:
        return int(gc.get_stats()[2]["collections"])

    def step(self) -> str | None:
        """Look once: freeze after a new full collection, unfreeze when the period is
        over. Returns what it did (for tests and the debug log)."""
        now = self._clock()
        if now >= self._next_unfreeze:
            self._next_unfreeze = now + self.unfreeze_every
            gc.unfreeze()
            self._full_collections = self._full_count()
            return "unfreeze"
        full = self._full_count()
        if full != self._full_collections:
            self._full_collections = full
            gc.freeze()
            return "freeze"
        return None

    async def run(self, interval: float = 1.0) -> None:
        young, middle, full = gc.get_threshold()
        gc.set_threshold(young, middle, max(full, self.full_every))
        try:
            while True:
                await asyncio.sleep(interval)
                done = self.step()
                if done is not None:
                    logger.debug("gc_policy", action=done)
        finally:
            gc.set_threshold(young, middle, full)
