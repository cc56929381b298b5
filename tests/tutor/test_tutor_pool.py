"""A tutor turn holds no pooled database connection across slow work that is not the
database's: not while its question is embedded (CPU-bound, shared by the process), not
while the provider streams the answer. Under a burst of questions a connection held
across either starves the pool, and requests fail with 503 (bench/tutor_concurrency.py).
"""

from __future__ import annotations

import asyncio
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


@pytest.fixture
def embedded_with(monkeypatch: pytest.MonkeyPatch, runtime: Runtime) -> list[int]:
    """Connections checked out of the pool whenever the model encodes the question (a
    later request for the same vector comes from the embedder's cache)."""
    seen: list[int] = []
    original = Embedder.encode_queries_sync

    def encode_queries_sync(self: Embedder, texts: Sequence[str]) -> Vectors:
        if any("atp" in text for text in texts):
            seen.append(runtime.database.pool_stats()["checked_out"])
        return original(self, texts)

    monkeypatch.setattr(Embedder, "encode_queries_sync", encode_queries_sync)
    return seen


async def test_no_connection_is_held_while_the_question_embeds_or_the_answer_streams(
    live: httpx.AsyncClient,  # noqa: F811
    runtime: Runtime,
    fake: FakeLLM,  # noqa: F811
    embedded_with: list[int],
) -> None:
    course, learner, _ = await course_about(live, runtime, MITOCHONDRIA)
    fake.reply("Mitochondria make ATP [1] from glucose and oxygen, step by step.", chunks=8)
    fake.first_token_delay = 0.3
    fake.chunk_delay = 0.05
    # Distinct every run: the embedder keeps the vectors of recent questions.
    question = f"Where does a cell make its ATP ({uuid.uuid4().hex[:8]})?"
    idle = runtime.database.pool_stats()["checked_out"]
    during_stream: list[int] = []
    done = asyncio.Event()

    async def watch() -> None:
        while not done.is_set():
            if fake.active_streams:
                during_stream.append(runtime.database.pool_stats()["checked_out"])
            await asyncio.sleep(0.01)

    watcher = asyncio.create_task(watch())
    try:
        events: list[tuple[str, dict[str, Any]]] = await ask(live, learner, course["id"], question)
    finally:
        done.set()
        await watcher
    assert events[-1][0] == "done" and events[-1][1]["status"] == "complete", events
    # The question was embedded, and every time with only the idle count checked out.
    assert embedded_with, "the question was never embedded"
    assert max(embedded_with) <= idle, embedded_with
    # The provider streamed for ~0.65 s, and no connection was held meanwhile.
    assert len(during_stream) >= 10, during_stream
    assert max(during_stream) <= idle, during_stream
