"""The event loop lag probe sees a callback that holds the loop."""

from __future__ import annotations

import asyncio
import time

from lyceum.kit.looplag import watch_event_loop
from lyceum.kit.metrics import REGISTRY


class Observations:
    """The probe's observations, and a way to wait for the n-th one."""

    def __init__(self) -> None:
        self.values: list[float] = []
        self._changed = asyncio.Condition()

    def observe(self, value: float) -> None:
        self.values.append(value)
        asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, count: int) -> None:
        async with self._changed:
            await asyncio.wait_for(
                self._changed.wait_for(lambda: len(self.values) >= count), timeout=10
            )


async def test_a_callback_that_holds_the_loop_shows_as_lag() -> None:
    seen = Observations()
    probe = asyncio.create_task(watch_event_loop(interval=0.01, observe=seen.observe))
    try:
        await seen.wait_for(3)
        before = len(seen.values)
        time.sleep(0.2)  # a synchronous stretch on the loop: what the probe is for
        await seen.wait_for(before + 2)
    finally:
        probe.cancel()
    assert seen.values[before] >= 0.15, seen.values
    assert min(seen.values) >= 0.0


async def test_the_lag_is_exported_as_a_histogram() -> None:
    def count() -> float:
        return REGISTRY.get_sample_value("lyceum_event_loop_lag_seconds_count") or 0.0

    start = count()
    probe = asyncio.create_task(watch_event_loop(interval=0.005))
    try:
        await asyncio.sleep(0.1)
    finally:
        probe.cancel()
    assert count() >= start + 2
