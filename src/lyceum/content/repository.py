"""Every query of the content domain: course files, the indexed chunks of course
material (written by ingestion, read by search), and where each lesson and file of a
course stands in the index (pending, processing, ready, failed)."""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np
import orjson
from numpy.typing import NDArray
from sqlalchemy import (
    Integer,
    Select,
    String,
    TextClause,
    Uuid,
    bindparam,
    delete,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import BindParameter

from lyceum.kit.db import driver_execute, driver_sql, driver_statement
from lyceum.models.content import (
    ContentChunk,
    CourseFile,
    FileStatus,
    IndexingPhase,
    LessonIndexing,
)
from lyceum.models.courses import Course, Lesson, Module

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


# How much of a course's material is waiting or failed: on its own (`progress`), or
# with a tutor question's search setup (`SearchRepository.setup(progress=True)`).
_PROGRESS_COLUMNS = """
        (SELECT count(*) FROM lesson_indexing
         WHERE course_id = :course AND status IN ('pending', 'processing')) AS lessons_waiting,
        (SELECT count(*) FROM course_files
         WHERE course_id = :course AND status IN ('pending', 'processing')) AS files_waiting,
        (SELECT count(*) FROM lesson_indexing
         WHERE course_id = :course AND status = 'failed') AS lessons_failed,
        (SELECT count(*) FROM course_files
         WHERE course_id = :course AND status = 'failed') AS files_failed
"""
_PROGRESS = text("SELECT" + _PROGRESS_COLUMNS)


def _progress_of(row: Any) -> IndexingProgress:
    return IndexingProgress(
        lessons_waiting=int(row.lessons_waiting),
        files_waiting=int(row.files_waiting),
        lessons_failed=int(row.lessons_failed),
        files_failed=int(row.files_failed),
    )


class IndexingRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # A course's state -----------------------------------------------------------------

    async def progress(self, course_id: uuid.UUID) -> IndexingProgress:
        return _progress_of((await self.session.execute(_PROGRESS, {"course": course_id})).one())

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

    # What the indexing jobs and `lyceum reindex` work through --------------------------

    async def lesson_with_language(self, lesson_id: uuid.UUID) -> tuple[Lesson, str] | None:
        """The lesson and its course's language (None: the lesson is gone)."""
        row = (
            await self.session.execute(
                select(Lesson, Course.language)
                .join(Course, Course.id == Lesson.course_id)
                .where(Lesson.id == lesson_id)
            )
        ).first()
        return (row[0], row[1]) if row is not None else None

    async def course_language(self, course_id: uuid.UUID) -> str:
        found = await self.session.execute(select(Course.language).where(Course.id == course_id))
        return found.scalar_one()

    async def lesson_ids(self, course_id: uuid.UUID | None) -> list[uuid.UUID]:
        """Every lesson (of one course, or all), in course order."""
        query = select(Lesson.id).order_by(Lesson.course_id, Lesson.position)
        if course_id is not None:
            query = query.where(Lesson.course_id == course_id)
        return list((await self.session.execute(query)).scalars())

    async def file_ids(self, course_id: uuid.UUID | None) -> list[uuid.UUID]:
        """Every file (of one course, or all), oldest first."""
        query = select(CourseFile.id).order_by(CourseFile.created_at)
        if course_id is not None:
            query = query.where(CourseFile.course_id == course_id)
        return list((await self.session.execute(query)).scalars())


class FileRepository:
    """Course files."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, file_id: uuid.UUID, *, for_update: bool = False) -> CourseFile | None:
        return await self.session.get(CourseFile, file_id, with_for_update=for_update)

    async def of_course(self, course_id: uuid.UUID, *, ready_only: bool) -> list[CourseFile]:
        """The course's files, oldest first; with `ready_only`, only the indexed ones."""
        query = select(CourseFile).where(CourseFile.course_id == course_id)
        if ready_only:
            query = query.where(CourseFile.status == FileStatus.ready)
        query = query.order_by(CourseFile.created_at, CourseFile.id)
        return list((await self.session.execute(query)).scalars())

    async def by_digest(self, course_id: uuid.UUID, digest: str) -> CourseFile | None:
        query = select(CourseFile).where(
            CourseFile.course_id == course_id, CourseFile.sha256 == digest
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def add(self, file: CourseFile) -> None:
        """Insert the row now (in a savepoint, so that a duplicate of concurrent bytes
        raises IntegrityError and leaves the transaction usable) and load its defaults."""
        async with self.session.begin_nested():
            self.session.add(file)
            await self.session.flush()
        await self.session.refresh(file)

    async def delete(self, file: CourseFile) -> None:
        """The row, and with it (ON DELETE CASCADE) every indexed chunk of the file."""
        await self.session.delete(file)
        await self.session.flush()

    async def record_progress(
        self, file_id: uuid.UUID, phase: IndexingPhase, done: int, total: int | None
    ) -> None:
        """Where the job is with a `processing` file."""
        await self.session.execute(
            update(CourseFile)
            .where(CourseFile.id == file_id, CourseFile.status == FileStatus.processing)
            .values(indexing_phase=phase, indexing_done=done, indexing_total=total)
        )


class ChunkRepository:
    """Writing a source's chunks (a file or a lesson's text)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def lock_source(self, source: uuid.UUID) -> None:
        """Serialise re-indexings of one source until the transaction ends."""
        await self.session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:source, 0))"),
            {"source": f"content:{source}"},
        )

    async def delete_of(
        self, *, file_id: uuid.UUID | None = None, lesson_id: uuid.UUID | None = None
    ) -> None:
        """Every chunk of the file or of the lesson."""
        owner = ContentChunk.file_id == file_id if file_id else ContentChunk.lesson_id == lesson_id
        await self.session.execute(delete(ContentChunk).where(owner))

    async def insert(self, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            await self.session.execute(insert(ContentChunk), list(rows))

    async def count(self, course_id: uuid.UUID | None = None) -> int:
        query = select(func.count()).select_from(ContentChunk)
        if course_id is not None:
            query = query.where(ContentChunk.course_id == course_id)
        return int((await self.session.execute(query)).scalar_one())


# Course-material search -----------------------------------------------------------------

# The course's language, the question's words both ways the relevance check may compare
# them, and (for the rest of the transaction) the HNSW search settings of the vector
# query, in one round trip.
_SEARCH_SETUP_SQL = """
    SELECT language,
           tsvector_to_array(to_tsvector('lyceum_english', :query)) AS stemmed,
           tsvector_to_array(to_tsvector('simple', normalize(:query, NFC))) AS words,
           set_config('hnsw.ef_search', :ef_search, true),
           set_config('hnsw.iterative_scan', 'relaxed_order', true){progress}
    FROM courses WHERE id = :id
"""
_SEARCH_SETUP = text(_SEARCH_SETUP_SQL.format(progress=""))
# A tutor question's: the course's indexing progress in the same round trip.
_SEARCH_SETUP_PROGRESS = text(
    _SEARCH_SETUP_SQL.format(progress="," + _PROGRESS_COLUMNS.replace(":course", ":id"))
)
_SEARCH_SETUP_SQL_DRIVER = driver_sql(_SEARCH_SETUP)
_SEARCH_SETUP_PROGRESS_SQL = driver_sql(_SEARCH_SETUP_PROGRESS)

# Full-text ranking. Any of the question's words may match (a question rarely repeats a
# passage word for word), and ts_rank_cd rewards passages that hold more of them, closer
# together. Ranking reads every matching row from the table (~3 kB each, one a page), so
# on a big course a question of common words ranked 12,000-14,000 rows (~100-350 ms).
# The scan is bounded: candidates come in tiers picked by the GIN index alone, the
# passages holding all of the question's words first, then all but one, ... then any of
# them, until TEXT_CANDIDATES rows are found; only those are ranked. A course whose
# matches fit in the budget (every course of 1,000 chunks) gets exactly the unbounded
# ranking, for a few more index scans (~2 ms).
TEXT_CANDIDATES = 1000
# The strict tiers are built from the question's first TIER_WORDS distinct words: all of
# them, all but one, ..., at most STRICT_TIERS tiers of at most TIER_CLAUSES "all of these
# words" clauses each (so a long question does not make a huge query); the last tier is
# always "any word". Each tier is one more index scan, and re-reads the rows of the tier
# before it: on the 50,000-chunk course a fourth strict tier took the ranking's p99 from
# 40 to 68 ms for a top-5 a little closer to the unbounded one (0.84 against 0.79 of the
# same ids).
TIER_WORDS = 8
TIER_CLAUSES = 64
STRICT_TIERS = 3

# The question's words, and no parallel plans for the rest of the transaction: a
# parallel Append would start every tier at once instead of stopping at the budget (and
# costs more to start than a course's search takes).
_LEXEMES = text(
    """
    SELECT tsvector_to_array(to_tsvector(CAST(:config AS regconfig), :query)),
           set_config('max_parallel_workers_per_gather', '0', true)
    """
)
_LEXEMES_SQL = driver_sql(_LEXEMES)


def _tsquery_term(lexeme: str) -> str:
    """A lexeme as a quoted tsquery operand (quotes and backslashes doubled)."""
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"


def candidate_tiers(lexemes: Sequence[str]) -> list[str]:
    """tsqueries from the strictest to the loosest: every word, every word but one, and
    so on (see STRICT_TIERS), then any word."""
    terms = [_tsquery_term(lexeme) for lexeme in lexemes]
    tiers = []
    head = terms[:TIER_WORDS]
    for size in range(len(head), max(1, len(head) - STRICT_TIERS), -1):
        if math.comb(len(head), size) > TIER_CLAUSES:
            break
        clauses = [" & ".join(group) for group in itertools.combinations(head, size)]
        tiers.append(" | ".join(f"({clause})" for clause in clauses))
    tiers.append(" | ".join(terms))
    return tiers


# The ranking statement by number of tiers: a question's tiers vary only in their
# values, so the SQL text is built once per shape rather than as a new Core statement
# (and a new compiled-cache key) per question; the search sends it as psycopg runs it.
@functools.cache
def _text_ranking_sql(tiers: int) -> TextClause:
    """The statement of `text_ranking_query` for `tiers` tiers (bound as :tier_0, ...)."""
    last = f"CAST(:tier_{tiers - 1} AS TSQUERY)"
    branches = []
    for index in range(tiers):
        where = f"c.course_id = :course_id AND c.search @@ CAST(:tier_{index} AS TSQUERY)"
        if index:
            where += f" AND NOT (c.search @@ CAST(:tier_{index - 1} AS TSQUERY))"
        branches.append(
            f"SELECT c.id AS id, ts_rank_cd(c.search, {last}, 1) AS rank "  # noqa: S608 (numbered binds)
            f"FROM content_chunks AS c WHERE {where}"
        )
    sql = (
        f"SELECT candidates.id FROM ({' UNION ALL '.join(branches)} LIMIT :budget) AS "  # noqa: S608
        "candidates ORDER BY candidates.rank DESC, candidates.id LIMIT :limit"
    )
    return text(sql).bindparams(
        bindparam("course_id", type_=Uuid()),
        bindparam("budget", type_=Integer()),
        bindparam("limit", type_=Integer()),
        *(bindparam(f"tier_{index}", type_=String()) for index in range(tiers)),
    )


def text_ranking_query(
    course_id: uuid.UUID, tiers: Sequence[str], budget: int, limit: int
) -> TextClause:
    """The first `budget` rows of the tiers (strictest first; the last is "any word")
    ranked by ts_rank_cd against "any word". Each tier skips the rows of the one before
    it (they are nested), and the LIMIT stops the scans once the budget is reached: a
    looser tier's rows are not read when the stricter ones already fill it. When fewer
    rows match, the tiers together are every match: the unbounded ranking."""
    values = _text_ranking_values(course_id, tiers, budget, limit)
    return _text_ranking_sql(len(tiers)).bindparams(**values)


def _text_ranking_values(
    course_id: uuid.UUID, tiers: Sequence[str], budget: int, limit: int
) -> dict[str, Any]:
    values = {f"tier_{index}": tier for index, tier in enumerate(tiers)}
    return {"course_id": course_id, "budget": budget, "limit": limit, **values}


@functools.cache
def _text_ranking_driver_sql(tiers: int) -> str:
    return driver_sql(_text_ranking_sql(tiers))


# With each hit, its words as the relevance check compares them with the question's:
# the stored (stemmed) search document for English material, else its words with their
# accents (the stored document is unaccented, where Vietnamese "Úc", Australia, would
# match the "uc" of every "úc" and "ục").
HIT_WORDS = """,
           tsvector_to_array(
               CASE WHEN :stemmed THEN c.search
                    ELSE to_tsvector('simple', normalize(c.heading || ' ' || c.text, NFC))
               END) AS words"""
DETAILS_SQL = """
    SELECT c.id, c.text, c.page, c.heading, c.file_id, c.lesson_id,
           coalesce(f.display_name, l.title) AS title{words}
    FROM content_chunks AS c
    LEFT JOIN course_files AS f ON f.id = c.file_id
    LEFT JOIN lessons AS l ON l.id = c.lesson_id
    WHERE c.id = ANY(:ids)
"""
_DETAILS = text(DETAILS_SQL.format(words=HIT_WORDS))


class Passage(NamedTuple):
    """A hit's chunk as `SearchRepository.passages` reads it."""

    id: int
    text: str
    page: int | None
    heading: str | None
    file_id: uuid.UUID | None
    lesson_id: uuid.UUID | None
    title: str  # the file's display name or the lesson's title, whichever it is from
    words: list[str] | None

    @property
    def source_id(self) -> uuid.UUID:
        """The file's or the lesson's id (a chunk is one's or the other's)."""
        source = self.file_id or self.lesson_id
        assert source is not None
        return source


# The search's statements run on the driver connection of the session's transaction as
# prepared statements (`kit.db.driver_execute`): five round trips a question (the tutor's
# and the search endpoints'), where SQLAlchemy's per-call work, and building the vector
# query anew for each question, cost more CPU than sending them.
_DETAILS_SQL = driver_sql(_DETAILS)


@dataclass(frozen=True, slots=True)
class QuestionWords:
    """A course's language and a question's words: stemmed without stop words (as the
    English search document holds them), and lower-cased with their accents."""

    language: str
    stemmed: list[str]
    words: list[str]
    progress: IndexingProgress | None = None


def nearest_query(
    course_id: uuid.UUID | BindParameter[Any],
    vector: NDArray[np.float32] | BindParameter[Any],
    limit: int | BindParameter[Any],
) -> Select[int, float]:
    """(chunk id, cosine similarity) of the course's `limit` chunks nearest to `vector`,
    nearest first: the inner ORDER BY distance LIMIT is what the HNSW index answers."""
    distance = ContentChunk.embedding.cosine_distance(vector).label("distance")
    nearest = (
        select(ContentChunk.id, distance)
        .where(ContentChunk.course_id == course_id)
        .order_by(distance)
        .limit(limit)
        .subquery("nearest")
    )
    return select(nearest.c.id, (1 - nearest.c.distance).label("similarity")).order_by(
        nearest.c.distance, nearest.c.id
    )


_NEAREST = driver_statement(
    nearest_query(
        bindparam("course_id", type_=Uuid()),
        bindparam("vector", type_=ContentChunk.embedding.type),
        bindparam("limit", type_=Integer()),
    )
)
_DIMENSIONS = ContentChunk.embedding.type.dim


def _vector_text(vector: NDArray[np.float32]) -> str:
    """The query vector in pgvector's text form (`[x,y,...]`), written by orjson: each
    float32 as its shortest decimal, which pgvector reads back as the same float32.
    pgvector's own conversion (SQLAlchemy's column type) formats the 384 numpy scalars
    one by one in Python: ~0.24 ms of every question's retrieval, ~12 us this way."""
    if vector.shape != (_DIMENSIONS,):
        raise ValueError(f"a query vector of shape {vector.shape}, not ({_DIMENSIONS},)")
    return orjson.dumps(vector, option=orjson.OPT_SERIALIZE_NUMPY).decode()


class SearchRepository:
    """The queries of course-material search (content.retrieval)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def setup(
        self, course_id: uuid.UUID, query: str, ef_search: int, *, progress: bool = False
    ) -> QuestionWords | None:
        """The course's language and the question's words (None: no such course), with
        `progress` the course's indexing progress too; also sets this transaction's HNSW
        search breadth, with iterative scans that go on until enough rows of *this*
        course pass the filter."""
        found = await driver_execute(
            self.session,
            _SEARCH_SETUP_PROGRESS_SQL if progress else _SEARCH_SETUP_SQL_DRIVER,
            {"id": course_id, "query": query, "ef_search": str(ef_search)},
        )
        if not found.rows:
            return None
        row = found.rows[0]
        # language, stemmed, words, the two settings, then the progress counts.
        return QuestionWords(
            row[0],
            list(row[1]),
            list(row[2]),
            IndexingProgress(*(int(count) for count in row[5:9])) if progress else None,
        )

    async def vector_ranking(
        self, course_id: uuid.UUID, vector: NDArray[np.float32], limit: int
    ) -> list[tuple[int, float]]:
        """(chunk id, cosine similarity), nearest first. Needs `setup` called first in
        the same transaction (search settings)."""
        found = await driver_execute(
            self.session,
            _NEAREST.sql,
            {
                **_NEAREST.constants,
                "course_id": course_id,
                "vector": _vector_text(vector),
                "limit": limit,
            },
        )
        return [(row[0], float(row[1])) for row in found.rows]

    async def text_ranking(
        self,
        course_id: uuid.UUID,
        query: str,
        config: str,
        limit: int,
        *,
        budget: int | None = None,
    ) -> list[int]:
        """Chunk ids, best full-text match first, ranking at most `budget` candidates
        (default TEXT_CANDIDATES)."""
        budget = TEXT_CANDIDATES if budget is None else budget
        found = await driver_execute(self.session, _LEXEMES_SQL, {"config": config, "query": query})
        lexemes = found.rows[0][0]
        if not lexemes:
            return []  # only stop words
        tiers = candidate_tiers(lexemes)
        ranked = await driver_execute(
            self.session,
            _text_ranking_driver_sql(len(tiers)),
            _text_ranking_values(course_id, tiers, budget, limit),
        )
        return [row[0] for row in ranked.rows]

    async def passages(self, ids: Sequence[int], stemmed: bool) -> dict[int, Passage]:
        """The chunks' text, source and words (see HIT_WORDS), by id."""
        found = await driver_execute(
            self.session, _DETAILS_SQL, {"ids": list(ids), "stemmed": stemmed}
        )
        return {row[0]: Passage(*row) for row in found.rows}
