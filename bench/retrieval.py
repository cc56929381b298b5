"""Scenario: course-material retrieval at 100,000 chunks: latency and HNSW recall.

    python bench/retrieval.py [--chunks N] [--courses N] [--big-course N] [--queries N]
                              [--torch-threads N] [--explain] [--json PATH]

1. Starts an embedded PostgreSQL in a temp dir, creates a fresh database and migrates it
   to head.
2. Loads the embedding model and embeds real text from the six demo courses
   (`src/lyceum/demo/courses/*.toml`): every sentence of every lesson, and the real
   chunks `indexing.prepare` makes of each lesson. Embedding 100,000 chunks would take
   hours on a small CPU, so most chunks are derived: the text of 3 to 8 sentences of
   one demo lesson (a run, a scattered handful, or a handful from it and another lesson
   of the course) and, as its vector, a random convex combination (Dirichlet weights)
   of those sentences' vectors plus Gaussian noise, normalised. The output compares
   their similarity structure with the real chunks'.
3. Seeds with COPY: `--courses` small courses (the demo courses' themes and languages in
   turn, each holding its theme's real chunks plus derived ones) and one big English
   course drawing on all six themes (`--big-course` chunks), lessons for the chunks to
   belong to, `--chunks` chunks in all. The HNSW and GIN indexes (dropped before the
   COPY) are then rebuilt with the migration's own definitions, timed, and the table
   is analysed.
4. Latency: `search_course_material(..., k=5, mode="hybrid")` in-process, with the model
   warm, for `--queries` distinct questions (the labelled ones in
   `bench/retrieval_questions.toml`, then questions made from lesson headings), each on
   a course of its theme (a quarter of them on the big course), one at a time, a
   session per call as a request has: p50/p99 of the whole call and of its parts
   (query embedding, vector query, text query, the rest).
5. Baseline and recall: for the same query vectors, the repository's vector query
   (`vector_ranking`, with its SET LOCALs) again with index scans disabled, so it is an
   exact scan of the course's rows, and once more with sorting disabled, so the planner
   has to use the HNSW index (and, as a diagnostic, with a wider `hnsw.ef_search`).
   recall@10 = overlap of the first 10 ids with the exact first 10. EXPLAIN ANALYZE
   shows which plan each configuration gets.

Exit code 0 whatever the figures; 1 on errors.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import functools
import math
import os
import platform
import random
import re
import sys
import time
import tomllib
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar
from unittest import mock

import numpy as np
import psycopg
from numpy.typing import NDArray
from psycopg import sql

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import BenchError, load_average, migrated_postgres, percentile, scenario_main

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from lyceum.kit.ai.embedding import Embedder
    from lyceum.kit.db import Database

SCENARIO = "retrieval"
DATABASE = "lyceum_bench_retrieval"
TARGET_P50_MS = 20.0
TARGET_RECALL = 0.95
QUESTIONS_FILE = Path(__file__).resolve().parent / "retrieval_questions.toml"
K = 5  # passages asked for, as the search endpoint's default
RECALL_AT = 10
WARMUP_QUERIES = 20
CHUNKS_PER_LESSON = 15
BIG_COURSE_SHARE_OF_QUERIES = 0.25
EMBEDDING_INDEX = "ix_content_chunks_embedding"
SEARCH_INDEX = "ix_content_chunks_course_search"
HNSW_STEP = "HNSW index (the migration's definition)"

P = ParamSpec("P")
R = TypeVar("R")
Vectors = NDArray[np.float32]


# Demo material ------------------------------------------------------------------------

_SENTENCE_END = re.compile(r"(?<=[.!?\u2026])\s+")


@dataclass
class DemoLesson:
    title: str
    sentences: list[int]  # indices into Material.sentences


@dataclass
class Theme:
    slug: str
    title: str
    language: str
    lessons: list[DemoLesson] = field(default_factory=list)
    real_chunks: list[int] = field(default_factory=list)  # indices into Material.chunks


@dataclass
class RealChunk:
    lesson: int  # index into its theme's lessons
    text: str
    heading: str
    tokens: int


@dataclass
class Material:
    themes: list[Theme]
    sentences: list[str]
    headings: list[str]  # the heading path of each sentence
    chunks: list[RealChunk]
    embedding_texts: list[str]  # of the real chunks, as the pipeline embeds them
    sentence_vectors: Vectors = field(default_factory=lambda: np.zeros((0, 384), np.float32))
    chunk_vectors: Vectors = field(default_factory=lambda: np.zeros((0, 384), np.float32))


def split_sentences(text: str) -> Iterator[str]:
    for line in text.split("\n"):
        for sentence in _SENTENCE_END.split(line):
            if len(sentence.split()) >= 4:  # skip table scraps and one-word list items
                yield sentence.strip()


def load_material(embedder: Embedder) -> Material:
    from lyceum.content.indexing import HEADING_SEPARATOR, prepare
    from lyceum.demo.loader import demo_courses
    from lyceum.kit.documents.extraction import extract_markdown

    material = Material(themes=[], sentences=[], headings=[], chunks=[], embedding_texts=[])
    for data in demo_courses():
        theme = Theme(data["slug"], data["title"], data["language"])
        material.themes.append(theme)
        for module in data["modules"]:
            for lesson in module["lessons"]:
                sections = extract_markdown(lesson.get("content", ""))
                demo_lesson = DemoLesson(lesson["title"], [])
                for section in sections:
                    heading = HEADING_SEPARATOR.join(section.heading_path)
                    for sentence in split_sentences(section.text):
                        demo_lesson.sentences.append(len(material.sentences))
                        material.sentences.append(sentence)
                        material.headings.append(heading or lesson["title"])
                if not demo_lesson.sentences:
                    continue  # a video lesson without text
                theme.lessons.append(demo_lesson)
                prepared = prepare(sections, embedder, lesson["title"])
                for chunk, text in zip(prepared.chunks, prepared.embedding_texts, strict=True):
                    theme.real_chunks.append(len(material.chunks))
                    material.chunks.append(
                        RealChunk(
                            lesson=len(theme.lessons) - 1,
                            text=chunk.text,
                            heading=HEADING_SEPARATOR.join(chunk.heading_path),
                            tokens=chunk.token_count,
                        )
                    )
                    material.embedding_texts.append(text)
    return material


# Derived chunks -----------------------------------------------------------------------


@dataclass
class SeedCourse:
    id: uuid.UUID
    slug: str
    title: str
    language: str
    themes: list[Theme]
    chunks: int
    big: bool
    # (theme, demo lesson, part) -> lesson id
    lessons: dict[tuple[int, int, int], uuid.UUID] = field(default_factory=dict)


@dataclass(frozen=True)
class PlannedChunk:
    """A chunk of a seeded course: a real one, or sentences of the demo lessons."""

    theme: int  # index in the course's themes
    lesson: int  # index in that theme's lessons
    real: int | None  # index in Material.chunks
    sentences: tuple[int, ...] = ()  # of a derived one: indices in Material.sentences


class Generator:
    """Derived chunks: a few sentences of the demo lessons, and a noisy random convex
    combination of their vectors. The same data every run for a given seed."""

    def __init__(self, material: Material, noise: float, seed: int) -> None:
        self.material = material
        self.noise = noise
        self.rng = random.Random(seed)
        self.np_rng = np.random.default_rng(seed)

    def new_id(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def pick(self, theme: Theme, lesson: int) -> tuple[int, ...]:
        """3-8 sentences: a run of the lesson (35 %), a scattered handful of it (35 %),
        or a handful of it and of a random lesson of the same course (30 %)."""
        own = theme.lessons[lesson].sentences
        width = min(self.rng.randint(3, 8), len(own))
        roll = self.rng.random()
        if roll < 0.35:
            start = self.rng.randrange(len(own) - width + 1)
            return tuple(own[start : start + width])
        pool = own
        if roll >= 0.7:
            pool = own + self.rng.choice(theme.lessons).sentences
        return tuple(sorted(self.rng.sample(pool, min(self.rng.randint(3, 8), len(pool)))))

    def derived(self, themes: Sequence[Theme], count: int) -> list[PlannedChunk]:
        chunks = []
        for _ in range(count):
            theme = self.rng.randrange(len(themes))
            lesson = self.rng.randrange(len(themes[theme].lessons))
            chunks.append(PlannedChunk(theme, lesson, None, self.pick(themes[theme], lesson)))
        return chunks

    def vectors(self, chunks: Sequence[PlannedChunk]) -> Vectors:
        """Each chunk's vector: the real one, or a random convex combination (Dirichlet
        weights) of its sentences' vectors plus noise, normalised."""
        material = self.material
        out = np.empty((len(chunks), material.sentence_vectors.shape[1]), np.float32)
        derived = []
        for row, chunk in enumerate(chunks):
            if chunk.real is not None:
                out[row] = material.chunk_vectors[chunk.real]
                continue
            weights = self.np_rng.dirichlet(np.ones(len(chunk.sentences)))
            out[row] = weights @ material.sentence_vectors[list(chunk.sentences)]
            derived.append(row)
        if derived:
            part = out[derived]
            part += self.np_rng.normal(0.0, self.noise, part.shape).astype(np.float32)
            part /= np.linalg.norm(part, axis=1, keepdims=True)
            out[derived] = part
        return out

    def text(self, chunk: PlannedChunk) -> tuple[str, str, int]:
        """(text, heading, token count)."""
        from lyceum.content.chunking import word_token_counter

        if chunk.real is not None:
            real = self.material.chunks[chunk.real]
            return real.text, real.heading, real.tokens
        text = " ".join(self.material.sentences[s] for s in chunk.sentences)
        return text, self.material.headings[chunk.sentences[0]], word_token_counter(text)


_VECTOR_FORMAT = "[" + ",".join(["%.6g"] * 384) + "]"


def vector_text(vector: Vectors) -> str:
    return _VECTOR_FORMAT % tuple(vector.tolist())


def plan_courses(material: Material, args: argparse.Namespace, gen: Generator) -> list[SeedCourse]:
    courses: list[SeedCourse] = []
    small_total = args.chunks - args.big_course
    for index in range(args.courses):
        theme = material.themes[index % len(material.themes)]
        # The remainder goes to the first courses, so the total is exact.
        count = small_total // args.courses + (1 if index < small_total % args.courses else 0)
        courses.append(
            SeedCourse(
                gen.new_id(),
                f"{theme.slug}-{index + 1}",
                f"{theme.title} ({index + 1})",
                theme.language,
                [theme],
                count,
                big=False,
            )
        )
    if args.big_course:
        courses.append(
            SeedCourse(
                gen.new_id(),
                "big-course",
                "Everything: the big course",
                "en",
                list(material.themes),
                args.big_course,
                big=True,
            )
        )
    return courses


def plan_chunks(material: Material, course: SeedCourse, gen: Generator) -> list[PlannedChunk]:
    """The course's themes' real chunks first, then derived ones up to its size."""
    real = [
        PlannedChunk(t, material.chunks[c].lesson, c)
        for t, theme in enumerate(course.themes)
        for c in theme.real_chunks
    ][: course.chunks]
    return real + gen.derived(course.themes, course.chunks - len(real))


@dataclass
class SeedReport:
    seconds: dict[str, float] = field(default_factory=dict)
    chunks: int = 0
    derived: int = 0
    sentence_uses: int = 0  # sentences in all derived chunks together
    lessons: int = 0
    courses: int = 0
    hnsw_parallel_workers: int = 0
    index_bytes: dict[str, int] = field(default_factory=dict)
    table_bytes: int = 0

    @property
    def total_seconds(self) -> float:
        return sum(self.seconds.values())


def seed(url: str, material: Material, courses: list[SeedCourse], gen: Generator) -> SeedReport:
    from lyceum.content.retrieval import search_config

    report = SeedReport(courses=len(courses))

    @contextlib.contextmanager
    def step(name: str) -> Iterator[None]:
        started = time.perf_counter()
        yield
        report.seconds[name] = time.perf_counter() - started
        print(f"  {name:<40} {report.seconds[name]:7.2f}s", flush=True)

    user_id = gen.new_id()
    with step("plan chunks, courses, lessons (COPY)"):
        plans = {course.id: plan_chunks(material, course, gen) for course in courses}
        with psycopg.connect(url) as conn:
            conn.execute(
                "INSERT INTO users (id, email, full_name, role, is_active, locale, timezone, "
                "preferences, email_verified_at) VALUES (%s, 'teacher@bench.example.com', "
                "'Bench Teacher', 'instructor', true, 'en', 'UTC', '{}'::jsonb, now())",
                (user_id,),
            )
            report.lessons = copy_syllabus(conn, courses, plans, user_id, gen)
            conn.commit()
    with psycopg.connect(url) as conn:
        with step("drop HNSW + GIN indexes (rebuilt below)"):
            rows = conn.execute(
                "SELECT indexname, indexdef FROM pg_indexes "
                "WHERE tablename = 'content_chunks' AND indexname = ANY(%s)",
                ([EMBEDDING_INDEX, SEARCH_INDEX],),
            ).fetchall()
            definitions: dict[str, str] = {str(row[0]): str(row[1]) for row in rows}
            if set(definitions) != {EMBEDDING_INDEX, SEARCH_INDEX}:
                raise BenchError(f"content_chunks indexes not as expected: {sorted(definitions)}")
            for name in definitions:
                conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
            conn.commit()
        with (
            step("content_chunks (derive + COPY)"),
            conn.cursor() as cursor,
            cursor.copy(
                "COPY content_chunks (course_id, lesson_id, ordinal, text, heading, page, "
                "token_count, search_config, embedding) FROM STDIN"
            ) as copy,
        ):
            for course in courses:
                plan = plans[course.id]
                config = search_config(course.language)
                vectors = gen.vectors(plan)
                parts: dict[tuple[int, int], int] = {}
                ordinals: dict[uuid.UUID, int] = {}
                for chunk, vector in zip(plan, vectors, strict=True):
                    seen = parts.get((chunk.theme, chunk.lesson), 0)
                    parts[(chunk.theme, chunk.lesson)] = seen + 1
                    lesson_id = course.lessons[
                        (chunk.theme, chunk.lesson, seen // CHUNKS_PER_LESSON)
                    ]
                    ordinal = ordinals.get(lesson_id, 0)
                    ordinals[lesson_id] = ordinal + 1
                    text, heading, tokens = gen.text(chunk)
                    copy.write_row(
                        (
                            course.id,
                            lesson_id,
                            ordinal,
                            text,
                            heading,
                            None,
                            tokens,
                            config,
                            vector_text(vector),
                        )
                    )
                report.chunks += len(plan)
                report.derived += sum(1 for chunk in plan if chunk.real is None)
                report.sentence_uses += sum(len(chunk.sentences) for chunk in plan)
        with step("commit"):
            conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        with step("GIN index (full text)"):
            conn.execute("SET maintenance_work_mem = '256MB'")
            conn.execute(definitions[SEARCH_INDEX].encode())
        with step(HNSW_STEP):
            report.hnsw_parallel_workers = build_hnsw(conn, definitions[EMBEDDING_INDEX])
        with step("VACUUM ANALYZE"):
            for table in ("users", "courses", "modules", "lessons", "content_chunks"):
                conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(table)))
        for name in (EMBEDDING_INDEX, SEARCH_INDEX, "ix_content_chunks_course_id"):
            size = conn.execute("SELECT pg_relation_size(%s::regclass)", (name,)).fetchone()
            report.index_bytes[name] = int(size[0]) if size else 0
        size = conn.execute("SELECT pg_table_size('content_chunks')").fetchone()
        report.table_bytes = int(size[0]) if size else 0
    return report


def copy_syllabus(
    conn: psycopg.Connection[Any],
    courses: list[SeedCourse],
    plans: dict[uuid.UUID, list[PlannedChunk]],
    user_id: uuid.UUID,
    gen: Generator,
) -> int:
    """Courses, one module each, and one lesson per CHUNKS_PER_LESSON chunks of each demo
    lesson a course draws on (titled after it)."""
    now = dt.datetime.now(dt.UTC)
    modules: list[tuple[Any, ...]] = []
    lessons: list[tuple[Any, ...]] = []
    for course in courses:
        counts: dict[tuple[int, int], int] = {}
        for chunk in plans[course.id]:
            counts[(chunk.theme, chunk.lesson)] = counts.get((chunk.theme, chunk.lesson), 0) + 1
        module_id = gen.new_id()
        modules.append((module_id, course.id, "Course material", 0))
        position = 0
        for (theme, lesson), count in sorted(counts.items()):
            title = course.themes[theme].lessons[lesson].title
            for part in range(math.ceil(count / CHUNKS_PER_LESSON)):
                lesson_id = gen.new_id()
                course.lessons[(theme, lesson, part)] = lesson_id
                name = f"{title} ({part + 1})" if part else title
                lessons.append(
                    (lesson_id, module_id, course.id, name[:200], "text", "", 10, False, position)
                )
                position += 1
    course_rows: list[tuple[Any, ...]] = [
        (
            *(course.id, course.slug, course.title, "", "", course.language, "beginner"),
            *("bench", [], "", "", 0, "USD", "published", user_id, now, now, now),
        )
        for course in courses
    ]
    tables: tuple[tuple[str, str, list[tuple[Any, ...]]], ...] = (
        (
            "courses",
            "id, slug, title, subtitle, description, language, level, category, tags, "
            "tags_text, lesson_titles, price_cents, currency, status, owner_id, "
            "published_at, created_at, updated_at",
            course_rows,
        ),
        ("modules", "id, course_id, title, position", modules),
        (
            "lessons",
            "id, module_id, course_id, title, kind, content, estimated_minutes, is_preview, "
            "position",
            lessons,
        ),
    )
    for table, columns, rows in tables:
        with (
            conn.cursor() as cursor,
            cursor.copy(
                sql.SQL("COPY {} ({}) FROM STDIN").format(sql.Identifier(table), sql.SQL(columns))
            ) as copy,
        ):
            for row in rows:
                copy.write_row(row)
    conn.execute(
        "INSERT INTO course_instructors (course_id, user_id) SELECT id, owner_id FROM courses"
    )
    return len(lessons)


def build_hnsw(conn: psycopg.Connection[Any], definition: str) -> int:
    """The migration's HNSW index, built in memory (maintenance_work_mem raised) with one
    parallel worker per spare core; serially if the parallel build cannot get its shared
    memory. Returns the number of parallel workers allowed."""
    conn.execute("SET maintenance_work_mem = '1GB'")
    workers = max(0, (os.cpu_count() or 1) - 1)
    conn.execute(sql.SQL("SET max_parallel_maintenance_workers = {}").format(workers))
    try:
        conn.execute(definition.encode())
    except psycopg.errors.DiskFull:
        print("  parallel HNSW build ran out of shared memory; building serially", flush=True)
        conn.execute("SET max_parallel_maintenance_workers = 0")
        conn.execute(definition.encode())
        return 0
    return workers


def similarity_check(material: Material, noise: float, seed: int) -> list[dict[str, Any]]:
    """Per theme: mean pairwise cosine and mean nearest-neighbour cosine of the real
    chunks, and of as many derived ones, to show how alike the two populations are."""
    gen = Generator(material, noise, seed + 1)
    rows = []
    for theme in material.themes:
        real = material.chunk_vectors[theme.real_chunks]
        derived = gen.vectors(gen.derived([theme], len(theme.real_chunks)))
        stats: dict[str, Any] = {"theme": theme.slug, "chunks": len(theme.real_chunks)}
        for name, vectors in (("real", real), ("derived", derived)):
            similarity = vectors @ vectors.T
            np.fill_diagonal(similarity, np.nan)
            stats[f"{name}_pairwise"] = float(np.nanmean(similarity))
            stats[f"{name}_nearest"] = float(np.nanmax(similarity, axis=1).mean())
        rows.append(stats)
    return rows


# Queries ------------------------------------------------------------------------------

QUESTION_TEMPLATES = {
    "en": ("What is {h}?", "Can you explain {h}?", "{h} example", "How does {h} work?"),
    "vi": ("{h} là gì?", "Giải thích {h}", "Ví dụ về {h}", "{h} hoạt động thế nào?"),
}
WARMUP_TEMPLATE = {"en": "Tell me about {h}", "vi": "Cho tôi biết về {h}"}


@dataclass
class Query:
    kind: str  # "labelled" (retrieval_questions.toml) or "generated" (from a heading)
    text: str
    course: SeedCourse


def build_queries(
    material: Material, courses: Sequence[SeedCourse], count: int, seed: int
) -> tuple[list[Query], list[Query]]:
    """(measured, warm-up): distinct questions, each on a course of its theme."""
    from lyceum.content.indexing import HEADING_SEPARATOR

    rng = random.Random(seed + 2)
    themes = {theme.slug: theme for theme in material.themes}
    labelled = tomllib.loads(QUESTIONS_FILE.read_text(encoding="utf-8")).get("question", [])
    pool: list[tuple[str, str, str]] = [
        ("labelled", q["course"], q["question"]) for q in labelled if q["course"] in themes
    ]
    rng.shuffle(pool)
    generated: list[tuple[str, str, str]] = []
    warmup: list[tuple[str, str, str]] = []
    for theme in material.themes:
        headings = sorted(
            {
                heading.split(HEADING_SEPARATOR)[-1]
                for lesson in theme.lessons
                for heading in [*(material.headings[s] for s in lesson.sentences), lesson.title]
                if heading
            }
        )
        language = "vi" if theme.language.startswith("vi") else "en"
        for heading in headings:
            template = rng.choice(QUESTION_TEMPLATES[language])
            generated.append(("generated", theme.slug, template.format(h=heading)))
            warmup.append(("warm-up", theme.slug, WARMUP_TEMPLATE[language].format(h=heading)))
    rng.shuffle(generated)
    rng.shuffle(warmup)
    small: dict[str, list[SeedCourse]] = {}
    for course in courses:
        if not course.big:
            small.setdefault(course.themes[0].slug, []).append(course)
    big = next((course for course in courses if course.big), None)
    turn: dict[str, int] = {}

    def assign(entries: Sequence[tuple[str, str, str]], limit: int) -> list[Query]:
        queries: list[Query] = []
        seen: set[str] = set()
        for kind, slug, text in entries:
            if len(queries) >= limit:
                break
            if text in seen or (slug not in small and big is None):
                continue
            seen.add(text)
            if big is not None and (
                slug not in small or rng.random() < BIG_COURSE_SHARE_OF_QUERIES
            ):
                course = big
            else:
                choices = small[slug]
                course = choices[turn.get(slug, 0) % len(choices)]
                turn[slug] = turn.get(slug, 0) + 1
            queries.append(Query(kind, text, course))
        return queries

    return assign(pool + generated, count), assign(warmup, WARMUP_QUERIES)


# Measurement --------------------------------------------------------------------------


@dataclass
class Sample:
    query: Query
    total: float = math.nan  # seconds, the whole search_course_material call
    encode: float = math.nan  # query embedding
    vector: float = math.nan  # vector_ranking (its SET LOCALs and the kNN query)
    text: float = math.nan  # text_ranking
    hits: int = 0
    vector_ids: list[int] = field(default_factory=list)
    embedding: Vectors | None = None
    exact: float = math.nan  # vector_ranking with index scans off
    exact_ids: list[int] = field(default_factory=list)
    forced: float = math.nan  # vector_ranking with sorts off (so: the HNSW index)
    forced_ids: list[int] = field(default_factory=list)
    wide: float = math.nan  # the same with a wider HNSW search (diagnostic)
    wide_ids: list[int] = field(default_factory=list)

    @property
    def database(self) -> float:
        return self.total - self.encode

    @property
    def rest(self) -> float:
        return self.total - self.encode - self.vector - self.text

    @property
    def recall_planned(self) -> float:
        return recall(self.vector_ids, self.exact_ids)

    @property
    def recall_forced(self) -> float:
        return recall(self.forced_ids, self.exact_ids)

    @property
    def recall_wide(self) -> float:
        return recall(self.wide_ids, self.exact_ids)


def recall(found: Sequence[int], exact: Sequence[int]) -> float:
    truth = set(exact[:RECALL_AT])
    return len(truth & set(found[:RECALL_AT])) / len(truth) if truth else math.nan


class TimedEncoder:
    """The embedder as `search_course_material` sees it, timing each call."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder
        self.seconds = math.nan
        self.last: Vectors | None = None

    async def encode_query(self, text: str) -> Vectors:
        """The production path (per-process query cache and batching); the measured
        questions are distinct from each other and from the warm-up ones, so each is
        encoded by the model."""
        started = time.perf_counter()
        vector = await self.embedder.encode_query(text)
        self.seconds = time.perf_counter() - started
        self.last = vector[np.newaxis, :]
        return vector


def timed_ranking(
    function: Callable[P, Awaitable[list[int]]], record: Callable[[float, list[int]], None]
) -> Callable[P, Awaitable[list[int]]]:
    @functools.wraps(function)
    async def timed(*args: P.args, **kwargs: P.kwargs) -> list[int]:
        started = time.perf_counter()
        ids = await function(*args, **kwargs)
        record(time.perf_counter() - started, ids)
        return ids

    return timed


async def run_hybrid(database: Database, encoder: TimedEncoder, samples: Sequence[Sample]) -> None:
    """search_course_material for every sample, a session each, timing its parts by
    wrapping the rankings it looks up in `lyceum.content.retrieval`."""
    from lyceum.content import retrieval
    from lyceum.content.repository import SearchRepository

    current: list[Sample] = []  # the sample being measured

    def on_vector(seconds: float, ids: list[int]) -> None:
        current[0].vector, current[0].vector_ids = seconds, ids

    def on_text(seconds: float, ids: list[int]) -> None:
        current[0].text = seconds

    with (
        mock.patch.object(
            SearchRepository,
            "vector_ranking",
            timed_ranking(SearchRepository.vector_ranking, on_vector),
        ),
        mock.patch.object(
            SearchRepository, "text_ranking", timed_ranking(SearchRepository.text_ranking, on_text)
        ),
    ):
        for sample in samples:
            current[:] = [sample]
            encoder.seconds, encoder.last = math.nan, None
            async with database.sessionmaker() as session:
                started = time.perf_counter()
                hits = await retrieval.search_course_material(
                    session, encoder, sample.query.course.id, sample.query.text, K, mode="hybrid"
                )
                sample.total = time.perf_counter() - started
            sample.encode = encoder.seconds
            sample.embedding = encoder.last[0] if encoder.last is not None else None
            sample.hits = len(hits)


EXACT_SETTINGS = ("SET LOCAL enable_indexscan = off",)  # bitmap or seq scan, then sort
FORCED_SETTINGS = ("SET LOCAL enable_sort = off",)  # only the HNSW index gives the order


async def ranking_with(
    session: AsyncSession, settings: Sequence[str], course_id: uuid.UUID, vector: Vectors
) -> tuple[float, list[int]]:
    """The repository's vector_ranking, after `settings`, in this transaction."""
    from sqlalchemy import text

    from lyceum.content.repository import SearchRepository
    from lyceum.content.retrieval import CANDIDATES, prepare_search

    await prepare_search(session, course_id, "", max(CANDIDATES, 2 * K))  # its search settings
    for setting in settings:
        await session.execute(text(setting))
    started = time.perf_counter()
    ids = await SearchRepository(session).vector_ranking(course_id, vector, max(CANDIDATES, 2 * K))
    return time.perf_counter() - started, ids


async def run_baselines(database: Database, samples: Sequence[Sample], wide_ef: int) -> None:
    """Exact and HNSW-forced rankings of every sample's query vector, then (diagnostic)
    HNSW-forced with `hnsw.ef_search` = `wide_ef` instead of the repository's value."""
    from lyceum.content import retrieval

    for sample in samples:
        if sample.embedding is None:
            continue
        async with database.sessionmaker() as session:
            sample.exact, sample.exact_ids = await ranking_with(
                session, EXACT_SETTINGS, sample.query.course.id, sample.embedding
            )
        async with database.sessionmaker() as session:
            sample.forced, sample.forced_ids = await ranking_with(
                session, FORCED_SETTINGS, sample.query.course.id, sample.embedding
            )
    if wide_ef <= 0:
        return
    with mock.patch.object(retrieval, "EF_SEARCH", wide_ef):
        for sample in samples:
            if sample.embedding is None:
                continue
            async with database.sessionmaker() as session:
                sample.wide, sample.wide_ids = await ranking_with(
                    session, FORCED_SETTINGS, sample.query.course.id, sample.embedding
                )


async def round_trips(database: Database, count: int) -> list[float]:
    """Seconds of a trivial statement in an open transaction: what each of the ~8
    statements of a search costs before PostgreSQL does any work."""
    from sqlalchemy import text

    seconds = []
    async with database.sessionmaker() as session:
        await session.execute(text("SELECT 1"))  # checkout (and pre-ping) not counted
        for _ in range(count):
            started = time.perf_counter()
            await session.execute(text("SELECT 1"))
            seconds.append(time.perf_counter() - started)
    return seconds


# Plans --------------------------------------------------------------------------------


def plan_nodes(node: dict[str, Any]) -> list[str]:
    """The plan's nodes, top down: 'Index Scan using ix_...' etc."""
    label = str(node.get("Node Type", "?"))
    if "Index Name" in node:
        label += f" using {node['Index Name']}"
    elif "Relation Name" in node:
        label += f" on {node['Relation Name']}"
    counts = []
    if "Actual Rows" in node:
        counts.append(f"rows {float(node['Actual Rows']):,.0f}")
    if node.get("Rows Removed by Filter"):
        counts.append(f"filtered out {float(node['Rows Removed by Filter']):,.0f}")
    if counts:
        label += f" ({', '.join(counts)})"
    nodes = [label]
    for child in node.get("Plans", []):
        nodes.extend(plan_nodes(child))
    return nodes


async def explain_vector(
    database: Database,
    settings: Sequence[str],
    course_id: uuid.UUID,
    vector: Vectors,
    *,
    analyze: bool,
    text_plan: bool = False,
) -> tuple[list[str], float, str]:
    """(nodes, execution ms or NaN, text plan) of the repository's vector query, with its
    SET LOCALs (written out here as in `vector_ranking`) after `settings`."""
    from sqlalchemy import text

    from lyceum.content import retrieval
    from lyceum.content.repository import nearest_query

    limit = max(retrieval.CANDIDATES, 2 * K)
    options = "ANALYZE, BUFFERS, " if analyze else ""
    async with database.sessionmaker() as session:
        for setting in (
            *settings,
            f"SET LOCAL hnsw.ef_search = {max(retrieval.EF_SEARCH, limit)}",
            "SET LOCAL hnsw.iterative_scan = relaxed_order",
        ):
            await session.execute(text(setting))
        # The repository's query with its values written in (a custom plan is made for
        # the values of the call either way); colons escaped for text().
        statement = str(
            nearest_query(course_id, vector, limit).compile(
                database.engine, compile_kwargs={"literal_binds": True}
            )
        ).replace(":", "\\:")
        params: dict[str, Any] = {}
        plan = (
            await session.execute(text(f"EXPLAIN ({options}FORMAT JSON) {statement}"), params)
        ).scalar_one()
        rendered = ""
        if text_plan:
            lines = await session.execute(text(f"EXPLAIN ({options}COSTS OFF) {statement}"), params)
            rendered = "\n".join(_VECTOR_IN_PLAN.sub("'[...]'", str(line[0])) for line in lines)
    top = plan[0]
    return plan_nodes(top["Plan"]), float(top.get("Execution Time", math.nan)), rendered


_VECTOR_IN_PLAN = re.compile(r"'\[[-+0-9.,eE]+\]'")


async def explain_text(
    database: Database, course: SeedCourse, query: str, show: bool
) -> tuple[list[str], float, str]:
    from sqlalchemy import text

    from lyceum.content import retrieval
    from lyceum.content.repository import TEXT_CANDIDATES, candidate_tiers, text_ranking_query

    params: dict[str, Any] = {}
    async with database.sessionmaker() as session:
        lexemes = (
            await session.execute(
                text(
                    "SELECT tsvector_to_array(to_tsvector(CAST(:config AS regconfig), :query)),"
                    " set_config('max_parallel_workers_per_gather', '0', true)"
                ),
                {"config": retrieval.search_config(course.language), "query": query},
            )
        ).one()[0]
        # The repository's ranking query with its values written in; colons escaped.
        ranking = text_ranking_query(
            course.id, candidate_tiers(lexemes), TEXT_CANDIDATES, max(retrieval.CANDIDATES, 2 * K)
        )
        statement = str(
            ranking.compile(database.engine, compile_kwargs={"literal_binds": True})
        ).replace(":", "\\:")
        plan = (
            await session.execute(
                text(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {statement}"), params
            )
        ).scalar_one()
        rendered = ""
        if show:
            lines = await session.execute(text(f"EXPLAIN (ANALYZE, BUFFERS) {statement}"), params)
            rendered = "\n".join(str(line[0]) for line in lines)
    top = plan[0]
    return plan_nodes(top["Plan"]), float(top.get("Execution Time", math.nan)), rendered


@dataclass
class PlanReport:
    hnsw_courses: dict[uuid.UUID, bool]
    examples: list[dict[str, Any]]


async def check_plans(
    database: Database, courses: Sequence[SeedCourse], samples: Sequence[Sample], show: bool
) -> PlanReport:
    """Which courses' vector queries the planner runs on the HNSW index, and EXPLAIN
    ANALYZE of each configuration for one small course and the big one."""
    vectors = [s.embedding for s in samples if s.embedding is not None]
    if not vectors:
        return PlanReport({}, [])
    probe = vectors[0]
    hnsw: dict[uuid.UUID, bool] = {}
    for course in courses:
        nodes, _, _ = await explain_vector(database, (), course.id, probe, analyze=False)
        hnsw[course.id] = any(EMBEDDING_INDEX in node for node in nodes)
    examples: list[dict[str, Any]] = []
    picks: list[Sample] = []
    for big in (False, True):
        found = next(
            (s for s in samples if s.query.course.big == big and s.embedding is not None), None
        )
        if found is not None:
            picks.append(found)
    for sample in picks:
        assert sample.embedding is not None
        course = sample.query.course
        label = "big course" if course.big else "small course"
        for name, settings in (
            ("as planned", ()),
            ("exact (index scans off)", EXACT_SETTINGS),
            ("HNSW forced (sorts off)", FORCED_SETTINGS),
        ):
            nodes, ms, rendered = await explain_vector(
                database, settings, course.id, sample.embedding, analyze=True, text_plan=show
            )
            examples.append(
                {
                    "course": f"{label} ({course.chunks:,} chunks)",
                    "query": f"vector, {name}",
                    "nodes": nodes,
                    "ms": ms,
                    "plan": rendered,
                }
            )
        nodes, ms, rendered = await explain_text(database, course, sample.query.text, show)
        examples.append(
            {
                "course": f"{label} ({course.chunks:,} chunks)",
                "query": f"text: {sample.query.text[:40]!r}",
                "nodes": nodes,
                "ms": ms,
                "plan": rendered,
            }
        )
    return PlanReport(hnsw, examples)


async def database_settings(database: Database) -> dict[str, str]:
    from sqlalchemy import text

    async with database.sessionmaker() as session:
        settings = {
            "server_version": "SHOW server_version",
            "pgvector": "SELECT extversion FROM pg_extension WHERE extname = 'vector'",
            "shared_buffers": "SHOW shared_buffers",
            "work_mem": "SHOW work_mem",
            "effective_cache_size": "SHOW effective_cache_size",
            "random_page_cost": "SHOW random_page_cost",
            "max_parallel_workers_per_gather": "SHOW max_parallel_workers_per_gather",
        }
        return {
            name: str((await session.execute(text(query))).scalar_one())
            for name, query in settings.items()
        }


async def encode_threads_check(embedder: Embedder, queries: Sequence[Query]) -> dict[str, float]:
    """Query-embedding latency (p50, ms), one question at a time off the event loop: the
    production path (the traced graph, `encode_queries_sync`) with torch's thread count
    as run above and with one thread (on a busy machine extra intra-op threads wait for
    each other), and sentence-transformers' eager `encode` for comparison."""
    import torch

    default = torch.get_num_threads()
    texts = [query.text for query in queries]
    paths: dict[str, Callable[[list[str]], Vectors]] = {
        "traced": embedder.encode_queries_sync,
        "eager": embedder.encode_sync,
    }
    result: dict[str, float] = {}
    try:
        for path, threads in (("traced", default), ("traced", 1), ("eager", default)):
            torch.set_num_threads(threads)
            encode = paths[path]
            await asyncio.to_thread(encode, texts[:3])  # settle
            seconds = []
            for query in texts:
                started = time.perf_counter()
                await asyncio.to_thread(encode, [query])
                seconds.append((time.perf_counter() - started) * 1000)
            label = f"{path}, {threads} thread{'s' if threads > 1 else ''}"
            result[label] = percentile(sorted(seconds), 50.0)
    finally:
        torch.set_num_threads(default)
    return result


# Report -------------------------------------------------------------------------------


def fmt(value: float, digits: int = 2) -> str:
    return "-" if value != value else f"{value:,.{digits}f}"  # NaN -> "-"


def ms_stats(values: Sequence[float]) -> dict[str, float]:
    ms = sorted(v * 1000 for v in values if v == v)
    return {
        "p50_ms": percentile(ms, 50.0),
        "p90_ms": percentile(ms, 90.0),
        "p99_ms": percentile(ms, 99.0),
        "max_ms": ms[-1] if ms else math.nan,
    }


def mean(values: Sequence[float]) -> float:
    finite = [v for v in values if v == v]
    return sum(finite) / len(finite) if finite else math.nan


LATENCY_ROWS: tuple[tuple[str, Callable[[Sample], float]], ...] = (
    ("whole call (search_course_material)", lambda s: s.total),
    ("  query embedding", lambda s: s.encode),
    ("  vector query (vector_ranking)", lambda s: s.vector),
    ("  text query (text_ranking)", lambda s: s.text),
    ("  rest (language, details, session)", lambda s: s.rest),
    ("database part (whole - embedding)", lambda s: s.database),
    ("baseline: vector query, exact scan", lambda s: s.exact),
    ("vector query, HNSW forced", lambda s: s.forced),
    ("  same, wider search (diagnostic)", lambda s: s.wide),
)


def group_samples(samples: Sequence[Sample]) -> dict[str, list[Sample]]:
    groups = {
        "small courses": [s for s in samples if not s.query.course.big],
        "big course": [s for s in samples if s.query.course.big],
        "all": list(samples),
    }
    return {name: group for name, group in groups.items() if group}


def print_latency(groups: dict[str, list[Sample]]) -> None:
    width = 38
    header = f"{'ms, p50 / p99':<{width}} " + " ".join(
        f"{f'{name} ({len(group)})':>22}" for name, group in groups.items()
    )
    print(header)
    print("-" * len(header))
    for label, value in LATENCY_ROWS:
        cells = []
        for group in groups.values():
            stats = ms_stats([value(s) for s in group])
            cells.append(f"{fmt(stats['p50_ms']) + ' / ' + fmt(stats['p99_ms']):>22}")
        print(f"{label:<{width}} " + " ".join(cells))


def print_recall(groups: dict[str, list[Sample]], hnsw: dict[uuid.UUID, bool]) -> None:
    width = 38
    header = f"{f'recall@{RECALL_AT} vs exact (mean / min)':<{width}} " + " ".join(
        f"{name:>22}" for name in groups
    )
    print(header)
    print("-" * len(header))
    recall_rows: tuple[tuple[str, Callable[[Sample], float]], ...] = (
        ("vector query as planned", lambda s: s.recall_planned),
        ("vector query, HNSW forced", lambda s: s.recall_forced),
        ("  same, wider search (diagnostic)", lambda s: s.recall_wide),
    )
    for label, value in recall_rows:
        cells = []
        for group in groups.values():
            values = [value(s) for s in group if value(s) == value(s)]
            cell = f"{fmt(mean(values), 3)} / {fmt(min(values), 1)}" if values else "-"
            cells.append(f"{cell:>22}")
        print(f"{label:<{width}} " + " ".join(cells))
    cells = []
    for group in groups.values():
        courses = {s.query.course.id for s in group}
        cells.append(f"{sum(1 for c in courses if hnsw.get(c))} of {len(courses)}".rjust(22))
    print(f"{'courses planned on the HNSW index':<{width}} " + " ".join(cells))
    cells = []
    for group in groups.values():
        short = sum(1 for s in group if len(s.forced_ids) < RECALL_AT)
        cells.append(f"{short:>22}")
    print(f"{f'HNSW forced: fewer than {RECALL_AT} rows':<{width}} " + " ".join(cells))


def print_plans(report: PlanReport, show: bool) -> None:
    for example in report.examples:
        chain = " <- ".join(example["nodes"])
        print(f"  {example['course']}, {example['query']}: {fmt(example['ms'])} ms")
        print(f"      {chain}")
        if show and example["plan"]:
            print("\n".join(f"      | {line}" for line in example["plan"].splitlines()))


# Run ----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Course-material retrieval at scale: hybrid search latency, and HNSW "
        "recall against exact search."
    )
    parser.add_argument("--chunks", type=int, default=100_000, help="chunks in all (100,000)")
    parser.add_argument("--courses", type=int, default=50, help="small courses (50)")
    parser.add_argument(
        "--big-course", type=int, default=50_000, help="chunks of the one big course (50,000)"
    )
    parser.add_argument("--queries", type=int, default=300, help="distinct questions (300)")
    parser.add_argument(
        "--noise", type=float, default=0.015, help="noise (per dimension) of derived vectors"
    )
    parser.add_argument(
        "--torch-threads", type=int, default=0, help="torch intra-op threads (0: torch's default)"
    )
    parser.add_argument(
        "--wide-ef",
        type=int,
        default=400,
        help="hnsw.ef_search of the diagnostic wider HNSW search (400; 0: skip it)",
    )
    parser.add_argument("--seed", type=int, default=2026, help="random seed of the data")
    parser.add_argument("--explain", action="store_true", help="also print the full plans")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write results here")
    parser.add_argument(
        "--keep-temp", action="store_true", help="keep the temp dir (PostgreSQL data) afterwards"
    )
    args = parser.parse_args(argv)
    if args.courses < 1 or args.queries < 1 or args.chunks < 1:
        parser.error("need --chunks, --courses and --queries >= 1")
    if not 0 <= args.big_course < args.chunks or args.chunks - args.big_course < args.courses:
        parser.error("need 0 <= --big-course < --chunks, leaving >= 1 chunk per small course")
    if args.noise < 0 or args.torch_threads < 0:
        parser.error("need --noise >= 0 and --torch-threads >= 0")
    return args


async def measure(
    url: str,
    embedder: Embedder,
    courses: Sequence[SeedCourse],
    queries: Sequence[Query],
    warmup: Sequence[Query],
    show_plans: bool,
    wide_ef: int,
) -> tuple[list[Sample], PlanReport, dict[str, str], dict[str, float], list[float]]:
    from lyceum.kit.db import Database

    database = Database(url, pool_size=2, max_overflow=0)
    try:
        settings = await database_settings(database)
        encoder = TimedEncoder(embedder)
        print(f"  warm-up: {len(warmup)} questions", flush=True)
        warm = [Sample(query) for query in warmup]
        await run_hybrid(database, encoder, warm)
        await run_baselines(database, warm, wide_ef)
        samples = [Sample(query) for query in queries]
        started = time.perf_counter()
        await run_hybrid(database, encoder, samples)
        print(
            f"  hybrid search: {len(samples)} questions in {time.perf_counter() - started:.1f}s",
            flush=True,
        )
        started = time.perf_counter()
        await run_baselines(database, samples, wide_ef)
        print(
            f"  exact and HNSW-forced vector queries in {time.perf_counter() - started:.1f}s",
            flush=True,
        )
        trips = await round_trips(database, len(samples))
        plans = await check_plans(database, courses, samples, show_plans)
        threads = await encode_threads_check(embedder, queries[:100])
    finally:
        await database.dispose()
    return samples, plans, settings, threads, trips


def run(args: argparse.Namespace, temp: Path) -> dict[str, Any]:
    import torch

    from lyceum.content.retrieval import CANDIDATES, EF_SEARCH
    from lyceum.kit.ai.embedding import get_embedder

    load_before = load_average()
    run_started = time.perf_counter()
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    print("loading the embedding model ...", flush=True)
    started = time.perf_counter()
    embedder = get_embedder()
    embedder.encode_sync(["warm-up"])
    load_seconds = time.perf_counter() - started
    threads = torch.get_num_threads()
    print(f"  loaded in {load_seconds:.1f}s, torch threads {threads}", flush=True)

    material = load_material(embedder)
    started = time.perf_counter()
    material.sentence_vectors = embedder.encode_sync(material.sentences)
    sentence_seconds = time.perf_counter() - started
    started = time.perf_counter()
    material.chunk_vectors = embedder.encode_sync(material.embedding_texts)
    chunk_seconds = time.perf_counter() - started
    sentence_rate = len(material.sentences) / sentence_seconds
    chunk_rate = len(material.chunks) / chunk_seconds
    print(
        f"  embedded {len(material.sentences):,} sentences ({sentence_rate:.0f}/s) and "
        f"{len(material.chunks)} real chunks ({chunk_rate:.1f}/s) of the demo lessons; "
        f"embedding {args.chunks:,} chunks would take ~{args.chunks / chunk_rate / 60:.0f} min",
        flush=True,
    )
    similarity = similarity_check(material, args.noise, args.seed)

    gen = Generator(material, args.noise, args.seed)
    courses = plan_courses(material, args, gen)
    queries, warmup = build_queries(material, courses, args.queries, args.seed)
    if len(queries) < args.queries:
        print(f"  note: only {len(queries)} distinct questions available", flush=True)

    postgres, url = migrated_postgres(temp, DATABASE)
    try:
        small = [c for c in courses if not c.big]
        print(
            f"seeding {args.chunks:,} chunks: {len(small)} courses x ~{small[0].chunks:,}"
            + (f" + one of {args.big_course:,}" if args.big_course else "")
            + " ...",
            flush=True,
        )
        seeding = seed(url, material, courses, gen)
        print(f"measuring {len(queries)} questions ...", flush=True)
        samples, plans, settings, encode_threads, trips = asyncio.run(
            measure(url, embedder, courses, queries, warmup, args.explain, args.wide_ef)
        )
    finally:
        postgres.stop()

    groups = group_samples(samples)
    errors = sum(1 for s in samples if s.embedding is None or not s.exact_ids)
    empty = sum(1 for s in samples if s.hits == 0)
    overall = ms_stats([s.total for s in samples])
    # The HNSW figure: questions on courses the planner runs on the HNSW index, as
    # planned; if there are none, every question with the HNSW index forced.
    on_hnsw = [s for s in samples if plans.hnsw_courses.get(s.query.course.id)]
    hnsw_recall = (
        mean([s.recall_planned for s in on_hnsw])
        if on_hnsw
        else mean([s.recall_forced for s in samples])
    )
    forced_recall = mean([s.recall_forced for s in samples])
    planned_recall = mean([s.recall_planned for s in samples])
    load_after = load_average()
    elapsed = time.perf_counter() - run_started

    print()
    print("derived vs real chunk vectors, per theme (cosine similarity, mean):")
    header = (
        f"{'theme':<26} {'chunks':>6} {'pairwise real/derived':>22} {'nearest real/derived':>21}"
    )
    print(header)
    print("-" * len(header))
    for row in similarity:
        pairwise = f"{row['real_pairwise']:.2f} / {row['derived_pairwise']:.2f}"
        nearest = f"{row['real_nearest']:.2f} / {row['derived_nearest']:.2f}"
        print(f"{row['theme']:<26} {row['chunks']:>6} {pairwise:>22} {nearest:>21}")
    print()
    print(
        f"database: PostgreSQL {settings['server_version']}, pgvector {settings['pgvector']}, "
        f"shared_buffers {settings['shared_buffers']}, work_mem {settings['work_mem']}; "
        f"table {seeding.table_bytes / 2**20:,.0f} MB, HNSW index "
        f"{seeding.index_bytes[EMBEDDING_INDEX] / 2**20:,.0f} MB, GIN "
        f"{seeding.index_bytes[SEARCH_INDEX] / 2**20:,.0f} MB"
    )
    print(
        f"derived chunks: {seeding.derived:,} made of {len(material.sentences):,} distinct "
        f"sentences, so each sentence is in ~{seeding.sentence_uses / len(material.sentences):,.0f}"
        " of them (3-8 each, with random weights): far more near-duplicates than real "
        "material would have, a hard case for HNSW"
    )
    print(
        f"seeding: {seeding.chunks:,} chunks ({seeding.derived:,} derived), "
        f"{seeding.lessons:,} lessons, {seeding.courses} courses in {seeding.total_seconds:.0f}s; "
        f"HNSW build {seeding.seconds[HNSW_STEP]:.1f}s "
        f"({seeding.hnsw_parallel_workers} parallel worker(s)), GIN build "
        f"{seeding.seconds['GIN index (full text)']:.1f}s"
    )
    print()
    print("plans of the vector query (EXPLAIN ANALYZE, one question each):")
    print_plans(plans, args.explain)
    print()
    print(
        f"latency, in-process, one call at a time, k={K} (exact and HNSW-forced: the same "
        "query vectors, vector_ranking alone):"
    )
    print_latency(groups)
    trip = ms_stats(trips)
    print(
        f"one round trip (SELECT 1 in an open transaction; a search sends ~8 statements): "
        f"p50 {fmt(trip['p50_ms'])} ms, p99 {fmt(trip['p99_ms'])} ms"
    )
    print()
    print_recall(groups, plans.hnsw_courses)
    if args.wide_ef:
        print(
            f"(diagnostic rows: hnsw.ef_search {args.wide_ef} instead of the repository's "
            f"{max(EF_SEARCH, CANDIDATES, 2 * K)}, to show how recall and time trade off)"
        )
    print()
    cells = ", ".join(f"{name} {fmt(ms)} ms" for name, ms in encode_threads.items())
    print(f"query embedding p50, one at a time (same questions, again): {cells}")
    for name, group in groups.items():
        planned = ms_stats([s.vector for s in group])["p50_ms"]
        exact = ms_stats([s.exact for s in group])["p50_ms"]
        print(
            f"vector query p50, {name}: {fmt(planned)} ms as planned vs {fmt(exact)} ms "
            f"exact scan: ratio {fmt(planned / exact if exact else math.nan)}"
        )
    worst = sorted(samples, key=lambda s: (s.recall_forced, s.recall_wide))[:5]
    print("lowest HNSW recall (forced / wider search), questions:")
    for sample in worst:
        print(
            f"  {fmt(sample.recall_forced, 1)} / {fmt(sample.recall_wide, 1)}  "
            f"{sample.query.course.slug:<28} {sample.query.text[:60]!r}"
        )
    if empty:
        print(f"note: {empty} questions returned no passages")
    print(
        f"HNSW recall@{RECALL_AT}: {fmt(hnsw_recall, 3)} over the {len(on_hnsw)} questions on "
        f"courses planned on the HNSW index; {fmt(forced_recall, 3)} over all {len(samples)} "
        f"with HNSW forced; {fmt(planned_recall, 3)} over all as planned (the rest exact)"
    )
    print(f"torch threads {threads}, model load {load_seconds:.1f}s, run {elapsed:.0f}s")
    print(f"load average before/after: {load_before} / {load_after}")
    print(
        f"retrieval p50 {fmt(overall['p50_ms'], 1)} ms, p99 {fmt(overall['p99_ms'], 1)} ms "
        f"(target p50 < {TARGET_P50_MS:g} ms); HNSW recall@{RECALL_AT} {fmt(hnsw_recall, 3)} "
        f"(target >= {TARGET_RECALL})"
    )

    def group_report(group: list[Sample]) -> dict[str, Any]:
        return {
            "queries": len(group),
            **{label.strip(): ms_stats([value(s) for s in group]) for label, value in LATENCY_ROWS},
            "recall_planned": mean([s.recall_planned for s in group]),
            "recall_forced": mean([s.recall_forced for s in group]),
            "recall_wide": mean([s.recall_wide for s in group]),
        }

    return {
        "scenario": SCENARIO,
        "settings": {
            "chunks": args.chunks,
            "courses": args.courses,
            "big_course": args.big_course,
            "queries": args.queries,
            "noise": args.noise,
            "torch_threads": threads,
            "seed": args.seed,
            "k": K,
        },
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_before": load_before,
            "load_average_after": load_after,
        },
        "database": settings,
        "embedding": {
            "model_load_seconds": load_seconds,
            "sentences": len(material.sentences),
            "sentences_per_second": sentence_rate,
            "real_chunks": len(material.chunks),
            "chunks_per_second": chunk_rate,
            "similarity": similarity,
            "query_p50_ms_by_threads": encode_threads,
        },
        "seeding": {
            "chunks": seeding.chunks,
            "derived": seeding.derived,
            "lessons": seeding.lessons,
            "courses": seeding.courses,
            "seconds": seeding.seconds,
            "hnsw_parallel_workers": seeding.hnsw_parallel_workers,
            "index_bytes": seeding.index_bytes,
            "table_bytes": seeding.table_bytes,
        },
        "plans": {
            "courses_on_hnsw": sum(plans.hnsw_courses.values()),
            "courses": len(plans.hnsw_courses),
            "examples": plans.examples,
        },
        "latency": {name: group_report(group) for name, group in groups.items()},
        "round_trip": trip,
        "p50_ms": overall["p50_ms"],
        "p99_ms": overall["p99_ms"],
        "target_p50_ms": TARGET_P50_MS,
        "meets_latency_target": overall["p50_ms"] < TARGET_P50_MS,
        "hnsw_recall": hnsw_recall,
        "hnsw_recall_questions": len(on_hnsw),
        "forced_recall": forced_recall,
        "planned_recall": planned_recall,
        "target_recall": TARGET_RECALL,
        "meets_recall_target": hnsw_recall >= TARGET_RECALL,
        "samples": [
            {
                "kind": s.query.kind,
                "q": s.query.text,
                "course": s.query.course.slug,
                "hits": s.hits,
                "total_ms": s.total * 1000,
                "encode_ms": s.encode * 1000,
                "vector_ms": s.vector * 1000,
                "text_ms": s.text * 1000,
                "exact_ms": s.exact * 1000,
                "forced_ms": s.forced * 1000,
                "wide_ms": s.wide * 1000,
                "recall_planned": s.recall_planned,
                "recall_forced": s.recall_forced,
                "recall_wide": s.recall_wide,
            }
            for s in samples
        ],
        "errors": errors,
        "seconds": elapsed,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return scenario_main(
        "retrieval", args, run, errors_are="questions without a query vector or exact result"
    )


if __name__ == "__main__":
    sys.exit(main())
