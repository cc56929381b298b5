"""Turning course material into indexed chunks: extract, split, embed, store.

Re-indexing a source (a file or a lesson) replaces all of its chunks in one
transaction, under an advisory lock on the source, so running it twice, or twice at
once, leaves exactly one copy; readers see the old chunks until it commits.

The work per file is bounded: its text is read within the extraction budgets (pages,
characters, time, memory; see `kit.documents.extraction`), at most `max_chunks` passages are
made from it, and they are embedded and inserted `BATCH_CHUNKS` at a time, so memory
holds one batch of vectors and rows, not the whole file's. Between batches the caller
hears how far it is (`Progress`), to show in the file's status.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.config import Settings
from lyceum.content.chunking import Chunk, iter_chunks
from lyceum.content.repository import ChunkRepository, FileRepository, IndexingRepository
from lyceum.content.retrieval import search_config
from lyceum.kit.ai.embedding import Embedder
from lyceum.kit.documents.extraction import Document, Limits, Section, extract_markdown
from lyceum.models.content import CourseFile, FileStatus, IndexingPhase

# all-MiniLM-L6-v2 reads 256 word pieces at most: chunks stay under that, so every
# token of a chunk is embedded (with room for the heading line in front).
CHUNK_TARGET_TOKENS = 200
CHUNK_MAX_TOKENS = 240
CHUNK_OVERLAP_TOKENS = 40
HEADING_SEPARATOR = " \u203a "  # a single right-pointing angle quotation mark
# Chunks embedded and inserted together (and progress reported): a batch's vectors and
# rows are a few hundred kilobytes.
BATCH_CHUNKS: Final = 64
# Chunks per forward pass of the model. The attention of a pass holds batch x 12 heads x
# 256^2 floats: 16 chunks cost the same CPU per chunk as 64 (measured: 7.2-7.5 s for 128
# chunks either way, one thread) with about 300 MB less peak memory.
ENCODE_BATCH: Final = 16
# More text than a chunk can take (240 word pieces are under 2,500 characters in any
# script): reading more than `max_chunks` times this from a file is wasted work.
CHARACTERS_PER_CHUNK: Final = 2500

# (chunks stored, chunks planned), after each batch.
Progress = Callable[[int, int], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class FileBudget:
    """What indexing one course file may cost (settings EXTRACTION_*, INGEST_*)."""

    max_pages: int
    max_chunks: int
    extraction_seconds: float

    @classmethod
    def of(cls, settings: Settings) -> FileBudget:
        return cls(
            max_pages=settings.extraction_max_pages,
            max_chunks=settings.ingest_max_chunks,
            extraction_seconds=settings.extraction_timeout_seconds,
        )

    @property
    def limits(self) -> Limits:
        return Limits(
            max_pages=self.max_pages,
            max_chars=self.max_chunks * CHARACTERS_PER_CHUNK,
            truncate=True,
        )


@dataclass(frozen=True, slots=True)
class Prepared:
    chunks: list[Chunk]
    embedding_texts: list[str]
    # The source has more text than the chunks cover (cut at `max_chunks`).
    more: bool = False


def prepare(
    sections: Sequence[Section],
    embedder: Embedder,
    title: str | None,
    max_chunks: int | None = None,
) -> Prepared:
    """CPU work (tokenising and splitting): run it in a thread. With `max_chunks`, the
    text is split only as far as that many chunks reach."""
    stream = iter_chunks(
        sections,
        embedder.count_tokens,
        target=CHUNK_TARGET_TOKENS,
        maximum=CHUNK_MAX_TOKENS,
        overlap=CHUNK_OVERLAP_TOKENS,
    )
    chunks = list(itertools.islice(stream, max_chunks)) if max_chunks is not None else list(stream)
    more = max_chunks is not None and next(stream, None) is not None
    texts = []
    for chunk in chunks:
        # The heading path gives a short passage its context ("Osmosis" under "The
        # plasma membrane"); lessons lead with their title.
        path = [title, *chunk.heading_path] if title else list(chunk.heading_path)
        texts.append(f"{HEADING_SEPARATOR.join(path)}\n{chunk.text}" if path else chunk.text)
    return Prepared(chunks=chunks, embedding_texts=texts, more=more)


async def insert_chunks(
    session: AsyncSession,
    *,
    course_id: uuid.UUID,
    file_id: uuid.UUID | None,
    lesson_id: uuid.UUID | None,
    chunks: Sequence[Chunk],
    vectors: NDArray[np.float32],
    config: str,
) -> None:
    rows = [
        {
            "course_id": course_id,
            "file_id": file_id,
            "lesson_id": lesson_id,
            "ordinal": chunk.ordinal,
            "text": chunk.text,
            "heading": HEADING_SEPARATOR.join(chunk.heading_path),
            "page": chunk.page,
            "token_count": chunk.token_count,
            "search_config": config,
            "embedding": vector,
        }
        for chunk, vector in zip(chunks, vectors, strict=True)
    ]
    await ChunkRepository(session).insert(rows)


async def replace_chunks(
    session: AsyncSession,
    *,
    course_id: uuid.UUID,
    file_id: uuid.UUID | None = None,
    lesson_id: uuid.UUID | None = None,
    prepared: Prepared,
    embedder: Embedder | None,
    config: str,
    progress: Progress | None = None,
) -> None:
    """Replace the source's chunks with `prepared`, embedding and inserting a batch at a
    time; the next batch is embedded (in a thread) while this one is inserted. Without
    chunks there is nothing to embed, and `embedder` may be None."""
    source = file_id or lesson_id
    assert source is not None and (file_id is None) != (lesson_id is None)
    assert embedder is not None or not prepared.chunks
    chunks = ChunkRepository(session)
    await chunks.lock_source(source)
    await chunks.delete_of(file_id=file_id, lesson_id=lesson_id)
    total = len(prepared.chunks)
    starts = range(0, total, BATCH_CHUNKS)

    def encode(start: int) -> asyncio.Future[NDArray[np.float32]]:
        assert embedder is not None
        batch = prepared.embedding_texts[start : start + BATCH_CHUNKS]
        return asyncio.ensure_future(embedder.encode(batch, batch_size=ENCODE_BATCH))

    pending = encode(0) if total else None
    try:
        for start in starts:
            assert pending is not None
            vectors = await pending
            following = start + BATCH_CHUNKS
            pending = encode(following) if following < total else None
            await insert_chunks(
                session,
                course_id=course_id,
                file_id=file_id,
                lesson_id=lesson_id,
                chunks=prepared.chunks[start:following],
                vectors=vectors,
                config=config,
            )
            if progress is not None:
                await progress(min(following, total), total)
    finally:
        if pending is not None and not pending.done():
            pending.cancel()


async def index_lesson(session: AsyncSession, lesson_id: uuid.UUID, embedder: Embedder) -> int:
    """(Re-)index a lesson's text and mark it `ready` (unless it was edited meanwhile);
    a deleted lesson has nothing left to index. Lesson bodies are bounded by their
    schema (200,000 characters)."""
    state = IndexingRepository(session)
    version = await state.lesson_version(lesson_id)  # before the text: see its docstring
    found = await state.lesson_with_language(lesson_id)
    if found is None:
        return 0
    lesson, language = found
    sections = extract_markdown(lesson.content)
    prepared = await asyncio.to_thread(prepare, sections, embedder, lesson.title)
    await replace_chunks(
        session,
        course_id=lesson.course_id,
        lesson_id=lesson.id,
        prepared=prepared,
        embedder=embedder,
        config=search_config(language),
    )
    if version is not None:
        await state.mark_lesson_indexed(lesson.id, version)
    return len(prepared.chunks)


def _notice(document: Document, prepared: Prepared, max_chunks: int) -> str | None:
    """What the instructor should know about how much of the file is indexed."""
    if prepared.more:
        last = prepared.chunks[-1]
        where = ""
        if last.page is not None and document.page_count:
            where = f", up to page {last.page} of {document.page_count}"
        elif not document.truncated:  # else only part of the text was read: no share
            length = sum(len(section.text) for section in document.sections)
            if length:
                where = f", about {min(99, last.end * 100 // length)}% of its text"
        return (
            f"The file is longer than this server indexes: only its first {max_chunks:,} "
            f"passages are searchable{where}. Split it into smaller files to index the rest."
        )
    if document.truncated:
        return f"{document.truncated} The rest of the file is not searchable."
    return None


async def index_file(
    session: AsyncSession,
    file: CourseFile,
    document: Document,
    embedder: Embedder | None,
    *,
    max_chunks: int,
    progress: Progress | None = None,
) -> None:
    """Chunk (up to `max_chunks`), embed and store a file's text, a batch at a time, and
    mark the file ready, with a notice if only its start was indexed. A document without
    text (an image) needs no model: `embedder` may then be None."""
    language = await IndexingRepository(session).course_language(file.course_id)
    prepared = Prepared(chunks=[], embedding_texts=[])
    if document.sections:
        assert embedder is not None
        prepared = await asyncio.to_thread(prepare, document.sections, embedder, None, max_chunks)
    if progress is not None:
        await progress(0, len(prepared.chunks))
    await replace_chunks(
        session,
        course_id=file.course_id,
        file_id=file.id,
        prepared=prepared,
        embedder=embedder,
        config=search_config(language),
        progress=progress,
    )
    notice = _notice(document, prepared, max_chunks)
    file.page_count = document.page_count
    file.chunk_count = len(prepared.chunks)
    file.status = FileStatus.ready
    file.failure_reason = None
    file.truncated = notice is not None
    file.notice = notice
    file.indexing_phase = None
    file.indexed_at = dt.datetime.now(dt.UTC)


async def drop_file_chunks(session: AsyncSession, file_id: uuid.UUID) -> None:
    """A file that failed (unreadable, infected) keeps no passages from an earlier
    indexing: its `chunk_count` is 0 and search must agree."""
    await ChunkRepository(session).delete_of(file_id=file_id)


async def record_progress(
    session: AsyncSession,
    file_id: uuid.UUID,
    phase: IndexingPhase,
    done: int = 0,
    total: int | None = None,
) -> None:
    """Where the job is with a file; the caller commits it at once (its own short
    transaction), so `GET .../files/{id}` shows it while the job runs."""
    await FileRepository(session).record_progress(file_id, phase, done, total)


async def lessons_to_index(session: AsyncSession, course_id: uuid.UUID | None) -> list[uuid.UUID]:
    return await IndexingRepository(session).lesson_ids(course_id)


async def files_to_index(session: AsyncSession, course_id: uuid.UUID | None) -> list[uuid.UUID]:
    return await IndexingRepository(session).file_ids(course_id)


async def chunk_total(session: AsyncSession, course_id: uuid.UUID | None = None) -> int:
    return await ChunkRepository(session).count(course_id)
