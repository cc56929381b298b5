"""Course-material retrieval for the tutor and for learners: vector kNN (pgvector HNSW,
cosine) and full-text search (tsvector, GIN), fused by reciprocal rank.

Each hit names its source (a file with its page, or a lesson with its heading) so the
answer can cite it.

Ranks say which passages are best, not whether any of them answers the question: a
question about the World Cup still gets five "best" passages of a biology course. So a
search also measures how close the material comes: the cosine similarity of the nearest
passage, and the share of the question's words that the best passage contains. Together
they decide `Retrieval.relevant`, with thresholds calibrated on labelled on-topic and
off-topic questions (bench/retrieval_relevance.py)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
from numpy.typing import NDArray
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.content.repository import IndexingProgress, SearchRepository

Mode = Literal["hybrid", "vector", "text"]

# Reciprocal rank fusion: score = sum over the lists of 1 / (RRF_K + rank). 60 is the
# constant of the original paper (Cormack et al., 2009); it damps the top ranks.
RRF_K = 60
# Candidates taken from each list before fusing.
CANDIDATES = 30
# HNSW search breadth: bench/retrieval.py measured recall@10 0.89 at 100 and 0.98 at 400
# (100,000 chunks, a 50,000-chunk course) for about 4 ms more.
EF_SEARCH = 400
MAX_K = 20
NON_ENGLISH_VECTOR_WEIGHT = 0.5

# Relevance: score = similarity of the nearest passage + COVERAGE_WEIGHT x the share of
# the question's words in the best hit; the material answers the question at or above
# the threshold of the course's language. Calibrated by bench/retrieval_relevance.py on
# bench/relevance_questions.toml (411 questions over the six demo courses): English
# material 0.996 correct, Vietnamese 0.951. Non-English material needs a higher bar:
# all-MiniLM-L6-v2 finds any two Vietnamese texts alike (an unrelated question's
# nearest passage scores 0.5-0.7, where English scores 0.05-0.4).
COVERAGE_WEIGHT = 0.8
RELEVANCE_THRESHOLD_ENGLISH = 0.67
RELEVANCE_THRESHOLD_OTHER = 1.0
# Question words and function words of Vietnamese: with no stemmer or stop list for
# it in PostgreSQL, "là gì" or "bao nhiêu" would count as matching every passage.
VIETNAMESE_FUNCTION_WORDS = frozenset(
    [
        "à",
        "ạ",
        "ai",
        "anh",
        "bao",
        "bạn",
        "bằng",
        "bị",
        "bởi",
        "các",
        "cách",
        "cho",
        "chị",
        "chứ",
        "có",
        "của",
        "cũng",
        "do",
        "đã",
        "đang",
        "để",
        "đâu",
        "đến",
        "đó",
        "em",
        "gì",
        "hãy",
        "hay",
        "hoặc",
        "hơn",
        "khác",
        "khi",
        "không",
        "là",
        "làm",
        "lên",
        "mà",
        "mấy",
        "mình",
        "một",
        "nào",
        "này",
        "nên",
        "nếu",
        "nhau",
        "nhé",
        "nhiêu",
        "như",
        "những",
        "nhưng",
        "ở",
        "ra",
        "rất",
        "sao",
        "sẽ",
        "tại",
        "ta",
        "thế",
        "theo",
        "thể",
        "thì",
        "thường",
        "tôi",
        "trong",
        "từ",
        "và",
        "vào",
        "vậy",
        "về",
        "vì",
        "với",
        "được",
    ]
)


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


@dataclass(frozen=True, slots=True)
class Retrieval:
    """The passages found for a question, and how close the material comes to it."""

    hits: list[Hit]
    language: str
    # Cosine similarity of the question to the nearest passage (0 without a vector
    # search).
    similarity: float
    # The share of the question's words (stemmed for English, accents kept otherwise)
    # that the best hit contains, its heading included.
    coverage: float
    # The course's indexing progress, when asked for (`retrieve(with_progress=True)`).
    indexing: IndexingProgress | None = None

    @property
    def score(self) -> float:
        return self.similarity + COVERAGE_WEIGHT * self.coverage

    @property
    def relevant(self) -> bool:
        """Whether the material answers the question (see the module docstring)."""
        return bool(self.hits) and self.score >= relevance_threshold(self.language)


def relevance_threshold(language: str) -> float:
    english = language.lower().startswith("en")
    return RELEVANCE_THRESHOLD_ENGLISH if english else RELEVANCE_THRESHOLD_OTHER


def search_config(language: str) -> str:
    """The text search configuration of a course's material (see migration 0005)."""
    return "lyceum_english" if language.lower().startswith("en") else "lyceum"


def vector_weight(language: str) -> float:
    """all-MiniLM-L6-v2 was trained on English: in other languages its neighbours are
    less reliable than matching words, so its ranking counts for less in the fusion
    (measured on the demo set by bench/retrieval_eval.py)."""
    return 1.0 if language.lower().startswith("en") else NON_ENGLISH_VECTOR_WEIGHT


@dataclass(frozen=True, slots=True)
class SearchSetup:
    language: str
    # The question's words as `SearchRepository.passages` gives a hit's: stemmed without stop
    # words for English material; otherwise lower-cased with accents, without
    # Vietnamese function words.
    words: frozenset[str]
    progress: IndexingProgress | None = None

    @property
    def stemmed(self) -> bool:
        return self.language.lower().startswith("en")


async def prepare_search(
    session: AsyncSession,
    course_id: uuid.UUID,
    query: str,
    candidates: int = CANDIDATES,
    *,
    with_progress: bool = False,
) -> SearchSetup | None:
    """The course's language and the question's words (None: no such course), with
    `with_progress` its indexing progress (same round trip); also sets up the vector
    search of this transaction."""
    found = await SearchRepository(session).setup(
        course_id, query, ef_search=max(EF_SEARCH, candidates), progress=with_progress
    )
    if found is None:
        return None
    if found.language.lower().startswith("en"):
        return SearchSetup(found.language, frozenset(found.stemmed), found.progress)
    return SearchSetup(
        found.language, frozenset(found.words) - VIETNAMESE_FUNCTION_WORDS, found.progress
    )


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
    found = await retrieve(session, encoder, course_id, query, k, mode=mode)
    return found.hits if found is not None else []


async def retrieve(
    session: AsyncSession,
    encoder: QueryEncoder,
    course_id: uuid.UUID,
    query: str,
    k: int = 5,
    *,
    mode: Mode = "hybrid",
    with_progress: bool = False,
) -> Retrieval | None:
    """The `k` best passages for `query` and whether they answer it, with
    `with_progress` the course's indexing progress (read in the search's first round
    trip); None if there is no such course."""
    k = max(1, min(k, MAX_K))
    query = query.strip()
    candidates = max(CANDIDATES, 2 * k)
    # The model encodes the query in its thread while the database answers the text
    # search: the two waits overlap.
    encoding = (
        asyncio.ensure_future(encoder.encode_query(query))
        if query and mode in ("hybrid", "vector")
        else None
    )
    try:
        repository = SearchRepository(session)
        setup = await prepare_search(
            session, course_id, query, candidates, with_progress=with_progress
        )
        if setup is None:
            return None
        if not query:
            return Retrieval([], setup.language, 0.0, 0.0, setup.progress)
        text_hits = (
            await repository.text_ranking(
                course_id, query, search_config(setup.language), candidates
            )
            if mode in ("hybrid", "text")
            else None
        )
        rankings: list[list[int]] = []
        weights: list[float] = []
        similarity = 0.0
        if encoding is not None:
            vector = await encoding
            nearest = await repository.vector_ranking(course_id, vector, candidates)
            rankings.append([chunk_id for chunk_id, _ in nearest])
            weights.append(vector_weight(setup.language))
            similarity = nearest[0][1] if nearest else 0.0
        if text_hits is not None:
            rankings.append(text_hits)
            weights.append(1.0)
    finally:
        if encoding is not None and not encoding.done():
            encoding.cancel()
    fused = fuse(rankings, k, weights)
    if not fused:
        return Retrieval([], setup.language, similarity, 0.0, setup.progress)
    by_id = await repository.passages([chunk_id for chunk_id, _ in fused], setup.stemmed)
    hits = []
    coverage = 0.0
    for chunk_id, score in fused:
        row = by_id[chunk_id]
        is_file = row.file_id is not None
        source = Source(
            kind="file" if is_file else "lesson",
            id=row.source_id,
            title=row.title,
            page=row.page if is_file else None,
            heading=row.heading or None,
        )
        hits.append(Hit(chunk_id=chunk_id, text=row.text, score=round(score, 6), source=source))
        if setup.words:
            found = len(setup.words.intersection(row.words or ()))
            coverage = max(coverage, found / len(setup.words))
    return Retrieval(hits, setup.language, similarity, coverage, setup.progress)
