"""The stored recommendation model: versions, and per version each course's nearest
courses (collaborative and content scores blended) and its popularity.

A rebuild writes a new version in one transaction and marks it complete; requests read
the newest complete version only, so a reader never sees a half-written model, and the
rebuild prunes all but the newest few versions (their rows go with them, ON DELETE
CASCADE)."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import (
    BigInteger,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    SmallInteger,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from lyceum.models.base import Base


class RecommendationModel(Base):
    """One build of the model: when it ran, on how much feedback, with which weights."""

    __tablename__ = "recommendation_models"
    __table_args__ = (
        # "The newest complete version": the one lookup every request makes.
        Index(
            "ix_recommendation_models_complete",
            "id",
            postgresql_where=text("completed_at IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    started_at: Mapped[dt.datetime]
    completed_at: Mapped[dt.datetime | None]
    courses: Mapped[int] = mapped_column(Integer)
    learners: Mapped[int] = mapped_column(Integer)
    interactions: Mapped[int] = mapped_column(Integer)
    # The weights and sizes it was built with (feedback weights, k, blend).
    parameters: Mapped[dict[str, object]] = mapped_column(JSONB)


class RecommendationNeighbour(Base):
    """`neighbour_id` is one of the `RECOMMENDATIONS_NEIGHBOURS` courses nearest to
    `course_id` in model `model_id`: `score` is the blend of the cosine of their
    learner vectors (`collaborative`) and of their title+description embeddings
    (`content`), each weighted as the version's parameters say."""

    __tablename__ = "recommendation_neighbours"

    model_id: Mapped[int] = mapped_column(
        ForeignKey("recommendation_models.id", ondelete="CASCADE"), primary_key=True
    )
    course_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("courses.id", ondelete="CASCADE"), primary_key=True
    )
    neighbour_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("courses.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    rank: Mapped[int] = mapped_column(SmallInteger)
    score: Mapped[float] = mapped_column(Float)
    collaborative: Mapped[float] = mapped_column(Float)
    content: Mapped[float] = mapped_column(Float)


class RecommendationPopularity(Base):
    """A course's popularity in model `model_id`, in [0, 1]: log(1 + its learners'
    feedback) over the most popular course's."""

    __tablename__ = "recommendation_popularity"
    __table_args__ = (Index("ix_recommendation_popularity_model_score", "model_id", "score"),)

    model_id: Mapped[int] = mapped_column(
        ForeignKey("recommendation_models.id", ondelete="CASCADE"), primary_key=True
    )
    course_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("courses.id", ondelete="CASCADE"), primary_key=True
    )
    score: Mapped[float] = mapped_column(Float)
