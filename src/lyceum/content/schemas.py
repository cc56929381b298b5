"""Response bodies of course files and course-material search."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Literal

from pydantic import BaseModel, Field

from lyceum.models.content import FileStatus, IndexingPhase


class IndexingProgress(BaseModel):
    phase: IndexingPhase = Field(
        description="scanning (virus scan), extracting (reading the text), embedding "
        "(passages embedded and stored in batches)."
    )
    chunks_done: int = Field(description="Passages embedded and stored so far.")
    chunks_total: int | None = Field(
        default=None, description="Passages to index; known once the text has been read."
    )
    percent: int | None = Field(
        default=None, ge=0, le=100, description="chunks_done of chunks_total, rounded down."
    )


class CourseFileOut(BaseModel):
    id: uuid.UUID
    course_id: uuid.UUID
    name: str = Field(description="The uploaded file's name, sanitised; for display only.")
    kind: Literal["pdf", "docx", "png", "jpeg", "webp", "text", "markdown"]
    content_type: str
    size_bytes: int
    sha256: str = Field(description="SHA-256 of the stored bytes, hex.")
    status: FileStatus = Field(
        description="pending -> processing -> ready, or failed (see failure_reason). "
        "Learners see ready files only."
    )
    failure_reason: str | None = None
    progress: IndexingProgress | None = Field(
        default=None,
        description="While the file is `processing`: what the indexing job is doing and how "
        "far it is. Null otherwise.",
    )
    truncated: bool = Field(
        default=False,
        description="True when the file is longer than the indexing budgets "
        "(EXTRACTION_MAX_PAGES pages, INGEST_MAX_CHUNKS passages): only its start is "
        "indexed, and `notice` says how far.",
    )
    notice: str | None = Field(
        default=None, description="What the uploader should know about a `ready` file."
    )
    page_count: int | None = Field(default=None, description="PDFs only.")
    chunk_count: int = Field(description="Indexed passages of text taken from the file.")
    has_thumbnail: bool
    created_at: dt.datetime
    indexed_at: dt.datetime | None = None


class UploadResult(CourseFileOut):
    duplicate: bool = Field(
        description="True when these exact bytes were already in the course: the existing "
        "file is returned and nothing new is stored."
    )


class DownloadLink(BaseModel):
    url: str = Field(description="A short-lived signed URL; no Authorization header needed.")
    expires_at: dt.datetime


class SourceOut(BaseModel):
    kind: Literal["file", "lesson"]
    id: uuid.UUID = Field(description="The file's or the lesson's id.")
    title: str = Field(description="The file name, or the lesson title.")
    page: int | None = Field(default=None, description="Files with pages (PDF) only.")
    heading: str | None = Field(
        default=None, description="The heading path inside the lesson or document."
    )


class SearchHit(BaseModel):
    text: str
    score: float = Field(description="Reciprocal-rank-fusion score; higher is better.")
    source: SourceOut


class SearchResults(BaseModel):
    query: str
    items: list[SearchHit]


class IndexingCounts(BaseModel):
    pending: int
    processing: int
    ready: int
    failed: int


class IndexedSourceOut(BaseModel):
    kind: Literal["lesson", "file"]
    id: uuid.UUID = Field(description="The lesson's or the file's id.")
    title: str = Field(description="The lesson title, or the file name.")
    status: FileStatus
    failure_reason: str | None = None
    indexed_at: dt.datetime | None = None


class CourseIndexing(BaseModel):
    course_id: uuid.UUID
    complete: bool = Field(
        description="Nothing is pending or being indexed: search and the tutor see all of "
        "the material that could be read (failed items aside)."
    )
    lessons: IndexingCounts
    files: IndexingCounts
    items: list[IndexedSourceOut] = Field(
        description="Every lesson (course order) and file (oldest first) with its state, "
        "for the course's instructors and admins; empty for learners."
    )
