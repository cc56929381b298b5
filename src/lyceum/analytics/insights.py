"""The arithmetic of the analytics reports, apart from any query: quiz item statistics
(difficulty, discrimination, option counts, flags), rubric level distributions, medians,
the learner's streak, and the grouping of unanswered tutor questions by meaning."""

from __future__ import annotations

import datetime as dt
import math
import statistics
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

# Item flags. Below MIN_ATTEMPTS the figures are shown but `few_attempts` says they are
# not evidence yet; the other flags are still computed, to be read with that caveat.
MIN_ATTEMPTS: Final = 20
TOO_HARD_BELOW: Final = 0.2  # difficulty p: fewer than one learner in five gets it
TOO_EASY_ABOVE: Final = 0.95  # nearly everyone gets it: it tells learners apart not at all
# Upper and lower groups of the classical discrimination index.
GROUP_SHARE: Final = 0.27

# Unanswered tutor questions fall into one topic while the average cosine similarity
# between two groups (average linkage) is at least this; all-MiniLM-L6-v2 puts
# paraphrases of one question at about 0.6-0.9 and questions on other subjects below 0.3.
TOPIC_SIMILARITY: Final = 0.5
TOPIC_EXAMPLES: Final = 3


class Flag:
    few_attempts = "few_attempts"
    negative_discrimination = "negative_discrimination"
    too_hard = "too_hard"
    too_easy = "too_easy"


@dataclass(frozen=True)
class ItemResponse:
    """One graded attempt's answer to one question: `awarded` of `points`, and the
    attempt's totals over all its questions (this one included)."""

    awarded: float
    points: float
    attempt_awarded: float
    attempt_points: float
    response: dict[str, Any] | None = None

    @property
    def score(self) -> float:
        return self.awarded / self.points if self.points else 0.0

    @property
    def total_percent(self) -> float:
        return self.attempt_awarded / self.attempt_points if self.attempt_points else 0.0

    @property
    def rest_percent(self) -> float:
        """The attempt's score on its other questions, as a share of their points."""
        rest = self.attempt_points - self.points
        return (self.attempt_awarded - self.awarded) / rest if rest > 0 else 0.0


@dataclass
class ItemStats:
    attempts: int
    difficulty: float | None
    discrimination: float | None
    upper_lower: float | None
    flags: list[str]
    chosen: dict[str, int] = field(default_factory=dict)
    unanswered: int = 0


def pearson(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """The correlation of two equally long series; None when either does not vary."""
    n = len(xs)
    if n < 2:
        return None
    mean_x = sum(xs) / n
    mean_y = sum(ys) / n
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
    sxx = sum((x - mean_x) ** 2 for x in xs)
    syy = sum((y - mean_y) ** 2 for y in ys)
    if sxx <= 1e-12 or syy <= 1e-12:
        return None
    return sxy / math.sqrt(sxx * syy)


def _group_mean(levels: Sequence[list[float]], size: int) -> float:
    """The mean score of the first `size` attempts taken level by level (attempts of one
    total form a level); a level cut by the group's edge counts with its mean score for
    the places left, so the result does not depend on the attempts' order."""
    taken = 0.0
    left = size
    for scores in levels:
        take = min(left, len(scores))
        taken += take * sum(scores) / len(scores)
        left -= take
        if left == 0:
            break
    return taken / size


def upper_lower(scores: Sequence[float], totals: Sequence[float]) -> float | None:
    """The discrimination index D: the item's mean score in the top 27% of attempts by
    total percent minus its mean in the bottom 27% (group size rounded up; attempts tied
    at a group's edge share its last places). None below two attempts."""
    n = len(scores)
    if n < 2:
        return None
    size = max(1, math.ceil(GROUP_SHARE * n))
    by_total: dict[float, list[float]] = {}
    for score, total in zip(scores, totals, strict=True):
        by_total.setdefault(round(total, 9), []).append(score)
    ascending = [by_total[total] for total in sorted(by_total)]
    return _group_mean(ascending[::-1], size) - _group_mean(ascending, size)


def choices_of(kind: str, response: dict[str, Any] | None) -> list[str]:
    """The options a response chose: a single or multiple choice's option ids, a
    true/false answer as "true" or "false"; none for other kinds or no answer."""
    if not response:
        return []
    if kind == "single_choice" and response.get("choice"):
        return [str(response["choice"])]
    if kind == "multiple_choice":
        return [str(choice) for choice in response.get("choices") or []]
    if kind == "true_false" and isinstance(response.get("value"), bool):
        return ["true" if response["value"] else "false"]
    return []


def item_statistics(kind: str, responses: Sequence[ItemResponse]) -> ItemStats:
    """Statistics of one question over the attempts that drew it.

    - difficulty p: the mean item score (awarded / points): the share correct for
      all-or-nothing items;
    - discrimination: the corrected item-total correlation (the point-biserial for
      right/wrong items): item score against the attempt's percent on its *other*
      questions, so the item does not correlate with itself;
    - upper_lower: the 27% index D on the attempts' total percent;
    - chosen: how many attempts chose each option (choice and true/false items);
    - flags: `negative_discrimination` (below 0), `too_hard` (p < 0.2), `too_easy`
      (p > 0.95), `few_attempts` (under 20 attempts)."""
    n = len(responses)
    scores = [r.score for r in responses]
    difficulty = sum(scores) / n if n else None
    discrimination = pearson(scores, [r.rest_percent for r in responses])
    flags = []
    if discrimination is not None and discrimination < 0:
        flags.append(Flag.negative_discrimination)
    if difficulty is not None and difficulty < TOO_HARD_BELOW:
        flags.append(Flag.too_hard)
    if difficulty is not None and difficulty > TOO_EASY_ABOVE:
        flags.append(Flag.too_easy)
    if n < MIN_ATTEMPTS:
        flags.append(Flag.few_attempts)
    chosen: dict[str, int] = {}
    unanswered = 0
    for r in responses:
        if not r.response:
            unanswered += 1
        for choice in choices_of(kind, r.response):
            chosen[choice] = chosen.get(choice, 0) + 1
    return ItemStats(
        attempts=n,
        difficulty=difficulty,
        discrimination=discrimination,
        upper_lower=upper_lower(scores, [r.total_percent for r in responses]),
        flags=flags,
        chosen=chosen,
        unanswered=unanswered,
    )


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def level_index(points: float, level_points: Sequence[float]) -> int:
    """The rubric level a criterion's points fall in: the highest level whose points do
    not exceed them (levels ascend; points below the first level count in it)."""
    found = 0
    for index, threshold in enumerate(level_points):
        if points >= threshold:
            found = index
    return found


def streak(active_days: Iterable[dt.date], today: dt.date) -> int:
    """Consecutive UTC days with activity ending today, or yesterday (a streak is not
    broken before the day is over)."""
    days = set(active_days)
    day = today if today in days else today - dt.timedelta(days=1)
    count = 0
    while day in days:
        count += 1
        day -= dt.timedelta(days=1)
    return count


@dataclass(frozen=True)
class Question:
    message_id: uuid.UUID
    text: str
    vector: NDArray[np.float32]


@dataclass(frozen=True)
class Topic:
    representative: str
    count: int
    examples: list[str]


def topics(questions: Sequence[Question], limit: int) -> list[Topic]:
    """Group questions by meaning: agglomerative clustering of their unit embeddings with
    cosine distance and average linkage, merging while the average similarity between
    two groups is at least `TOPIC_SIMILARITY`. Each topic's representative is the
    question nearest its centroid; examples are up to three others, nearest first.
    Largest topics first (ties: the representative's text), at most `limit`."""
    if not questions:
        return []
    vectors = np.stack([q.vector for q in questions]).astype(np.float64)
    if len(questions) == 1:
        labels = [0]
    else:
        from scipy.cluster.hierarchy import fcluster, linkage
        from scipy.spatial.distance import squareform

        distances = np.clip(1.0 - vectors @ vectors.T, 0.0, 2.0)
        np.fill_diagonal(distances, 0.0)
        tree = linkage(squareform(distances, checks=False), method="average")
        labels = fcluster(tree, t=1.0 - TOPIC_SIMILARITY, criterion="distance").tolist()
    groups: dict[int, list[int]] = {}
    for index, label in enumerate(labels):
        groups.setdefault(int(label), []).append(index)
    found = []
    for members in groups.values():
        centroid = vectors[members].mean(axis=0)
        ranked = sorted(members, key=lambda i: -float(vectors[i] @ centroid))
        texts = [questions[i].text for i in ranked]
        found.append(Topic(texts[0], len(members), texts[1 : 1 + TOPIC_EXAMPLES]))
    found.sort(key=lambda topic: (-topic.count, topic.representative))
    return found[:limit]
