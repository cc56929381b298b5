"""Migrations on a fresh database of their own: the HNSW rebuild of migration 0011 runs
both ways, builds its index without a transaction (CONCURRENTLY) and leaves one valid
index under the name the models declare."""

from __future__ import annotations

import os

import psycopg
from alembic import command

from lyceum.kit.db import alembic_config
from lyceum.kit.embedded_pg import EmbeddedPostgres
from lyceum.models.content import ContentChunk


def _embedding_indexes(url: str) -> list[tuple[str, str, bool]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            """
            SELECT c.relname, pg_get_indexdef(c.oid), i.indisvalid
            FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indexrelid
            WHERE i.indrelid = 'content_chunks'::regclass AND c.relname LIKE '%embedding%'
            ORDER BY c.relname
            """
        ).fetchall()
    return [(str(name), str(definition), bool(valid)) for name, definition, valid in rows]


def test_the_hnsw_rebuild_runs_both_ways_and_matches_the_model(
    embedded_pg: EmbeddedPostgres,
) -> None:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    url = embedded_pg.ensure_database(f"lyceum_migrations_{worker}", fresh=True)
    config = alembic_config(url)
    command.upgrade(config, "0010_chunk_storage")
    with psycopg.connect(url) as conn:
        # A build interrupted half-way (CONCURRENTLY leaves an invalid index behind)
        # must not stop the migration from running again.
        conn.execute("CREATE INDEX ix_content_chunks_embedding_build ON content_chunks (course_id)")
    command.upgrade(config, "head")
    ((name, definition, valid),) = _embedding_indexes(url)
    table = ContentChunk.metadata.tables[ContentChunk.__tablename__]
    declared = next(index for index in table.indexes if index.name == name)
    assert declared.dialect_options["postgresql"]["with"] == {"m": 16, "ef_construction": 128}
    assert valid
    assert "USING hnsw (embedding vector_cosine_ops)" in definition
    assert "m='16'" in definition and "ef_construction='128'" in definition

    command.downgrade(config, "0010_chunk_storage")
    ((name, definition, valid),) = _embedding_indexes(url)
    assert name == "ix_content_chunks_embedding" and valid
    assert "ef_construction='64'" in definition

    command.upgrade(config, "head")
    ((_, definition, valid),) = _embedding_indexes(url)
    assert valid and "ef_construction='128'" in definition
