"""Recommendations: rebuilding the stored model (the periodic job) and answering "courses
for you" and "related courses" from it.

Never recommended: a course the learner took (an enrollment in any status, cancelled
included), one they teach, an unpublished one, or one priced above
RECOMMENDATIONS_MAX_PRICE_CENTS (the price policy; unset: no cap). Before the first
model is built, both routes answer popularity from the database (course_stats learners,
then rating, then newest) with the same exclusions.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.config import Settings
from lyceum.courses.schemas import Price
from lyceum.kit.ai.embedding import Embedder, Vectors
from lyceum.kit.jobs import defer
from lyceum.models.courses import Course, CourseLevel
from lyceum.recommendations import schemas
from lyceum.recommendations.builder import (
    Blend,
    FeedbackWeights,
    Model,
    build,
    course_text,
    feedback_weight,
)
from lyceum.recommendations.repository import (
    Candidate,
    CourseText,
    Policy,
    RecommendationRepository,
)

logger = structlog.get_logger("lyceum.recommendations")

FEEDBACK_WEIGHTS = FeedbackWeights()
# The queueing lock of the rebuild job: one waiting at a time.
REBUILD_LOCK = "rebuild_recommendations"


def blend_of(settings: Settings) -> Blend:
    return Blend(
        collaborative=settings.recommendations_collaborative_weight,
        content=settings.recommendations_content_weight,
        popularity=settings.recommendations_popularity_weight,
    )


def policy_of(settings: Settings) -> Policy:
    return Policy(max_price_cents=settings.recommendations_max_price_cents)


@dataclass(frozen=True)
class Rebuilt:
    model_id: int
    courses: int
    learners: int
    interactions: int
    pruned: list[int]


def neighbour_rows(model: Model, course_ids: list[uuid.UUID]) -> list[dict[str, object]]:
    """The stored rows of a built model: each course's neighbours, ranked from 1."""
    rows: list[dict[str, object]] = []
    scores, cf, content = model.neighbours, model.collaborative, model.content
    for row in range(scores.shape[0]):
        start, end = scores.indptr[row], scores.indptr[row + 1]
        columns = scores.indices[start:end]
        values = scores.data[start:end]
        order = np.lexsort((columns, -values))
        for rank, position in enumerate(order, start=1):
            column = int(columns[position])
            rows.append(
                {
                    "course_id": course_ids[row],
                    "neighbour_id": course_ids[column],
                    "rank": rank,
                    "score": float(values[position]),
                    "collaborative": float(cf[row, column]),
                    "content": float(content[row, column]),
                }
            )
    return rows


async def content_vectors(embedder: Embedder, courses: Sequence[CourseText]) -> Vectors:
    """One unit-length MiniLM vector per course, of its title, subtitle and description
    (what the rebuild and bench/recommendations.py embed)."""
    return await embedder.encode([course_text(c.title, c.subtitle, c.description) for c in courses])


async def rebuild_model(
    session: AsyncSession, *, embedder: Embedder, settings: Settings, now: dt.datetime
) -> Rebuilt | None:
    """Build a new model version from every published course and every enrollment in
    one, store it complete and prune the old ones; None when another rebuild holds
    the lock (it writes the same thing)."""
    repo = RecommendationRepository(session)
    if not await repo.lock_rebuild():
        return None
    courses = await repo.published_course_texts()
    feedback = await repo.feedback()
    course_ids = [course.id for course in courses]
    column = {course_id: index for index, course_id in enumerate(course_ids)}
    learners = {user: index for index, user in enumerate(sorted({f.user_id for f in feedback}))}
    matrix = sp.csr_matrix(
        (
            [
                feedback_weight(f.status, f.lesson_share, f.rating, FEEDBACK_WEIGHTS)
                for f in feedback
            ],
            ([learners[f.user_id] for f in feedback], [column[f.course_id] for f in feedback]),
        ),
        shape=(len(learners), len(course_ids)),
        dtype=np.float64,
    )
    vectors = await content_vectors(embedder, courses)
    k = settings.recommendations_neighbours
    # Neighbour search is CPU work: off the event loop (rule 8).
    model = await asyncio.to_thread(build, matrix, vectors, blend_of(settings), k)
    model_id = await repo.start_model(
        started_at=now,
        courses=len(course_ids),
        learners=len(learners),
        interactions=len(feedback),
        parameters={**model.parameters, "feedback": vars(FEEDBACK_WEIGHTS)},
    )
    await repo.add_neighbours(model_id, neighbour_rows(model, course_ids))
    await repo.add_popularity(
        model_id,
        [
            {"course_id": course_id, "score": float(model.popularity[index])}
            for index, course_id in enumerate(course_ids)
        ],
    )
    await repo.complete_model(model_id, now)
    await repo.analyze_model_tables()  # the planner sees the new version's sizes at once
    pruned = await repo.prune_models(settings.recommendations_keep_versions)
    logger.info(
        "recommendations_rebuilt",
        model_id=model_id,
        courses=len(course_ids),
        learners=len(learners),
        interactions=len(feedback),
        pruned=pruned,
    )
    return Rebuilt(model_id, len(course_ids), len(learners), len(feedback), pruned)


async def request_rebuild(session: AsyncSession, now: dt.datetime) -> None:
    """Enqueue a rebuild in this transaction (none if one is already waiting): what the
    demo loader does once its enrollment history is in."""
    from lyceum.recommendations.tasks import rebuild_recommendations  # it imports this module

    await defer(
        session,
        rebuild_recommendations,
        queueing_lock=REBUILD_LOCK,
        timestamp=int(now.timestamp()),
    )


def _summary(candidate: Candidate) -> schemas.CourseSummary:
    return schemas.CourseSummary(
        id=candidate.course_id,
        slug=candidate.slug,
        title=candidate.title,
        subtitle=candidate.subtitle,
        language=candidate.language,
        level=CourseLevel(candidate.level),
        category=candidate.category,
        price=Price(amount_cents=candidate.price_cents, currency=candidate.currency),
        enrollment_count=candidate.enrollment_count,
        rating_average=candidate.rating_average,
        rating_count=candidate.rating_count,
    )


def _personal_reason(candidate: Candidate) -> schemas.Reason:
    if candidate.source_id is None or candidate.popularity_score >= candidate.neighbour_score:
        return schemas.Reason(kind="popular", text="Popular with learners")
    source = schemas.CourseRef(id=candidate.source_id, title=candidate.source_title or "")
    if candidate.collaborative_led:
        return schemas.Reason(
            kind="because_you_took", course=source, text=f"Because you took {source.title}"
        )
    return schemas.Reason(kind="similar_to", course=source, text=f"Similar to {source.title}")


def _related_reason(candidate: Candidate) -> schemas.Reason:
    if candidate.source_id is None:
        return schemas.Reason(kind="popular", text="Popular with learners")
    source = schemas.CourseRef(id=candidate.source_id, title=candidate.source_title or "")
    if candidate.collaborative_led:
        return schemas.Reason(
            kind="taken_together",
            course=source,
            text=f"Learners who took {source.title} took it too",
        )
    return schemas.Reason(kind="similar_to", course=source, text=f"Similar to {source.title}")


class Recommendations:
    """What the two routes answer."""

    def __init__(self, session: AsyncSession, settings: Settings) -> None:
        self.repo = RecommendationRepository(session)
        self.settings = settings
        self.policy = policy_of(settings)

    async def for_learner(self, user_id: uuid.UUID, limit: int) -> schemas.RecommendationList:
        found = await self.repo.recommend(
            user_id,
            feedback=FEEDBACK_WEIGHTS,
            popularity_weight=self.settings.recommendations_popularity_weight,
            policy=self.policy,
            limit=limit,
        )
        if found is None:  # no model yet: popularity from the database
            found = await self.repo.popular(user_id=user_id, policy=self.policy, limit=limit)
        return schemas.RecommendationList.of_all(
            [
                schemas.Recommendation(
                    course=_summary(c),
                    score=round(c.neighbour_score + c.popularity_score, 6),
                    reason=_personal_reason(c),
                )
                for c in found
            ]
        )

    async def related(self, course: Course, limit: int) -> schemas.RecommendationList:
        found = await self.repo.related(course.id, policy=self.policy, limit=limit)
        if not found:  # no model yet, or a course published since the last build
            found = await self.repo.popular(
                user_id=None, policy=self.policy, limit=limit, excluded=course.id
            )
        return schemas.RecommendationList.of_all(
            [
                schemas.Recommendation(
                    course=_summary(c),
                    score=round(c.neighbour_score + c.popularity_score, 6),
                    reason=_related_reason(c),
                )
                for c in found
            ]
        )
