"""Course counters move to course_stats, fed by appended changes

Revision ID: 0013_course_stats
Revises: 0012_mail_deliveries
Create Date: 2026-12-03 18:00:00

Enrolling used to count the course's enrollments and rewrite the course row: a hot row
lock on a popular course, and its stored search document recomputed on every
enrollment and review. The counters now live in `course_stats`; requests append to
`course_stat_changes` and a periodic job folds them in.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_course_stats"
down_revision: str | None = "0012_mail_deliveries"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AVERAGE = "CASE WHEN rating_count > 0 THEN round(rating_points::numeric / rating_count, 2) END"


def upgrade() -> None:
    op.create_table(
        "course_stats",
        sa.Column("course_id", sa.Uuid(), nullable=False),
        sa.Column("enrollment_count", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("rating_count", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("rating_points", sa.Integer(), nullable=False, server_default="0"),
        sa.Column(
            "rating_average",
            sa.Numeric(precision=3, scale=2, asdecimal=False),
            sa.Computed(AVERAGE, persisted=True),
            nullable=True,
        ),
        sa.ForeignKeyConstraint(
            ["course_id"],
            ["courses.id"],
            name=op.f("fk_course_stats_course_id_courses"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("course_id", name=op.f("pk_course_stats")),
    )
    op.create_index("ix_course_stats_enrollment_count", "course_stats", ["enrollment_count"])
    op.create_index("ix_course_stats_rating", "course_stats", ["rating_average", "rating_count"])
    op.create_table(
        "course_stat_changes",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("course_id", sa.Uuid(), nullable=False),
        sa.Column("enrollments", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("ratings", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("rating_points", sa.Integer(), nullable=False, server_default="0"),
        sa.ForeignKeyConstraint(
            ["course_id"],
            ["courses.id"],
            name=op.f("fk_course_stat_changes_course_id_courses"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_course_stat_changes")),
    )
    op.create_index(op.f("ix_course_stat_changes_course_id"), "course_stat_changes", ["course_id"])
    # Today's counts, from the rows themselves.
    op.execute(
        """
        INSERT INTO course_stats (course_id, enrollment_count, rating_count, rating_points)
        SELECT c.id,
               (SELECT count(*) FROM enrollments e
                 WHERE e.course_id = c.id AND e.status <> 'cancelled'),
               (SELECT count(*) FROM reviews r WHERE r.course_id = c.id),
               (SELECT coalesce(sum(r.rating), 0) FROM reviews r WHERE r.course_id = c.id)
        FROM courses c
        """
    )
    op.drop_column("courses", "enrollment_count")
    op.drop_column("courses", "rating_count")
    op.drop_column("courses", "rating_average")


def downgrade() -> None:
    op.add_column(
        "courses",
        sa.Column("enrollment_count", sa.Integer(), nullable=False, server_default="0"),
    )
    op.add_column(
        "courses", sa.Column("rating_count", sa.Integer(), nullable=False, server_default="0")
    )
    op.add_column(
        "courses",
        sa.Column(
            "rating_average", sa.Numeric(precision=3, scale=2, asdecimal=False), nullable=True
        ),
    )
    op.execute(
        """
        UPDATE courses c SET enrollment_count = s.enrollment_count,
                             rating_count = s.rating_count,
                             rating_average = s.rating_average
        FROM course_stats s WHERE s.course_id = c.id
        """
    )
    op.drop_table("course_stat_changes")
    op.drop_table("course_stats")
