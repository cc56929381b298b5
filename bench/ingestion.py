"""Scenario: ingestion throughput of course material, against raw model encoding.

    python bench/ingestion.py [--copies N] [--rounds R] [--pdf-pages N] [--concurrency N]
                              [--torch-threads N] [--json PATH]

1. Starts an embedded PostgreSQL in a temp dir, creates a fresh database, migrates it to
   head and seeds the rows the pipeline reads (an instructor, courses, modules and
   lessons) with COPY: the six demo courses' lessons (`src/lyceum/demo/courses/*.toml`),
   `--copies` times (later copies with their sections in a shuffled order), plus one
   generated multi-page PDF per round (`course_files` rows; the bytes stay in memory).
2. Loads the embedding model and warms it up (and the pipeline: one lesson, unmeasured).
3. Splits the lessons and PDFs into `--rounds` rounds of about the same number of chunks.
   In each round, in alternating order:
   * baseline: `embedder.encode_sync(texts)` on exactly the texts the pipeline will embed
     for that round (from `indexing.prepare`, computed beforehand), chunks/s;
   * pipeline: `index_lesson` / `index_file_bytes` for every lesson and PDF of the round,
     each in its own session and committed, as the job worker does: extraction,
     chunking with token counting, embedding, the INSERTs (HNSW and GIN maintenance
     included) and the commit. chunks/s, with the time spent in each stage.
4. Prints per-round figures, the medians and the ratio pipeline / encode (target >= 0.8).

Exit code 0 whatever the figures; 1 on errors (e.g. the pipeline stored a different
number of chunks than `prepare` produced).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import functools
import hashlib
import math
import os
import platform
import random
import re
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar
from unittest import mock

import psycopg
from psycopg import sql

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import BenchError, load_average, median, migrated_postgres, scenario_main

if TYPE_CHECKING:
    from lyceum.kit.ai.embedding import Embedder
    from lyceum.kit.db import Database
    from lyceum.kit.sandbox import Sandbox

SCENARIO = "ingestion"
DATABASE = "lyceum_bench_ingestion"
TARGET_RATIO = 0.8
STAGES = ("extract", "prepare", "encode", "insert", "commit", "other")

P = ParamSpec("P")
R = TypeVar("R")


# Corpus -------------------------------------------------------------------------------


@dataclass
class Unit:
    """One job of the pipeline: a lesson's text or a PDF file."""

    kind: str  # "lesson" or "pdf"
    id: uuid.UUID
    course_id: uuid.UUID
    title: str
    texts: list[str]  # what `prepare` gives the model, in order
    data: bytes = b""  # the PDF's bytes

    @property
    def chunks(self) -> int:
        return len(self.texts)


@dataclass
class Corpus:
    user_id: uuid.UUID
    courses: list[tuple[Any, ...]] = field(default_factory=list)
    modules: list[tuple[Any, ...]] = field(default_factory=list)
    lessons: list[tuple[Any, ...]] = field(default_factory=list)
    files: list[tuple[Any, ...]] = field(default_factory=list)
    units: list[Unit] = field(default_factory=list)
    warmup: Unit | None = None
    pdf_pages: list[int] = field(default_factory=list)


_H2 = re.compile(r"(?m)^(?=## )")
# Helvetica (a PDF core font) only has Latin-1; the usual typography maps to ASCII.
_LATIN1 = str.maketrans(
    {
        "\u2014": "-",
        "\u2013": "-",
        "\u2018": "'",
        "\u2019": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u2026": "...",
        "\u2192": "->",
        "\u2190": "<-",
        "\u2248": "~",
        "\u2264": "<=",
        "\u2265": ">=",
        "\u2212": "-",
        "\u2022": "*",
        "\u203a": ">",
    }
)


def shuffled_sections(content: str, rng: random.Random) -> str:
    """The lesson with its `## ` sections in another order: new text, same material."""
    parts = _H2.split(content)
    head, sections = parts[0], parts[1:]
    rng.shuffle(sections)
    return head + "".join(
        section if section.endswith("\n") else section + "\n" for section in sections
    )


def latin1(text: str) -> str:
    return text.translate(_LATIN1).encode("latin-1", "replace").decode("latin-1")


def make_pdf(paragraphs: Sequence[tuple[str, str]], pages: int) -> tuple[bytes, int]:
    """A text PDF of `pages` full pages (and the start of one more): headings and
    paragraphs, as a handout would be. Returns (bytes, pages)."""
    from fpdf import FPDF

    document = FPDF()
    document.set_auto_page_break(auto=True, margin=15)
    document.add_page()
    index = 0
    while document.page_no() <= pages and paragraphs:
        heading, text = paragraphs[index % len(paragraphs)]
        index += 1
        if heading:
            document.set_font("helvetica", style="B", size=13)
            document.multi_cell(0, 7, latin1(heading), new_x="LMARGIN", new_y="NEXT")
        document.set_font("helvetica", size=11)
        document.multi_cell(0, 5.5, latin1(text), new_x="LMARGIN", new_y="NEXT")
        document.ln(3)
    return bytes(document.output()), document.page_no()


def pdf_paragraphs(courses: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
    """(heading, plain text) of the English demo lessons, from the Markdown extractor."""
    from lyceum.kit.documents.extraction import extract_markdown

    paragraphs: list[tuple[str, str]] = []
    for course in courses:
        if course["language"] != "en":
            continue
        for module in course["modules"]:
            for lesson in module["lessons"]:
                for section in extract_markdown(lesson.get("content", "")):
                    heading = section.heading_path[-1] if section.heading_path else lesson["title"]
                    paragraphs.append((heading, section.text))
    return paragraphs


def build_corpus(embedder: Embedder, copies: int, rounds: int, pdf_pages: int, seed: int) -> Corpus:
    from lyceum.content.indexing import prepare
    from lyceum.demo.loader import demo_courses
    from lyceum.kit.documents.extraction import extract, extract_markdown
    from lyceum.kit.documents.filetypes import FileKind

    rng = random.Random(seed)

    def new_id() -> uuid.UUID:
        return uuid.UUID(int=rng.getrandbits(128), version=4)

    demo = demo_courses()
    corpus = Corpus(user_id=new_id())
    now = dt.datetime.now(dt.UTC)
    english_courses: list[uuid.UUID] = []
    for copy in range(copies + 1):  # the extra copy only provides the warm-up lesson
        for data in demo:
            course_id = new_id()
            suffix = "warmup" if copy == copies else f"copy-{copy + 1}"
            corpus.courses.append(
                (
                    course_id,
                    f"{data['slug']}-{suffix}",
                    data["title"],
                    data.get("subtitle", ""),
                    data.get("description", ""),
                    data["language"],
                    data["level"],
                    data["category"],
                    data.get("tags", []),
                    " ".join(data.get("tags", [])),
                    "",
                    0,
                    "USD",
                    "published",
                    corpus.user_id,
                    now,
                    now,
                    now,
                )
            )
            if data["language"] == "en" and copy < copies:
                english_courses.append(course_id)
            for module_position, module in enumerate(data["modules"]):
                module_id = new_id()
                corpus.modules.append((module_id, course_id, module["title"], module_position))
                for position, lesson in enumerate(module["lessons"]):
                    content = lesson.get("content", "")
                    if copy > 0:
                        content = shuffled_sections(content, rng)
                    lesson_id = new_id()
                    corpus.lessons.append(
                        (
                            lesson_id,
                            module_id,
                            course_id,
                            lesson["title"],
                            lesson.get("kind", "text"),
                            content,
                            lesson.get("video_url"),
                            lesson.get("duration_seconds"),
                            lesson.get("minutes", 10),
                            lesson.get("preview", False),
                            position,
                        )
                    )
                    prepared = prepare(extract_markdown(content), embedder, lesson["title"])
                    unit = Unit(
                        "lesson", lesson_id, course_id, lesson["title"], prepared.embedding_texts
                    )
                    if copy < copies:
                        corpus.units.append(unit)
                    elif corpus.warmup is None and unit.chunks:
                        corpus.warmup = unit
    paragraphs = pdf_paragraphs(demo)
    for number in range(rounds if pdf_pages > 0 else 0):
        # Each PDF starts somewhere else in the material, so no two are the same.
        start = number * len(paragraphs) // max(rounds, 1)
        pdf, pages = make_pdf(paragraphs[start:] + paragraphs[:start], pdf_pages)
        corpus.pdf_pages.append(pages)
        file_id = new_id()
        course_id = english_courses[number % len(english_courses)]
        name = f"handout-{number + 1}.pdf"
        corpus.files.append(
            (
                file_id,
                course_id,
                corpus.user_id,
                name,
                "pdf",
                "application/pdf",
                len(pdf),
                hashlib.sha256(pdf).hexdigest(),
                f"bench/{file_id}.pdf",
                "pending",
                0,
            )
        )
        prepared = prepare(extract(FileKind.pdf, pdf).sections, embedder, None)
        corpus.units.append(Unit("pdf", file_id, course_id, name, prepared.embedding_texts, pdf))
    return corpus


def split_rounds(units: Sequence[Unit], rounds: int) -> list[list[Unit]]:
    """Rounds of about the same number of chunks (largest unit first into the lightest
    round), each keeping the corpus order."""
    buckets: list[list[int]] = [[] for _ in range(rounds)]
    totals = [0] * rounds
    order = sorted(range(len(units)), key=lambda i: -units[i].chunks)
    for index in order:
        lightest = totals.index(min(totals))
        buckets[lightest].append(index)
        totals[lightest] += units[index].chunks
    return [[units[i] for i in sorted(bucket)] for bucket in buckets]


def seed_rows(url: str, corpus: Corpus) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO users (id, email, full_name, role, is_active, locale, timezone, "
            "preferences, email_verified_at) VALUES (%s, 'teacher@bench.example.com', "
            "'Bench Teacher', 'instructor', true, 'en', 'UTC', '{}'::jsonb, now())",
            (corpus.user_id,),
        )
        tables = (
            (
                "courses",
                "id, slug, title, subtitle, description, language, level, category, tags, "
                "tags_text, lesson_titles, price_cents, currency, status, owner_id, "
                "published_at, created_at, updated_at",
                corpus.courses,
            ),
            ("modules", "id, course_id, title, position", corpus.modules),
            (
                "lessons",
                "id, module_id, course_id, title, kind, content, video_url, duration_seconds, "
                "estimated_minutes, is_preview, position",
                corpus.lessons,
            ),
            (
                "course_files",
                "id, course_id, uploaded_by, display_name, kind, content_type, size_bytes, "
                "sha256, storage_key, status, chunk_count",
                corpus.files,
            ),
        )
        for table, columns, rows in tables:
            with (
                conn.cursor() as cursor,
                cursor.copy(
                    sql.SQL("COPY {} ({}) FROM STDIN").format(
                        sql.Identifier(table), sql.SQL(columns)
                    )
                ) as copy,
            ):
                for row in rows:
                    copy.write_row(row)
        conn.execute(
            "INSERT INTO course_instructors (course_id, user_id) SELECT id, owner_id FROM courses"
        )
        conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        for table in ("users", "courses", "modules", "lessons", "course_files"):
            conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(table)))


# Measurement --------------------------------------------------------------------------


class StageClock:
    """Seconds spent inside wrapped functions, by stage (thread-safe)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = dict.fromkeys(STAGES, 0.0)
        self._lock = threading.Lock()

    def add(self, stage: str, seconds: float) -> None:
        with self._lock:
            self.seconds[stage] += seconds

    def sync(self, stage: str, function: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(function)
        def timed(*args: P.args, **kwargs: P.kwargs) -> R:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.add(stage, time.perf_counter() - started)

        return timed

    def coroutine(
        self, stage: str, function: Callable[P, Awaitable[R]]
    ) -> Callable[P, Awaitable[R]]:
        @functools.wraps(function)
        async def timed(*args: P.args, **kwargs: P.kwargs) -> R:
            started = time.perf_counter()
            try:
                return await function(*args, **kwargs)
            finally:
                self.add(stage, time.perf_counter() - started)

        return timed


@contextlib.contextmanager
def instrumented(embedder: Embedder, clock: StageClock) -> Iterator[None]:
    """Time the stages of the real `index_lesson` / `index_file` by wrapping the
    functions they look up in `lyceum.content.indexing` (and the embedder's `encode`).
    Files are read by `read_upload` in the sandbox, timed as "extract" by `index_unit`.
    The next batch is embedded while one is inserted, so "encode" and "insert" overlap."""
    from lyceum.content import indexing

    with contextlib.ExitStack() as stack:
        for name, stage in (("extract_markdown", "extract"), ("prepare", "prepare")):
            original = getattr(indexing, name)
            stack.enter_context(mock.patch.object(indexing, name, clock.sync(stage, original)))
        stack.enter_context(
            mock.patch.object(
                indexing, "insert_chunks", clock.coroutine("insert", indexing.insert_chunks)
            )
        )
        stack.enter_context(
            mock.patch.object(embedder, "encode", clock.coroutine("encode", embedder.encode))
        )
        yield


@dataclass
class RoundResult:
    index: int
    order: str
    units: int
    chunks: int
    tokens: int
    encode_seconds: float
    pipeline_seconds: float
    stored: int
    stages: dict[str, float]
    per_job_seconds: float = math.nan  # encode_sync once per job (--per-job-baseline)

    @property
    def encode_rate(self) -> float:
        return self.chunks / self.encode_seconds if self.encode_seconds else 0.0

    @property
    def pipeline_rate(self) -> float:
        return self.stored / self.pipeline_seconds if self.pipeline_seconds else 0.0

    @property
    def per_job_rate(self) -> float:
        return self.chunks / self.per_job_seconds if self.per_job_seconds else math.nan

    @property
    def ratio(self) -> float:
        return self.pipeline_rate / self.encode_rate if self.encode_rate else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "round": self.index,
            "order": self.order,
            "units": self.units,
            "chunks": self.chunks,
            "tokens": self.tokens,
            "encode_seconds": self.encode_seconds,
            "encode_chunks_per_second": self.encode_rate,
            "per_job_encode_seconds": self.per_job_seconds,
            "per_job_encode_chunks_per_second": self.per_job_rate,
            "pipeline_seconds": self.pipeline_seconds,
            "pipeline_chunks_per_second": self.pipeline_rate,
            "stored": self.stored,
            "ratio": self.ratio,
            "stage_seconds": self.stages,
        }


async def index_unit(
    database: Database, embedder: Embedder, sandbox: Sandbox, unit: Unit, clock: StageClock
) -> int:
    """One job, as the worker runs it: its own session, committed at the end."""
    from lyceum.content.indexing import FileBudget, index_file, index_lesson
    from lyceum.kit.documents.extraction import read_upload
    from lyceum.kit.documents.filetypes import FileKind
    from lyceum.models.content import CourseFile

    async with database.sessionmaker() as session:
        if unit.kind == "lesson":
            stored = await index_lesson(session, unit.id, embedder)
        else:
            file = await session.get(CourseFile, unit.id)
            if file is None:
                raise BenchError(f"course_files row {unit.id} is missing")
            budget = FileBudget(max_pages=100_000, max_chunks=1_000_000, extraction_seconds=600)
            started = time.perf_counter()
            document = await read_upload(
                sandbox, FileKind.pdf, unit.data, budget.limits, budget.extraction_seconds
            )
            clock.add("extract", time.perf_counter() - started)
            await index_file(session, file, document, embedder, max_chunks=budget.max_chunks)
            stored = file.chunk_count
        started = time.perf_counter()
        await session.commit()
        clock.add("commit", time.perf_counter() - started)
    return stored


async def run_pipeline(
    database: Database,
    embedder: Embedder,
    sandbox: Sandbox,
    units: Sequence[Unit],
    concurrency: int,
) -> tuple[float, int, dict[str, float]]:
    """(seconds, chunks stored, seconds by stage) for indexing `units`."""
    clock = StageClock()
    queue: asyncio.Queue[Unit] = asyncio.Queue()
    for unit in units:
        queue.put_nowait(unit)
    stored = 0
    mismatches: list[str] = []

    async def worker() -> None:
        nonlocal stored
        while not queue.empty():
            unit = queue.get_nowait()
            count = await index_unit(database, embedder, sandbox, unit, clock)
            stored += count
            if count != unit.chunks:
                mismatches.append(
                    f"{unit.kind} {unit.title!r}: {count} stored, {unit.chunks} prepared"
                )

    with instrumented(embedder, clock):
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    if mismatches:
        raise BenchError(
            "the pipeline stored other chunks than prepare gave: " + "; ".join(mismatches[:5])
        )
    stages = dict(clock.seconds)
    stages["other"] = max(0.0, elapsed - sum(v for k, v in stages.items() if k != "other"))
    return elapsed, stored, stages


# Report -------------------------------------------------------------------------------


def fmt(value: float, digits: int = 2) -> str:
    return "-" if value != value else f"{value:,.{digits}f}"  # NaN -> "-"


def print_rounds(results: Sequence[RoundResult]) -> None:
    per_job = any(r.per_job_seconds == r.per_job_seconds for r in results)
    header = (
        f"{'round':<6} {'first':<9} {'jobs':>5} {'chunks':>6} {'encode s':>9} "
        f"{'encode ch/s':>11} "
        + (f"{'per-job ch/s':>12} " if per_job else "")
        + f"{'pipeline s':>10} {'pipeline ch/s':>13} {'ratio':>6}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.index:<6} {r.order:<9} {r.units:>5} {r.chunks:>6} {fmt(r.encode_seconds):>9} "
            f"{fmt(r.encode_rate, 1):>11} "
            + (f"{fmt(r.per_job_rate, 1):>12} " if per_job else "")
            + f"{fmt(r.pipeline_seconds):>10} {fmt(r.pipeline_rate, 1):>13} {fmt(r.ratio):>6}"
        )
    ratios = ", ".join(fmt(r.ratio) for r in results)
    print(f"per-round ratios {ratios}; median {fmt(median([r.ratio for r in results]))}")


def print_stages(results: Sequence[RoundResult]) -> None:
    header = f"{'round':<6} " + " ".join(f"{s:>8}" for s in STAGES) + f" {'total':>8}"
    print(header)
    print("-" * len(header))
    for r in results:
        cells = " ".join(f"{fmt(r.stages[s]):>8}" for s in STAGES)
        print(f"{r.index:<6} {cells} {fmt(r.pipeline_seconds):>8}")
    totals = {s: sum(r.stages[s] for r in results) for s in STAGES}
    whole = sum(r.pipeline_seconds for r in results)
    shares = " ".join(f"{fmt(100 * totals[s] / whole, 1) + '%':>8}" for s in STAGES)
    print(f"{'share':<6} {shares} {'100%':>8}")


# Run ----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Ingestion of course material (extract, chunk, embed, store) against "
        "raw model encoding of the same chunks."
    )
    parser.add_argument(
        "--copies", type=int, default=3, help="copies of the demo lessons to index (3)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds (3)")
    parser.add_argument(
        "--pdf-pages", type=int, default=25, help="pages of the PDF indexed in each round (25)"
    )
    parser.add_argument(
        "--concurrency", type=int, default=1, help="jobs indexed at once (1; the worker runs 4)"
    )
    parser.add_argument(
        "--torch-threads", type=int, default=0, help="torch intra-op threads (0: torch's default)"
    )
    parser.add_argument(
        "--per-job-baseline",
        action="store_true",
        help="also time encode_sync once per job (the pipeline's batches) without the rest",
    )
    parser.add_argument("--seed", type=int, default=2026, help="random seed of the corpus")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write results here")
    parser.add_argument(
        "--keep-temp", action="store_true", help="keep the temp dir (PostgreSQL data) afterwards"
    )
    args = parser.parse_args(argv)
    if args.copies < 1 or args.rounds < 1 or args.concurrency < 1:
        parser.error("need --copies, --rounds and --concurrency >= 1")
    if args.pdf_pages < 0 or args.torch_threads < 0:
        parser.error("need --pdf-pages >= 0 and --torch-threads >= 0")
    return args


def load_embedder(threads: int) -> tuple[Embedder, float, int]:
    import torch

    from lyceum.kit.ai.embedding import get_embedder

    if threads:
        torch.set_num_threads(threads)
    started = time.perf_counter()
    embedder = get_embedder()
    return embedder, time.perf_counter() - started, torch.get_num_threads()


async def measure(
    args: argparse.Namespace, url: str, embedder: Embedder, corpus: Corpus
) -> list[RoundResult]:
    from lyceum.kit.db import Database
    from lyceum.kit.runtime import SANDBOX_PRELOAD
    from lyceum.kit.sandbox import Sandbox

    rounds = split_rounds(corpus.units, args.rounds)
    database = Database(url, pool_size=max(2, args.concurrency), max_overflow=0)
    # Where the job reads files: child processes, started by the warm-up below.
    sandbox = Sandbox(processes=args.concurrency, memory_bytes=2 * 1024**3, preload=SANDBOX_PRELOAD)
    results: list[RoundResult] = []
    try:
        if corpus.warmup is not None:
            # Connections, statement caches, the thread pool and the model's first batch.
            embedder.encode_sync(corpus.warmup.texts)
            await run_pipeline(database, embedder, sandbox, [corpus.warmup], 1)
            if corpus.units and corpus.units[-1].kind == "pdf":
                await asyncio.gather(
                    *(sandbox.run(60, len, corpus.units[-1].data) for _ in range(args.concurrency))
                )
        for index, units in enumerate(rounds, start=1):
            texts = [text for unit in units for text in unit.texts]
            tokens = sum(embedder.count_tokens_batch(texts))
            steps = ["encode", "pipeline"]
            if args.per_job_baseline:
                steps.insert(1, "per-job")
            shift = (index - 1) % len(steps)  # rotate which step goes first
            steps = steps[shift:] + steps[:shift]
            encode_seconds = pipeline_seconds = 0.0
            per_job_seconds = math.nan
            stored = 0
            stages: dict[str, float] = {}
            for step in steps:
                if step == "encode":
                    started = time.perf_counter()
                    vectors = embedder.encode_sync(texts)
                    encode_seconds = time.perf_counter() - started
                    if len(vectors) != len(texts):
                        raise BenchError(
                            f"encode gave {len(vectors)} vectors for {len(texts)} texts"
                        )
                elif step == "per-job":
                    # The same batches as the pipeline (one call per job), nothing else.
                    started = time.perf_counter()
                    for unit in units:
                        embedder.encode_sync(unit.texts)
                    per_job_seconds = time.perf_counter() - started
                else:
                    pipeline_seconds, stored, stages = await run_pipeline(
                        database, embedder, sandbox, units, args.concurrency
                    )
            result = RoundResult(
                index=index,
                order=steps[0],
                units=len(units),
                chunks=len(texts),
                tokens=tokens,
                encode_seconds=encode_seconds,
                pipeline_seconds=pipeline_seconds,
                stored=stored,
                stages=stages,
                per_job_seconds=per_job_seconds,
            )
            results.append(result)
            print(
                f"  round {index}: {result.chunks} chunks from {result.units} jobs  "
                f"encode {fmt(result.encode_rate, 1)} ch/s  "
                f"pipeline {fmt(result.pipeline_rate, 1)} ch/s  ratio {fmt(result.ratio)}",
                flush=True,
            )
    finally:
        sandbox.close()
        await database.dispose()
    return results


def count_chunks(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM content_chunks").fetchone()
    return int(row[0]) if row else 0


def run(args: argparse.Namespace, temp: Path) -> dict[str, Any]:

    load_before = load_average()
    run_started = time.perf_counter()
    print("loading the embedding model ...", flush=True)
    embedder, load_seconds, threads = load_embedder(args.torch_threads)
    print(f"  loaded in {load_seconds:.1f}s, torch threads {threads}", flush=True)

    started = time.perf_counter()
    corpus = build_corpus(embedder, args.copies, args.rounds, args.pdf_pages, args.seed)
    lessons = sum(1 for u in corpus.units if u.kind == "lesson")
    pdfs = [u for u in corpus.units if u.kind == "pdf"]
    total_chunks = sum(u.chunks for u in corpus.units)
    print(
        f"corpus: {lessons} lessons ({args.copies} x the demo courses), {len(pdfs)} PDFs "
        f"({'/'.join(str(n) for n in corpus.pdf_pages) or 0} pages, "
        f"{sum(u.chunks for u in pdfs)} chunks), "
        f"{total_chunks:,} chunks in all; prepared in {time.perf_counter() - started:.1f}s",
        flush=True,
    )

    postgres, url = migrated_postgres(temp, DATABASE)
    try:
        started = time.perf_counter()
        seed_rows(url, corpus)
        print(f"  seeded in {time.perf_counter() - started:.1f}s", flush=True)
        print(
            f"measuring {args.rounds} rounds (alternating which goes first), "
            f"pipeline concurrency {args.concurrency} ...",
            flush=True,
        )
        results = asyncio.run(measure(args, url, embedder, corpus))
        in_table = count_chunks(url)
    finally:
        postgres.stop()

    expected = total_chunks + (corpus.warmup.chunks if corpus.warmup else 0)
    errors = 0
    if in_table != expected:
        print(f"error: {in_table} chunks in the table, expected {expected}", file=sys.stderr)
        errors += 1
    encode_rate = median([r.encode_rate for r in results])
    pipeline_rate = median([r.pipeline_rate for r in results])
    ratio = pipeline_rate / encode_rate if encode_rate else 0.0
    encode_in_pipeline = sum(r.stored for r in results) / sum(r.stages["encode"] for r in results)
    tokens = sum(r.tokens for r in results)
    chunks = sum(r.chunks for r in results)
    per_job_rate = median([r.per_job_rate for r in results])
    whole = sum(r.pipeline_seconds for r in results)
    outside = whole - sum(r.stages["encode"] for r in results)
    ideal = chunks / encode_rate if encode_rate else math.nan
    overhead_ratio = ideal / (ideal + outside)
    load_after = load_average()
    elapsed = time.perf_counter() - run_started

    print()
    print("per round (chunks/s = chunks / wall seconds; ratio = pipeline / encode):")
    print_rounds(results)
    print()
    print("pipeline seconds by stage (insert = INSERTs and index upkeep; encode overlaps it):")
    print_stages(results)
    print()
    print(
        f"chunks: {chunks:,}, mean {tokens / chunks:.0f} word pieces each "
        f"(+ the title/heading line)"
    )
    print(
        f"encode inside the pipeline: {fmt(encode_in_pipeline, 1)} chunks/s (one call per "
        f"job, {chunks / sum(r.units for r in results):.1f} chunks on average) vs "
        f"{fmt(encode_rate, 1)} chunks/s in one call per round"
    )
    if per_job_rate == per_job_rate:
        print(
            f"encode once per job, nothing else (--per-job-baseline): {fmt(per_job_rate, 1)} "
            "chunks/s (median of the rounds)"
        )
    print(
        f"pipeline time outside encode: {fmt(outside, 1)}s of {fmt(whole, 1)}s "
        f"({fmt(100 * outside / whole, 1)}%); with encode at the baseline's speed that "
        f"overhead alone would give a ratio of {fmt(overhead_ratio)}"
    )
    print(f"torch threads {threads}, model load {load_seconds:.1f}s, run {elapsed:.0f}s")
    print(f"load average before/after: {load_before} / {load_after}")
    print(
        f"ingestion {fmt(pipeline_rate, 1)} chunks/s vs encode {fmt(encode_rate, 1)} chunks/s: "
        f"ratio {ratio:.2f} (target >= {TARGET_RATIO})"
    )
    return {
        "scenario": SCENARIO,
        "settings": {
            "copies": args.copies,
            "rounds": args.rounds,
            "pdf_pages": args.pdf_pages,
            "concurrency": args.concurrency,
            "torch_threads": threads,
            "seed": args.seed,
        },
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_before": load_before,
            "load_average_after": load_after,
        },
        "corpus": {
            "lessons": lessons,
            "pdfs": len(pdfs),
            "chunks": total_chunks,
            "mean_tokens": tokens / chunks if chunks else 0.0,
        },
        "model_load_seconds": load_seconds,
        "rounds": [r.to_dict() for r in results],
        "median": {
            "encode_chunks_per_second": encode_rate,
            "pipeline_chunks_per_second": pipeline_rate,
            "per_round_ratio": statistics.median(r.ratio for r in results),
            "per_job_encode_chunks_per_second": per_job_rate,
        },
        "pipeline_seconds_outside_encode": outside,
        "overhead_only_ratio": overhead_ratio,
        "encode_in_pipeline_chunks_per_second": encode_in_pipeline,
        "ratio": ratio,
        "target_ratio": TARGET_RATIO,
        "meets_target": ratio >= TARGET_RATIO,
        "errors": errors,
        "seconds": elapsed,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return scenario_main("ingestion", args, run)


if __name__ == "__main__":
    sys.exit(main())
