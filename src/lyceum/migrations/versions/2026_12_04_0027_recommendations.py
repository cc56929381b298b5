"""The stored recommendation model: versions, course neighbours, popularity

Revision ID: 0027_recommendations
Revises: 0026_analytics
Create Date: 2026-12-04 20:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0027_recommendations"
down_revision: str | None = "0026_analytics"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "recommendation_models",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("courses", sa.Integer(), nullable=False),
        sa.Column("learners", sa.Integer(), nullable=False),
        sa.Column("interactions", sa.Integer(), nullable=False),
        sa.Column("parameters", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recommendation_models")),
    )
    op.create_index(
        "ix_recommendation_models_complete",
        "recommendation_models",
        ["id"],
        postgresql_where=sa.text("completed_at IS NOT NULL"),
    )
    op.create_table(
        "recommendation_neighbours",
        sa.Column("model_id", sa.BigInteger(), nullable=False),
        sa.Column("course_id", sa.Uuid(), nullable=False),
        sa.Column("neighbour_id", sa.Uuid(), nullable=False),
        sa.Column("rank", sa.SmallInteger(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("collaborative", sa.Float(), nullable=False),
        sa.Column("content", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["recommendation_models.id"],
            name=op.f("fk_recommendation_neighbours_model_id_recommendation_models"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["course_id"],
            ["courses.id"],
            name=op.f("fk_recommendation_neighbours_course_id_courses"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["neighbour_id"],
            ["courses.id"],
            name=op.f("fk_recommendation_neighbours_neighbour_id_courses"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "model_id", "course_id", "neighbour_id", name=op.f("pk_recommendation_neighbours")
        ),
    )
    op.create_index(
        op.f("ix_recommendation_neighbours_neighbour_id"),
        "recommendation_neighbours",
        ["neighbour_id"],
    )
    op.create_table(
        "recommendation_popularity",
        sa.Column("model_id", sa.BigInteger(), nullable=False),
        sa.Column("course_id", sa.Uuid(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["recommendation_models.id"],
            name=op.f("fk_recommendation_popularity_model_id_recommendation_models"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["course_id"],
            ["courses.id"],
            name=op.f("fk_recommendation_popularity_course_id_courses"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("model_id", "course_id", name=op.f("pk_recommendation_popularity")),
    )
    op.create_index(
        "ix_recommendation_popularity_model_score",
        "recommendation_popularity",
        ["model_id", "score"],
    )


def downgrade() -> None:
    op.drop_table("recommendation_popularity")
    op.drop_table("recommendation_neighbours")
    op.drop_table("recommendation_models")
