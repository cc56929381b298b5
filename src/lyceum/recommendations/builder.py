"""The recommendation model, built from learners' feedback and course texts: item-based
k-nearest neighbours over implicit feedback (scikit-learn on a scipy sparse matrix),
blended with the cosine of the courses' title+description embeddings, and popularity.

Pure arithmetic on arrays: the periodic job (`service.rebuild_model`) and
`bench/recommendations.py` both build with these functions, and `score_learners` is the
Python twin of the per-learner SQL query (`repository.recommend`) the bench evaluates.

Feedback (implicit, one weight per learner and course, `feedback_weight`):
enrolled 1.0, completed 2.0, cancelled 0.3; plus 0.5 x the share of the course's lessons
completed; plus 0.25 x (stars - 3) of the learner's review (a 5-star review +0.5, a
1-star one -0.5); never below 0.1 (a course taken and disliked still says something
about what the learner looks at).

Neighbours: for each course, its `k` nearest courses by the cosine of their learner
columns (collaborative) and, separately, by the cosine of their embeddings (content);
their blended score `collaborative_weight x cf + content_weight x content` ranks the
union and the best `k` are kept (the stored rows).

A learner's score for a course j: sum over the courses i they took of
`w(i) x score(i, j)`, over the sum of their weights, plus `popularity_weight x
popularity(j)`, where popularity is log(1 + learners of j) / log(1 + learners of the
most taken course). A learner with no history gets popularity alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeAlias

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from sklearn.neighbors import NearestNeighbors

# scipy ships no type information: a scipy.sparse.csr_matrix.
Matrix: TypeAlias = Any
Floats = NDArray[np.float64]
# Characters of a course's text given to the embedder (MiniLM reads ~256 word pieces).
TEXT_CHARS = 1000


@dataclass(frozen=True)
class FeedbackWeights:
    """How much each kind of implicit feedback says about a learner and a course."""

    enrolled: float = 1.0
    completed: float = 2.0
    cancelled: float = 0.3
    progress: float = 0.5  # x the share of the course's lessons completed
    rating: float = 0.25  # x (stars - 3)
    floor: float = 0.1


@dataclass(frozen=True)
class Blend:
    """The weights of the three signals; tuned by bench/recommendations.py on a
    validation split (README, "Recommendations")."""

    collaborative: float = 1.0
    content: float = 0.1
    popularity: float = 0.2


@dataclass
class Model:
    """`neighbours[i, j]` is the blended score of course j as a neighbour of course i
    (at most `k` per row), split in its weighted components; `popularity[j]` in [0, 1]."""

    neighbours: Matrix
    collaborative: Matrix
    content: Matrix
    popularity: Floats
    parameters: dict[str, object] = field(default_factory=dict)


def feedback_weight(
    status: str,
    lesson_share: float,
    rating: int | None,
    weights: FeedbackWeights = FeedbackWeights(),
) -> float:
    """One learner's feedback on one course: `status` is the enrollment's (active,
    completed, cancelled), `lesson_share` the share of its lessons completed (0..1),
    `rating` their review's stars, if any."""
    base = {"completed": weights.completed, "cancelled": weights.cancelled}.get(
        status, weights.enrolled
    )
    value = base + weights.progress * min(max(lesson_share, 0.0), 1.0)
    if rating is not None:
        value += weights.rating * (rating - 3)
    return max(value, weights.floor)


def course_text(title: str, subtitle: str, description: str) -> str:
    """What a course's content vector is made of."""
    parts = [part.strip() for part in (title, subtitle, description) if part and part.strip()]
    return ". ".join(parts)[:TEXT_CHARS]


def _top_k(similarity: Matrix, k: int) -> Matrix:
    """Each row's `k` largest positive entries, the diagonal left out."""
    similarity = sp.csr_matrix(similarity)
    similarity.setdiag(0)
    similarity.eliminate_zeros()
    rows, cols, values = [], [], []
    for row in range(similarity.shape[0]):
        start, end = similarity.indptr[row], similarity.indptr[row + 1]
        data = similarity.data[start:end]
        indices = similarity.indices[start:end]
        keep = data > 0
        data, indices = data[keep], indices[keep]
        if data.size > k:
            # Highest first; ties broken by the lower column for a stable result.
            order = np.lexsort((indices, -data))[:k]
            data, indices = data[order], indices[order]
        rows.extend([row] * data.size)
        cols.extend(indices.tolist())
        values.extend(data.tolist())
    shape = similarity.shape
    return sp.csr_matrix((np.array(values, dtype=np.float64), (rows, cols)), shape=shape)


def _knn(vectors: Matrix, k: int) -> Matrix:
    """Cosine similarity of each row to its `k` nearest other rows (scikit-learn's
    brute-force k-nearest neighbours; sparse input stays sparse)."""
    count = vectors.shape[0]
    if count < 2:
        return sp.csr_matrix((count, count), dtype=np.float64)
    search = NearestNeighbors(n_neighbors=min(k + 1, count), metric="cosine", algorithm="brute")
    search.fit(vectors)
    distances, indices = search.kneighbors(vectors)
    similarity = 1.0 - distances
    rows = np.repeat(np.arange(count), indices.shape[1])
    found = sp.csr_matrix(
        (similarity.ravel(), (rows, indices.ravel())), shape=(count, count), dtype=np.float64
    )
    # A course without any feedback has a zero vector: nothing is near it.
    return _top_k(found, k)


def collaborative_similarity(feedback: Matrix, k: int) -> Matrix:
    """Course x course cosine of the learner columns of `feedback` (learners x
    courses), each row's `k` nearest only."""
    return _knn(sp.csr_matrix(feedback.T), k)


def content_similarity(vectors: NDArray[np.floating[Any]], k: int) -> Matrix:
    """Course x course cosine of the course embeddings, each row's `k` nearest only."""
    return _knn(np.asarray(vectors, dtype=np.float64), k)


def popularity(feedback: Matrix) -> Floats:
    """log(1 + learners of the course) over the most taken course's, in [0, 1]."""
    learners = np.asarray((feedback > 0).sum(axis=0), dtype=np.float64).ravel()
    top = learners.max() if learners.size else 0.0
    if top <= 0:
        return np.zeros_like(learners)
    result: Floats = np.log1p(learners) / np.log1p(top)
    return result


def blend(collaborative: Matrix, content: Matrix, popular: Floats, weights: Blend, k: int) -> Model:
    """The stored model: each course's `k` best neighbours by the blended score."""
    weighted_cf = sp.csr_matrix(collaborative * weights.collaborative)
    weighted_content = sp.csr_matrix(content * weights.content)
    blended = _top_k(weighted_cf + weighted_content, k)
    mask = sp.csr_matrix((blended > 0).astype(np.float64))
    return Model(
        neighbours=blended,
        collaborative=sp.csr_matrix(weighted_cf.multiply(mask)),
        content=sp.csr_matrix(weighted_content.multiply(mask)),
        popularity=popular,
        parameters={
            "k": k,
            "collaborative_weight": weights.collaborative,
            "content_weight": weights.content,
            "popularity_weight": weights.popularity,
        },
    )


def build(feedback: Matrix, vectors: NDArray[np.floating[Any]], weights: Blend, k: int) -> Model:
    """The model from `feedback` (learners x courses) and `vectors` (one unit-length
    embedding per course, same order)."""
    feedback = sp.csr_matrix(feedback, dtype=np.float64)
    return blend(
        collaborative_similarity(feedback, k),
        content_similarity(vectors, k),
        popularity(feedback),
        weights,
        k,
    )


def score_learners(history: Matrix, model: Model, popularity_weight: float) -> Floats:
    """Each learner's score for each course (learners x courses, dense), the courses
    they took at -inf: what `repository.recommend` computes for one learner."""
    history = sp.csr_matrix(history, dtype=np.float64)
    totals = np.asarray(history.sum(axis=1), dtype=np.float64).ravel()
    scale = sp.diags(np.divide(1.0, totals, out=np.zeros_like(totals), where=totals > 0))
    scores = np.asarray((scale @ history @ model.neighbours).todense(), dtype=np.float64)
    scores += popularity_weight * model.popularity[np.newaxis, :]
    rows, cols = history.nonzero()
    scores[rows, cols] = -np.inf
    return scores
