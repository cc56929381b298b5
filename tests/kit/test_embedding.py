"""The embedding model, loaded once for the module from the installed wheel (no network):
unit vectors of the right shape whose distances follow meaning."""

from __future__ import annotations

import asyncio
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from lyceum.content.chunking import chunk_sections
from lyceum.kit.ai.embedding import (
    EMBEDDING_DIMENSIONS,
    MODEL_NAME,
    SERVING_TORCH_THREADS,
    Embedder,
    get_embedder,
    use_serving_threads,
)
from lyceum.kit.documents.extraction import Section

PHOTOSYNTHESIS = (
    "Photosynthesis lets green plants turn sunlight, water and carbon dioxide into sugar."
)
LOOPS = "A Python for loop repeats a block of code once for every item in a list."


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return get_embedder()


def test_the_model_is_the_one_we_name(embedder: Embedder) -> None:
    assert MODEL_NAME == "all-MiniLM-L6-v2"
    assert embedder.dimensions == EMBEDDING_DIMENSIONS == 384
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert os.environ["TRANSFORMERS_OFFLINE"] == "1"


def test_get_embedder_is_a_thread_safe_singleton(embedder: Embedder) -> None:
    barrier = threading.Barrier(4)

    def fetch() -> Embedder:
        barrier.wait()
        return get_embedder()

    with ThreadPoolExecutor(4) as pool:
        fetched = list(pool.map(lambda _: fetch(), range(4)))
    assert all(each is embedder for each in fetched)


def test_vectors_are_unit_length_float32(embedder: Embedder) -> None:
    texts = [PHOTOSYNTHESIS, LOOPS, "Xin chào, tôi là học sinh.", "", "x" * 5000]
    vectors = embedder.encode_sync(texts, batch_size=2)
    assert vectors.shape == (5, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)


def test_empty_input_gives_an_empty_matrix(embedder: Embedder) -> None:
    vectors = embedder.encode_sync([])
    assert vectors.shape == (0, 384)
    assert vectors.dtype == np.float32


def test_related_sentences_are_closer_than_unrelated_ones(embedder: Embedder) -> None:
    question, plants, loops = embedder.encode_sync(
        ["How do plants make food from sunlight?", PHOTOSYNTHESIS, LOOPS]
    )
    assert float(question @ plants) > float(question @ loops) + 0.2


def test_encoding_is_deterministic_and_independent_of_batching(embedder: Embedder) -> None:
    together = embedder.encode_sync([PHOTOSYNTHESIS, LOOPS])
    alone = embedder.encode_sync([LOOPS])
    np.testing.assert_allclose(together[1], alone[0], atol=1e-5)


async def test_encode_runs_off_the_event_loop(embedder: Embedder) -> None:
    vectors = await embedder.encode([PHOTOSYNTHESIS, LOOPS])
    assert vectors.shape == (2, 384)
    np.testing.assert_allclose(vectors, embedder.encode_sync([PHOTOSYNTHESIS, LOOPS]), atol=1e-5)
    assert (await embedder.encode([])).shape == (0, 384)


async def test_concurrent_queries_share_forward_passes(
    embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Queries that arrive while the model is busy wait for the next batch: 40 distinct
    questions at once take a handful of model calls, and each gets its own vector."""
    questions = [f"What does step {n} of photosynthesis produce?" for n in range(40)]
    calls: list[int] = []
    encode_queries_sync = embedder.encode_queries_sync

    def counting(texts: list[str]) -> np.ndarray:
        calls.append(len(texts))
        return encode_queries_sync(texts)

    monkeypatch.setattr(embedder, "encode_queries_sync", counting)
    vectors = await asyncio.gather(*(embedder.encode_query(q) for q in questions))
    assert sum(calls) == 40 and len(calls) <= 3, calls
    expected = embedder.encode_sync(questions)
    for vector, want in zip(vectors, expected, strict=True):
        assert np.allclose(vector, want, atol=1e-5)

    # Asked again: served from the query cache, no model call, read-only.
    calls.clear()
    again = await embedder.encode_query(questions[7])
    assert calls == [] and np.array_equal(again, vectors[7])
    assert not again.flags.writeable


async def test_a_failed_batch_fails_its_callers_and_the_next_one_runs(
    embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    encode_queries_sync = embedder.encode_queries_sync

    def broken(texts: list[str]) -> np.ndarray:
        raise RuntimeError("out of memory")

    monkeypatch.setattr(embedder, "encode_queries_sync", broken)
    with pytest.raises(RuntimeError, match="out of memory"):
        await embedder.encode_query("a question nobody asked before 1")
    monkeypatch.setattr(embedder, "encode_queries_sync", encode_queries_sync)
    vector = await embedder.encode_query("a question nobody asked before 1")
    assert vector.shape == (EMBEDDING_DIMENSIONS,)


def test_traced_queries_give_the_same_vectors_as_sentence_transformers(
    embedder: Embedder,
) -> None:
    """Questions go through a traced graph of the model; the vectors must be the ones
    the chunks were indexed with, alone or padded in a batch, short or truncated."""
    assert embedder.traced
    words = (PHOTOSYNTHESIS + " " + LOOPS + " lãi kép của khoản tiết kiệm").split()
    texts = [" ".join(words[: 1 + n * 7 % len(words)]) for n in range(20)]
    texts.append(" ".join(words * 40))  # past the model's 256 word pieces: truncated
    expected = embedder.encode_sync(texts)
    together = embedder.encode_queries_sync(texts)
    alone = np.concatenate([embedder.encode_queries_sync([text]) for text in texts])
    assert together.shape == alone.shape == (len(texts), EMBEDDING_DIMENSIONS)
    np.testing.assert_allclose(together, expected, atol=1e-5)
    np.testing.assert_allclose(alone, expected, atol=1e-5)
    assert embedder.encode_queries_sync([]).shape == (0, EMBEDDING_DIMENSIONS)


def test_queries_fall_back_to_sentence_transformers_if_tracing_fails(
    embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    def refuse(*args: object, **kwargs: object) -> None:
        raise RuntimeError("cannot trace this model")

    monkeypatch.setattr(torch.jit, "trace", refuse)
    assert embedder._trace_query_model() is None
    monkeypatch.setattr(embedder, "_query_model", None)
    assert not embedder.traced
    np.testing.assert_allclose(
        embedder.encode_queries_sync([LOOPS]), embedder.encode_sync([LOOPS]), atol=1e-6
    )


def test_concurrent_encoding_and_counting_from_threads(embedder: Embedder) -> None:
    def work(index: int) -> tuple[int, int]:
        vectors = embedder.encode_sync([f"{PHOTOSYNTHESIS} {index}"] * 8)
        return vectors.shape[0], embedder.count_tokens(LOOPS * (index + 1))

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(work, range(12)))
    single = embedder.count_tokens(LOOPS)
    assert results == [(8, single * (index + 1)) for index in range(12)]


def test_count_tokens_uses_the_model_vocabulary(embedder: Embedder) -> None:
    assert embedder.count_tokens("") == 0
    assert embedder.count_tokens("hello world") == 2  # no [CLS]/[SEP]
    assert embedder.count_tokens("photosynthesis") > 1  # split into word pieces
    long_text = "cell " * 1000
    assert embedder.count_tokens(long_text) == 1000  # counted in full, not truncated
    assert 10 <= embedder.count_tokens(LOOPS) <= 25
    assert embedder.count_tokens_batch(["hello world", "", LOOPS]) == [
        2,
        0,
        embedder.count_tokens(LOOPS),
    ]
    assert embedder.max_tokens == 254


def test_chunks_measured_by_the_tokenizer_fit_the_model(embedder: Embedder) -> None:
    text = " ".join([PHOTOSYNTHESIS, LOOPS] * 60)
    chunks = chunk_sections(
        [Section(text, (), 1)],
        embedder.count_tokens,
        target=200,
        maximum=embedder.max_tokens,
        overlap=30,
    )
    assert len(chunks) > 1
    assert all(chunk.token_count <= embedder.max_tokens for chunk in chunks)
    vectors = embedder.encode_sync([chunk.text for chunk in chunks])
    assert vectors.shape == (len(chunks), 384)


def test_an_api_process_embeds_on_one_torch_thread_unless_told_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import torch

    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    try:
        use_serving_threads()
        assert os.environ["OMP_NUM_THREADS"] == str(SERVING_TORCH_THREADS) == "1"
        # torch is already imported here: its thread count is set as well.
        assert torch.get_num_threads() == SERVING_TORCH_THREADS
        # An operator's own setting wins.
        torch.set_num_threads(before)
        monkeypatch.setenv("OMP_NUM_THREADS", "3")
        use_serving_threads()
        assert os.environ["OMP_NUM_THREADS"] == "3"
        assert torch.get_num_threads() == before
    finally:
        torch.set_num_threads(before)
