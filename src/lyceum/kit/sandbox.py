"""Parsing untrusted files in child processes that have a time limit and a memory limit.

Uploaded PDFs, Word files and images are read by parsers (pypdf, python-docx, Pillow)
whose cost depends on what the file says about itself: a PDF of 35,000 empty pages, an
image whose header promises gigabytes of pixels. Here every such call runs in one of at
most `processes` child processes, so:

* a call that runs out of time is stopped for real: its process is killed and replaced
  (a thread could only be abandoned, still burning CPU);
* a call that needs more memory than `memory_bytes` of address space fails with
  `SandboxOutOfMemory` in the child instead of growing the serving process;
* at most `processes` calls run at once; the others wait their turn without holding a
  thread of the event loop's default executor, and the serving process's event loop (and
  GIL) never runs parser code;
* the time limit counts the call only, not a child's start: children import the parser
  modules (`preload`) and report ready before they take work.

Children are started on first use (spawn: a fresh interpreter, no inherited locks or
threads), run at a lower CPU priority than the server, and exit on their own after
`IDLE_EXIT_SECONDS` without work, or when their parent goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import multiprocessing
import os
import resource
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, Final, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

# A child without work for this long exits; the parent retires children a little
# earlier, so it never hands work to one that is just leaving.
IDLE_EXIT_SECONDS: Final = 300.0
_RETIRE_AFTER_SECONDS: Final = IDLE_EXIT_SECONDS * 0.9
# A child has this long to start (an interpreter and the `preload` modules: seconds on a
# busy machine). A call's own time limit starts once its child is ready.
STARTUP_SECONDS: Final = 120.0


class SandboxError(Exception):
    """A sandboxed call did not complete."""


class SandboxTimeout(SandboxError):
    def __init__(self, seconds: float) -> None:
        super().__init__(f"did not finish within {seconds:g} s")
        self.seconds = seconds


class SandboxOutOfMemory(SandboxError):
    def __init__(self, limit_bytes: int) -> None:
        super().__init__(f"needed more than {limit_bytes // (1024 * 1024)} MiB of memory")
        self.limit_bytes = limit_bytes


class SandboxCrashed(SandboxError):
    """The child died mid-call (a parser crashed, or the kernel killed it)."""


def _child_main(
    connection: Connection, memory_bytes: int, niceness: int, preload: tuple[str, ...]
) -> None:
    # Ctrl-C in a terminal reaches the whole process group; the parent decides when
    # children stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.nice(niceness)
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    for module in preload:
        importlib.import_module(module)
    connection.send(("ready", None))
    while connection.poll(IDLE_EXIT_SECONDS):
        try:
            function, args, kwargs = connection.recv()
        except EOFError:  # the parent went away
            return
        outcome: tuple[str, Any]
        try:
            outcome = ("ok", function(*args, **kwargs))
        except MemoryError:
            outcome = ("memory", None)
        except Exception as error:
            outcome = ("error", error)
        try:
            connection.send(outcome)
        except MemoryError:
            connection.send(("memory", None))
        except Exception as error:  # a result or an exception that does not pickle
            connection.send(("error", SandboxCrashed(f"unpicklable outcome: {error!r}")))
        if outcome[0] == "memory":
            return  # start afresh rather than carry a fragmented heap into the next call


@dataclass(eq=False)  # compared and hashed by identity, kept in a set
class _Child:
    process: BaseProcess
    connection: Connection
    last_used: float = field(default_factory=time.monotonic)

    def usable(self) -> bool:
        return self.process.is_alive() and time.monotonic() - self.last_used < _RETIRE_AFTER_SECONDS

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.connection.close()
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)
        with contextlib.suppress(ValueError):
            self.process.close()


class Sandbox:
    """Runs functions (importable, with picklable arguments and results) in child
    processes; see the module docstring. Thread- and event-loop-agnostic."""

    def __init__(
        self,
        *,
        processes: int,
        memory_bytes: int,
        niceness: int = 5,
        preload: tuple[str, ...] = (),
    ) -> None:
        """`preload`: modules each child imports before it takes work, so that their
        import time does not count against a call's time limit."""
        self.processes = processes
        self.memory_bytes = memory_bytes
        self.niceness = niceness
        self.preload = preload
        # One thread per child: a thread owns its child for the whole call, and calls
        # beyond `processes` wait in the executor's queue.
        self._executor = ThreadPoolExecutor(max_workers=processes, thread_name_prefix="sandbox")
        self._local = threading.local()
        self._children: set[_Child] = set()
        self._lock = threading.Lock()
        self._closed = False

    async def run(
        self, seconds: float, function: Callable[P, R], *args: P.args, **kwargs: P.kwargs
    ) -> R:
        """`function(*args, **kwargs)` in a child, within `seconds` (counted once a child
        is free). Exceptions it raises are raised here; SandboxError if it could not
        finish."""
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor, self._call, seconds, function, args, kwargs)
        result: R = await future
        return result

    def _start(self) -> _Child:
        context = multiprocessing.get_context("spawn")
        parent_end, child_end = context.Pipe()
        process = context.Process(
            target=_child_main,
            args=(child_end, self.memory_bytes, self.niceness, self.preload),
            name="lyceum-sandbox",
            daemon=True,
        )
        process.start()
        child_end.close()
        child = _Child(process, parent_end)
        with self._lock:
            self._children.add(child)
        try:
            ready = parent_end.poll(STARTUP_SECONDS) and parent_end.recv()[0] == "ready"
        except (EOFError, OSError):
            ready = False
        if not ready:
            self._retire(child)
            raise SandboxCrashed("a parsing process did not start")
        return child

    def _retire(self, child: _Child) -> None:
        with self._lock:
            self._children.discard(child)
        child.stop()
        self._local.child = None

    def _call(
        self,
        timeout: float,
        function: Callable[..., R],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> R:
        if self._closed:
            raise SandboxCrashed("the sandbox is closed")
        child: _Child | None = getattr(self._local, "child", None)
        if child is not None and not child.usable():
            self._retire(child)
            child = None
        if child is None:
            child = self._local.child = self._start()
        try:
            child.connection.send((function, args, kwargs))
            if not child.connection.poll(timeout):
                self._retire(child)
                raise SandboxTimeout(timeout)
            status, value = child.connection.recv()
        except (EOFError, OSError):
            self._retire(child)
            raise SandboxCrashed("the parsing process died") from None
        child.last_used = time.monotonic()
        if status == "memory":
            self._retire(child)
            raise SandboxOutOfMemory(self.memory_bytes)
        if status == "error":
            raise value
        result: R = value
        return result

    def close(self) -> None:
        """Stop every child; calls in progress end with SandboxCrashed."""
        self._closed = True
        with self._lock:
            children, self._children = self._children, set()
        for child in children:
            child.stop()
        self._executor.shutdown(wait=False, cancel_futures=True)
