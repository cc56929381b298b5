"""Catalog search in each course's language, and a vocabulary for "did you mean"

Revision ID: 0014_catalog_search
Revises: 0013_course_stats
Create Date: 2026-12-03 19:00:00

English courses are indexed with English stemming (after unaccent), other languages
accent-blind as before. `catalog_terms` holds the words of the published catalog (its
titles, subtitles, tags, descriptions and lesson titles), refreshed by a periodic job,
with a trigram index, so a misspelt query word can be corrected.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014_catalog_search"
down_revision: str | None = "0013_course_stats"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _weighted_document(config: str) -> str:
    return (
        f"setweight(to_tsvector('{config}'::regconfig, coalesce(title, '')), 'A') || "
        f"setweight(to_tsvector('{config}'::regconfig, coalesce(subtitle, '') || ' ' || "
        f"coalesce(tags_text, '')), 'B') || "
        f"setweight(to_tsvector('{config}'::regconfig, coalesce(description, '')), 'C') || "
        f"setweight(to_tsvector('{config}'::regconfig, coalesce(lesson_titles, '')), 'D')"
    )


BY_LANGUAGE = (
    f"CASE WHEN lower(language) LIKE 'en%' THEN {_weighted_document('lyceum_english')} "
    f"ELSE {_weighted_document('lyceum')} END"
)
SIMPLE = _weighted_document("lyceum")

# Schema-qualified: PostgreSQL 17+ builds and refreshes materialized views with a
# search_path of pg_catalog only.
TERMS = """
CREATE MATERIALIZED VIEW catalog_terms AS
SELECT word AS term, ndoc AS documents
FROM ts_stat($$
    SELECT to_tsvector('public.lyceum'::regconfig, title || ' ' || subtitle || ' '
                       || tags_text || ' ' || description || ' ' || lesson_titles)
    FROM public.courses WHERE status = 'published'
$$)
WHERE length(word) BETWEEN 3 AND 40 AND word !~ '^[0-9]+$'
WITH DATA
"""


def _search_column(expression: str) -> None:
    op.execute("DROP INDEX IF EXISTS ix_courses_search")
    op.execute("ALTER TABLE courses DROP COLUMN search")
    op.execute(
        f"ALTER TABLE courses ADD COLUMN search tsvector "
        f"GENERATED ALWAYS AS ({expression}) STORED NOT NULL"
    )
    op.execute("CREATE INDEX ix_courses_search ON courses USING gin (search)")


def upgrade() -> None:
    _search_column(BY_LANGUAGE)
    op.execute(TERMS)
    # Unique: REFRESH ... CONCURRENTLY needs it (searches keep reading meanwhile).
    op.execute("CREATE UNIQUE INDEX ix_catalog_terms_term ON catalog_terms (term)")
    op.execute("CREATE INDEX ix_catalog_terms_trgm ON catalog_terms USING gin (term gin_trgm_ops)")


def downgrade() -> None:
    op.execute("DROP MATERIALIZED VIEW IF EXISTS catalog_terms")
    _search_column(SIMPLE)
