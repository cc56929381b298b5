"""Course-material retrieval for the tutor and for learners: vector kNN (pgvector HNSW,
cosine) and full-text search (tsvector, GIN), fused by reciprocal rank.

Each hit names its source (a file with its page, or a lesson with its heading) so the
answer can cite it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

Mode = Literal["hybrid", "vector", "text"]

# Reciprocal rank fusion: score = sum over the lists of 1 / (RRF_K + rank). 60 is the
# constant of the original paper (Cormack et al., 2009); it damps the top ranks.
RRF_K = 60
# Candidates taken from each list before fusing.
CANDIDATES = 30
# HNSW search breadth: bench/retrieval.py measured recall@10 0.89 at 100 and 0.98 at 400
# (100,000 chunks, a 50,000-chunk course) for about 4 ms more. Iterative scans keep
# going until enough rows of *this* course pass the filter.
EF_SEARCH = 400
MAX_K = 20
NON_ENGLISH_VECTOR_WEIGHT = 0.5


class QueryEncoder(Protocol):
    async def encode_query(self, text: str) -> NDArray[np.float32]: ...


@dataclass(frozen=True, slots=True)
class Source:
    kind: Literal["file", "lesson"]
    id: uuid.UUID
    title: str
    page: int | None
    heading: str | None


@dataclass(frozen=True, slots=True)
class Hit:
    chunk_id: int
    text: str
    score: float
    source: Source


def search_config(language: str) -> str:
    """The text search configuration of a course's material (see migration 0005)."""
    return "lyceum_english" if language.lower().startswith("en") else "lyceum"


def vector_weight(language: str) -> float:
    """all-MiniLM-L6-v2 was trained on English: in other languages its neighbours are
    less reliable than matching words, so its ranking counts for less in the fusion
    (measured on the demo set by bench/retrieval_eval.py)."""
    return 1.0 if language.lower().startswith("en") else NON_ENGLISH_VECTOR_WEIGHT


def vector_literal(vector: NDArray[np.float32]) -> str:
    return "[" + ",".join(f"{value:.7g}" for value in vector.tolist()) + "]"


_VECTOR_QUERY = text(
    """
    SELECT id FROM (
        SELECT id, embedding <=> CAST(:vector AS vector) AS distance
        FROM content_chunks
        WHERE course_id = :course_id
        ORDER BY embedding <=> CAST(:vector AS vector)
        LIMIT :limit
    ) AS nearest
    ORDER BY distance, id
    """
)

# Any of the query's words may match (a question rarely repeats a passage word for
# word); ts_rank_cd rewards passages that hold more of them, closer together.
_TEXT_QUERY = text(
    """
    WITH q AS (
        SELECT CAST(
            replace(CAST(plainto_tsquery(CAST(:config AS regconfig), :query) AS text),
                    ' & ', ' | ')
            AS tsquery) AS query
    )
    SELECT content_chunks.id
    FROM content_chunks, q
    WHERE course_id = :course_id
      AND q.query <> CAST('' AS tsquery)
      AND search @@ q.query
    ORDER BY ts_rank_cd(search, q.query, 1) DESC, content_chunks.id
    LIMIT :limit
    """
)

_DETAILS_QUERY = text(
    """
    SELECT c.id, c.text, c.page, c.heading, c.file_id, c.lesson_id,
           coalesce(f.display_name, l.title) AS title
    FROM content_chunks AS c
    LEFT JOIN course_files AS f ON f.id = c.file_id
    LEFT JOIN lessons AS l ON l.id = c.lesson_id
    WHERE c.id = ANY(:ids)
    """
)


# The course's language, and (for the rest of the transaction) the HNSW search settings
# of the vector query, in one round trip.
_LANGUAGE_QUERY = text(
    """
    SELECT language,
           set_config('hnsw.ef_search', :ef_search, true),
           set_config('hnsw.iterative_scan', 'relaxed_order', true)
    FROM courses WHERE id = :id
    """
)


async def course_language(
    session: AsyncSession, course_id: uuid.UUID, candidates: int = CANDIDATES
) -> str | None:
    """The course's language; also sets up the vector search of this transaction."""
    result = await session.execute(
        _LANGUAGE_QUERY, {"id": course_id, "ef_search": str(max(EF_SEARCH, candidates))}
    )
    language: str | None = result.scalar()
    return language


async def vector_ranking(
    session: AsyncSession, course_id: uuid.UUID, vector: NDArray[np.float32], limit: int
) -> list[int]:
    """Needs `course_language` called first in the same transaction (search settings)."""
    rows = await session.execute(
        _VECTOR_QUERY,
        {"vector": vector_literal(vector), "course_id": course_id, "limit": limit},
    )
    return [row[0] for row in rows]


async def text_ranking(
    session: AsyncSession, course_id: uuid.UUID, query: str, config: str, limit: int
) -> list[int]:
    rows = await session.execute(
        _TEXT_QUERY,
        {"config": config, "query": query, "course_id": course_id, "limit": limit},
    )
    return [row[0] for row in rows]


def fuse(
    rankings: Sequence[Sequence[int]], k: int, weights: Sequence[float] | None = None
) -> list[tuple[int, float]]:
    """Reciprocal rank fusion of several rankings of chunk ids; the top `k`."""
    scores: dict[int, float] = {}
    for index, ranking in enumerate(rankings):
        weight = weights[index] if weights else 1.0
        for rank, chunk_id in enumerate(ranking, start=1):
            scores[chunk_id] = scores.get(chunk_id, 0.0) + weight / (RRF_K + rank)
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:k]


async def search_course_material(
    session: AsyncSession,
    encoder: QueryEncoder,
    course_id: uuid.UUID,
    query: str,
    k: int = 5,
    *,
    mode: Mode = "hybrid",
) -> list[Hit]:
    """The `k` passages of the course's material that best answer `query`, best first."""
    k = max(1, min(k, MAX_K))
    query = query.strip()
    if not query:
        return []
    candidates = max(CANDIDATES, 2 * k)
    # The model encodes the query in its thread while the database answers the text
    # search: the two waits overlap.
    encoding = (
        asyncio.ensure_future(encoder.encode_query(query)) if mode in ("hybrid", "vector") else None
    )
    try:
        language = await course_language(session, course_id, candidates)
        if language is None:
            return []
        text_hits = (
            await text_ranking(session, course_id, query, search_config(language), candidates)
            if mode in ("hybrid", "text")
            else None
        )
        rankings: list[list[int]] = []
        weights: list[float] = []
        if encoding is not None:
            vector = await encoding
            rankings.append(await vector_ranking(session, course_id, vector, candidates))
            weights.append(vector_weight(language))
        if text_hits is not None:
            rankings.append(text_hits)
            weights.append(1.0)
    finally:
        if encoding is not None and not encoding.done():
            encoding.cancel()
    fused = fuse(rankings, k, weights)
    if not fused:
        return []
    rows = await session.execute(_DETAILS_QUERY, {"ids": [chunk_id for chunk_id, _ in fused]})
    by_id = {row.id: row for row in rows}
    hits = []
    for chunk_id, score in fused:
        row = by_id[chunk_id]
        is_file = row.file_id is not None
        source = Source(
            kind="file" if is_file else "lesson",
            id=row.file_id if is_file else row.lesson_id,
            title=row.title,
            page=row.page if is_file else None,
            heading=row.heading or None,
        )
        hits.append(Hit(chunk_id=chunk_id, text=row.text, score=round(score, 6), source=source))
    return hits
