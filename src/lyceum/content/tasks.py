"""Content jobs: index an uploaded file (scan, extract, chunk, embed) and re-index a
lesson's text when it changes.

They run on the bulk `indexing` queue: in production on workers of their own, in the
embedded mode in a child process of `lyceum serve` (kit.workerprocess), so embedding a
textbook never slows the API down. A file's text is read in the sandbox under the
extraction budgets, and its progress is written to the file's row as the job goes.
"""

from __future__ import annotations

import asyncio
import uuid

import structlog

from lyceum.content.indexing import (
    FileBudget,
    drop_file_chunks,
    index_file,
    index_lesson,
    record_progress,
)
from lyceum.content.repository import FileRepository, IndexingRepository
from lyceum.content.scanner import scan
from lyceum.kit.ai.embedding import get_embedder
from lyceum.kit.documents.extraction import ExtractionError, read_upload
from lyceum.kit.documents.filetypes import FileKind
from lyceum.kit.events import on
from lyceum.kit.jobs import (
    JobContext,
    Queue,
    Resources,
    is_last_attempt,
    resources,
    task,
    transaction,
)
from lyceum.kit.storage import delete_after_commit
from lyceum.models.content import FileStatus, IndexingPhase

logger = structlog.get_logger("lyceum.content")


async def _set_status(
    runtime: Resources, file_id: uuid.UUID, status: FileStatus, reason: str | None = None
) -> None:
    async with transaction(runtime) as session:
        file = await FileRepository(session).get(file_id, for_update=True)
        if file is not None:
            file.status = status
            file.failure_reason = reason
            file.indexing_phase = None
            if status is FileStatus.failed:
                await drop_file_chunks(session, file_id)
                file.chunk_count = 0
                file.truncated = False
                file.notice = None


async def _progress(
    runtime: Resources,
    file_id: uuid.UUID,
    phase: IndexingPhase,
    done: int = 0,
    total: int | None = None,
) -> None:
    async with transaction(runtime) as session:
        await record_progress(session, file_id, phase, done, total)


@task(name="lyceum.content.ingest_file", queue=Queue.indexing, pass_context=True)
async def ingest_file(context: JobContext, file_id: str) -> None:
    """pending -> processing -> ready, or failed with a reason the uploader can read.
    A file whose text cannot be read (or not within the budgets) fails for good;
    anything else (storage or scanner unreachable) is retried, and fails only when the
    retries run out."""
    identifier = uuid.UUID(file_id)
    runtime = resources(context)
    settings, storage = runtime.settings, runtime.storage
    budget = FileBudget.of(settings)
    async with transaction(runtime) as session:
        file = await FileRepository(session).get(identifier)
        if file is None:
            return  # deleted meanwhile
        file.status = FileStatus.processing
        file.failure_reason = None
        file.indexing_phase = (
            IndexingPhase.scanning if settings.clamd_url else IndexingPhase.extracting
        )
        file.indexing_done, file.indexing_total = 0, None
        key, kind = file.storage_key, FileKind(file.kind)
    try:
        data = await storage.get(key)
        if data is None:
            await _set_status(runtime, identifier, FileStatus.failed, "The stored file is missing.")
            return
        if settings.clamd_url:
            signature = await scan(settings.clamd_url, data)
            if signature is not None:
                logger.warning("file_infected", file_id=file_id, signature=signature)
                async with transaction(runtime) as session:
                    infected = await FileRepository(session).get(identifier)
                    if infected is not None:
                        delete_after_commit(
                            session, storage, infected.storage_key, infected.thumbnail_key
                        )
                        await drop_file_chunks(session, identifier)
                        infected.status = FileStatus.failed
                        infected.chunk_count = 0
                        infected.indexing_phase = None
                        infected.failure_reason = (
                            f"The virus scanner rejected the file ({signature}); it was deleted."
                        )
                return
            await _progress(runtime, identifier, IndexingPhase.extracting)
        try:
            document = await read_upload(
                runtime.sandbox, kind, data, budget.limits, budget.extraction_seconds
            )
        except ExtractionError as error:
            logger.info("file_extraction_failed", file_id=file_id, kind=kind, reason=error.message)
            await _set_status(runtime, identifier, FileStatus.failed, error.message)
            return
        del data  # only the text is needed from here on
        # Loading the model takes seconds and memory; an image has no text to embed.
        embedder = await asyncio.to_thread(get_embedder) if document.sections else None

        async def progress(done: int, total: int) -> None:
            await _progress(runtime, identifier, IndexingPhase.embedding, done, total)

        async with transaction(runtime) as session:
            # No row lock while the chunks are written: the progress updates above run
            # in transactions of their own, and must not wait for this one.
            file = await FileRepository(session).get(identifier)
            if file is None:
                return
            await index_file(
                session, file, document, embedder, max_chunks=budget.max_chunks, progress=progress
            )
            chunks, truncated = file.chunk_count, file.truncated
        logger.info("file_indexed", file_id=file_id, kind=kind, chunks=chunks, truncated=truncated)
    except Exception:
        if is_last_attempt(context):
            await _set_status(
                runtime,
                identifier,
                FileStatus.failed,
                "Indexing failed repeatedly because of an internal error; try re-indexing.",
            )
        raise


@task(name="lyceum.content.index_lesson", queue=Queue.indexing, pass_context=True)
async def reindex_lesson(context: JobContext, lesson_id: str) -> None:
    """Replace the lesson's indexed chunks with ones made from its current text:
    `processing`, then `ready`, or `failed` once the retries run out."""
    identifier = uuid.UUID(lesson_id)
    runtime = resources(context)
    async with transaction(runtime) as session:
        await IndexingRepository(session).mark_lesson_processing(identifier)
    try:
        embedder = await asyncio.to_thread(get_embedder)
        async with transaction(runtime) as session:
            count = await index_lesson(session, identifier, embedder)
    except Exception:
        if is_last_attempt(context):
            async with transaction(runtime) as session:
                await IndexingRepository(session).mark_lesson_failed(
                    identifier,
                    "Indexing failed repeatedly because of an internal error; edit the lesson "
                    "or run `lyceum reindex` to try again.",
                )
        raise
    logger.info("lesson_indexed", lesson_id=lesson_id, chunks=count)


on("content.file_uploaded", ingest_file)
on("lesson.changed", reindex_lesson)
