"""Everything one process holds open: database, job pool, cache, rate limiter, storage,
mailer, revocation announcements, the sandbox that parses uploads, and the embedded
PostgreSQL server when no
DATABASE_URL is configured. Requests reach it through `app.state.runtime`, jobs through
`kit.jobs.resources(context)`."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from functools import cached_property

import psycopg_pool
import structlog
from alembic import command

from lyceum.config import Settings
from lyceum.kit.ai.models import close_streaming_clients
from lyceum.kit.cache import Cache, create_cache
from lyceum.kit.db import Database, alembic_config, migration_state
from lyceum.kit.embedded_pg import EmbeddedPostgres, start_embedded
from lyceum.kit.jobs import close_jobs, open_jobs
from lyceum.kit.mail import Mailer
from lyceum.kit.ratelimit import RateLimiter
from lyceum.kit.revocations import Revocations
from lyceum.kit.sandbox import Sandbox
from lyceum.kit.security import SecretBox, TokenCodec, hashing_gate, verify_password
from lyceum.kit.storage import Storage, create_storage
from lyceum.kit.tracing import instrument_engine

logger = structlog.get_logger("lyceum.runtime")

# What the sandbox runs: text extraction and image decoding (kit.sandbox `preload`).
SANDBOX_PRELOAD = ("lyceum.kit.documents.extraction", "lyceum.kit.images")


class UnmigratedDatabase(RuntimeError):
    pass


def resolve_database_url(settings: Settings) -> tuple[str, EmbeddedPostgres | None]:
    """The configured URL, or the embedded server's (started if needed)."""
    if settings.database_url:
        return settings.database_url, None
    server = start_embedded(settings.data_dir)
    return server.ensure_database(), server


async def start_hashing_threads() -> None:
    """Start the password-hashing threads (one per core) before this process starts any
    other thread, by running the dummy verification once on each.

    glibc gives each new thread a malloc arena, and a thread started after others have
    ended inherits one of their arenas, whose heap still holds what they allocated.
    argon2id needs a 19 MiB block per hash; in such an arena it does not fit, so glibc
    maps a fresh heap for every hash and unmaps it afterwards: ~2,000 page faults and
    ~2 ms of kernel time per verification, a tenth of the hash (bench/login.py). Threads
    started first get arenas of their own and keep reusing the same block."""
    await asyncio.gather(*(verify_password("", None) for _ in range(os.cpu_count() or 1)))


def upgrade_to_head(database_url: str) -> None:
    command.upgrade(alembic_config(database_url), "head")


@dataclass
class Runtime:
    settings: Settings
    database_url: str
    database: Database
    cache: Cache
    rate_limiter: RateLimiter
    job_pool: psycopg_pool.AsyncConnectionPool | None = None
    embedded: EmbeddedPostgres | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    async def start(
        cls,
        settings: Settings,
        *,
        database_url: str | None = None,
        migrate: bool | None = None,
        job_pool_size: int = 4,
    ) -> Runtime:
        hashing_gate.configure(
            queue_limit=settings.password_hash_queue,
            max_wait=settings.password_hash_max_wait_seconds,
        )
        await start_hashing_threads()
        embedded = None
        if database_url is None:
            url, embedded = await asyncio.to_thread(resolve_database_url, settings)
        else:
            url = database_url
        # Embedded mode migrates on start; a configured server must be migrated by an
        # operator (`lyceum migrate`) so replicas never race to change the schema.
        should_migrate = embedded is not None if migrate is None else migrate
        if should_migrate:
            await asyncio.to_thread(upgrade_to_head, url)
        database = Database(
            url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout=settings.db_pool_timeout,
        )
        instrument_engine(database.engine)  # SQL spans, when tracing is on
        try:
            state = await migration_state(database.engine)
            if not state.up_to_date:
                raise UnmigratedDatabase(
                    f"the database is at revision {sorted(state.current) or 'none'} but this "
                    f"version of Lyceum needs {sorted(state.heads)}: run `lyceum migrate` first"
                )
            job_pool = await open_jobs(url, max_size=job_pool_size)
        except BaseException:
            await database.dispose()
            if embedded is not None:
                await asyncio.to_thread(embedded.stop)
            raise
        return cls(
            settings=settings,
            database_url=url,
            database=database,
            cache=create_cache(settings.redis_url),
            rate_limiter=RateLimiter(settings.redis_url),
            job_pool=job_pool,
            embedded=embedded,
        )

    @cached_property
    def tokens(self) -> TokenCodec:
        return TokenCodec(
            self.settings.secret_key_value(),
            issuer=self.settings.jwt_issuer,
            audience=self.settings.jwt_audience,
        )

    @cached_property
    def secret_box(self) -> SecretBox:
        return SecretBox(self.settings.secret_key_value())

    @cached_property
    def storage(self) -> Storage:
        return create_storage(self.settings)

    @cached_property
    def mailer(self) -> Mailer:
        return Mailer(self.settings)

    @cached_property
    def revocations(self) -> Revocations:
        return Revocations(self.settings.redis_url)

    @cached_property
    def sandbox(self) -> Sandbox:
        """Where uploaded files and images are parsed (child processes, started on
        first use)."""
        return Sandbox(
            processes=self.settings.sandbox_processes,
            memory_bytes=self.settings.sandbox_memory_mb * 1024 * 1024,
            preload=SANDBOX_PRELOAD,
        )

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):
                logger.debug("background_task_stopped", task=task.get_name())
        if self.job_pool is not None:
            await close_jobs(self.job_pool)
        await self.cache.close()
        if "storage" in self.__dict__:  # only if it was ever used
            await self.storage.close()
        if "revocations" in self.__dict__:
            await self.revocations.close()
        if "sandbox" in self.__dict__:
            self.sandbox.close()
        await close_streaming_clients()
        await self.database.dispose()
        if self.embedded is not None:
            await asyncio.to_thread(self.embedded.stop)
