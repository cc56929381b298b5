"""Does the course material answer the question? The tutor's relevance decision
(`lyceum.content.retrieval.Retrieval.relevant`) on labelled on-topic and off-topic
questions over the six demo courses, with the share handled correctly both ways.

    python bench/retrieval_relevance.py [--json PATH] [--show-errors] [--no-calibrate]

Starts an embedded PostgreSQL in a temp dir, migrates it, loads the demo courses
(`lyceum demo`'s loader), indexes every lesson with the real pipeline, then asks every
question of bench/relevance_questions.toml in its course through `retrieve` (on-topic
questions in the course's language; off-topic ones in English and Vietnamese in every
course), and the 135 questions of bench/retrieval_questions.toml as more on-topic ones.

Reports, by the material's language (English, Vietnamese) and by the question's
language: on-topic questions judged answerable, off-topic questions judged not, and the
share correct overall. Then (unless --no-calibrate) the calibration that chose the
constants in `lyceum.content.retrieval`: for each coverage weight, the threshold with the
most questions right per material language, and leave-one-course-out accuracy (the
threshold fitted on five courses, scored on the sixth) as the figure to expect on a
course it has not seen.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import re
import statistics
import sys
import tempfile
import time
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import migrated_postgres

QUESTIONS = Path(__file__).with_name("relevance_questions.toml")
RETRIEVAL_QUESTIONS = Path(__file__).with_name("retrieval_questions.toml")
WEIGHTS = (0.0, 0.5, 0.8, 1.0, 1.3, 1.5, 2.0)
ROUNDS = 5  # of the details-query comparison
_VIETNAMESE_LETTERS = re.compile("[ăâđêôơưạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹ]")


@dataclass(frozen=True)
class Labelled:
    course: str
    question: str
    on_topic: bool

    @property
    def language(self) -> str:
        return "vi" if _VIETNAMESE_LETTERS.search(self.question.lower()) else "en"


@dataclass
class Judged:
    course: str
    material: str  # the course's language
    language: str  # the question's
    question: str
    on_topic: bool
    similarity: float
    coverage: float
    relevant: bool

    @property
    def correct(self) -> bool:
        return self.relevant == self.on_topic


def labelled_questions() -> list[Labelled]:
    """Every labelled question: this bench's own set, and the retrieval set's questions
    as more on-topic ones."""
    data = tomllib.loads(QUESTIONS.read_text(encoding="utf-8"))
    everywhere = data["off_topic_everywhere"]
    items: list[Labelled] = []
    for course in data["course"]:
        slug = course["slug"]
        items += [Labelled(slug, question, True) for question in course["on_topic"]]
        for question in course["off_topic"] + everywhere["en"] + everywhere["vi"]:
            items.append(Labelled(slug, question, False))
    retrieval = tomllib.loads(RETRIEVAL_QUESTIONS.read_text(encoding="utf-8"))["question"]
    items += [Labelled(item["course"], item["question"], True) for item in retrieval]
    return items


@dataclass
class Cost:
    """What the relevance check adds to a search: the details query of each question's
    hits with their words (as `retrieve` runs it) and without (as before the check),
    alternating, in the same run."""

    retrieve_ms: float
    details_with_words_ms: float
    details_without_ms: float

    @property
    def ratio(self) -> float:
        return self.details_with_words_ms / self.details_without_ms


async def judge_all(url: str, items: list[Labelled]) -> tuple[list[Judged], float, Cost]:
    """(judgements, seconds to index, what the check costs)."""
    from sqlalchemy import select, text

    from lyceum.content.indexing import index_lesson
    from lyceum.content.repository import DETAILS_SQL, HIT_WORDS
    from lyceum.content.retrieval import retrieve
    from lyceum.demo.loader import load_demo
    from lyceum.kit.ai.embedding import get_embedder
    from lyceum.kit.cache import MemoryCache
    from lyceum.kit.db import Database
    from lyceum.models.courses import Course, Lesson
    from lyceum.tutor.service import normalise_question

    database = Database(url, pool_size=2, max_overflow=0)
    embedder = await asyncio.to_thread(get_embedder)
    try:
        async with database.sessionmaker() as session:
            await load_demo(session, cache=MemoryCache(), now=dt.datetime.now(dt.UTC))
            await session.commit()
        async with database.sessionmaker() as session:
            courses = {
                row.slug: (row.id, row.language)
                for row in (await session.execute(select(Course))).scalars()
            }
            lessons = list((await session.execute(select(Lesson.id))).scalars())
        started = time.perf_counter()
        for lesson_id in lessons:
            async with database.sessionmaker() as session, session.begin():
                await index_lesson(session, lesson_id, embedder)
        index_seconds = time.perf_counter() - started

        judged = []
        spent = 0.0
        details: list[tuple[list[int], bool]] = []
        for item in items:
            course_id, material = courses[item.course]
            async with database.sessionmaker() as session, session.begin():
                started = time.perf_counter()
                # As the tutor asks it (service.prepare).
                found = await retrieve(
                    session, embedder, course_id, normalise_question(item.question), 5
                )
                spent += time.perf_counter() - started
            assert found is not None
            details.append(([hit.chunk_id for hit in found.hits], material.startswith("en")))
            judged.append(
                Judged(
                    course=item.course,
                    material="en" if material.startswith("en") else "vi",
                    language=item.language,
                    question=item.question,
                    on_topic=item.on_topic,
                    similarity=round(found.similarity, 4),
                    coverage=round(found.coverage, 4),
                    relevant=found.relevant,
                )
            )
        queries = {
            True: text(DETAILS_SQL.format(words=HIT_WORDS)),
            False: text(DETAILS_SQL.format(words="")),
        }
        timings: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(ROUNDS):
            for words in (False, True):
                async with database.sessionmaker() as session:
                    for ids, stemmed in details:
                        started = time.perf_counter()
                        await session.execute(queries[words], {"ids": ids, "stemmed": stemmed})
                        timings[words].append(time.perf_counter() - started)
        cost = Cost(
            retrieve_ms=1000 * spent / max(1, len(items)),
            details_with_words_ms=1000 * statistics.median(timings[True]),
            details_without_ms=1000 * statistics.median(timings[False]),
        )
        return judged, index_seconds, cost
    finally:
        await database.dispose()


def share(rows: list[Judged]) -> str:
    if not rows:
        return "      -"
    right = sum(row.correct for row in rows)
    return f"{right:3}/{len(rows):<3} {right / len(rows):.3f}"


def report(judged: list[Judged]) -> dict[str, Any]:
    print(f"{'material':10}{'question':10}{'on-topic answered':>22}{'off-topic declined':>22}")
    print("-" * 64)
    figures: dict[str, Any] = {}
    for material in ("en", "vi"):
        for language in ("en", "vi"):
            rows = [row for row in judged if row.material == material and row.language == language]
            on = [row for row in rows if row.on_topic]
            off = [row for row in rows if not row.on_topic]
            print(f"{material:10}{language:10}{share(on):>22}{share(off):>22}")
            figures[f"{material}/{language}"] = {
                "on_topic": [sum(r.correct for r in on), len(on)],
                "off_topic": [sum(r.correct for r in off), len(off)],
            }
    on = [row for row in judged if row.on_topic]
    off = [row for row in judged if not row.on_topic]
    print("-" * 64)
    print(f"{'all':20}{share(on):>22}{share(off):>22}")
    print(f"\nall questions: {share(judged)} correct")
    figures["on_topic_correct"] = sum(r.correct for r in on) / len(on)
    figures["off_topic_correct"] = sum(r.correct for r in off) / len(off)
    figures["correct"] = sum(r.correct for r in judged) / len(judged)
    return figures


def accuracy(rows: list[Judged], weight: float, threshold: float) -> float:
    right = sum(
        (row.similarity + weight * row.coverage >= threshold) == row.on_topic for row in rows
    )
    return right / len(rows)


def best_threshold(rows: list[Judged], weight: float) -> tuple[float, float]:
    """(threshold, accuracy): the middle of the widest run of best thresholds, so the
    margin to both sides' nearest question is as large as the data allows."""
    grid = [step / 100 for step in range(0, 301)]
    scores = [accuracy(rows, weight, threshold) for threshold in grid]
    best = max(scores)
    runs: list[list[float]] = []
    for threshold, score in zip(grid, scores, strict=True):
        if score == best:
            if runs and abs(runs[-1][-1] - (threshold - 0.01)) < 1e-9:
                runs[-1].append(threshold)
            else:
                runs.append([threshold])
    widest = max(runs, key=len)
    return round(widest[len(widest) // 2], 2), best


def calibrate(judged: list[Judged]) -> dict[str, Any]:
    print("\ncalibration: relevant when similarity + W x coverage >= T(material language)")
    print(f"{'W':>5}{'material':>10}{'T':>7}{'fitted':>9}{'leave-one-course-out':>24}")
    results: dict[str, Any] = {}
    for weight in WEIGHTS:
        for material in ("en", "vi"):
            rows = [row for row in judged if row.material == material]
            threshold, fitted = best_threshold(rows, weight)
            courses = sorted({row.course for row in rows})
            held_out = []
            for course in courses:
                train = [row for row in rows if row.course != course]
                test = [row for row in rows if row.course == course]
                fold_threshold, _ = best_threshold(train, weight)
                held_out += [
                    (row.similarity + weight * row.coverage >= fold_threshold) == row.on_topic
                    for row in test
                ]
            crossed = sum(held_out) / len(held_out)
            print(f"{weight:>5}{material:>10}{threshold:>7.2f}{fitted:>9.3f}{crossed:>24.3f}")
            results[f"{weight}/{material}"] = {
                "threshold": threshold,
                "fitted": fitted,
                "leave_one_course_out": crossed,
            }
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write results here")
    parser.add_argument("--show-errors", action="store_true", help="list misjudged questions")
    parser.add_argument("--no-calibrate", action="store_true", help="skip the calibration")
    args = parser.parse_args()

    from lyceum.content.retrieval import (
        COVERAGE_WEIGHT,
        RELEVANCE_THRESHOLD_ENGLISH,
        RELEVANCE_THRESHOLD_OTHER,
    )

    items = labelled_questions()
    with tempfile.TemporaryDirectory(prefix="lyceum-relevance-") as temp:
        postgres, url = migrated_postgres(Path(temp), "lyceum_relevance")
        try:
            judged, index_seconds, cost = asyncio.run(judge_all(url, items))
        finally:
            postgres.stop()

    on = sum(item.on_topic for item in items)
    print(
        f"\n{len(items)} questions ({on} on-topic, {len(items) - on} off-topic) over the 6 "
        f"demo courses; lessons indexed in {index_seconds:.1f}s; retrieve() "
        f"{cost.retrieve_ms:.1f} ms a question (mean)\n"
        f"the hits' details query, median: {cost.details_with_words_ms:.2f} ms with their "
        f"words for the check, {cost.details_without_ms:.2f} ms without "
        f"(ratio {cost.ratio:.2f})\n"
        f"relevant when similarity + {COVERAGE_WEIGHT} x coverage >= "
        f"{RELEVANCE_THRESHOLD_ENGLISH} (English material) or {RELEVANCE_THRESHOLD_OTHER} "
        "(other)\n"
    )
    results: dict[str, Any] = {
        "questions": len(items),
        "cost": asdict(cost),
        "figures": report(judged),
    }
    if args.show_errors:
        print("\nmisjudged:")
        for row in judged:
            if not row.correct:
                kind = "on-topic declined" if row.on_topic else "off-topic answered"
                print(
                    f"  [{row.course}] {kind}: sim {row.similarity:.2f} "
                    f"cov {row.coverage:.2f}  {row.question}"
                )
    if not args.no_calibrate:
        results["calibration"] = calibrate(judged)
    if args.json:
        results["judged"] = [asdict(row) for row in judged]
        args.json.write_text(json.dumps(results, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
