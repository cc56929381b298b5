"""The tutor's graded-work guard: is this question (part of) work the learner is being
graded on right now?

It compares the question with the questions of the learner's attempts in progress in
the course and with the prompts of the course's assignments they have not submitted:
by normalised text containment (a pasted question, or the question inside a longer
message) and by embedding similarity (a paraphrase). Nothing to compare with costs one
query and no embedding."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import unicodedata
from collections.abc import Callable

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.assessments.repository.standings import StandingRepository
from lyceum.kit.ai.embedding import Embedder, load_embedder
from lyceum.models.courses import Course
from lyceum.models.identity import User

# Containment only counts for texts long enough to mean something: "What is it?"
# occurs in many questions.
MIN_CONTAINED_WORDS = 4
# An assignment prompt is compared by its opening, which states the task.
PROMPT_CHARS = 1000
_NON_WORD = re.compile(r"[^\w]+")


def normalise(text: str) -> str:
    """Lower case, accents and punctuation kept out, single spaces."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(_NON_WORD.sub(" ", folded).split())


def contains(question: str, graded: str) -> bool:
    """One text inside the other, after normalising, when the inner one is long enough."""
    inner, outer = sorted((question, graded), key=len)
    return len(inner.split()) >= MIN_CONTAINED_WORDS and f" {inner} " in f" {outer} "


class AssessmentGuard:
    def __init__(
        self,
        session: AsyncSession,
        *,
        embedder: Callable[[], Embedder],
        threshold: float,
        now: dt.datetime,
    ) -> None:
        self.repo = StandingRepository(session)
        self.embedder = embedder
        self.threshold = threshold
        self.now = now

    async def graded_texts(self, learner: User, course: Course) -> list[str]:
        prompts = await self.repo.graded_prompts(learner.id, course.id, self.now, PROMPT_CHARS)
        return list(dict.fromkeys(prompt for prompt in prompts if prompt.strip()))

    async def is_graded_question(self, learner: User, course: Course, text: str) -> bool:
        graded = await self.graded_texts(learner, course)
        if not graded:
            return False
        question = normalise(text)
        if any(contains(question, normalise(item)) for item in graded):
            return True
        embedder = await load_embedder(self.embedder)
        # Query vectors are batched and cached per process: the same open questions
        # are compared again on every turn.
        vectors = await asyncio.gather(
            embedder.encode_query(text), *(embedder.encode_query(item) for item in graded)
        )
        similarities = np.stack(vectors[1:]) @ vectors[0]
        return bool(float(similarities.max()) >= self.threshold)
