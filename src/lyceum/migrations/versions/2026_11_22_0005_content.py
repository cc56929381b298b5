"""Course files and indexed course material (chunks with embeddings and text search)

Revision ID: 0005_content
Revises: 0004_courses
Create Date: 2026-11-22 04:27:08.773409
"""

from collections.abc import Sequence

import pgvector.sqlalchemy
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005_content"
down_revision: str | None = "0004_courses"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # English material: English stemming after unaccent ("cells" finds "cell"); other
    # languages use the accent-blind `lyceum` configuration of 0004.
    op.execute("CREATE TEXT SEARCH CONFIGURATION lyceum_english (COPY = english)")
    op.execute(
        "ALTER TEXT SEARCH CONFIGURATION lyceum_english "
        "ALTER MAPPING FOR hword, hword_part, word WITH unaccent, english_stem"
    )
    op.create_table(
        "course_files",
        sa.Column("course_id", sa.Uuid(), nullable=False),
        sa.Column("uploaded_by", sa.Uuid(), nullable=True),
        sa.Column("display_name", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("storage_key", sa.String(length=255), nullable=False),
        sa.Column("thumbnail_key", sa.String(length=255), nullable=True),
        sa.Column(
            "status",
            sa.Enum("pending", "processing", "ready", "failed", name="file_status"),
            nullable=False,
        ),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("page_count", sa.Integer(), nullable=True),
        sa.Column("chunk_count", sa.Integer(), nullable=False),
        sa.Column("indexed_at", sa.DateTime(timezone=True), nullable=True),
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
        sa.CheckConstraint("size_bytes >= 0", name=op.f("ck_course_files_size_not_negative")),
        sa.ForeignKeyConstraint(
            ["course_id"],
            ["courses.id"],
            name=op.f("fk_course_files_course_id_courses"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["uploaded_by"],
            ["users.id"],
            name=op.f("fk_course_files_uploaded_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_course_files")),
        sa.UniqueConstraint("course_id", "sha256", name=op.f("uq_course_files_course_id_sha256")),
        sa.UniqueConstraint("storage_key", name=op.f("uq_course_files_storage_key")),
    )
    op.create_index(op.f("ix_course_files_course_id"), "course_files", ["course_id"], unique=False)
    op.create_table(
        "content_chunks",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("course_id", sa.Uuid(), nullable=False),
        sa.Column("file_id", sa.Uuid(), nullable=True),
        sa.Column("lesson_id", sa.Uuid(), nullable=True),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("heading", sa.Text(), nullable=False),
        sa.Column("page", sa.Integer(), nullable=True),
        sa.Column("token_count", sa.Integer(), nullable=False),
        sa.Column("search_config", postgresql.REGCONFIG(), nullable=False),
        sa.Column("embedding", pgvector.sqlalchemy.vector.VECTOR(dim=384), nullable=False),
        sa.Column(
            "search",
            postgresql.TSVECTOR(),
            sa.Computed(
                "setweight(to_tsvector(search_config, heading), 'B') || setweight(to_tsvector(search_config, text), 'D')",
                persisted=True,
            ),
            nullable=False,
        ),
        sa.CheckConstraint(
            "(file_id IS NULL) <> (lesson_id IS NULL)", name=op.f("ck_content_chunks_one_source")
        ),
        sa.ForeignKeyConstraint(
            ["course_id"],
            ["courses.id"],
            name=op.f("fk_content_chunks_course_id_courses"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["file_id"],
            ["course_files.id"],
            name=op.f("fk_content_chunks_file_id_course_files"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["lesson_id"],
            ["lessons.id"],
            name=op.f("fk_content_chunks_lesson_id_lessons"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_content_chunks")),
    )
    op.create_index(
        op.f("ix_content_chunks_course_id"), "content_chunks", ["course_id"], unique=False
    )
    op.create_index(
        "ix_content_chunks_embedding",
        "content_chunks",
        ["embedding"],
        unique=False,
        postgresql_using="hnsw",
        postgresql_with={"m": 16, "ef_construction": 64},
        postgresql_ops={"embedding": "vector_cosine_ops"},
    )
    op.create_index(op.f("ix_content_chunks_file_id"), "content_chunks", ["file_id"], unique=False)
    op.create_index(
        op.f("ix_content_chunks_lesson_id"), "content_chunks", ["lesson_id"], unique=False
    )
    op.create_index(
        "ix_content_chunks_search",
        "content_chunks",
        ["search"],
        unique=False,
        postgresql_using="gin",
    )
    op.add_column("lessons", sa.Column("file_id", sa.Uuid(), nullable=True))
    op.create_index(op.f("ix_lessons_file_id"), "lessons", ["file_id"], unique=False)
    op.create_foreign_key(
        op.f("fk_lessons_file_id_course_files"),
        "lessons",
        "course_files",
        ["file_id"],
        ["id"],
        ondelete="SET NULL",
    )


def downgrade() -> None:
    # ### commands auto generated by Alembic - please adjust! ###
    op.drop_constraint(op.f("fk_lessons_file_id_course_files"), "lessons", type_="foreignkey")
    op.drop_index(op.f("ix_lessons_file_id"), table_name="lessons")
    op.drop_column("lessons", "file_id")
    op.drop_index("ix_content_chunks_search", table_name="content_chunks", postgresql_using="gin")
    op.drop_index(op.f("ix_content_chunks_lesson_id"), table_name="content_chunks")
    op.drop_index(op.f("ix_content_chunks_file_id"), table_name="content_chunks")
    op.drop_index(
        "ix_content_chunks_embedding",
        table_name="content_chunks",
        postgresql_using="hnsw",
        postgresql_with={"m": 16, "ef_construction": 64},
        postgresql_ops={"embedding": "vector_cosine_ops"},
    )
    op.drop_index(op.f("ix_content_chunks_course_id"), table_name="content_chunks")
    op.drop_table("content_chunks")
    op.drop_index(op.f("ix_course_files_course_id"), table_name="course_files")
    op.drop_table("course_files")
    sa.Enum(name="file_status").drop(op.get_bind(), checkfirst=True)
    op.execute("DROP TEXT SEARCH CONFIGURATION IF EXISTS lyceum_english")
