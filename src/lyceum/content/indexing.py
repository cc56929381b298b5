"""Turning course material into indexed chunks: extract, split, embed, store.

Re-indexing a source (a file or a lesson) replaces all of its chunks in one
transaction, under an advisory lock on the source, so running it twice, or twice at
once, leaves exactly one copy."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.content.chunking import Chunk, chunk_sections
from lyceum.content.embedding import Embedder
from lyceum.content.extraction import Section, extract, extract_markdown
from lyceum.content.filetypes import FileKind
from lyceum.content.repository import IndexingRepository
from lyceum.content.retrieval import search_config
from lyceum.models.content import ContentChunk, CourseFile, FileStatus
from lyceum.models.courses import Course, Lesson

# all-MiniLM-L6-v2 reads 256 word pieces at most: chunks stay under that, so every
# token of a chunk is embedded (with room for the heading line in front).
CHUNK_TARGET_TOKENS = 200
CHUNK_MAX_TOKENS = 240
CHUNK_OVERLAP_TOKENS = 40
HEADING_SEPARATOR = " \u203a "  # a single right-pointing angle quotation mark


@dataclass(frozen=True, slots=True)
class Prepared:
    chunks: list[Chunk]
    embedding_texts: list[str]


def prepare(sections: Sequence[Section], embedder: Embedder, title: str | None) -> Prepared:
    """CPU work (tokenising and splitting): run it in a thread."""
    chunks = chunk_sections(
        sections,
        embedder.count_tokens,
        target=CHUNK_TARGET_TOKENS,
        maximum=CHUNK_MAX_TOKENS,
        overlap=CHUNK_OVERLAP_TOKENS,
    )
    texts = []
    for chunk in chunks:
        # The heading path gives a short passage its context ("Osmosis" under "The
        # plasma membrane"); lessons lead with their title.
        path = [title, *chunk.heading_path] if title else list(chunk.heading_path)
        texts.append(f"{HEADING_SEPARATOR.join(path)}\n{chunk.text}" if path else chunk.text)
    return Prepared(chunks=chunks, embedding_texts=texts)


async def replace_chunks(
    session: AsyncSession,
    *,
    course_id: uuid.UUID,
    file_id: uuid.UUID | None = None,
    lesson_id: uuid.UUID | None = None,
    prepared: Prepared,
    vectors: NDArray[np.float32],
    config: str,
) -> None:
    source = file_id or lesson_id
    assert source is not None and (file_id is None) != (lesson_id is None)
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:source, 0))"),
        {"source": f"content:{source}"},
    )
    owner = ContentChunk.file_id == file_id if file_id else ContentChunk.lesson_id == lesson_id
    await session.execute(delete(ContentChunk).where(owner))
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
        for chunk, vector in zip(prepared.chunks, vectors, strict=True)
    ]
    if rows:
        await session.execute(insert(ContentChunk), rows)


async def index_lesson(session: AsyncSession, lesson_id: uuid.UUID, embedder: Embedder) -> int:
    """(Re-)index a lesson's text and mark it `ready` (unless it was edited meanwhile);
    a deleted lesson has nothing left to index."""
    state = IndexingRepository(session)
    version = await state.lesson_version(lesson_id)  # before the text: see its docstring
    lesson = await session.get(Lesson, lesson_id)
    if lesson is None:
        return 0
    course = await session.get(Course, lesson.course_id)
    assert course is not None
    sections = extract_markdown(lesson.content)
    prepared = await asyncio.to_thread(prepare, sections, embedder, lesson.title)
    vectors = await embedder.encode(prepared.embedding_texts)
    await replace_chunks(
        session,
        course_id=lesson.course_id,
        lesson_id=lesson.id,
        prepared=prepared,
        vectors=vectors,
        config=search_config(course.language),
    )
    if version is not None:
        await state.mark_lesson_indexed(lesson.id, version)
    return len(prepared.chunks)


async def index_file_bytes(
    session: AsyncSession, file: CourseFile, data: bytes, embedder: Embedder
) -> None:
    """Extract, chunk, embed and store a file's text, and mark it ready. Raises
    ExtractionError for a file whose text cannot be read."""
    course = await session.get(Course, file.course_id)
    assert course is not None
    kind = FileKind(file.kind)
    sections = await asyncio.to_thread(extract, kind, data)
    prepared = await asyncio.to_thread(prepare, sections, embedder, None)
    vectors = await embedder.encode(prepared.embedding_texts)
    await replace_chunks(
        session,
        course_id=file.course_id,
        file_id=file.id,
        prepared=prepared,
        vectors=vectors,
        config=search_config(course.language),
    )
    pages = {section.page for section in sections if section.page is not None}
    file.page_count = max(pages) if kind is FileKind.pdf and pages else None
    file.chunk_count = len(prepared.chunks)
    file.status = FileStatus.ready
    file.failure_reason = None
    file.indexed_at = dt.datetime.now(dt.UTC)


async def lessons_to_index(session: AsyncSession, course_id: uuid.UUID | None) -> list[uuid.UUID]:
    query = select(Lesson.id).order_by(Lesson.course_id, Lesson.position)
    if course_id is not None:
        query = query.where(Lesson.course_id == course_id)
    return list((await session.execute(query)).scalars())


async def files_to_index(session: AsyncSession, course_id: uuid.UUID | None) -> list[uuid.UUID]:
    query = select(CourseFile.id).order_by(CourseFile.created_at)
    if course_id is not None:
        query = query.where(CourseFile.course_id == course_id)
    return list((await session.execute(query)).scalars())


async def chunk_total(session: AsyncSession, course_id: uuid.UUID | None = None) -> int:
    query = select(func.count()).select_from(ContentChunk)
    if course_id is not None:
        query = query.where(ContentChunk.course_id == course_id)
    return int((await session.execute(query)).scalar_one())
