"""Every query of the course material's indexing state: where each lesson and file of a
course stands (pending, processing, ready, failed), and the steps of a lesson's indexing
job."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.models.content import CourseFile, FileStatus, LessonIndexing
from lyceum.models.courses import Lesson, Module

WAITING = (FileStatus.pending, FileStatus.processing)


@dataclass(frozen=True, slots=True)
class IndexingProgress:
    """How much of a course's material is not searchable (yet)."""

    lessons_waiting: int  # pending or being indexed
    files_waiting: int
    lessons_failed: int
    files_failed: int

    @property
    def waiting(self) -> int:
        return self.lessons_waiting + self.files_waiting


@dataclass(frozen=True, slots=True)
class IndexedSource:
    kind: Literal["lesson", "file"]
    id: uuid.UUID
    title: str
    status: FileStatus
    failure_reason: str | None
    indexed_at: dt.datetime | None


# One round trip, for every tutor question that finds nothing relevant.
_PROGRESS = text(
    """
    SELECT
        (SELECT count(*) FROM lesson_indexing
         WHERE course_id = :course AND status IN ('pending', 'processing')) AS lessons_waiting,
        (SELECT count(*) FROM course_files
         WHERE course_id = :course AND status IN ('pending', 'processing')) AS files_waiting,
        (SELECT count(*) FROM lesson_indexing
         WHERE course_id = :course AND status = 'failed') AS lessons_failed,
        (SELECT count(*) FROM course_files
         WHERE course_id = :course AND status = 'failed') AS files_failed
    """
)


class IndexingRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # A course's state -----------------------------------------------------------------

    async def progress(self, course_id: uuid.UUID) -> IndexingProgress:
        row = (await self.session.execute(_PROGRESS, {"course": course_id})).one()
        return IndexingProgress(
            lessons_waiting=int(row.lessons_waiting),
            files_waiting=int(row.files_waiting),
            lessons_failed=int(row.lessons_failed),
            files_failed=int(row.files_failed),
        )

    async def sources(self, course_id: uuid.UUID) -> list[IndexedSource]:
        """Every lesson (in course order) and file (oldest first) of the course with its
        indexing state."""
        lessons = await self.session.execute(
            select(
                Lesson.id,
                Lesson.title,
                LessonIndexing.status,
                LessonIndexing.failure_reason,
                LessonIndexing.indexed_at,
            )
            .join(LessonIndexing, LessonIndexing.lesson_id == Lesson.id)
            .join(Module, Module.id == Lesson.module_id)
            .where(Lesson.course_id == course_id)
            .order_by(Module.position, Lesson.position, Lesson.id)
        )
        files = await self.session.execute(
            select(
                CourseFile.id,
                CourseFile.display_name,
                CourseFile.status,
                CourseFile.failure_reason,
                CourseFile.indexed_at,
            )
            .where(CourseFile.course_id == course_id)
            .order_by(CourseFile.created_at, CourseFile.id)
        )
        return [IndexedSource("lesson", *row) for row in lessons] + [
            IndexedSource("file", *row) for row in files
        ]

    # A lesson's indexing job ----------------------------------------------------------

    async def lesson_version(self, lesson_id: uuid.UUID) -> int | None:
        """The version of the lesson's text; read it before the text, so that an edit in
        between is caught by `mark_lesson_indexed`."""
        found = await self.session.execute(
            select(LessonIndexing.version).where(LessonIndexing.lesson_id == lesson_id)
        )
        return found.scalar_one_or_none()

    async def mark_lesson_processing(self, lesson_id: uuid.UUID) -> None:
        await self.session.execute(
            update(LessonIndexing)
            .where(LessonIndexing.lesson_id == lesson_id)
            .values(status=FileStatus.processing, updated_at=text("now()"))
        )

    async def mark_lesson_indexed(self, lesson_id: uuid.UUID, version: int) -> bool:
        """`ready`, if the text indexed is still the lesson's (else it stays `pending`
        for the job its edit queued). Returns whether it was marked."""
        result = await self.session.execute(
            update(LessonIndexing)
            .where(LessonIndexing.lesson_id == lesson_id, LessonIndexing.version == version)
            .values(
                status=FileStatus.ready,
                failure_reason=None,
                indexed_at=text("now()"),
                updated_at=text("now()"),
            )
            .returning(LessonIndexing.lesson_id)
        )
        return result.first() is not None

    async def mark_lesson_failed(self, lesson_id: uuid.UUID, reason: str) -> None:
        await self.session.execute(
            update(LessonIndexing)
            .where(LessonIndexing.lesson_id == lesson_id)
            .values(status=FileStatus.failed, failure_reason=reason, updated_at=text("now()"))
        )
