"""The model builder on small hand-made matrices: neighbours, popularity, the blend and
a learner's scores, each checked against the arithmetic done by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from lyceum.recommendations.builder import (
    Blend,
    FeedbackWeights,
    build,
    collaborative_similarity,
    content_similarity,
    course_text,
    feedback_weight,
    popularity,
    score_learners,
)

# Four learners x four courses. Courses 0 and 1 are taken together by learners 0 and 1;
# learner 2 takes 1 and 2; learner 3 takes 2 and 3.
FEEDBACK = sp.csr_matrix(
    np.array(
        [
            [1.0, 1.0, 0.0, 0.0],
            [1.0, 1.0, 0.0, 0.0],
            [0.0, 1.0, 1.0, 0.0],
            [0.0, 0.0, 1.0, 1.0],
        ]
    )
)


def test_feedback_weights_add_up_as_documented() -> None:
    assert feedback_weight("active", 0.0, None) == 1.0
    assert feedback_weight("completed", 1.0, 5) == pytest.approx(2.0 + 0.5 + 0.5)
    assert feedback_weight("active", 0.5, 1) == pytest.approx(1.0 + 0.25 - 0.5)
    assert feedback_weight("cancelled", 0.0, 1) == pytest.approx(0.1)  # the floor
    assert feedback_weight("active", 3.0, None) == 1.5  # a share is at most 1
    assert feedback_weight("active", 0.0, None, FeedbackWeights(enrolled=2.0)) == 2.0


def test_collaborative_neighbours_are_the_cosine_of_learner_columns() -> None:
    similarity = collaborative_similarity(FEEDBACK, k=2).toarray()
    # columns: c0 = (1,1,0,0), c1 = (1,1,1,0), c2 = (0,0,1,1), c3 = (0,0,0,1)
    assert similarity[0, 1] == pytest.approx(2 / (math.sqrt(2) * math.sqrt(3)))
    assert similarity[1, 2] == pytest.approx(1 / (math.sqrt(3) * math.sqrt(2)))
    assert similarity[2, 3] == pytest.approx(1 / math.sqrt(2))
    assert similarity[0, 2] == 0.0  # no learner in common
    assert np.all(np.diag(similarity) == 0)  # never its own neighbour


def test_only_the_k_nearest_are_kept() -> None:
    similarity = collaborative_similarity(FEEDBACK, k=1).toarray()
    assert (similarity > 0).sum(axis=1).tolist() == [1, 1, 1, 1]
    assert int(np.argmax(similarity[1])) == 0  # 0.816 beats 0.408
    assert int(np.argmax(similarity[2])) == 3  # 0.707 beats 0.408


def test_content_neighbours_are_the_cosine_of_embeddings() -> None:
    vectors = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0], [-1.0, 0.0]])
    similarity = content_similarity(vectors, k=3).toarray()
    assert similarity[0, 1] == pytest.approx(0.6)
    assert similarity[1, 2] == pytest.approx(0.8)
    assert similarity[0, 3] == 0.0  # opposite: not a neighbour at all
    assert similarity[0, 2] == 0.0  # orthogonal


def test_popularity_is_log_learners_over_the_most_taken() -> None:
    assert popularity(FEEDBACK).tolist() == pytest.approx(
        [math.log(3) / math.log(4), 1.0, math.log(3) / math.log(4), math.log(2) / math.log(4)]
    )
    assert popularity(sp.csr_matrix((2, 3))).tolist() == [0.0, 0.0, 0.0]


def test_the_blend_weights_each_component_and_keeps_k() -> None:
    vectors = np.eye(4)[[0, 0, 2, 3]]  # courses 0 and 1 read the same
    model = build(FEEDBACK, vectors, Blend(collaborative=1.0, content=0.5, popularity=0.1), k=2)
    cf01 = 2 / math.sqrt(6)
    assert model.collaborative[0, 1] == pytest.approx(cf01)
    assert model.content[0, 1] == pytest.approx(0.5)
    assert model.neighbours[0, 1] == pytest.approx(cf01 + 0.5)
    assert (model.neighbours.toarray() > 0).sum(axis=1).max() <= 2
    assert model.parameters["content_weight"] == 0.5


def test_a_learner_scores_neighbours_of_what_they_took_plus_popularity() -> None:
    model = build(FEEDBACK, np.eye(4), Blend(1.0, 0.0, 0.0), k=3)
    history = sp.csr_matrix(np.array([[2.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]))
    scores = score_learners(history, model, popularity_weight=0.1)
    pop = popularity(FEEDBACK)
    # learner 0 took course 0 (weight 2): 2 x s(0, j) / 2 + 0.1 x pop(j)
    assert scores[0, 0] == -math.inf  # taken
    assert scores[0, 1] == pytest.approx(2 / math.sqrt(6) + 0.1 * pop[1])
    assert scores[0, 2] == pytest.approx(0.1 * pop[2])
    # learner 1 took nothing: popularity alone
    assert scores[1].tolist() == pytest.approx((0.1 * pop).tolist())


def test_course_text_joins_the_parts_it_has() -> None:
    assert course_text("Python", "", "Learn it.") == "Python. Learn it."
    assert len(course_text("t", "s", "x" * 5000)) == 1000
