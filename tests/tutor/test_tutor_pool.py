"""A tutor turn holds no pooled database connection across slow work that is not the
database's: not while it waits for its question's vector (the model is CPU-bound and
shared by the process), not while the provider streams the answer. Under a burst of questions a connection held
across either starves the pool, and requests fail with 503 (bench/tutor_concurrency.py).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from typing import Any

import httpx
import pytest

from lyceum.kit.ai.embedding import Embedder, Vectors
from lyceum.kit.runtime import Runtime
from tests.support.fake_llm import FakeLLM
from tests.tutor.test_tutor_providers import (  # noqa: F401 (fixtures)
    MITOCHONDRIA,
    ask,
    course_about,
    fake,
    live,
)

# How long the model takes over the test's question, and the part of that time in which
# the request must hold no connection: the embedding starts as the request begins
# (`prefetch_query`), while the request's first reads still hold their connection; from
# then on the request only waits for the vector, with its transaction committed.
EMBEDDING_SECONDS = 0.6
WAITING_AFTER = 0.35


@pytest.fixture
def embedded_at(monkeypatch: pytest.MonkeyPatch) -> list[tuple[float, float]]:
    """(start, end) of each encoding of the test's question, made slow (a later request
    for the same vector comes from the embedder's cache)."""
    seen: list[tuple[float, float]] = []
    original = Embedder.encode_queries_sync

    def encode_queries_sync(self: Embedder, texts: Sequence[str]) -> Vectors:
        if any("atp" in text for text in texts):
            started = time.monotonic()
            time.sleep(EMBEDDING_SECONDS)  # in the model's thread, as a busy model would
            seen.append((started, time.monotonic()))
        return original(self, texts)

    monkeypatch.setattr(Embedder, "encode_queries_sync", encode_queries_sync)
    return seen


async def test_no_connection_is_held_while_the_question_embeds_or_the_answer_streams(
    live: httpx.AsyncClient,  # noqa: F811
    runtime: Runtime,
    fake: FakeLLM,  # noqa: F811
    embedded_at: list[tuple[float, float]],
) -> None:
    course, learner, _ = await course_about(live, runtime, MITOCHONDRIA)
    fake.reply("Mitochondria make ATP [1] from glucose and oxygen, step by step.", chunks=8)
    fake.first_token_delay = 0.3
    fake.chunk_delay = 0.05
    # Distinct every run: the embedder keeps the vectors of recent questions.
    question = f"Where does a cell make its ATP ({uuid.uuid4().hex[:8]})?"
    idle = runtime.database.pool_stats()["checked_out"]
    during_stream: list[int] = []
    checked_out: list[tuple[float, int]] = []
    done = asyncio.Event()

    async def watch() -> None:
        while not done.is_set():
            held = runtime.database.pool_stats()["checked_out"]
            checked_out.append((time.monotonic(), held))
            if fake.active_streams:
                during_stream.append(held)
            await asyncio.sleep(0.01)

    watcher = asyncio.create_task(watch())
    try:
        events: list[tuple[str, dict[str, Any]]] = await ask(live, learner, course["id"], question)
    finally:
        done.set()
        await watcher
    assert events[-1][0] == "done" and events[-1][1]["status"] == "complete", events
    # The question was embedded once, and while the request waited for its vector it
    # held no connection: only the idle count was checked out.
    [(started, ended)] = embedded_at
    waiting = [held for at, held in checked_out if started + WAITING_AFTER <= at <= ended]
    assert len(waiting) >= 5, checked_out
    assert max(waiting) <= idle, waiting
    # The provider streamed for ~0.65 s, and no connection was held meanwhile.
    assert len(during_stream) >= 10, during_stream
    assert max(during_stream) <= idle, during_stream
