"""The periodic cleanups: rows past their retention and stored objects no row refers
to. Each run takes a PostgreSQL advisory lock of its own, so two workers on one tick
(or a tick while the last run still works) do the work once: the second finds the lock
taken and does nothing. Rows go in bounded batches, each its own transaction, so a
large backlog never holds a long transaction or a large lock set."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.config import Settings
from lyceum.kit.storage import Storage
from lyceum.system import repository

logger = structlog.get_logger("lyceum.cleanup")

BATCH = 1000
# Stored objects a row refers to; certificates are rewritten in place, never orphaned.
ORPHAN_PREFIXES = ("avatars/", "covers/", "courses/")

# A session whose block commits when it returns (kit.jobs.transaction in a worker).
Sessions = Callable[[], AbstractAsyncContextManager[AsyncSession]]
BatchDelete = Callable[[AsyncSession, dt.datetime, int], Awaitable[int]]


@asynccontextmanager
async def exclusive(sessions: Sessions, name: str) -> AsyncIterator[bool]:
    """Whether this run holds the cleanup `name` (a session-level advisory lock, on a
    connection held for the run and released at its end)."""
    async with sessions() as holder:
        key = f"lyceum.cleanup:{name}"
        mine = await repository.try_lock(holder, key)
        try:
            yield mine
        finally:
            if mine:
                await repository.unlock(holder, key)


async def purge(
    sessions: Sessions,
    name: str,
    deletes: tuple[BatchDelete, ...],
    cutoff: dt.datetime,
    *,
    batch: int = BATCH,
) -> int | None:
    """Run each batch delete until it comes back short; the rows deleted, or None when
    another run holds this cleanup."""
    async with exclusive(sessions, name) as mine:
        if not mine:
            logger.info("cleanup_skipped", cleanup=name, reason="another run holds it")
            return None
        total = 0
        for delete in deletes:
            while True:
                async with sessions() as session:
                    deleted = await delete(session, cutoff, batch)
                total += deleted
                if deleted < batch:
                    break
        logger.info("cleanup_done", cleanup=name, deleted=total, cutoff=cutoff.isoformat())
        return total


async def finished_jobs(sessions: Sessions, settings: Settings, now: dt.datetime) -> int | None:
    cutoff = now - dt.timedelta(days=settings.job_retention_days)
    return await purge(sessions, "finished_jobs", (repository.delete_finished_jobs,), cutoff)


async def login_sessions(sessions: Sessions, settings: Settings, now: dt.datetime) -> int | None:
    cutoff = now - dt.timedelta(days=settings.refresh_token_retention_days)
    deletes = (repository.delete_ended_login_sessions, repository.delete_expired_refresh_tokens)
    return await purge(sessions, "login_sessions", deletes, cutoff)


async def one_time_tokens(sessions: Sessions, settings: Settings, now: dt.datetime) -> int | None:
    cutoff = now - dt.timedelta(days=settings.one_time_token_retention_days)
    deletes = (repository.delete_spent_one_time_tokens,)
    return await purge(sessions, "one_time_tokens", deletes, cutoff)


async def mail_log(sessions: Sessions, settings: Settings, now: dt.datetime) -> int | None:
    """The send logs: mail deliveries and the SMS / push send records, older than
    MAIL_LOG_RETENTION_DAYS."""
    cutoff = now - dt.timedelta(days=settings.mail_log_retention_days)
    deletes = (repository.delete_old_mail_deliveries, repository.delete_old_channel_sends)
    return await purge(sessions, "mail_log", deletes, cutoff)


async def orphan_uploads(
    sessions: Sessions, storage: Storage, settings: Settings, now: dt.datetime
) -> int | None:
    """Delete avatars, covers and course files (and thumbnails) that no row refers to
    and that are older than ORPHAN_UPLOAD_GRACE_HOURS: an upload is stored before its
    row commits, so a younger object may be one whose row is on its way."""
    cutoff = now - dt.timedelta(hours=settings.orphan_upload_grace_hours)
    async with exclusive(sessions, "orphan_uploads") as mine:
        if not mine:
            logger.info("cleanup_skipped", cleanup="orphan_uploads", reason="another run holds it")
            return None
        deleted = 0
        for prefix in ORPHAN_PREFIXES:
            candidates: list[str] = []
            async for stored in storage.list(prefix):
                if stored.modified_at < cutoff:
                    candidates.append(stored.key)
                if len(candidates) >= BATCH:
                    deleted += await _delete_unreferenced(sessions, storage, candidates)
                    candidates = []
            if candidates:
                deleted += await _delete_unreferenced(sessions, storage, candidates)
        logger.info("cleanup_done", cleanup="orphan_uploads", deleted=deleted)
        return deleted


async def _delete_unreferenced(sessions: Sessions, storage: Storage, keys: list[str]) -> int:
    async with sessions() as session:
        kept = await repository.referenced_keys(session, keys)
    orphans = [key for key in keys if key not in kept]
    for key in orphans:
        await storage.delete(key)
    return len(orphans)
