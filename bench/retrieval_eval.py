"""Retrieval quality on the demo courses: hit@1, hit@5 and MRR for vector-only,
text-only and hybrid retrieval, over the labelled questions in
`bench/retrieval_questions.toml`.

    python bench/retrieval_eval.py [--k 5] [--json PATH] [--show-misses]

Starts an embedded PostgreSQL in a temp dir, migrates it, loads the demo courses
(`lyceum demo`'s loader), indexes every lesson with the real pipeline, then asks each
question of its own course through `search_course_material`.

A question is answered by one passage of one lesson. Two definitions of a hit:
- strict: a returned chunk of the right lesson whose text contains the answer passage;
- lesson: a returned chunk of the right lesson (the passage may sit in a neighbour).
The target (issue 5): hybrid hit@5 >= 0.9 on this set. `--text-budget N` lowers the
number of full-text candidates ranked (the repository's TEXT_CANDIDATES, 1,000), so
that the demo courses' few hundred matches per question go through the bounded first
pass as a 50,000-chunk course's thousands do.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import migrated_postgres

if TYPE_CHECKING:
    from lyceum.content.retrieval import Mode

QUESTIONS = Path(__file__).with_name("retrieval_questions.toml")
MODES: tuple[Mode, ...] = ("vector", "text", "hybrid")


@dataclass
class Scores:
    strict_ranks: list[int | None] = field(default_factory=list)
    lesson_ranks: list[int | None] = field(default_factory=list)
    misses: list[str] = field(default_factory=list)

    @staticmethod
    def _hit(ranks: list[int | None], at: int) -> float:
        return sum(1 for rank in ranks if rank is not None and rank <= at) / len(ranks)

    @staticmethod
    def _mrr(ranks: list[int | None]) -> float:
        return sum(1 / rank for rank in ranks if rank is not None) / len(ranks)

    def row(self) -> dict[str, float]:
        return {
            "hit@1": self._hit(self.strict_ranks, 1),
            "hit@5": self._hit(self.strict_ranks, 5),
            "mrr": self._mrr(self.strict_ranks),
            "lesson hit@1": self._hit(self.lesson_ranks, 1),
            "lesson hit@5": self._hit(self.lesson_ranks, 5),
            "lesson mrr": self._mrr(self.lesson_ranks),
        }


def _normalise(text: str) -> str:
    return " ".join(text.split())


async def evaluate(url: str, k: int) -> tuple[dict[Mode, Scores], int, int, float]:
    from sqlalchemy import select

    from lyceum.content.indexing import chunk_total, index_lesson
    from lyceum.content.retrieval import search_course_material
    from lyceum.demo.loader import load_demo
    from lyceum.kit.ai.embedding import get_embedder
    from lyceum.kit.cache import MemoryCache
    from lyceum.kit.db import Database
    from lyceum.models.courses import Course, Lesson

    questions = tomllib.loads(QUESTIONS.read_text())["question"]
    database = Database(url, pool_size=2, max_overflow=0)
    embedder = await asyncio.to_thread(get_embedder)
    try:
        async with database.sessionmaker() as session:
            await load_demo(session, cache=MemoryCache(), now=dt.datetime.now(dt.UTC))
            await session.commit()
        async with database.sessionmaker() as session:
            courses = {
                row.slug: row.id for row in (await session.execute(select(Course))).scalars()
            }
            lessons = {
                (row.course_id, row.title): row.id
                for row in (await session.execute(select(Lesson))).scalars()
            }
        started = time.perf_counter()
        for lesson_id in lessons.values():
            async with database.sessionmaker() as session, session.begin():
                await index_lesson(session, lesson_id, embedder)
        index_seconds = time.perf_counter() - started
        async with database.sessionmaker() as session:
            chunks = await chunk_total(session)

        scores = {mode: Scores() for mode in MODES}
        for question in questions:
            course_id = courses[question["course"]]
            lesson_id = lessons[(course_id, question["lesson"])]
            answer = _normalise(question["answer"])
            for mode in MODES:
                async with database.sessionmaker() as session, session.begin():
                    hits = await search_course_material(
                        session, embedder, course_id, question["question"], k, mode=mode
                    )
                strict = lesson = None
                for rank, hit in enumerate(hits, start=1):
                    if hit.source.id != lesson_id:
                        continue
                    lesson = lesson or rank
                    if answer in _normalise(hit.text):
                        strict = rank
                        break
                scores[mode].strict_ranks.append(strict)
                scores[mode].lesson_ranks.append(lesson)
                if strict is None:
                    scores[mode].misses.append(f"[{question['course']}] {question['question']}")
        return scores, len(questions), chunks, index_seconds
    finally:
        await database.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--k", type=int, default=5, help="passages retrieved per question")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write results here")
    parser.add_argument("--show-misses", action="store_true", help="list strict misses")
    parser.add_argument(
        "--text-budget",
        type=int,
        metavar="N",
        help="rank at most N full-text candidates (the repository's TEXT_CANDIDATES): a "
        "small N shows what the bounded first pass keeps on a course with many matches",
    )
    args = parser.parse_args()
    if args.text_budget is not None:
        from lyceum.content import repository

        repository.TEXT_CANDIDATES = args.text_budget

    with tempfile.TemporaryDirectory(prefix="lyceum-eval-") as temp:
        postgres, url = migrated_postgres(Path(temp), "lyceum_eval")
        try:
            scores, count, chunks, index_seconds = asyncio.run(evaluate(url, args.k))
        finally:
            postgres.stop()

    print(
        f"\n{count} questions over the 6 demo courses; {chunks} chunks indexed "
        f"in {index_seconds:.1f}s; k={args.k}"
        + (f"; full-text candidates <= {args.text_budget}" if args.text_budget else "")
        + "\n"
    )
    columns = ["hit@1", "hit@5", "mrr", "lesson hit@1", "lesson hit@5", "lesson mrr"]
    print(f"{'mode':8}" + "".join(f"{name:>14}" for name in columns))
    print("-" * (8 + 14 * len(columns)))
    results: dict[str, Any] = {}
    for mode in MODES:
        row = scores[mode].row()
        results[mode] = row
        print(f"{mode:8}" + "".join(f"{row[name]:>14.3f}" for name in columns))
    if args.show_misses:
        for mode in MODES:
            print(f"\nstrict misses, {mode}:")
            for miss in scores[mode].misses:
                print(f"  {miss}")
    hybrid = results["hybrid"]["hit@5"]
    print(f"\nhybrid hit@5 {hybrid:.3f} (target >= 0.9)")
    if args.json:
        args.json.write_text(
            json.dumps({"questions": count, "chunks": chunks, "k": args.k, "modes": results})
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
