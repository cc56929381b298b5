"""The sandbox that parses uploads: real child processes, killed when out of time,
refused when out of memory, and never more of them than configured."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import psutil
import pytest

from lyceum.kit.errors import Invalid
from lyceum.kit.sandbox import Sandbox, SandboxOutOfMemory, SandboxTimeout
from tests.support import sandbox_probes

MIB = 1024 * 1024


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    box = Sandbox(processes=2, memory_bytes=512 * MIB)
    yield box
    box.close()


async def test_work_runs_in_child_processes_at_a_lower_priority(sandbox: Sandbox) -> None:
    pid = await sandbox.run(60, sandbox_probes.pid_after, 0)
    assert pid != os.getpid()
    assert psutil.Process(pid).ppid() == os.getpid()
    assert await sandbox.run(60, sandbox_probes.niceness) >= os.nice(0) + 5


async def test_at_most_the_configured_number_of_children_work_at_once(sandbox: Sandbox) -> None:
    pids = await asyncio.gather(*(sandbox.run(60, sandbox_probes.pid_after, 0.3) for _ in range(8)))
    assert len(pids) == 8
    assert len(set(pids)) == 2
    children = {child.pid for child in psutil.Process().children() if child.pid in set(pids)}
    assert children == set(pids)


def _live_children() -> set[int]:
    return {
        child.pid
        for child in psutil.Process().children()
        if child.is_running() and child.status() != psutil.STATUS_ZOMBIE
    }


async def test_a_call_out_of_time_is_killed_and_its_child_replaced() -> None:
    before = _live_children()
    box = Sandbox(processes=2, memory_bytes=512 * MIB)
    try:
        await asyncio.gather(*(box.run(60, sandbox_probes.pid_after, 0.2) for _ in range(2)))
        with pytest.raises(SandboxTimeout):
            await box.run(0.5, sandbox_probes.sleep_forever)
        served = await asyncio.gather(
            *(box.run(60, sandbox_probes.pid_after, 0.2) for _ in range(2))
        )
        assert len(set(served)) == 2
        # Two children, not three: the one that ran out of time was killed, not left
        # burning CPU beside its replacement.
        assert _live_children() - before == set(served)
    finally:
        box.close()


async def test_a_call_out_of_memory_fails_alone(sandbox: Sandbox) -> None:
    assert await sandbox.run(60, sandbox_probes.allocate, 16) == 16 * MIB
    with pytest.raises(SandboxOutOfMemory) as caught:
        await sandbox.run(60, sandbox_probes.allocate, 1024)
    assert "512 MiB" in str(caught.value)
    assert await sandbox.run(60, sandbox_probes.allocate, 16) == 16 * MIB


async def test_starting_a_child_does_not_count_against_the_time_limit() -> None:
    preload = ("tests.support.slow_import", "tests.support.sandbox_probes")
    box = Sandbox(processes=1, memory_bytes=512 * MIB, preload=preload)
    try:
        # The import alone takes 3 s; the call, once the child is ready, next to nothing.
        assert await box.run(2, sandbox_probes.pid_after, 0) != os.getpid()
    finally:
        box.close()


async def test_errors_come_back_as_raised(sandbox: Sandbox) -> None:
    with pytest.raises(Invalid) as caught:
        await sandbox.run(60, sandbox_probes.refuse, "too many pixels")
    assert (caught.value.detail, caught.value.field, caught.value.slug) == (
        "too many pixels",
        "body.file",
        "image-too-large",
    )


async def test_closing_stops_every_child() -> None:
    box = Sandbox(processes=2, memory_bytes=512 * MIB)
    pids = set(
        await asyncio.gather(*(box.run(60, sandbox_probes.pid_after, 0.2) for _ in range(2)))
    )
    children = [psutil.Process(pid) for pid in pids]
    box.close()
    gone, alive = psutil.wait_procs(children, timeout=10)
    assert not alive and len(gone) == 2
