"""The embedded mode's bulk worker, in a child process of `lyceum serve`.

Embedding a textbook keeps the CPU busy for minutes, and splitting its text holds the
GIL; inside the serving process that starves the event loop (on two cores a 10 MB upload
stalled `/health/live` for seconds and tutor answers for minutes). So in embedded mode
`lyceum serve` runs the bulk queues (indexing, AI scoring) in a child process:

* a fresh interpreter (`python -m lyceum.kit.workerprocess`) given the server's
  settings and the embedded database's URL on its stdin, running one job at a time;
* at a lower CPU priority (nice `NICENESS`) and with `TORCH_THREADS` torch threads, so
  the serving process gets a core whenever it has work and ingestion takes the rest;
* stopped with the server: SIGTERM, `SHUTDOWN_GRACE_SECONDS` for the running job to
  finish (then it is aborted and put back in its queue at once, kit.jobs), then SIGKILL
  if the child still runs `KILL_AFTER_SECONDS` later;
* gone with the server if the server dies without stopping it (kill -9): the child
  reads its stdin until end of file, which comes when the server's end closes;
* started again if it dies, after `RESTART_DELAY_SECONDS`.

The user-facing queues stay in the serving process, which is idle between requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
import signal
import sys
from collections.abc import Sequence
from typing import Final

import structlog

from lyceum.config import Settings

logger = structlog.get_logger("lyceum.bulkworker")

NICENESS: Final = 10
TORCH_THREADS: Final = 1
KILL_AFTER_SECONDS: Final = 10.0
RESTART_DELAY_SECONDS: Final = 5.0
WORKER_NAME: Final = "embedded-bulk"


# The server's side ---------------------------------------------------------------------


async def supervise(settings: Settings, database_url: str, queues: Sequence[str]) -> None:
    """Keep a bulk worker process running for `queues` until cancelled; then stop it."""
    while True:
        process = await _start(settings, database_url, queues)
        logger.info("bulk_worker_process_started", pid=process.pid, queues=list(queues))
        try:
            code = await process.wait()
        except asyncio.CancelledError:
            await _stop(process, settings.shutdown_grace_seconds + KILL_AFTER_SECONDS)
            raise
        logger.warning("bulk_worker_process_exited", pid=process.pid, code=code)
        await asyncio.sleep(RESTART_DELAY_SECONDS)


async def _start(
    settings: Settings, database_url: str, queues: Sequence[str]
) -> asyncio.subprocess.Process:
    # The child imports Lyceum from wherever this process did.
    path = os.pathsep.join(entry for entry in sys.path if entry)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "lyceum.kit.workerprocess",
        stdin=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": path},
    )
    assert process.stdin is not None
    # Trusted: our own settings, to our own child. The pipe then stays open: its end of
    # file tells the child that this process is gone.
    message = pickle.dumps((settings, database_url, list(queues)))
    process.stdin.write(len(message).to_bytes(8, "big") + message)
    await process.stdin.drain()
    return process


async def _stop(process: asyncio.subprocess.Process, patience: float) -> None:
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.terminate()
    try:
        await asyncio.wait_for(process.wait(), patience)
    except TimeoutError:
        logger.warning("bulk_worker_process_killed", pid=process.pid)
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
    if process.stdin is not None:
        process.stdin.close()


# The child's side -----------------------------------------------------------------------


def _read_message(fd: int) -> bytes:
    """One length-prefixed message, read straight from the descriptor (no buffer that
    the end-of-file watch on the same descriptor would not see)."""

    def exactly(size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = os.read(fd, size - len(data))
            if not chunk:
                raise SystemExit("the server went away before sending the settings")
            data += chunk
        return data

    return exactly(int.from_bytes(exactly(8), "big"))


def main() -> None:
    # Ctrl-C in a terminal reaches the whole process group; the server stops us in order.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.nice(NICENESS)
    # Read by torch when it is first imported (by the first job that embeds).
    os.environ["OMP_NUM_THREADS"] = str(TORCH_THREADS)
    settings, database_url, queues = pickle.loads(_read_message(sys.stdin.fileno()))  # noqa: S301 (from our parent)
    asyncio.run(_work(settings, database_url, queues))


async def _work(settings: Settings, database_url: str, queues: list[str]) -> None:
    from lyceum.kit import tracing
    from lyceum.kit.errortracking import init_sentry
    from lyceum.kit.jobs import run_worker
    from lyceum.kit.logging import configure_logging
    from lyceum.kit.runtime import Runtime

    configure_logging(settings.log_level, settings.effective_log_format)
    tracing.configure(settings, role="worker")  # on when OTEL_EXPORTER_OTLP_ENDPOINT is set
    init_sentry(settings, role="worker")  # on when SENTRY_DSN is set
    runtime = await Runtime.start(settings, database_url=database_url, migrate=False)
    worker = asyncio.create_task(
        run_worker(
            runtime,
            name=WORKER_NAME,
            concurrency=1,
            install_signal_handlers=False,
            queues=queues,
            shutdown_graceful_timeout=settings.shutdown_grace_seconds,
        )
    )
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, worker.cancel)
    stdin = sys.stdin.fileno()

    def parent_gone() -> None:
        # Readable with nothing to read: end of file, the server's end has closed.
        if not os.read(stdin, 4096):
            loop.remove_reader(stdin)
            worker.cancel()

    loop.add_reader(stdin, parent_gone)
    logger.info("bulk_worker_started", pid=os.getpid(), queues=queues, niceness=os.nice(0))
    try:
        await worker
    except asyncio.CancelledError:
        logger.info("bulk_worker_stopping", pid=os.getpid())
    finally:
        await runtime.stop()
        tracing.shutdown()  # sends the spans still buffered
    # Everything is closed and an aborted job is back in its queue. Leaving now, not
    # through asyncio.run's wait for the default executor: a thread still computing
    # embeddings nobody needs any more would only hold up the exit.
    logger.info("bulk_worker_stopped", pid=os.getpid())
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
