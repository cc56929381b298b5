"""Every query of the periodic cleanups: each deletes one bounded batch of rows past
their retention (`FOR UPDATE SKIP LOCKED`: two runs at once never take the same rows),
says which stored object keys rows still refer to, and takes the advisory lock that
keeps two runs of one cleanup apart."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


async def try_lock(session: AsyncSession, key: str) -> bool:
    """Take the session-level advisory lock `key` if no other connection holds it."""
    taken = await session.execute(text("SELECT pg_try_advisory_lock(hashtext(:key))"), {"key": key})
    return bool(taken.scalar_one())


async def unlock(session: AsyncSession, key: str) -> None:
    await session.execute(text("SELECT pg_advisory_unlock(hashtext(:key))"), {"key": key})


async def _delete(session: AsyncSession, sql: str, cutoff: dt.datetime, limit: int) -> int:
    rows = await session.execute(text(sql), {"cutoff": cutoff, "limit": limit})
    return len(rows.all())


async def delete_finished_jobs(session: AsyncSession, cutoff: dt.datetime, limit: int) -> int:
    """Jobs that ended (succeeded, failed, cancelled, aborted) before `cutoff`: nothing
    happened to them since (their events, failures and periodic links go with them)."""
    return await _delete(
        session,
        """
        DELETE FROM procrastinate_jobs WHERE id IN (
            SELECT j.id FROM procrastinate_jobs AS j
            WHERE j.status IN ('succeeded', 'failed', 'cancelled', 'aborted')
              AND NOT EXISTS (SELECT 1 FROM procrastinate_events AS e
                              WHERE e.job_id = j.id AND e.at >= :cutoff)
            ORDER BY j.id LIMIT :limit FOR UPDATE SKIP LOCKED
        ) RETURNING id
        """,
        cutoff,
        limit,
    )


async def delete_ended_login_sessions(
    session: AsyncSession, cutoff: dt.datetime, limit: int
) -> int:
    """Logins that expired or were revoked before `cutoff`, with their refresh tokens."""
    return await _delete(
        session,
        """
        DELETE FROM login_sessions WHERE id IN (
            SELECT id FROM login_sessions
            WHERE expires_at < :cutoff OR revoked_at < :cutoff
            ORDER BY id LIMIT :limit FOR UPDATE SKIP LOCKED
        ) RETURNING id
        """,
        cutoff,
        limit,
    )


async def delete_expired_refresh_tokens(
    session: AsyncSession, cutoff: dt.datetime, limit: int
) -> int:
    """Refresh tokens of a login still alive that expired before `cutoff` (a replay of
    one is refused as unknown as it was refused as expired)."""
    return await _delete(
        session,
        """
        DELETE FROM refresh_tokens WHERE id IN (
            SELECT id FROM refresh_tokens WHERE expires_at < :cutoff
            ORDER BY id LIMIT :limit FOR UPDATE SKIP LOCKED
        ) RETURNING id
        """,
        cutoff,
        limit,
    )


async def delete_spent_one_time_tokens(
    session: AsyncSession, cutoff: dt.datetime, limit: int
) -> int:
    """Verification, password-reset and MFA-step tokens used or expired before `cutoff`."""
    return await _delete(
        session,
        """
        DELETE FROM one_time_tokens WHERE id IN (
            SELECT id FROM one_time_tokens
            WHERE used_at < :cutoff OR expires_at < :cutoff
            ORDER BY id LIMIT :limit FOR UPDATE SKIP LOCKED
        ) RETURNING id
        """,
        cutoff,
        limit,
    )


async def delete_old_mail_deliveries(session: AsyncSession, cutoff: dt.datetime, limit: int) -> int:
    """Mail delivery log rows written before `cutoff` (no job retries that long)."""
    return await _delete(
        session,
        """
        DELETE FROM mail_deliveries WHERE key IN (
            SELECT key FROM mail_deliveries WHERE created_at < :cutoff
            ORDER BY key LIMIT :limit FOR UPDATE SKIP LOCKED
        ) RETURNING key
        """,
        cutoff,
        limit,
    )


async def delete_old_channel_sends(session: AsyncSession, cutoff: dt.datetime, limit: int) -> int:
    """SMS and push send records written before `cutoff` (a retried send looks for its
    key for a day at most)."""
    return await _delete(
        session,
        """
        DELETE FROM channel_sends WHERE idempotency_key IN (
            SELECT idempotency_key FROM channel_sends WHERE created_at < :cutoff
            ORDER BY idempotency_key LIMIT :limit FOR UPDATE SKIP LOCKED
        ) RETURNING idempotency_key
        """,
        cutoff,
        limit,
    )


async def referenced_keys(session: AsyncSession, keys: Sequence[str]) -> set[str]:
    """Which of `keys` a row refers to: an avatar, a course cover, a course file or its
    thumbnail."""
    rows = await session.execute(
        text(
            """
            SELECT avatar_key FROM users WHERE avatar_key = ANY(:keys)
            UNION SELECT cover_key FROM courses WHERE cover_key = ANY(:keys)
            UNION SELECT storage_key FROM course_files WHERE storage_key = ANY(:keys)
            UNION SELECT thumbnail_key FROM course_files WHERE thumbnail_key = ANY(:keys)
            """
        ),
        {"keys": list(keys)},
    )
    return {key for (key,) in rows}
