"""Reciprocal rank fusion and the per-language settings of retrieval."""

from __future__ import annotations

import pytest

from lyceum.content.retrieval import RRF_K, fuse, search_config, vector_weight


def test_a_chunk_ranked_well_by_both_lists_beats_one_ranked_first_by_one() -> None:
    vector = [1, 2, 3]
    text = [2, 4, 1]
    fused = fuse([vector, text], k=3)
    assert [chunk for chunk, _ in fused] == [2, 1, 4]
    assert fused[0][1] == pytest.approx(1 / (RRF_K + 2) + 1 / (RRF_K + 1))


def test_weights_scale_each_list_and_k_cuts() -> None:
    fused = fuse([[1, 2], [2, 1]], k=1, weights=[0.5, 1.0])
    assert fused == [(2, pytest.approx(0.5 / (RRF_K + 2) + 1 / (RRF_K + 1)))]
    assert fuse([], k=5) == []


@pytest.mark.parametrize(
    ("language", "config", "weight"),
    [("en", "lyceum_english", 1.0), ("en-GB", "lyceum_english", 1.0), ("vi", "lyceum", 0.5)],
)
def test_language_picks_the_text_configuration_and_the_vector_weight(
    language: str, config: str, weight: float
) -> None:
    assert search_config(language) == config
    assert vector_weight(language) == weight
