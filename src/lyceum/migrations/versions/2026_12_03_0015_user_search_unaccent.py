"""Accent-blind admin user search: the users' trigram index over unaccented text

Revision ID: 0015_user_search_unaccent
Revises: 0014_catalog_search
Create Date: 2026-12-03 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_user_search_unaccent"
down_revision: str | None = "0014_catalog_search"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# "tran" finds "Trần" and "duc" finds "Đức": the same expression as
# IdentityRepository.search_users, through the IMMUTABLE lyceum_unaccent() of 0004.
UNACCENTED = "(lyceum_unaccent(lower(email) || ' ' || lower(full_name))) gin_trgm_ops"
PLAIN = "(lower(email) || ' ' || lower(full_name)) gin_trgm_ops"


def _index(expression: str) -> None:
    op.create_index(
        "ix_users_search_trgm",
        "users",
        [sa.literal_column(expression)],
        unique=False,
        postgresql_using="gin",
    )


def upgrade() -> None:
    op.drop_index("ix_users_search_trgm", table_name="users", postgresql_using="gin")
    _index(UNACCENTED)


def downgrade() -> None:
    op.drop_index("ix_users_search_trgm", table_name="users", postgresql_using="gin")
    _index(PLAIN)
