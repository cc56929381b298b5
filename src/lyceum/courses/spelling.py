"""Corrections for misspelt catalog searches: "pyhton" -> "python".

Candidates come from the catalog's own vocabulary (the `catalog_terms` view, through the
repository's trigram lookup); this module only decides which candidate, if any, is the
word the learner meant."""

from __future__ import annotations

from collections.abc import Sequence

# Words this short are left alone: one edit turns them into too many other words.
MIN_CORRECTABLE = 3


def edit_distance(left: str, right: str) -> int:
    """Optimal string alignment distance: insertions, deletions, substitutions and
    transpositions of two neighbours each cost one ("pyhton" is one edit from "python",
    where plain Levenshtein counts two)."""
    if left == right:
        return 0
    rows, cols = len(left) + 1, len(right) + 1
    table = [[0] * cols for _ in range(rows)]
    for i in range(rows):
        table[i][0] = i
    for j in range(cols):
        table[0][j] = j
    for i in range(1, rows):
        for j in range(1, cols):
            cost = 0 if left[i - 1] == right[j - 1] else 1
            best = min(table[i - 1][j] + 1, table[i][j - 1] + 1, table[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and left[i - 1] == right[j - 2] and left[i - 2] == right[j - 1]:
                best = min(best, table[i - 2][j - 2] + 1)
            table[i][j] = best
    return table[-1][-1]


def allowed_edits(word: str) -> int:
    """One edit for short words, two from eight letters on."""
    return 1 if len(word) < 8 else 2


def best_correction(word: str, candidates: Sequence[tuple[str, int]]) -> str | None:
    """The closest vocabulary word within the allowed edits (the one in more courses on
    a tie), or None."""
    if len(word) < MIN_CORRECTABLE or word.isdigit():
        return None
    scored = [
        (edit_distance(word, term), -documents, term)
        for term, documents in candidates
        if term != word
    ]
    within = [entry for entry in scored if entry[0] <= allowed_edits(word)]
    return min(within)[2] if within else None
