"""The GC policy freezes what survives a full collection and thaws it periodically."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import weakref
from collections.abc import Iterator

import pytest

from lyceum.kit.gcpolicy import GcPolicy


@pytest.fixture(autouse=True)
def thawed() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_survivors_of_a_full_collection_are_frozen_then_thawed() -> None:
    now = [0.0]
    policy = GcPolicy(unfreeze_every=900.0, clock=lambda: now[0])
    assert policy.step() is None  # no full collection since it started
    assert gc.get_freeze_count() == 0

    survivor = [object() for _ in range(100)]
    gc.collect()
    assert policy.step() == "freeze"
    assert gc.get_freeze_count() >= len(survivor)
    assert policy.step() is None  # once per full collection

    now[0] = 900.0
    assert policy.step() == "unfreeze"
    assert gc.get_freeze_count() == 0


def test_a_frozen_cycle_is_collected_after_the_thaw() -> None:
    now = [0.0]
    policy = GcPolicy(unfreeze_every=60.0, clock=lambda: now[0])

    class Node:
        other: Node | None = None

    a, b = Node(), Node()
    a.other, b.other = b, a
    alive = weakref.ref(a)
    gc.collect()
    assert policy.step() == "freeze"
    del a, b
    # Frozen: a full collection neither walks nor frees the dead cycle.
    gc.collect()
    assert alive() is not None
    now[0] = 60.0
    assert policy.step() == "unfreeze"
    gc.collect()
    assert alive() is None


async def test_full_collections_are_spaced_out_while_the_policy_runs() -> None:
    before = gc.get_threshold()
    task = asyncio.create_task(GcPolicy(full_every=100).run(interval=60.0))
    await asyncio.sleep(0)
    try:
        assert gc.get_threshold() == (before[0], before[1], max(before[2], 100))
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert gc.get_threshold() == before
