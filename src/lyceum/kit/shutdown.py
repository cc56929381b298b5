"""Graceful shutdown of `lyceum serve`: what SIGTERM (or Ctrl-C) sets off.

uvicorn alone, on SIGTERM, closes its listening sockets, asks every connection to close
once its response is out (WebSockets get close code 1012 at once), waits for them with
no time limit unless `timeout_graceful_shutdown` is set, then runs the lifespan's
shutdown. Lyceum adds, from the moment the signal is seen (`Drain.begin`):

* `/health/ready` answers 503 (`Drain.draining`), so a load balancer still probing
  stops sending here;
* every `Drain.on_drain` hook starts at once, in parallel with the HTTP drain: the chat
  stores the messages it holds and hangs up its Socket.IO connections (clients
  reconnect, to another replica), the in-process job workers stop fetching and give
  running jobs the grace period (then requeue them);
* in-flight requests and streamed answers get `SHUTDOWN_GRACE_SECONDS`; after it,
  uvicorn cancels what still runs, the lifespan waits for the hooks, and the process
  exits 0 (uvicorn re-raises the signal it caught once it is done: `serve` answers
  that with a handler that does nothing, not with Python's default, which would die of
  the signal).
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable

import structlog
import uvicorn

logger = structlog.get_logger("lyceum.shutdown")

# What the hooks may take beyond the grace period (closing pools, requeueing jobs).
HOOK_MARGIN_SECONDS = 10.0

Hook = Callable[[], Awaitable[None]]


class Drain:
    """One process's drain: begun once, by the server's shutdown (or a test)."""

    def __init__(self, grace_seconds: float) -> None:
        self.grace_seconds = grace_seconds
        self.started_at: float | None = None
        self._hooks: list[tuple[str, Hook]] = []
        self._running: list[asyncio.Task[None]] = []

    @property
    def draining(self) -> bool:
        return self.started_at is not None

    def on_drain(self, name: str, hook: Hook) -> None:
        """Run `hook` when the drain begins (at once if it has)."""
        self._hooks.append((name, hook))
        if self.draining:
            self._start(name, hook)

    def begin(self) -> None:
        """Stop taking work: readiness fails from now on and every hook starts.
        Idempotent; returns at once (the hooks run as tasks)."""
        if self.started_at is not None:
            return
        self.started_at = time.monotonic()
        logger.info("drain_started", grace_seconds=self.grace_seconds, hooks=len(self._hooks))
        for name, hook in self._hooks:
            self._start(name, hook)

    def _start(self, name: str, hook: Hook) -> None:
        async def run() -> None:
            try:
                await hook()
            except Exception:
                logger.exception("drain_hook_failed", hook=name)

        self._running.append(asyncio.create_task(run(), name=f"drain-{name}"))

    async def finished(self) -> None:
        """Wait for the hooks begun so far, at most the grace period and a margin from
        the start of the drain; cancel any still running then."""
        if not self._running or self.started_at is None:
            return
        left = self.started_at + self.grace_seconds + HOOK_MARGIN_SECONDS - time.monotonic()
        _, late = await asyncio.wait(self._running, timeout=max(0.0, left))
        for task in late:
            logger.warning("drain_hook_cut", hook=task.get_name())
            task.cancel()
        if late:
            await asyncio.wait(late)


class GracefulServer(uvicorn.Server):
    """uvicorn's server, beginning `drain` the moment it starts shutting down (its main
    loop notices the signal within 0.1 s), before it closes its sockets."""

    def __init__(self, config: uvicorn.Config, drain: Drain) -> None:
        super().__init__(config)
        self.drain = drain

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.drain.begin()
        await super().shutdown(sockets)
