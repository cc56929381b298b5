"""Assessments: question bank, quizzes and attempts, essay assignments and submissions,
similarity flags, grade audit

Revision ID: 0009_assessments
Revises: 0008_chat
Create Date: 2026-11-22 08:30:00
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from pgvector.sqlalchemy import Vector
from sqlalchemy.dialects import postgresql

revision: str = "0009_assessments"
down_revision: str | None = "0008_chat"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

POINTS = sa.Numeric(10, 2, asdecimal=False)
PERCENT = sa.Numeric(5, 2, asdecimal=False)
WEIGHT = sa.Numeric(6, 2, asdecimal=False)

ENUMS = {
    "question_kind": (
        "single_choice",
        "multiple_choice",
        "true_false",
        "short_answer",
        "essay",
    ),
    "question_difficulty": ("easy", "medium", "hard"),
    "quiz_review_policy": ("none", "score_only", "answers_after_submit", "answers_after_due"),
    "quiz_attempt_status": ("in_progress", "needs_review", "graded"),
    "assignment_late_policy": ("refuse", "penalty"),
    "essay_submission_status": ("scoring", "needs_review", "reviewed", "released"),
}


def _enum(name: str) -> postgresql.ENUM:
    return postgresql.ENUM(*ENUMS[name], name=name, create_type=False)


def _timestamps() -> list[sa.Column[Any]]:
    return [
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
    ]


def _course_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["course_id"],
        ["courses.id"],
        name=op.f(f"fk_{table}_course_id_courses"),
        ondelete="CASCADE",
    )


def _placement_fks(table: str) -> list[sa.ForeignKeyConstraint]:
    return [
        sa.ForeignKeyConstraint(
            ["module_id"],
            ["modules.id"],
            name=op.f(f"fk_{table}_module_id_modules"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["lesson_id"],
            ["lessons.id"],
            name=op.f(f"fk_{table}_lesson_id_lessons"),
            ondelete="SET NULL",
        ),
    ]


def upgrade() -> None:
    bind = op.get_bind()
    for name in ENUMS:
        _enum(name).create(bind, checkfirst=True)

    op.create_table(
        "assessment_questions",
        sa.Column("course_id", sa.Uuid(), nullable=False),
        sa.Column("kind", _enum("question_kind"), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("points", POINTS, nullable=False),
        sa.Column("tags", postgresql.ARRAY(sa.String(length=50)), nullable=False),
        sa.Column("difficulty", _enum("question_difficulty"), nullable=False),
        sa.Column("explanation", sa.Text(), nullable=False),
        sa.Column("options", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("answer_key", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        *_timestamps(),
        sa.CheckConstraint("points > 0", name=op.f("ck_assessment_questions_points_positive")),
        _course_fk("assessment_questions"),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name=op.f("fk_assessment_questions_created_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assessment_questions")),
    )
    op.create_index(
        op.f("ix_assessment_questions_course_id"),
        "assessment_questions",
        ["course_id"],
        unique=False,
    )
    op.create_index(
        "ix_assessment_questions_tags",
        "assessment_questions",
        ["tags"],
        unique=False,
        postgresql_using="gin",
    )

    op.create_table(
        "quizzes",
        sa.Column("course_id", sa.Uuid(), nullable=False),
        sa.Column("module_id", sa.Uuid(), nullable=True),
        sa.Column("lesson_id", sa.Uuid(), nullable=True),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("time_limit_seconds", sa.Integer(), nullable=True),
        sa.Column("max_attempts", sa.Integer(), nullable=True),
        sa.Column("pass_percent", PERCENT, nullable=False),
        sa.Column("shuffle_questions", sa.Boolean(), nullable=False),
        sa.Column("shuffle_options", sa.Boolean(), nullable=False),
        sa.Column("review_policy", _enum("quiz_review_policy"), nullable=False),
        sa.Column("available_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("available_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("required", sa.Boolean(), nullable=False),
        sa.Column("weight", WEIGHT, nullable=False),
        sa.Column("published", sa.Boolean(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        *_timestamps(),
        sa.CheckConstraint(
            "time_limit_seconds IS NULL OR time_limit_seconds > 0",
            name=op.f("ck_quizzes_time_limit"),
        ),
        sa.CheckConstraint(
            "max_attempts IS NULL OR max_attempts > 0", name=op.f("ck_quizzes_max_attempts")
        ),
        sa.CheckConstraint("pass_percent BETWEEN 0 AND 100", name=op.f("ck_quizzes_pass_percent")),
        sa.CheckConstraint("weight >= 0", name=op.f("ck_quizzes_weight_not_negative")),
        sa.CheckConstraint(
            "available_from IS NULL OR available_until IS NULL OR available_from < available_until",
            name=op.f("ck_quizzes_window"),
        ),
        _course_fk("quizzes"),
        *_placement_fks("quizzes"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quizzes")),
    )
    op.create_index(op.f("ix_quizzes_course_id"), "quizzes", ["course_id"], unique=False)

    op.create_table(
        "quiz_sections",
        sa.Column("quiz_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("question_id", sa.Uuid(), nullable=True),
        sa.Column("tag", sa.String(length=50), nullable=True),
        sa.Column("draw_count", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "(question_id IS NULL) <> (tag IS NULL)", name=op.f("ck_quiz_sections_one_source")
        ),
        sa.CheckConstraint("draw_count >= 1", name=op.f("ck_quiz_sections_draw_count_positive")),
        sa.ForeignKeyConstraint(
            ["quiz_id"],
            ["quizzes.id"],
            name=op.f("fk_quiz_sections_quiz_id_quizzes"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["question_id"],
            ["assessment_questions.id"],
            name=op.f("fk_quiz_sections_question_id_assessment_questions"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("quiz_id", "position", name=op.f("pk_quiz_sections")),
    )
    op.create_index(
        op.f("ix_quiz_sections_question_id"), "quiz_sections", ["question_id"], unique=False
    )

    op.create_table(
        "quiz_attempts",
        sa.Column("quiz_id", sa.Uuid(), nullable=False),
        sa.Column("course_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("status", _enum("quiz_attempt_status"), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("auto_submitted", sa.Boolean(), nullable=False),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.Column("graded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("score", POINTS, nullable=True),
        sa.Column("max_score", POINTS, nullable=False),
        sa.Column("percent", PERCENT, nullable=True),
        sa.Column("passed", sa.Boolean(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["quiz_id"],
            ["quizzes.id"],
            name=op.f("fk_quiz_attempts_quiz_id_quizzes"),
            ondelete="CASCADE",
        ),
        _course_fk("quiz_attempts"),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_quiz_attempts_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quiz_attempts")),
        sa.UniqueConstraint(
            "quiz_id", "user_id", "number", name=op.f("uq_quiz_attempts_quiz_id_user_id_number")
        ),
    )
    op.create_index(
        op.f("ix_quiz_attempts_course_id"), "quiz_attempts", ["course_id"], unique=False
    )
    op.create_index(
        "uq_quiz_attempts_open",
        "quiz_attempts",
        ["quiz_id", "user_id"],
        unique=True,
        postgresql_where=sa.text("status = 'in_progress'"),
    )
    op.create_index(
        "ix_quiz_attempts_deadline",
        "quiz_attempts",
        ["deadline_at"],
        unique=False,
        postgresql_where=sa.text("status = 'in_progress'"),
    )
    op.create_index(
        "ix_quiz_attempts_user_status", "quiz_attempts", ["user_id", "status"], unique=False
    )

    op.create_table(
        "quiz_attempt_items",
        sa.Column("attempt_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("question_id", sa.Uuid(), nullable=False),
        sa.Column("kind", _enum("question_kind"), nullable=False),
        sa.Column("points", POINTS, nullable=False),
        sa.Column("snapshot", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("response", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("awarded", POINTS, nullable=True),
        sa.Column("is_correct", sa.Boolean(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["attempt_id"],
            ["quiz_attempts.id"],
            name=op.f("fk_quiz_attempt_items_attempt_id_quiz_attempts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("attempt_id", "position", name=op.f("pk_quiz_attempt_items")),
        sa.UniqueConstraint(
            "attempt_id", "question_id", name=op.f("uq_quiz_attempt_items_attempt_id_question_id")
        ),
    )

    op.create_table(
        "assignments",
        sa.Column("course_id", sa.Uuid(), nullable=False),
        sa.Column("module_id", sa.Uuid(), nullable=True),
        sa.Column("lesson_id", sa.Uuid(), nullable=True),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("rubric", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("points", POINTS, nullable=False),
        sa.Column("reference_answer", sa.Text(), nullable=False),
        sa.Column("min_words", sa.Integer(), nullable=True),
        sa.Column("max_words", sa.Integer(), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("late_policy", _enum("assignment_late_policy"), nullable=False),
        sa.Column("late_penalty_percent_per_day", PERCENT, nullable=False),
        sa.Column("auto_release", sa.Boolean(), nullable=False),
        sa.Column("required", sa.Boolean(), nullable=False),
        sa.Column("weight", WEIGHT, nullable=False),
        sa.Column("pass_percent", PERCENT, nullable=False),
        sa.Column("published", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        *_timestamps(),
        sa.CheckConstraint("points > 0", name=op.f("ck_assignments_points_positive")),
        sa.CheckConstraint(
            "pass_percent BETWEEN 0 AND 100", name=op.f("ck_assignments_pass_percent")
        ),
        sa.CheckConstraint("weight >= 0", name=op.f("ck_assignments_weight_not_negative")),
        sa.CheckConstraint(
            "late_penalty_percent_per_day BETWEEN 0 AND 100",
            name=op.f("ck_assignments_late_penalty_percent"),
        ),
        sa.CheckConstraint(
            "min_words IS NULL OR max_words IS NULL OR min_words <= max_words",
            name=op.f("ck_assignments_word_limits"),
        ),
        _course_fk("assignments"),
        *_placement_fks("assignments"),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name=op.f("fk_assignments_created_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assignments")),
    )
    op.create_index(op.f("ix_assignments_course_id"), "assignments", ["course_id"], unique=False)

    op.create_table(
        "essay_submissions",
        sa.Column("assignment_id", sa.Uuid(), nullable=False),
        sa.Column("course_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("word_count", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("late_days", sa.Integer(), nullable=False),
        sa.Column("penalty_percent", PERCENT, nullable=False),
        sa.Column("status", _enum("essay_submission_status"), nullable=False),
        sa.Column("proposal", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("scored_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("scoring_error", sa.Text(), nullable=True),
        sa.Column("final", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("points_raw", POINTS, nullable=True),
        sa.Column("points", POINTS, nullable=True),
        sa.Column("percent", PERCENT, nullable=True),
        sa.Column("passed", sa.Boolean(), nullable=True),
        sa.Column("reviewed_by", sa.Uuid(), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("embedding", Vector(dim=384), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["assignment_id"],
            ["assignments.id"],
            name=op.f("fk_essay_submissions_assignment_id_assignments"),
            ondelete="CASCADE",
        ),
        _course_fk("essay_submissions"),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_essay_submissions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["reviewed_by"],
            ["users.id"],
            name=op.f("fk_essay_submissions_reviewed_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_essay_submissions")),
        sa.UniqueConstraint(
            "assignment_id", "user_id", name=op.f("uq_essay_submissions_assignment_id_user_id")
        ),
    )
    op.create_index(
        op.f("ix_essay_submissions_user_id"), "essay_submissions", ["user_id"], unique=False
    )
    op.create_index(
        "ix_essay_submissions_course_status",
        "essay_submissions",
        ["course_id", "status"],
        unique=False,
    )

    op.create_table(
        "essay_similarity_flags",
        sa.Column("submission_id", sa.Uuid(), nullable=False),
        sa.Column("other_submission_id", sa.Uuid(), nullable=False),
        sa.Column("similarity", sa.Numeric(5, 4, asdecimal=False), nullable=False),
        sa.Column("flagged_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["essay_submissions.id"],
            name=op.f("fk_essay_similarity_flags_submission_id_essay_submissions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["other_submission_id"],
            ["essay_submissions.id"],
            name=op.f("fk_essay_similarity_flags_other_submission_id_essay_submissions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "submission_id", "other_submission_id", name=op.f("pk_essay_similarity_flags")
        ),
    )

    op.create_table(
        "assessment_audit",
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("course_id", sa.Uuid(), nullable=False),
        sa.Column("subject_type", sa.String(length=20), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("before", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("after", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        _course_fk("assessment_audit"),
        sa.ForeignKeyConstraint(
            ["actor_id"],
            ["users.id"],
            name=op.f("fk_assessment_audit_actor_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assessment_audit")),
    )
    op.create_index(
        "ix_assessment_audit_course_seq", "assessment_audit", ["course_id", "seq"], unique=False
    )
    op.create_index(
        "ix_assessment_audit_subject_seq", "assessment_audit", ["subject_id", "seq"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_assessment_audit_subject_seq", table_name="assessment_audit")
    op.drop_index("ix_assessment_audit_course_seq", table_name="assessment_audit")
    op.drop_table("assessment_audit")
    op.drop_table("essay_similarity_flags")
    op.drop_index("ix_essay_submissions_course_status", table_name="essay_submissions")
    op.drop_index(op.f("ix_essay_submissions_user_id"), table_name="essay_submissions")
    op.drop_table("essay_submissions")
    op.drop_index(op.f("ix_assignments_course_id"), table_name="assignments")
    op.drop_table("assignments")
    op.drop_table("quiz_attempt_items")
    op.drop_index("ix_quiz_attempts_user_status", table_name="quiz_attempts")
    op.drop_index("ix_quiz_attempts_deadline", table_name="quiz_attempts")
    op.drop_index("uq_quiz_attempts_open", table_name="quiz_attempts")
    op.drop_index(op.f("ix_quiz_attempts_course_id"), table_name="quiz_attempts")
    op.drop_table("quiz_attempts")
    op.drop_index(op.f("ix_quiz_sections_question_id"), table_name="quiz_sections")
    op.drop_table("quiz_sections")
    op.drop_index(op.f("ix_quizzes_course_id"), table_name="quizzes")
    op.drop_table("quizzes")
    op.drop_index("ix_assessment_questions_tags", table_name="assessment_questions")
    op.drop_index(op.f("ix_assessment_questions_course_id"), table_name="assessment_questions")
    op.drop_table("assessment_questions")
    for name in reversed(ENUMS):
        sa.Enum(name=name).drop(op.get_bind(), checkfirst=True)
