"""Lessons' indexing state (a row per lesson kept in step with its text by a trigger),
and offline tutor answers no longer counted as provider tokens

Revision ID: 0016_ai_paths
Revises: 0015_user_search_unaccent
Create Date: 2026-12-03 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0016_ai_paths"
down_revision: str | None = "0015_user_search_unaccent"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A new lesson is waiting to be indexed; an edit of its title or text makes it wait
# again, with a new version (the indexing job marks `ready` only the version it read).
# In the writer's own transaction, whatever code wrote the lesson.
FOLLOW_LESSON_TEXT = """
CREATE FUNCTION lesson_indexing_follows_text() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO lesson_indexing (lesson_id, course_id, status, version, updated_at)
        VALUES (NEW.id, NEW.course_id, 'pending', 1, now());
    ELSIF NEW.title IS DISTINCT FROM OLD.title OR NEW.content IS DISTINCT FROM OLD.content THEN
        UPDATE lesson_indexing
        SET status = 'pending', version = version + 1, failure_reason = NULL,
            updated_at = now()
        WHERE lesson_id = NEW.id;
    END IF;
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "lesson_indexing",
        sa.Column("lesson_id", sa.Uuid(), nullable=False),
        sa.Column("course_id", sa.Uuid(), nullable=False),
        sa.Column(
            "status",
            postgresql.ENUM(
                "pending", "processing", "ready", "failed", name="file_status", create_type=False
            ),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("indexed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["course_id"],
            ["courses.id"],
            name=op.f("fk_lesson_indexing_course_id_courses"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["lesson_id"],
            ["lessons.id"],
            name=op.f("fk_lesson_indexing_lesson_id_lessons"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("lesson_id", name=op.f("pk_lesson_indexing")),
    )
    op.create_index(
        op.f("ix_lesson_indexing_course_id"), "lesson_indexing", ["course_id"], unique=False
    )
    # Lessons from before: indexed if they have passages (or no text to index); one with
    # text but no passages was never indexed, and says how to fix it.
    op.execute(
        """
        INSERT INTO lesson_indexing
            (lesson_id, course_id, status, version, failure_reason, indexed_at)
        SELECT l.id, l.course_id,
               CASE WHEN indexed.any OR btrim(l.content) = '' THEN 'ready'
                    ELSE 'failed' END::file_status,
               1,
               CASE WHEN indexed.any OR btrim(l.content) = '' THEN NULL
                    ELSE 'This lesson was never indexed; run `lyceum reindex` or edit it.' END,
               CASE WHEN indexed.any THEN now() END
        FROM lessons AS l,
             LATERAL (SELECT EXISTS (SELECT 1 FROM content_chunks AS c
                                     WHERE c.lesson_id = l.id) AS any) AS indexed
        """
    )
    op.execute(FOLLOW_LESSON_TEXT)
    op.execute(
        "CREATE TRIGGER lesson_indexing_follows_text "
        "AFTER INSERT OR UPDATE OF title, content ON lessons "
        "FOR EACH ROW EXECUTE FUNCTION lesson_indexing_follows_text()"
    )
    # Offline answers quote the course material: no provider, no tokens, no cost.
    op.execute(
        "UPDATE tutor_messages SET tokens_in = 0, tokens_out = 0 "
        "WHERE provider = 'offline' AND (tokens_in <> 0 OR tokens_out <> 0)"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER lesson_indexing_follows_text ON lessons")
    op.execute("DROP FUNCTION lesson_indexing_follows_text()")
    op.drop_index(op.f("ix_lesson_indexing_course_id"), table_name="lesson_indexing")
    op.drop_table("lesson_indexing")
