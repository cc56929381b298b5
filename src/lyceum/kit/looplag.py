"""The event loop's lag: how late a process runs work that is ready.

Every request and job of a process shares one event loop. When a callback runs long (a
synchronous computation, a full garbage collection, a burst of ready tasks), everything
else that is ready waits behind it, and that wait is in every route's latency at once
without showing in any one route's own cost. `watch_event_loop` asks to be woken every
`interval` seconds and records how late it was woken (`lyceum_event_loop_lag_seconds`):
a p99 of a few milliseconds is a healthy loop; hundreds of milliseconds mean requests
queue inside the process, whatever the CPU and the database say.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from lyceum.kit.metrics import EVENT_LOOP_LAG

PROBE_INTERVAL_SECONDS = 0.25


async def watch_event_loop(
    interval: float = PROBE_INTERVAL_SECONDS,
    observe: Callable[[float], None] = EVENT_LOOP_LAG.observe,
) -> None:
    """Runs until cancelled: every `interval` seconds, one observation of the lag."""
    loop = asyncio.get_running_loop()
    while True:
        due = loop.time() + interval
        await asyncio.sleep(interval)
        observe(max(0.0, loop.time() - due))
