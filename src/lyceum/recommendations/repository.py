"""Every query of recommendations: the feedback and course texts a rebuild reads, the
versions it writes and prunes, and what a request reads (the newest complete version's
stored neighbours, aggregated for one learner in one query)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from sqlalchemy import delete, false, func, insert, literal, null, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.models.courses import (
    Course,
    CourseInstructor,
    CourseStats,
    CourseStatus,
    Enrollment,
    Lesson,
    LessonCompletion,
    Review,
)
from lyceum.models.recommendations import (
    RecommendationModel,
    RecommendationNeighbour,
    RecommendationPopularity,
)
from lyceum.recommendations.builder import FeedbackWeights, Matrix, Model

# One rebuild at a time, whichever worker runs it (a transaction-level advisory lock).
REBUILD_LOCK = 0x5EC0_0027
# Rows per INSERT of a model's neighbours.
INSERT_BATCH = 5000


@dataclass(frozen=True)
class CourseText:
    id: uuid.UUID
    title: str
    subtitle: str
    description: str


@dataclass(frozen=True)
class Feedback:
    """One learner's enrollment in a published course, with its progress and rating."""

    user_id: uuid.UUID
    course_id: uuid.UUID
    status: str
    lesson_share: float
    rating: int | None


@dataclass(frozen=True)
class Candidate:
    """A recommended course (the columns its summary shows) with what its score is made
    of."""

    course_id: uuid.UUID
    slug: str
    title: str
    subtitle: str
    language: str
    level: str
    category: str
    price_cents: int
    currency: str
    enrollment_count: int
    rating_average: float | None
    rating_count: int
    neighbour_score: float
    popularity_score: float
    # The course the learner took that contributed most, and whether collaborative
    # filtering rather than content similarity led that contribution.
    source_id: uuid.UUID | None
    source_title: str | None
    collaborative_led: bool


@dataclass(frozen=True)
class Policy:
    """Courses never recommended beyond the unpublished and the taken: priced above
    `max_price_cents` (None: no cap)."""

    max_price_cents: int | None = None


class RecommendationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # --- rebuilding -------------------------------------------------------------

    async def lock_rebuild(self) -> bool:
        """Whether this transaction got the rebuild lock (False: another is running)."""
        got = await self.session.scalar(select(func.pg_try_advisory_xact_lock(REBUILD_LOCK)))
        return bool(got)

    async def published_course_texts(self) -> list[CourseText]:
        rows = await self.session.execute(
            select(Course.id, Course.title, Course.subtitle, Course.description)
            .where(Course.status == CourseStatus.published)
            .order_by(Course.id)
        )
        return [CourseText(*row) for row in rows]

    async def feedback(self) -> list[Feedback]:
        """Every enrollment in a published course, with the share of the course's
        lessons the learner completed and their review's stars."""
        lessons = (
            select(Lesson.course_id, func.count().label("lessons"))
            .group_by(Lesson.course_id)
            .subquery()
        )
        completed = (
            select(
                LessonCompletion.user_id,
                LessonCompletion.course_id,
                func.count().label("done"),
            )
            .group_by(LessonCompletion.user_id, LessonCompletion.course_id)
            .subquery()
        )
        query = (
            select(
                Enrollment.user_id,
                Enrollment.course_id,
                Enrollment.status,
                func.coalesce(completed.c.done, 0),
                func.coalesce(lessons.c.lessons, 0),
                Review.rating,
            )
            .join(Course, Course.id == Enrollment.course_id)
            .outerjoin(lessons, lessons.c.course_id == Enrollment.course_id)
            .outerjoin(
                completed,
                (completed.c.user_id == Enrollment.user_id)
                & (completed.c.course_id == Enrollment.course_id),
            )
            .outerjoin(
                Review,
                (Review.user_id == Enrollment.user_id) & (Review.course_id == Enrollment.course_id),
            )
            .where(Course.status == CourseStatus.published)
        )
        return [
            Feedback(user, course, str(status), done / total if total else 0.0, rating)
            for user, course, status, done, total, rating in await self.session.execute(query)
        ]

    async def learner_feedback(self, user_id: uuid.UUID) -> list[Feedback]:
        """The learner's enrollments (any status, any course) with progress and rating."""
        lessons = (
            select(func.count())
            .where(Lesson.course_id == Enrollment.course_id)
            .correlate(Enrollment)
            .scalar_subquery()
        )
        done = (
            select(func.count())
            .where(
                LessonCompletion.user_id == user_id,
                LessonCompletion.course_id == Enrollment.course_id,
            )
            .correlate(Enrollment)
            .scalar_subquery()
        )
        rating = (
            select(Review.rating)
            .where(Review.user_id == user_id, Review.course_id == Enrollment.course_id)
            .correlate(Enrollment)
            .scalar_subquery()
        )
        rows = await self.session.execute(
            select(Enrollment.course_id, Enrollment.status, done, lessons, rating).where(
                Enrollment.user_id == user_id
            )
        )
        return [
            Feedback(user_id, course, str(status), d / total if total else 0.0, stars)
            for course, status, d, total, stars in rows
        ]

    async def start_model(
        self,
        *,
        started_at: dt.datetime,
        courses: int,
        learners: int,
        interactions: int,
        parameters: dict[str, object],
    ) -> int:
        model_id = await self.session.scalar(
            insert(RecommendationModel)
            .values(
                started_at=started_at,
                courses=courses,
                learners=learners,
                interactions=interactions,
                parameters=parameters,
            )
            .returning(RecommendationModel.id)
        )
        assert model_id is not None
        return int(model_id)

    async def add_neighbours(self, model_id: int, rows: Sequence[dict[str, object]]) -> None:
        for start in range(0, len(rows), INSERT_BATCH):
            batch = [{"model_id": model_id, **row} for row in rows[start : start + INSERT_BATCH]]
            await self.session.execute(insert(RecommendationNeighbour), batch)

    async def add_popularity(self, model_id: int, rows: Sequence[dict[str, object]]) -> None:
        for start in range(0, len(rows), INSERT_BATCH):
            batch = [{"model_id": model_id, **row} for row in rows[start : start + INSERT_BATCH]]
            await self.session.execute(insert(RecommendationPopularity), batch)

    async def complete_model(self, model_id: int, completed_at: dt.datetime) -> None:
        await self.session.execute(
            update(RecommendationModel)
            .where(RecommendationModel.id == model_id)
            .values(completed_at=completed_at)
        )

    async def analyze_model_tables(self) -> None:
        await self.session.execute(
            text(
                "ANALYZE recommendation_models, recommendation_neighbours, recommendation_popularity"
            )
        )

    async def prune_models(self, keep: int) -> list[int]:
        """Delete all but the newest `keep` complete versions (and any incomplete one
        older than the newest complete); their rows go by ON DELETE CASCADE."""
        kept = (
            select(RecommendationModel.id)
            .where(RecommendationModel.completed_at.is_not(None))
            .order_by(RecommendationModel.id.desc())
            .limit(keep)
        )
        newest = select(func.max(kept.subquery().c.id)).scalar_subquery()
        deleted = await self.session.scalars(
            delete(RecommendationModel)
            .where(RecommendationModel.id.not_in(kept), RecommendationModel.id < newest)
            .returning(RecommendationModel.id)
        )
        return sorted(deleted)

    async def newest_model(self) -> RecommendationModel | None:
        return await self.session.scalar(
            select(RecommendationModel)
            .where(RecommendationModel.completed_at.is_not(None))
            .order_by(RecommendationModel.id.desc())
            .limit(1)
        )

    async def stored_model(self, model_id: int, course_ids: Sequence[uuid.UUID]) -> Model:
        """A stored version read back as the builder's `Model`, rows and columns in the
        order of `course_ids` (what the tests and the bench compare with)."""
        index = {course_id: position for position, course_id in enumerate(course_ids)}
        size = len(course_ids)
        found = await self.session.execute(
            select(
                RecommendationNeighbour.course_id,
                RecommendationNeighbour.neighbour_id,
                RecommendationNeighbour.score,
                RecommendationNeighbour.collaborative,
                RecommendationNeighbour.content,
            ).where(RecommendationNeighbour.model_id == model_id)
        )
        rows = [
            (index[course], index[neighbour], (score, collaborative, content))
            for course, neighbour, score, collaborative, content in found
            if course in index and neighbour in index
        ]
        at = ([row[0] for row in rows], [row[1] for row in rows])

        def matrix(part: int) -> Matrix:
            values = [row[2][part] for row in rows]
            return sp.csr_matrix((values, at), shape=(size, size), dtype=np.float64)

        popular = np.zeros(size, dtype=np.float64)
        for course_id, score in await self.session.execute(
            select(RecommendationPopularity.course_id, RecommendationPopularity.score).where(
                RecommendationPopularity.model_id == model_id
            )
        ):
            if course_id in index:
                popular[index[course_id]] = score
        return Model(
            neighbours=matrix(0), collaborative=matrix(1), content=matrix(2), popularity=popular
        )

    async def model_ids(self) -> list[int]:
        return list(
            await self.session.scalars(
                select(RecommendationModel.id).order_by(RecommendationModel.id)
            )
        )

    # --- serving ----------------------------------------------------------------

    async def recommend(
        self,
        user_id: uuid.UUID,
        *,
        feedback: FeedbackWeights,
        popularity_weight: float,
        policy: Policy,
        limit: int,
    ) -> list[Candidate] | None:
        """The learner's best `limit` courses from the newest complete model, in one
        query: the stored neighbours of the courses they took, each times the
        learner's feedback weight of that course (`feedback`, as
        `builder.feedback_weight` computes it), summed and divided by the weights' sum,
        plus `popularity_weight` x popularity; candidates are those neighbours and the
        most popular courses. None when no model is stored yet."""
        rows = await self.session.execute(
            RECOMMEND,
            {
                "user_id": user_id,
                "w_enrolled": feedback.enrolled,
                "w_completed": feedback.completed,
                "w_cancelled": feedback.cancelled,
                "w_progress": feedback.progress,
                "w_rating": feedback.rating,
                "w_floor": feedback.floor,
                "popularity_weight": popularity_weight,
                "pool": 4 * limit,
                "max_price": policy.max_price_cents,
                "limit": limit,
            },
        )
        found = [Candidate(**row._mapping) for row in rows]
        # The query reads the newest complete model itself: no row may mean no model.
        if not found and await self.session.scalar(NEWEST_MODEL) is None:
            return None
        return found

    async def related(
        self, course_id: uuid.UUID, *, policy: Policy, limit: int
    ) -> list[Candidate] | None:
        """The course's stored neighbours, best first (None: no model stored yet)."""
        model_id = await self.session.scalar(NEWEST_MODEL)
        if model_id is None:
            return None
        rows = await self.session.execute(
            RELATED,
            {
                "model_id": model_id,
                "course_id": course_id,
                "max_price": policy.max_price_cents,
                "limit": limit,
            },
        )
        return [Candidate(**row._mapping) for row in rows]

    async def popular(
        self,
        *,
        user_id: uuid.UUID | None,
        policy: Policy,
        limit: int,
        excluded: uuid.UUID | None = None,
    ) -> list[Candidate]:
        """Before any model exists: published courses by learners (course_stats), then
        rating, then newest; minus the `excluded` course, the caller's taken and taught
        courses and the policy's."""
        query = (
            select(
                *CARD,
                literal(0.0).label("neighbour_score"),
                literal(0.0).label("popularity_score"),
                null().label("source_id"),
                null().label("source_title"),
                false().label("collaborative_led"),
            )
            .outerjoin(CourseStats, CourseStats.course_id == Course.id)
            .where(Course.status == CourseStatus.published)
            .order_by(
                func.coalesce(CourseStats.enrollment_count, 0).desc(),
                CourseStats.rating_average.desc().nulls_last(),
                Course.published_at.desc().nulls_last(),
                Course.id,
            )
            .limit(limit)
        )
        if excluded is not None:
            query = query.where(Course.id != excluded)
        if user_id is not None:
            taken = select(Enrollment.course_id).where(Enrollment.user_id == user_id)
            query = query.where(Course.id.not_in(taken))
            taught = select(CourseInstructor.course_id).where(CourseInstructor.user_id == user_id)
            query = query.where(Course.id.not_in(taught))
        if policy.max_price_cents is not None:
            query = query.where(Course.price_cents <= policy.max_price_cents)
        return [Candidate(**row._mapping) for row in await self.session.execute(query)]


# The columns of a course's summary, as `Candidate` names them.
CARD = (
    Course.id.label("course_id"),
    Course.slug,
    Course.title,
    Course.subtitle,
    Course.language,
    Course.level,
    Course.category,
    Course.price_cents,
    Course.currency,
    func.coalesce(CourseStats.enrollment_count, 0).label("enrollment_count"),
    CourseStats.rating_average,
    func.coalesce(CourseStats.rating_count, 0).label("rating_count"),
)

NEWEST_MODEL = (
    select(RecommendationModel.id)
    .where(RecommendationModel.completed_at.is_not(None))
    .order_by(RecommendationModel.id.desc())
    .limit(1)
)

# Eligible: published, within the price policy, not taken (any enrollment status),
# not taught by the learner.
RECOMMEND = text(
    """
    WITH model AS (
        SELECT id FROM recommendation_models
        WHERE completed_at IS NOT NULL
        ORDER BY id DESC
        LIMIT 1
    ),
    mine AS (
        -- builder.feedback_weight, in SQL, on the learner's enrollments (any status)
        SELECT e.course_id, greatest(
            CASE e.status WHEN 'completed' THEN :w_completed
                          WHEN 'cancelled' THEN :w_cancelled
                          ELSE :w_enrolled END
            + :w_progress * CASE WHEN lessons.n > 0
                                 THEN least(done.n::float8 / lessons.n, 1.0) ELSE 0 END
            + coalesce(:w_rating * (r.rating - 3), 0),
            :w_floor) AS weight
        FROM enrollments e
        CROSS JOIN LATERAL (
            SELECT count(*) AS n FROM lessons l WHERE l.course_id = e.course_id
        ) lessons
        CROSS JOIN LATERAL (
            SELECT count(*) AS n FROM lesson_completions lc
            WHERE lc.user_id = e.user_id AND lc.course_id = e.course_id
        ) done
        LEFT JOIN reviews r ON r.user_id = e.user_id AND r.course_id = e.course_id
        WHERE e.user_id = :user_id
    ),
    total AS (
        SELECT CASE WHEN sum(weight) > 0 THEN sum(weight) ELSE 1.0 END AS weight FROM mine
    ),
    contributions AS (
        SELECT n.neighbour_id AS course_id, m.weight * n.score AS part,
               n.course_id AS source_id, n.collaborative >= n.content AS collaborative_led
        FROM mine m
        JOIN recommendation_neighbours n
          ON n.model_id = (SELECT id FROM model) AND n.course_id = m.course_id
    ),
    by_neighbours AS (
        SELECT course_id, sum(part) / (SELECT weight FROM total) AS neighbour_score,
               (array_agg(source_id ORDER BY part DESC, source_id))[1] AS source_id,
               (array_agg(collaborative_led ORDER BY part DESC, source_id))[1]
                   AS collaborative_led
        FROM contributions
        GROUP BY course_id
    ),
    popular AS (
        SELECT course_id FROM recommendation_popularity
        WHERE model_id = (SELECT id FROM model)
        ORDER BY score DESC, course_id
        LIMIT :pool + (SELECT count(*) FROM mine)
    ),
    candidates AS (
        SELECT course_id FROM by_neighbours UNION SELECT course_id FROM popular
    ),
    scored AS (
        SELECT k.course_id,
               coalesce(b.neighbour_score, 0) AS neighbour_score,
               :popularity_weight * coalesce((
                   SELECT p.score FROM recommendation_popularity p
                   WHERE p.model_id = (SELECT id FROM model) AND p.course_id = k.course_id
               ), 0) AS popularity_score,
               b.source_id,
               coalesce(b.collaborative_led, false) AS collaborative_led
        FROM candidates k
        LEFT JOIN by_neighbours b ON b.course_id = k.course_id
    ),
    best AS (
        SELECT sc.* FROM scored sc
        JOIN courses c ON c.id = sc.course_id
        WHERE c.status = 'published'
          AND (CAST(:max_price AS integer) IS NULL
               OR c.price_cents <= CAST(:max_price AS integer))
          AND NOT EXISTS (
              SELECT 1 FROM enrollments e
              WHERE e.user_id = :user_id AND e.course_id = sc.course_id
          )
          AND NOT EXISTS (
              SELECT 1 FROM course_instructors t
              WHERE t.user_id = :user_id AND t.course_id = sc.course_id
          )
        ORDER BY sc.neighbour_score + sc.popularity_score DESC, sc.course_id
        LIMIT :limit
    )
    SELECT best.course_id, c.slug, c.title, c.subtitle, c.language, c.level::text AS level,
           c.category, c.price_cents, c.currency,
           coalesce(st.enrollment_count, 0) AS enrollment_count,
           st.rating_average::float8 AS rating_average,
           coalesce(st.rating_count, 0) AS rating_count,
           best.neighbour_score, best.popularity_score,
           best.source_id, s.title AS source_title, best.collaborative_led
    FROM best
    JOIN courses c ON c.id = best.course_id
    LEFT JOIN course_stats st ON st.course_id = best.course_id
    LEFT JOIN courses s ON s.id = best.source_id
    ORDER BY best.neighbour_score + best.popularity_score DESC, best.course_id
    """
)

RELATED = text(
    """
    SELECT n.neighbour_id AS course_id, c.slug, c.title, c.subtitle, c.language,
           c.level::text AS level, c.category, c.price_cents, c.currency,
           coalesce(st.enrollment_count, 0) AS enrollment_count,
           st.rating_average::float8 AS rating_average,
           coalesce(st.rating_count, 0) AS rating_count,
           n.score AS neighbour_score, 0.0::float8 AS popularity_score,
           n.course_id AS source_id, s.title AS source_title,
           n.collaborative >= n.content AS collaborative_led
    FROM recommendation_neighbours n
    JOIN courses c ON c.id = n.neighbour_id
    JOIN courses s ON s.id = n.course_id
    LEFT JOIN course_stats st ON st.course_id = n.neighbour_id
    WHERE n.model_id = :model_id AND n.course_id = :course_id
      AND c.status = 'published'
      AND (CAST(:max_price AS integer) IS NULL OR c.price_cents <= CAST(:max_price AS integer))
    ORDER BY n.rank
    LIMIT :limit
    """
)
