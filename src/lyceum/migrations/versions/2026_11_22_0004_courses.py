"""Courses: catalog with accent-insensitive full-text search, syllabus, enrollment,
progress, certificates and reviews.

Revision ID: 0004_courses
Revises: 0003_identity
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004_courses"
down_revision: str | None = "0003_identity"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # `simple` with unaccent in front: "Lập trình" and "lap trinh" become the same lexemes,
    # in any language, and ts_headline can still highlight the accented original.
    op.execute("CREATE TEXT SEARCH CONFIGURATION lyceum (COPY = simple)")
    op.execute(
        "ALTER TEXT SEARCH CONFIGURATION lyceum "
        "ALTER MAPPING FOR hword, hword_part, word WITH unaccent, simple"
    )
    # unaccent() is only STABLE (it reads a dictionary); this fixed-dictionary wrapper is
    # IMMUTABLE so trigram indexes can use it.
    op.execute(
        """
        CREATE FUNCTION lyceum_unaccent(value text) RETURNS text
        LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
        RETURN public.unaccent('public.unaccent'::regdictionary, value)
        """
    )
    op.create_table(
        "courses",
        sa.Column("slug", sa.String(length=120), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("subtitle", sa.String(length=300), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("language", sa.String(length=12), nullable=False),
        sa.Column(
            "level",
            sa.Enum("beginner", "intermediate", "advanced", name="course_level"),
            nullable=False,
        ),
        sa.Column("category", sa.String(length=80), nullable=False),
        sa.Column("tags", postgresql.ARRAY(sa.String(length=50)), nullable=False),
        sa.Column("tags_text", sa.Text(), nullable=False),
        sa.Column("lesson_titles", sa.Text(), nullable=False),
        sa.Column(
            "search",
            postgresql.TSVECTOR(),
            sa.Computed(
                "setweight(to_tsvector('lyceum'::regconfig, coalesce(title, '')), 'A') || setweight(to_tsvector('lyceum'::regconfig, coalesce(subtitle, '') || ' ' || coalesce(tags_text, '')), 'B') || setweight(to_tsvector('lyceum'::regconfig, coalesce(description, '')), 'C') || setweight(to_tsvector('lyceum'::regconfig, coalesce(lesson_titles, '')), 'D')",
                persisted=True,
            ),
            nullable=False,
        ),
        sa.Column("cover_key", sa.String(length=255), nullable=True),
        sa.Column("price_cents", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column(
            "status",
            sa.Enum("draft", "published", "archived", name="course_status"),
            nullable=False,
        ),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("enrollment_count", sa.Integer(), nullable=False),
        sa.Column("rating_count", sa.Integer(), nullable=False),
        sa.Column(
            "rating_average", sa.Numeric(precision=3, scale=2, asdecimal=False), nullable=True
        ),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("price_cents >= 0", name=op.f("ck_courses_price_not_negative")),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name=op.f("fk_courses_owner_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_courses")),
        sa.UniqueConstraint("slug", name=op.f("uq_courses_slug")),
    )
    op.create_index(
        "ix_courses_catalog",
        "courses",
        ["status", "published_at"],
        unique=False,
        postgresql_where=sa.text("status = 'published'"),
    )
    op.create_index(op.f("ix_courses_category"), "courses", ["category"], unique=False)
    op.create_index(op.f("ix_courses_language"), "courses", ["language"], unique=False)
    op.create_index(op.f("ix_courses_owner_id"), "courses", ["owner_id"], unique=False)
    op.create_index(
        "ix_courses_search", "courses", ["search"], unique=False, postgresql_using="gin"
    )
    op.create_index("ix_courses_tags", "courses", ["tags"], unique=False, postgresql_using="gin")
    op.execute(
        "CREATE INDEX ix_courses_title_trgm ON courses "
        "USING gin (lyceum_unaccent(lower(title)) gin_trgm_ops)"
    )
    op.create_table(
        "certificates",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("course_id", sa.Uuid(), nullable=False),
        sa.Column("learner_name", sa.String(length=200), nullable=False),
        sa.Column("course_title", sa.String(length=200), nullable=False),
        sa.Column("instructor_name", sa.String(length=200), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("storage_key", sa.String(length=255), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["course_id"],
            ["courses.id"],
            name=op.f("fk_certificates_course_id_courses"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_certificates_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_certificates")),
        sa.UniqueConstraint("code", name=op.f("uq_certificates_code")),
        sa.UniqueConstraint("user_id", "course_id", name=op.f("uq_certificates_user_id_course_id")),
    )
    op.create_table(
        "course_instructors",
        sa.Column("course_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["course_id"],
            ["courses.id"],
            name=op.f("fk_course_instructors_course_id_courses"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_course_instructors_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("course_id", "user_id", name=op.f("pk_course_instructors")),
    )
    op.create_index(
        op.f("ix_course_instructors_user_id"), "course_instructors", ["user_id"], unique=False
    )
    op.create_table(
        "modules",
        sa.Column("course_id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["course_id"],
            ["courses.id"],
            name=op.f("fk_modules_course_id_courses"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_modules")),
    )
    op.create_index(op.f("ix_modules_course_id"), "modules", ["course_id"], unique=False)
    op.create_table(
        "reviews",
        sa.Column("course_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("rating", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("rating BETWEEN 1 AND 5", name=op.f("ck_reviews_rating_range")),
        sa.ForeignKeyConstraint(
            ["course_id"],
            ["courses.id"],
            name=op.f("fk_reviews_course_id_courses"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_reviews_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reviews")),
        sa.UniqueConstraint("course_id", "user_id", name=op.f("uq_reviews_course_id_user_id")),
    )
    op.create_index(op.f("ix_reviews_course_id"), "reviews", ["course_id"], unique=False)
    op.create_table(
        "lessons",
        sa.Column("module_id", sa.Uuid(), nullable=False),
        sa.Column("course_id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.Enum("text", "video", "file", name="lesson_kind"), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("video_url", sa.String(length=2048), nullable=True),
        sa.Column("duration_seconds", sa.Integer(), nullable=True),
        sa.Column("estimated_minutes", sa.Integer(), nullable=False),
        sa.Column("is_preview", sa.Boolean(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["course_id"],
            ["courses.id"],
            name=op.f("fk_lessons_course_id_courses"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["module_id"],
            ["modules.id"],
            name=op.f("fk_lessons_module_id_modules"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lessons")),
    )
    op.create_index(op.f("ix_lessons_course_id"), "lessons", ["course_id"], unique=False)
    op.create_index(op.f("ix_lessons_module_id"), "lessons", ["module_id"], unique=False)
    op.create_table(
        "enrollments",
        sa.Column("course_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column(
            "status",
            sa.Enum("active", "completed", "cancelled", name="enrollment_status"),
            nullable=False,
        ),
        sa.Column("enrolled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_lesson_id", sa.Uuid(), nullable=True),
        sa.Column("last_activity_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["course_id"],
            ["courses.id"],
            name=op.f("fk_enrollments_course_id_courses"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["last_lesson_id"],
            ["lessons.id"],
            name=op.f("fk_enrollments_last_lesson_id_lessons"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_enrollments_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enrollments")),
        sa.UniqueConstraint("course_id", "user_id", name=op.f("uq_enrollments_course_id_user_id")),
    )
    op.create_index(op.f("ix_enrollments_course_id"), "enrollments", ["course_id"], unique=False)
    op.create_index(op.f("ix_enrollments_user_id"), "enrollments", ["user_id"], unique=False)
    op.create_table(
        "lesson_completions",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("lesson_id", sa.Uuid(), nullable=False),
        sa.Column("course_id", sa.Uuid(), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["course_id"],
            ["courses.id"],
            name=op.f("fk_lesson_completions_course_id_courses"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["lesson_id"],
            ["lessons.id"],
            name=op.f("fk_lesson_completions_lesson_id_lessons"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_lesson_completions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "lesson_id", name=op.f("pk_lesson_completions")),
    )
    op.create_index(
        op.f("ix_lesson_completions_course_id"), "lesson_completions", ["course_id"], unique=False
    )
    op.create_index(
        op.f("ix_lesson_completions_lesson_id"), "lesson_completions", ["lesson_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_lesson_completions_lesson_id"), table_name="lesson_completions")
    op.drop_index(op.f("ix_lesson_completions_course_id"), table_name="lesson_completions")
    op.drop_table("lesson_completions")
    op.drop_index(op.f("ix_enrollments_user_id"), table_name="enrollments")
    op.drop_index(op.f("ix_enrollments_course_id"), table_name="enrollments")
    op.drop_table("enrollments")
    op.drop_index(op.f("ix_lessons_module_id"), table_name="lessons")
    op.drop_index(op.f("ix_lessons_course_id"), table_name="lessons")
    op.drop_table("lessons")
    op.drop_index(op.f("ix_reviews_course_id"), table_name="reviews")
    op.drop_table("reviews")
    op.drop_index(op.f("ix_modules_course_id"), table_name="modules")
    op.drop_table("modules")
    op.drop_index(op.f("ix_course_instructors_user_id"), table_name="course_instructors")
    op.drop_table("course_instructors")
    op.drop_table("certificates")
    op.execute("DROP INDEX IF EXISTS ix_courses_title_trgm")
    op.drop_index("ix_courses_tags", table_name="courses", postgresql_using="gin")
    op.drop_index("ix_courses_search", table_name="courses", postgresql_using="gin")
    op.drop_index(op.f("ix_courses_owner_id"), table_name="courses")
    op.drop_index(op.f("ix_courses_language"), table_name="courses")
    op.drop_index(op.f("ix_courses_category"), table_name="courses")
    op.drop_index(
        "ix_courses_catalog", table_name="courses", postgresql_where=sa.text("status = 'published'")
    )
    op.drop_table("courses")
    for enum_name in ("enrollment_status", "lesson_kind", "course_status", "course_level"):
        sa.Enum(name=enum_name).drop(op.get_bind(), checkfirst=True)
    op.execute("DROP FUNCTION IF EXISTS lyceum_unaccent(text)")
    op.execute("DROP TEXT SEARCH CONFIGURATION IF EXISTS lyceum")
