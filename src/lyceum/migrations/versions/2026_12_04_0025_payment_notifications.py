"""Notifications about payments: the `payments` category (receipts, refunds)

PostgreSQL adds a value to an enum type in place. Taking it out again means rebuilding
the type; the downgrade first deletes what used it (payments notifications and the
preference rows of that category).

Revision ID: 0025_payment_notifications
Revises: 0024_payments
Create Date: 2026-12-04 16:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0025_payment_notifications"
down_revision: str | None = "0024_payments"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PREVIOUS = "'security', 'course_activity', 'grades', 'reminders', 'announcements', 'weekly_digest'"


def upgrade() -> None:
    op.execute("ALTER TYPE notification_category ADD VALUE IF NOT EXISTS 'payments'")


def downgrade() -> None:
    op.execute("DELETE FROM notifications WHERE category = 'payments'")
    op.execute("DELETE FROM notification_preferences WHERE category = 'payments'")
    op.execute("ALTER TYPE notification_category RENAME TO notification_category_old")
    op.execute(f"CREATE TYPE notification_category AS ENUM ({PREVIOUS})")
    for table in ("notifications", "notification_preferences"):
        op.execute(
            f"ALTER TABLE {table} ALTER COLUMN category TYPE notification_category"
            " USING category::text::notification_category"
        )
    op.execute("DROP TYPE notification_category_old")
