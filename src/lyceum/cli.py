"""The `lyceum` command: serve, worker, migrate, send-test-mail, jobs."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import structlog
import typer
from alembic import command
from alembic.script import ScriptDirectory
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.config import Settings, SettingsError, load_settings
from lyceum.kit.db import (
    MIGRATIONS_DIR,
    Database,
    alembic_config,
    migration_state,
    unit_of_work,
)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
R = TypeVar("R")

cli = typer.Typer(help="Lyceum: AI tutor and learning platform backend.", no_args_is_help=True)
console = Console(stderr=True)


def _settings() -> Settings:
    """The settings every command starts from, with logging set up by them: LOG_LEVEL
    and LOG_FORMAT hold for every command, not only serve and worker (unconfigured,
    structlog would print every level, debug lines of each deferred job included)."""
    from lyceum.kit.logging import configure_logging

    try:
        settings = load_settings()
    except SettingsError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(code=2) from None
    configure_logging(settings.log_level, settings.effective_log_format)
    return settings


def _pending_revisions(database_url: str) -> list[str]:
    async def current() -> set[str]:
        database = Database(database_url, pool_size=1, max_overflow=0)
        try:
            return (await migration_state(database.engine)).current
        finally:
            await database.dispose()

    applied = asyncio.run(current())
    script = ScriptDirectory(str(MIGRATIONS_DIR))
    pending = []
    for revision in script.walk_revisions():  # newest first
        if revision.revision in applied:
            break
        pending.append(revision.revision)
    return list(reversed(pending))


def migrate_with_progress(database_url: str) -> int:
    pending = _pending_revisions(database_url)
    config = alembic_config(database_url)
    with Progress(
        TextColumn("[bold]migrating[/bold] {task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task("", total=len(pending) or 1)
        for revision in pending:
            progress.update(task, description=revision)
            command.upgrade(config, revision)
            progress.advance(task)
        if not pending:
            progress.update(task, description="already at head", completed=1)
    return len(pending)


@cli.command()
def migrate() -> None:
    """Apply every pending database migration (alembic upgrade head)."""
    from lyceum.kit.runtime import resolve_database_url

    settings = _settings()
    with console.status("starting the database"):
        database_url, embedded = resolve_database_url(settings)
    try:
        applied = migrate_with_progress(database_url)
        console.print(f"[green]database is current[/green] ({applied} migration(s) applied)")
    finally:
        if embedded is not None:
            embedded.stop()


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port).")] = 8000,
    proxy_headers: Annotated[
        bool, typer.Option(help="Trust X-Forwarded-* from the load balancer.")
    ] = False,
) -> None:
    """Run the HTTP API. Without DATABASE_URL: embedded PostgreSQL (migrated on start)
    and job workers: user-facing queues in this process, bulk queues (indexing, AI
    scoring) in a child process at a lower CPU priority (EMBEDDED_BULK_WORKER)."""
    import uvicorn

    from lyceum.app import create_app
    from lyceum.kit.listener import listen, reachable_url
    from lyceum.kit.runtime import resolve_database_url
    from lyceum.kit.shutdown import GracefulServer

    settings = _settings()
    # Bound first: a port in use stops serve before anything starts, and the links
    # Lyceum builds (PUBLIC_BASE_URL unset) name the port it really listens on.
    try:
        sockets = listen(host, port)
    except OSError as error:
        console.print(f"[red]cannot listen on {host}:{port}: {error.strerror or error}[/red]")
        raise typer.Exit(code=1) from None
    port = sockets[0].getsockname()[1]
    url = reachable_url(host, port)
    try:
        settings.record_served_url(url)
    except OSError as error:
        console.print(
            f"[yellow]cannot record the served address in {settings.served_url_file} "
            f"({error.strerror or error}): a standalone worker on this data dir will not "
            "find it; set PUBLIC_BASE_URL[/yellow]"
        )
    if settings.embedded_database:
        # Start and migrate before uvicorn, with progress, so the first request is fast.
        with console.status("starting embedded PostgreSQL"):
            database_url, _ = resolve_database_url(settings)
        migrate_with_progress(database_url)
    settings.secret_key_value()
    console.print(f"Lyceum on {url}  (API docs: {url}/docs)")
    if settings.public_base_url is None:
        console.print(f"Links in mails and certificates: {url}  (set PUBLIC_BASE_URL to change)")
    app = create_app(settings)
    # SIGTERM: drain (kit.shutdown), with SHUTDOWN_GRACE_SECONDS for what is in flight.
    server = GracefulServer(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            log_config=None,
            proxy_headers=proxy_headers,
            server_header=False,
            timeout_graceful_shutdown=settings.shutdown_grace_seconds,
            timeout_keep_alive=settings.http_keep_alive_seconds,
        ),
        app.state.drain,
    )
    # uvicorn raises the signal it stopped on again once it is done: a stop asked for
    # is a clean exit (0), not a death by SIGTERM.
    for signum in STOP_SIGNALS:
        signal.signal(signum, lambda *_: None)
    server.run(sockets=sockets)
    if not server.started:
        raise typer.Exit(code=3)


@cli.command()
def worker(
    concurrency: Annotated[
        int | None, typer.Option(help="Jobs run at once (default: WORKER_CONCURRENCY).")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Worker name in logs.")] = None,
    queues: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated queues to serve (default: all), e.g. "
            "`mail,notifications,certificates,progress,webhooks,maintenance` for the "
            "user-facing ones or `indexing,ai` for bulk work."
        ),
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            help="Serve Prometheus metrics at http://0.0.0.0:<port>/metrics "
            "(default: WORKER_METRICS_PORT; 0 picks a free port, logged).",
            min=0,
            max=65535,
        ),
    ] = None,
) -> None:
    """Run a standalone job worker (several may run on several machines)."""
    from lyceum.kit import tracing
    from lyceum.kit.errortracking import init_sentry
    from lyceum.kit.jobs import queue_names, run_worker
    from lyceum.kit.runtime import Runtime, UnmigratedDatabase

    settings = _settings()
    try:
        served = queue_names([part.strip() for part in queues.split(",")] if queues else None)
    except ValueError as error:
        console.print(f"[red]--queues: {error}[/red]")
        raise typer.Exit(code=2) from None
    worker_name = name or f"{socket.gethostname()}-{os.getpid()}"
    slots = concurrency or settings.worker_concurrency

    logger = structlog.get_logger("lyceum.worker")

    async def run() -> None:
        # SIGINT and SIGTERM are handled from the first moment, not only once
        # procrastinate installs its own handlers: a stop asked for while the worker is
        # still starting lets it start, then stops it cleanly (exit 0) instead of
        # interrupting it half-way. A second signal stops at once.
        loop = asyncio.get_running_loop()
        stopping = asyncio.Event()

        def request_stop() -> None:
            stopping.set()
            for signum in STOP_SIGNALS:
                loop.remove_signal_handler(signum)

        for signum in STOP_SIGNALS:
            loop.add_signal_handler(signum, request_stop)
        tracing.configure(settings, role="worker")  # on when OTEL_EXPORTER_OTLP_ENDPOINT is set
        init_sentry(settings, role="worker")  # on when SENTRY_DSN is set
        try:
            runtime = await Runtime.start(settings, migrate=False, job_pool_size=slots + 2)
        except UnmigratedDatabase:
            console.print("[red]the database is not migrated: run `lyceum migrate` first[/red]")
            raise typer.Exit(code=1) from None
        stop_relaying: Callable[[], None] | None = None
        stop_metrics: Callable[[], None] | None = None
        port = metrics_port if metrics_port is not None else settings.worker_metrics_port
        if port is not None:
            from lyceum.kit.metrics import serve_metrics

            try:
                port, stop_metrics = serve_metrics(port)
            except OSError as error:
                await runtime.stop()
                console.print(f"[red]--metrics-port {port}: {error}[/red]")
                raise typer.Exit(code=2) from None
            logger.info("worker_metrics_serving", url=f"http://0.0.0.0:{port}/metrics")
            from lyceum.kit.looplag import watch_event_loop

            runtime.tasks.append(asyncio.create_task(watch_event_loop(), name="event-loop-lag"))
        if settings.redis_url:
            # Notifications a job writes reach online users through the API processes.
            from lyceum.chat.transport import redis_relay
            from lyceum.kit import live

            stop_relaying = live.register(redis_relay(settings.redis_url))
        try:
            if stopping.is_set():
                return
            logger.info(
                "worker_started", name=worker_name, concurrency=slots, queues=served or "all"
            )
            working = asyncio.create_task(
                run_worker(
                    runtime,
                    name=worker_name,
                    concurrency=slots,
                    queues=served,
                    install_signal_handlers=False,
                    shutdown_graceful_timeout=settings.shutdown_grace_seconds,
                )
            )
            asked = asyncio.create_task(stopping.wait())
            await asyncio.wait({working, asked}, return_when=asyncio.FIRST_COMPLETED)
            asked.cancel()
            if not working.done():
                # Stop fetching; running jobs get SHUTDOWN_GRACE_SECONDS, then those
                # still running are cut and go back to their queue (kit.jobs).
                logger.info(
                    "worker_draining",
                    name=worker_name,
                    grace_seconds=settings.shutdown_grace_seconds,
                )
                working.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await working
            else:
                working.result()  # the worker failed on its own: let it be seen
        finally:
            if stop_relaying is not None:
                stop_relaying()
            if stop_metrics is not None:
                stop_metrics()
            await runtime.stop()
            tracing.shutdown()  # sends the spans still buffered
            logger.info("worker_stopped", name=worker_name)

    asyncio.run(run())


@cli.command("create-admin")
def create_admin(
    email: Annotated[str | None, typer.Option(help="The admin's email.")] = None,
    password: Annotated[
        str | None, typer.Option(help="The admin's password (prompted when missing).")
    ] = None,
    full_name: Annotated[str, typer.Option(help="The admin's name.")] = "Administrator",
) -> None:
    """Create the first admin account, or promote an existing one (idempotent)."""
    from lyceum.identity.service import IdentityService
    from lyceum.kit.cache import create_cache
    from lyceum.kit.clock import SystemClock
    from lyceum.kit.errors import DomainError
    from lyceum.kit.ratelimit import RateLimiter
    from lyceum.kit.revocations import Revocations
    from lyceum.kit.runtime import resolve_database_url
    from lyceum.kit.security import SecretBox, TokenCodec
    from lyceum.kit.storage import create_storage

    settings = _settings()
    address = email or typer.prompt("Admin email")
    database_url, embedded = resolve_database_url(settings)

    async def run() -> tuple[bool, str]:
        database = Database(database_url, pool_size=1, max_overflow=0)
        # The servers' cache (Redis when set): a promotion forgets the account's kept
        # web session facts there, where the servers read them.
        cache = create_cache(settings.redis_url)
        try:
            if not (await migration_state(database.engine)).up_to_date:
                raise typer.Exit(code=1)
            async with database.sessionmaker() as session:
                secret = settings.secret_key_value()
                service = IdentityService(
                    session,
                    settings=settings,
                    tokens=TokenCodec(
                        secret, issuer=settings.jwt_issuer, audience=settings.jwt_audience
                    ),
                    secret_box=SecretBox(secret),
                    cache=cache,
                    limiter=RateLimiter(None),
                    storage=create_storage(settings),
                    # Promoting an account ends nobody's access: nothing to announce.
                    revocations=Revocations(None),
                    now=SystemClock().now(),
                )
                existing = await service.repo.user_by_email(address)
                secret_word = password
                if existing is None and secret_word is None:
                    secret_word = typer.prompt(
                        "Password", hide_input=True, confirmation_prompt=True
                    )
                async with unit_of_work(session):
                    user, created = await service.ensure_admin(
                        address, secret_word or "", full_name
                    )
                return created, str(user.id)
        finally:
            await cache.close()
            await database.dispose()

    try:
        created, user_id = asyncio.run(run())
    except DomainError as error:
        console.print(f"[red]{error.detail}[/red]")
        raise typer.Exit(code=2) from None
    except typer.Exit:
        console.print("[red]the database is not migrated: run `lyceum migrate` first[/red]")
        raise
    finally:
        if embedded is not None:
            embedded.stop()
    verb = "created" if created else "already existed; now an active admin (password unchanged)"
    console.print(f"[green]admin {address} {verb}[/green] (id {user_id})")


@cli.command()
def demo() -> None:
    """Load the demo catalog: 6 courses (English, Vietnamese), a teacher, a student, an admin."""
    from rich.table import Table

    from lyceum.demo import loader
    from lyceum.kit.cache import create_cache
    from lyceum.kit.clock import SystemClock
    from lyceum.kit.runtime import resolve_database_url

    settings = _settings()
    with console.status("starting the database"):
        database_url, embedded = resolve_database_url(settings)
    try:
        if embedded is not None:
            migrate_with_progress(database_url)

        async def run() -> loader.DemoResult:
            database = Database(database_url, pool_size=1, max_overflow=0)
            cache = create_cache(settings.redis_url)
            try:
                if not (await migration_state(database.engine)).up_to_date:
                    console.print("[red]the database is not migrated: run `lyceum migrate`[/red]")
                    raise typer.Exit(code=1)
                async with database.sessionmaker() as session:
                    async with unit_of_work(session):  # the catalog caches go stale after it
                        with console.status("loading demo courses"):
                            result = await loader.load_demo(
                                session, cache=cache, now=SystemClock().now()
                            )
                    return result
            finally:
                await cache.close()
                await database.dispose()

        result = asyncio.run(run())
    finally:
        if embedded is not None:
            embedded.stop()
    console.print(
        f"[green]demo catalog ready[/green]: {len(result.created)} course(s) added, "
        f"{len(result.existing)} already there"
    )
    table = Table("role", "email", "password")
    table.add_row("instructor", loader.INSTRUCTOR_EMAIL, loader.INSTRUCTOR_PASSWORD)
    table.add_row("student", loader.STUDENT_EMAIL, loader.STUDENT_PASSWORD)
    table.add_row("admin", loader.ADMIN_EMAIL, loader.ADMIN_PASSWORD)
    console.print(table)


@cli.command()
def reindex(
    course: Annotated[
        str | None, typer.Option(help="Only this course (its id); default: every course.")
    ] = None,
) -> None:
    """Rebuild the course-material index (lesson text and files) now, in this process."""
    import uuid

    from rich.progress import Progress

    from lyceum.content.indexing import (
        FileBudget,
        chunk_total,
        drop_file_chunks,
        files_to_index,
        index_file,
        index_lesson,
        lessons_to_index,
    )
    from lyceum.content.repository import FileRepository
    from lyceum.kit.ai.embedding import get_embedder
    from lyceum.kit.documents.extraction import ExtractionError, read_upload
    from lyceum.kit.documents.filetypes import FileKind
    from lyceum.kit.runtime import SANDBOX_PRELOAD, resolve_database_url
    from lyceum.kit.sandbox import Sandbox
    from lyceum.kit.storage import create_storage
    from lyceum.models.content import FileStatus

    settings = _settings()
    try:
        course_id = uuid.UUID(course) if course else None
    except ValueError:
        console.print(f"[red]--course must be a course id (a UUID), not {course!r}[/red]")
        raise typer.Exit(code=2) from None
    database_url, embedded = resolve_database_url(settings)

    async def run() -> tuple[int, int, int, int]:
        database = Database(database_url, pool_size=1, max_overflow=0)
        storage = create_storage(settings)
        sandbox = Sandbox(
            processes=1,
            memory_bytes=settings.sandbox_memory_mb * 1024 * 1024,
            preload=SANDBOX_PRELOAD,
        )
        budget = FileBudget.of(settings)
        failed = 0
        try:
            if not (await migration_state(database.engine)).up_to_date:
                console.print("[red]the database is not migrated: run `lyceum migrate`[/red]")
                raise typer.Exit(code=1)
            with console.status("loading the embedding model"):
                embedder = await asyncio.to_thread(get_embedder)
            async with database.sessionmaker() as session:
                lessons = await lessons_to_index(session, course_id)
                files = await files_to_index(session, course_id)
            with Progress(console=console) as progress:
                task = progress.add_task("indexing", total=len(lessons) + len(files))
                for lesson_id in lessons:
                    async with database.sessionmaker() as session, session.begin():
                        await index_lesson(session, lesson_id, embedder)
                    progress.advance(task)
                for file_id in files:
                    async with database.sessionmaker() as session, session.begin():
                        file = await FileRepository(session).get(file_id, for_update=True)
                        data = await storage.get(file.storage_key) if file else None
                        if file is not None and data is None:
                            file.status = FileStatus.failed
                            file.failure_reason = "The stored file is missing."
                            failed += 1
                        elif file is not None and data is not None:
                            try:
                                document = await read_upload(
                                    sandbox,
                                    FileKind(file.kind),
                                    data,
                                    budget.limits,
                                    budget.extraction_seconds,
                                )
                                async with session.begin_nested():
                                    await index_file(
                                        session,
                                        file,
                                        document,
                                        embedder,
                                        max_chunks=budget.max_chunks,
                                    )
                            except ExtractionError as error:
                                await drop_file_chunks(session, file.id)
                                file.status = FileStatus.failed
                                file.failure_reason = error.message
                                file.chunk_count = 0
                                file.truncated, file.notice = False, None
                                failed += 1
                    progress.advance(task)
            async with database.sessionmaker() as session:
                chunks = await chunk_total(session, course_id)
            return len(lessons), len(files), failed, chunks
        finally:
            sandbox.close()
            await storage.close()
            await database.dispose()

    try:
        lessons, files, failed, chunks = asyncio.run(run())
    finally:
        if embedded is not None:
            embedded.stop()
    console.print(
        f"[green]indexed[/green] {lessons} lesson(s) and {files} file(s) "
        f"({failed} failed): {chunks} chunk(s)"
    )


@cli.command()
def backup(
    output: Annotated[
        Path | None,
        typer.Option(help="The archive to write (default: lyceum-backup-<UTC time>.tar here)."),
    ] = None,
) -> None:
    """Back up the embedded database and the local files into one tar archive (exit 2
    with DATABASE_URL: back a server up with its own tools)."""
    import datetime as dt

    from lyceum.kit.backup import BackupRefused, create_backup, default_archive_name

    settings = _settings()
    now = dt.datetime.now(dt.UTC)
    target = output or Path(default_archive_name(now))
    try:
        with console.status("dumping the database and copying the files"):
            result = create_backup(settings, target, now=now)
    except BackupRefused as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(code=2) from None
    console.print(
        f"[green]backup written[/green] to {result.path} ({result.size:,} bytes: the "
        f"database at revision {', '.join(result.alembic_revision)} and "
        f"{result.file_count} file(s))"
    )
    typer.echo(str(result.path))


@cli.command()
def restore(
    archive: Annotated[Path, typer.Argument(help="An archive written by `lyceum backup`.")],
    force: Annotated[
        bool,
        typer.Option(help="Replace a data dir that already holds data (moved aside, not deleted)."),
    ] = False,
) -> None:
    """Restore a `lyceum backup` archive into the data dir (LYCEUM_DATA_DIR), checked
    first and moved into place only when complete; migrated if older than this version.

    Restore only archives you made yourself and kept private: an archive is not signed
    (its checksums catch damage, not tampering), its dump runs as the database
    superuser and its keys/secret_key becomes the signing key, so a crafted archive
    takes over the site."""
    from lyceum.kit.backup import BackupRefused, restore_backup

    settings = _settings()
    try:
        with console.status("checking the archive and restoring"):
            result = restore_backup(settings, archive, force=force)
    except BackupRefused as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(code=2) from None
    migrated = " (migrated to this version)" if result.migrated else ""
    console.print(
        f"[green]restored[/green] the backup of {result.created_at} into "
        f"{settings.data_dir}: the database at revision "
        f"{', '.join(result.alembic_revision)}{migrated} and {result.file_count} file(s)"
    )
    if result.previous is not None:
        console.print(f"the data it replaced is in {result.previous} (delete it when done)")
    if settings.secret_key is not None:
        console.print(
            "[yellow]SECRET_KEY is set: it must be the key the backed-up site used, or "
            "the secrets it encrypted (webhook signing keys, two-factor secrets) cannot "
            "be read[/yellow]"
        )


@cli.command("send-test-mail")
def send_test_mail(
    to: Annotated[str, typer.Option(help="Recipient address.")],
    note: Annotated[str, typer.Option(help="A line added to the message.")] = "",
) -> None:
    """Render and send the `test_message` mail now, to check SMTP (or the outbox)."""
    from lyceum.kit.mail import Mailer

    destination = asyncio.run(Mailer(_settings()).send("test_message", to, {"note": note}))
    console.print(f"[green]sent[/green] to {to} via {destination}")


# Job operations: `lyceum jobs ...` --------------------------------------------------------

jobs_cli = typer.Typer(
    help="Job operations: queues, failed jobs, retry, cancel.", no_args_is_help=True
)
cli.add_typer(jobs_cli, name="jobs")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON on stdout instead.")]


def _with_jobs_database(operation: Callable[[AsyncSession], Awaitable[R]]) -> R:
    """Run `operation` on a session of the configured database, committed if it
    returns; exit 1 when the database is not migrated."""
    from lyceum.kit.runtime import resolve_database_url

    settings = _settings()
    database_url, embedded = resolve_database_url(settings)

    async def run() -> R:
        database = Database(database_url, pool_size=1, max_overflow=0)
        try:
            if not (await migration_state(database.engine)).up_to_date:
                console.print("[red]the database is not migrated: run `lyceum migrate`[/red]")
                raise typer.Exit(code=1)
            async with database.sessionmaker() as session, unit_of_work(session):
                return await operation(session)
        finally:
            await database.dispose()

    try:
        return asyncio.run(run())
    finally:
        if embedded is not None:
            embedded.stop()


def _print_json(value: object) -> None:
    import json

    typer.echo(json.dumps(value, default=str, indent=2))


@jobs_cli.command("queues")
def jobs_queues(as_json: JsonOption = False) -> None:
    """Every queue: jobs by status and the age of the oldest waiting job."""
    from rich.table import Table

    from lyceum.kit import jobops

    figures = _with_jobs_database(jobops.queue_figures)
    if as_json:
        _print_json(
            [
                {
                    "queue": queue.queue,
                    "counts": queue.counts,
                    "oldest_waiting_seconds": round(queue.oldest_waiting_seconds, 3),
                }
                for queue in figures
            ]
        )
        return
    table = Table("queue", *jobops.STATUSES, "oldest waiting (s)")
    for queue in figures:
        table.add_row(
            queue.queue,
            *(str(queue.counts[status]) for status in jobops.STATUSES),
            f"{queue.oldest_waiting_seconds:.0f}",
        )
    Console().print(table)


@jobs_cli.command("failed")
def jobs_failed(
    as_json: JsonOption = False,
    queue: Annotated[str | None, typer.Option(help="Only this queue's jobs.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many.")] = 50,
) -> None:
    """Failed jobs (no retry left), newest first, with the error of their last attempt."""
    import dataclasses

    from rich.table import Table

    from lyceum.kit import jobops

    async def read(session: AsyncSession) -> tuple[list[jobops.JobSummary], int]:
        return await jobops.failed_jobs(session, queue=queue, limit=limit)

    found, total = _with_jobs_database(read)
    if as_json:
        _print_json({"items": [dataclasses.asdict(job) for job in found], "total": total})
        return
    table = Table("id", "task", "queue", "attempts", "finished", "error")
    for job in found:
        finished = job.finished_at.isoformat(timespec="seconds") if job.finished_at else ""
        table.add_row(
            str(job.id), job.task, job.queue, str(job.attempts), finished, job.error or ""
        )
    Console().print(table)
    console.print(f"{len(found)} of {total} failed job(s)")


def _steer(job_id: int, action: str, as_json: bool) -> None:
    import dataclasses

    from lyceum.kit import jobops

    async def steer(session: AsyncSession) -> jobops.JobDetail:
        if action == "retry":
            await jobops.retry_failed(session, job_id)
        else:
            await jobops.cancel_waiting(session, job_id)
        return await jobops.job_detail(session, job_id)

    try:
        job = _with_jobs_database(steer)
    except jobops.JobNotFound:
        console.print(f"[red]no job {job_id}[/red]")
        raise typer.Exit(code=1) from None
    except jobops.JobStateConflict as error:
        wanted = "failed" if action == "retry" else "waiting (todo)"
        console.print(f"[red]job {job_id} is {error.status}, not {wanted}[/red]")
        raise typer.Exit(code=1) from None
    if as_json:
        _print_json(dataclasses.asdict(job))
        return
    console.print(f"[green]job {job_id} ({job.task})[/green] is now {job.status}")


@jobs_cli.command("retry")
def jobs_retry(
    job_id: Annotated[int, typer.Argument(help="The failed job's id.")],
    as_json: JsonOption = False,
) -> None:
    """Run a failed job again, with a fresh set of attempts."""
    _steer(job_id, "retry", as_json)


@jobs_cli.command("cancel")
def jobs_cancel(
    job_id: Annotated[int, typer.Argument(help="The waiting job's id.")],
    as_json: JsonOption = False,
) -> None:
    """Cancel a job that waits in its queue (not one already running)."""
    _steer(job_id, "cancel", as_json)


def main() -> None:
    cli()
