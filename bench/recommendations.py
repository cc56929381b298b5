"""Scenario: recommendation quality (leave-one-out hit@10 and NDCG@10) of popularity,
content only, collaborative only and the blend on a synthetic catalog with latent
topic preferences, and the serving time of the stored model in PostgreSQL.

    python bench/recommendations.py [--courses 500] [--learners 20000] [--seed 7]
                                    [--serving-samples 1000] [--no-serving]
                                    [--json PATH] [--keep-temp]

The generator (seeded, `generate`):
* 20 topics (Python, statistics, cell biology, personal finance, ...), each with its own
  vocabulary. A course has a main topic and, one time in three, a second one; its title,
  subtitle and description are written from its topics' words ("Practical pandas and
  dataframes: ..."), so courses of one topic read alike and content similarity means
  something. A course's appeal is log-normal (a few hits, a long tail), and one course in
  ten is new: its appeal is a tenth (few learners have found it yet).
* A learner's topic preferences are a Dirichlet draw (alpha 0.15: one to three topics
  dominate). They take 1 + Poisson(4) courses (at most 30), drawn without replacement
  with probability proportional to (their preference for the course's topics + 0.02)
  x the course's appeal: topic taste plus popularity. Each enrollment is completed
  with probability rising with the learner's preference for its topic (else active,
  or cancelled one time in ten), has a lesson share, and one in three gets a review
  (more stars for a preferred topic).

The evaluation: learners with at least 3 courses. One course each, at random, is the
test course; another is the validation course. The blend's weights are chosen on the
validation courses with models built without either held-out course; every model is
then rebuilt without the test courses only and scored on them. A hit is the held-out
course in the top 10 of the courses the learner has not taken (training history), and
NDCG@10 is 1/log2(1 + rank) for it (one relevant course). Models:
* popularity: log(1 + learners of the course), the same term the blend uses;
* content only: neighbours by the cosine of MiniLM embeddings of the course texts
  (the real embedder, through `service.content_vectors`, the rebuild job's code);
* collaborative only: item kNN (cosine of the learner columns, scikit-learn);
* blend: both plus popularity, weighted as tuned.
All four score with `builder.score_learners`, the Python twin of the serving query.

Serving (unless `--no-serving`): the same catalog, learners and enrollments are written
to a fresh embedded PostgreSQL (COPY), the model is built and stored by the rebuild
job's own function (`service.rebuild_model`), and `Recommendations.for_learner` (the
`GET /me/recommendations` path below the HTTP layer: the learner's feedback, the
aggregate over stored neighbours, the course rows) is timed for `--serving-samples`
learners; the baseline is one primary-key read of the learner's row on the same
session, in the same run. The top 10 the database answers are compared with
`score_learners` on the same model for those learners (agreement).

Exit code 0 whatever the figures; 1 if the blend's hit@10 is not at least twice
popularity's and above each single model's, or serving p50 is 20 ms or more.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import itertools
import platform
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import load_average, migrated_postgres, percentile, scenario_main

SCENARIO = "recommendations"
DATABASE = "lyceum_bench_recommendations"
TOP = 10

# Topic: (name, words a title or description is made of).
TOPICS: list[tuple[str, list[str]]] = [
    (
        "Python programming",
        [
            "Python",
            "functions",
            "classes",
            "pandas",
            "dataframes",
            "decorators",
            "generators",
            "pytest",
            "virtual environments",
            "type hints",
        ],
    ),
    (
        "web development",
        [
            "HTML",
            "CSS",
            "JavaScript",
            "React",
            "responsive layouts",
            "REST APIs",
            "web forms",
            "browsers",
            "accessibility",
            "front-end frameworks",
        ],
    ),
    (
        "statistics",
        [
            "probability",
            "hypothesis testing",
            "regression",
            "confidence intervals",
            "sampling",
            "variance",
            "Bayesian inference",
            "distributions",
            "p-values",
            "experiments",
        ],
    ),
    (
        "machine learning",
        [
            "neural networks",
            "gradient descent",
            "classification",
            "decision trees",
            "overfitting",
            "feature engineering",
            "clustering",
            "scikit-learn",
            "model evaluation",
            "deep learning",
        ],
    ),
    (
        "cell biology",
        [
            "cells",
            "mitochondria",
            "membranes",
            "proteins",
            "DNA replication",
            "cell division",
            "enzymes",
            "organelles",
            "microscopy",
            "metabolism",
        ],
    ),
    (
        "genetics",
        [
            "genes",
            "inheritance",
            "mutations",
            "chromosomes",
            "CRISPR",
            "gene expression",
            "heredity",
            "genomes",
            "alleles",
            "Mendel",
        ],
    ),
    (
        "personal finance",
        [
            "budgeting",
            "saving",
            "compound interest",
            "retirement",
            "credit cards",
            "debt",
            "index funds",
            "taxes",
            "emergency funds",
            "mortgages",
        ],
    ),
    (
        "investing",
        [
            "stocks",
            "bonds",
            "portfolios",
            "diversification",
            "dividends",
            "valuation",
            "market risk",
            "ETFs",
            "asset allocation",
            "financial statements",
        ],
    ),
    (
        "world history",
        [
            "empires",
            "revolutions",
            "the Middle Ages",
            "ancient Rome",
            "colonialism",
            "the World Wars",
            "civilizations",
            "trade routes",
            "dynasties",
            "historical sources",
        ],
    ),
    (
        "geography",
        [
            "maps",
            "climate zones",
            "rivers",
            "mountains",
            "population",
            "continents",
            "landforms",
            "urbanization",
            "natural resources",
            "plate tectonics",
        ],
    ),
    (
        "music theory",
        [
            "scales",
            "chords",
            "harmony",
            "rhythm",
            "melody",
            "intervals",
            "keys",
            "composition",
            "ear training",
            "counterpoint",
        ],
    ),
    (
        "photography",
        [
            "cameras",
            "exposure",
            "lenses",
            "composition",
            "lighting",
            "portraits",
            "landscapes",
            "editing photos",
            "aperture",
            "shutter speed",
        ],
    ),
    (
        "cooking",
        [
            "recipes",
            "knife skills",
            "baking",
            "sauces",
            "vegetables",
            "bread",
            "spices",
            "kitchen techniques",
            "pasta",
            "meal planning",
        ],
    ),
    (
        "nutrition",
        [
            "vitamins",
            "protein",
            "healthy eating",
            "calories",
            "diets",
            "minerals",
            "carbohydrates",
            "fiber",
            "meal plans",
            "hydration",
        ],
    ),
    (
        "Spanish language",
        [
            "Spanish grammar",
            "Spanish vocabulary",
            "conjugation",
            "pronunciation",
            "conversation",
            "Spanish verbs",
            "listening practice",
            "Latin American Spanish",
            "reading in Spanish",
            "travel phrases",
        ],
    ),
    (
        "creative writing",
        [
            "storytelling",
            "characters",
            "plot",
            "dialogue",
            "poetry",
            "short stories",
            "editing drafts",
            "narrative voice",
            "fiction",
            "writing prompts",
        ],
    ),
    (
        "project management",
        [
            "planning",
            "scheduling",
            "agile",
            "scrum",
            "stakeholders",
            "risk management",
            "budgets",
            "teams",
            "milestones",
            "kanban",
        ],
    ),
    (
        "marketing",
        [
            "branding",
            "social media",
            "advertising",
            "customer research",
            "SEO",
            "content marketing",
            "campaigns",
            "email marketing",
            "market segments",
            "analytics dashboards",
        ],
    ),
    (
        "physics",
        [
            "mechanics",
            "energy",
            "forces",
            "waves",
            "electricity",
            "magnetism",
            "thermodynamics",
            "motion",
            "quantum physics",
            "optics",
        ],
    ),
    (
        "chemistry",
        [
            "atoms",
            "molecules",
            "chemical reactions",
            "the periodic table",
            "acids and bases",
            "bonds",
            "organic chemistry",
            "solutions",
            "stoichiometry",
            "lab safety",
        ],
    ),
]
LEVELS = [
    "Introduction to",
    "Practical",
    "Foundations of",
    "Advanced",
    "Hands-on",
    "Essentials of",
    "A first course in",
    "Mastering",
]
PHRASES = [
    "Learn {a} and {b} step by step, with exercises after every lesson.",
    "This course covers {a}, {b} and {c}, with real examples.",
    "You will practise {a} and understand how {b} works.",
    "From {a} to {c}: a guided path through {b}.",
    "Build confidence with {a}, then apply it to {b}.",
]


# The generator's knobs (see the module docstring).
TASTE_ALPHA = 0.1
TASTE_FLOOR = 0.01
APPEAL_SIGMA = 0.7


@dataclass
class World:
    """Courses (texts, topics, appeal) and each learner's enrollments."""

    titles: list[str]
    subtitles: list[str]
    descriptions: list[str]
    topics: list[tuple[int, ...]]
    # (learner, course, status, lesson share, rating or None)
    enrollments: list[tuple[int, int, str, float, int | None]]
    learners: int
    # The truth the choices were drawn from: each learner's topic preferences, each
    # course's topic membership and appeal (for the oracle row).
    taste: np.ndarray
    membership: np.ndarray
    appeal: np.ndarray


def generate(courses: int, learners: int, seed: int) -> World:
    rng = np.random.default_rng(seed)
    topic_count = len(TOPICS)
    titles, subtitles, descriptions, course_topics = [], [], [], []
    for index in range(courses):
        main = int(rng.integers(topic_count))
        picked: tuple[int, ...] = (main,)
        if rng.random() < 1 / 3:
            second = int(rng.integers(topic_count))
            if second != main:
                picked = (main, second)
        words = list(TOPICS[main][1])
        a, b, c = rng.choice(words, size=3, replace=False)
        extra = rng.choice(TOPICS[picked[-1]][1])
        titles.append(f"{LEVELS[int(rng.integers(len(LEVELS)))]} {a} and {b} #{index}")
        subtitles.append(f"{TOPICS[main][0].capitalize()}: {c} and {extra}")
        sentences = rng.choice(len(PHRASES), size=2, replace=False)
        descriptions.append(
            " ".join(
                PHRASES[int(s)].format(
                    a=rng.choice(words), b=rng.choice(words), c=rng.choice(TOPICS[picked[-1]][1])
                )
                for s in sentences
            )
        )
        course_topics.append(picked)
    appeal = rng.lognormal(mean=0.0, sigma=APPEAL_SIGMA, size=courses)
    new = rng.random(courses) < 0.1
    appeal[new] *= 0.1
    membership = np.zeros((courses, topic_count))
    for index, picked in enumerate(course_topics):
        membership[index, list(picked)] = 1.0 / len(picked)
    enrollments: list[tuple[int, int, str, float, int | None]] = []
    tastes = rng.dirichlet(np.full(topic_count, TASTE_ALPHA), size=learners)
    for learner in range(learners):
        affinity = membership @ tastes[learner]
        weights = (affinity + TASTE_FLOOR) * appeal
        count = min(1 + int(rng.poisson(4)), 30, courses)
        chosen = rng.choice(courses, size=count, replace=False, p=weights / weights.sum())
        for course in chosen:
            liking = float(affinity[course])
            roll = rng.random()
            status = (
                "completed"
                if roll < 0.2 + 0.6 * liking
                else ("cancelled" if rng.random() < 0.1 else "active")
            )
            share = 1.0 if status == "completed" else float(rng.random())
            rating = None
            if rng.random() < 1 / 3:
                rating = int(np.clip(round(2.5 + 3 * liking + rng.normal(0, 0.8)), 1, 5))
            enrollments.append((learner, int(course), status, share, rating))
    return World(
        titles,
        subtitles,
        descriptions,
        course_topics,
        enrollments,
        learners,
        tastes,
        membership,
        appeal,
    )


# Evaluation -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Split:
    """Held-out courses of the evaluated learners, and the feedback left for training."""

    learners: np.ndarray  # evaluated learners
    targets: np.ndarray  # their held-out course
    train: Any  # csr learners x courses, feedback weights


def feedback_matrix(world: World, courses: int, drop: set[tuple[int, int]]) -> Any:
    from lyceum.recommendations.builder import feedback_weight

    rows, cols, values = [], [], []
    for learner, course, status, share, rating in world.enrollments:
        if (learner, course) in drop:
            continue
        rows.append(learner)
        cols.append(course)
        values.append(feedback_weight(status, share, rating))
    return sp.csr_matrix((values, (rows, cols)), shape=(world.learners, courses), dtype=np.float64)


def splits(world: World, courses: int, seed: int) -> tuple[Split, Split]:
    """(validation, test): validation trains without both held-out courses."""
    rng = np.random.default_rng(seed + 1)
    taken: dict[int, list[int]] = {}
    for learner, course, *_ in world.enrollments:
        taken.setdefault(learner, []).append(course)
    evaluated = sorted(learner for learner, items in taken.items() if len(items) >= 3)
    test, validation = [], []
    for learner in evaluated:
        first, second = rng.choice(taken[learner], size=2, replace=False)
        test.append(int(first))
        validation.append(int(second))
    learners = np.array(evaluated)
    test_pairs = set(zip(evaluated, test, strict=True))
    validation_pairs = set(zip(evaluated, validation, strict=True))
    return (
        Split(
            learners,
            np.array(validation),
            feedback_matrix(world, courses, test_pairs | validation_pairs),
        ),
        Split(learners, np.array(test), feedback_matrix(world, courses, test_pairs)),
    )


def hit_and_ndcg(scores: np.ndarray, targets: np.ndarray) -> tuple[float, float]:
    """Mean hit@10 and NDCG@10 of one held-out course per row (ties: lower index first)."""
    target_scores = scores[np.arange(len(targets)), targets]
    # Rank = courses scored higher, plus equal ones with a lower index, plus one.
    higher = (scores > target_scores[:, None]).sum(axis=1)
    columns = np.arange(scores.shape[1])[None, :]
    tied = ((scores == target_scores[:, None]) & (columns < targets[:, None])).sum(axis=1)
    rank = higher + tied + 1
    hit = rank <= TOP
    ndcg = np.where(hit, 1.0 / np.log2(rank + 1), 0.0)
    return float(hit.mean()), float(ndcg.mean())


def evaluate(split: Split, model: Any, popularity_weight: float) -> tuple[float, float]:
    from lyceum.recommendations.builder import score_learners

    hits, ndcgs, count = 0.0, 0.0, 0
    for start in range(0, len(split.learners), 4000):
        rows = split.learners[start : start + 4000]
        scores = score_learners(split.train[rows], model, popularity_weight)
        hit, ndcg = hit_and_ndcg(scores, split.targets[start : start + 4000])
        hits += hit * len(rows)
        ndcgs += ndcg * len(rows)
        count += len(rows)
    return hits / count, ndcgs / count


def popularity_model(train: Any, courses: int) -> Any:
    from lyceum.recommendations.builder import Model, popularity

    empty = sp.csr_matrix((courses, courses))
    return Model(neighbours=empty, collaborative=empty, content=empty, popularity=popularity(train))


def embed(world: World) -> np.ndarray:
    from lyceum.kit.ai.embedding import get_embedder
    from lyceum.recommendations.repository import CourseText
    from lyceum.recommendations.service import content_vectors

    texts = [
        CourseText(uuid.uuid4(), title, subtitle, description)
        for title, subtitle, description in zip(
            world.titles, world.subtitles, world.descriptions, strict=True
        )
    ]
    return asyncio.run(content_vectors(get_embedder(), texts))


# The grid the blend is tuned on (collaborative weight fixed at 1: only ratios matter).
CONTENT_WEIGHTS = [0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0]
POPULARITY_WEIGHTS = [0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0]


def quality(world: World, vectors: np.ndarray, courses: int, k: int, seed: int) -> dict[str, Any]:
    from lyceum.recommendations.builder import (
        Blend,
        blend,
        collaborative_similarity,
        content_similarity,
        popularity,
    )

    validation, test = splits(world, courses, seed)
    content = content_similarity(vectors, k)

    def models(train: Any, weights: Blend) -> Any:
        return blend(collaborative_similarity(train, k), content, popularity(train), weights, k)

    print(f"tuning the blend on {len(validation.learners)} validation courses ...", flush=True)
    cf_validation = collaborative_similarity(validation.train, k)
    pop_validation = popularity(validation.train)
    tuning = []
    for content_weight in CONTENT_WEIGHTS:
        model = blend(cf_validation, content, pop_validation, Blend(1.0, content_weight, 0.0), k)
        for popularity_weight in POPULARITY_WEIGHTS:
            hit, ndcg = evaluate(validation, model, popularity_weight)
            tuning.append((hit, ndcg, content_weight, popularity_weight))
    best_hit, best_ndcg, content_weight, popularity_weight = max(tuning)
    tuned = Blend(1.0, content_weight, popularity_weight)
    print(
        f"  chosen: content {content_weight}, popularity {popularity_weight} "
        f"(validation hit@10 {best_hit:.4f}, NDCG@10 {best_ndcg:.4f})",
        flush=True,
    )
    print(f"scoring {len(test.learners)} test courses ...", flush=True)
    # The truth the choices were drawn from (not a model: the ceiling a model could reach).
    truth = world.taste[test.learners] @ world.membership.T
    oracle = (truth + TASTE_FLOOR) * world.appeal[np.newaxis, :]
    taken_rows, taken_cols = test.train[test.learners].nonzero()
    oracle[taken_rows, taken_cols] = -np.inf
    rows: dict[str, tuple[float, float]] = {
        "popularity": evaluate(test, popularity_model(test.train, courses), 1.0),
        "content only": evaluate(test, models(test.train, Blend(0.0, 1.0, 0.0)), 0.0),
        "collaborative only": evaluate(test, models(test.train, Blend(1.0, 0.0, 0.0)), 0.0),
        "blend": evaluate(test, models(test.train, tuned), tuned.popularity),
        "oracle (true tastes)": hit_and_ndcg(oracle, test.targets),
    }
    return {
        "evaluated_learners": len(test.learners),
        "tuned": {"collaborative": 1.0, "content": content_weight, "popularity": popularity_weight},
        "validation": {"hit@10": best_hit, "ndcg@10": best_ndcg},
        "tuning_grid": [
            {"content": c, "popularity": p, "hit@10": h, "ndcg@10": n} for h, n, c, p in tuning
        ],
        "test": {name: {"hit@10": hit, "ndcg@10": ndcg} for name, (hit, ndcg) in rows.items()},
    }


# Serving --------------------------------------------------------------------------------


def seed_database(url: str, world: World, courses: int) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    """The world in PostgreSQL with COPY: an instructor, the learners, the published
    courses, their enrollments and reviews (what the rebuild reads)."""
    import psycopg

    now = dt.datetime.now(dt.UTC)
    teacher = uuid.uuid4()
    learner_ids = [uuid.uuid4() for _ in range(world.learners)]
    course_ids = [uuid.uuid4() for _ in range(courses)]
    user_columns = (
        "id, email, full_name, role, is_active, email_verified_at, locale, timezone, preferences"
    )
    with psycopg.connect(url) as conn, conn.cursor() as cursor:
        with cursor.copy(f"COPY users ({user_columns}) FROM STDIN") as copy:
            copy.write_row(
                (
                    teacher,
                    "teacher@bench.test",
                    "Teacher",
                    "instructor",
                    True,
                    now,
                    "en",
                    "UTC",
                    "{}",
                )
            )
            for index, user in enumerate(learner_ids):
                copy.write_row(
                    (
                        user,
                        f"l{index}@bench.test",
                        f"L {index}",
                        "student",
                        True,
                        now,
                        "en",
                        "UTC",
                        "{}",
                    )
                )
        columns = (
            "id, slug, title, subtitle, description, language, level, category, tags, "
            "tags_text, lesson_titles, price_cents, currency, status, owner_id, published_at"
        )
        with cursor.copy(f"COPY courses ({columns}) FROM STDIN") as copy:
            for index, course in enumerate(course_ids):
                copy.write_row(
                    (
                        course,
                        f"bench-course-{index}",
                        world.titles[index],
                        world.subtitles[index],
                        world.descriptions[index],
                        "en",
                        "beginner",
                        TOPICS[world.topics[index][0]][0],
                        [],
                        "",
                        "",
                        0,
                        "USD",
                        "published",
                        teacher,
                        now,
                    )
                )
        with cursor.copy(
            "COPY enrollments (id, course_id, user_id, status, enrolled_at, completed_at) FROM STDIN"
        ) as copy:
            for learner, course, status, _share, _rating in world.enrollments:
                copy.write_row(
                    (
                        uuid.uuid4(),
                        course_ids[course],
                        learner_ids[learner],
                        status,
                        now,
                        now if status == "completed" else None,
                    )
                )
        with cursor.copy("COPY reviews (id, course_id, user_id, rating, text) FROM STDIN") as copy:
            for learner, course, _status, _share, rating in world.enrollments:
                if rating is not None:
                    copy.write_row(
                        (uuid.uuid4(), course_ids[course], learner_ids[learner], rating, "")
                    )
        cursor.execute("ANALYZE")
    return learner_ids, course_ids


async def serve(
    url: str,
    temp: Path,
    world: World,
    courses: int,
    samples: int,
    weights: dict[str, float],
    k: int,
    seed: int,
) -> dict[str, Any]:
    from sqlalchemy import select

    from lyceum.config import Settings
    from lyceum.kit.ai.embedding import get_embedder
    from lyceum.kit.db import Database, unit_of_work
    from lyceum.models.identity import User
    from lyceum.recommendations.builder import feedback_weight, score_learners
    from lyceum.recommendations.repository import RecommendationRepository
    from lyceum.recommendations.service import Recommendations, rebuild_model

    settings = Settings(
        database_url=url,
        data_dir=temp / "data",
        recommendations_neighbours=k,
        recommendations_collaborative_weight=weights["collaborative"],
        recommendations_content_weight=weights["content"],
        recommendations_popularity_weight=weights["popularity"],
    )
    print("seeding PostgreSQL (COPY) ...", flush=True)
    learner_ids, course_ids = seed_database(url, world, courses)
    database = Database(url, pool_size=2, max_overflow=0)
    try:
        started = time.perf_counter()
        async with database.sessionmaker() as session, unit_of_work(session):
            built = await rebuild_model(
                session, embedder=get_embedder(), settings=settings, now=dt.datetime.now(dt.UTC)
            )
        build_seconds = time.perf_counter() - started
        assert built is not None
        print(f"  model {built.model_id} built and stored in {build_seconds:.1f}s", flush=True)
        rng = np.random.default_rng(seed + 2)
        sampled = rng.choice(world.learners, size=min(samples, world.learners), replace=False)
        # The stored model, read back, scored in Python for the agreement check.
        async with database.sessionmaker() as session:
            repo = RecommendationRepository(session)
            stored = await repo.stored_model(built.model_id, course_ids)
        serving, baseline, agree = [], [], 0
        index_of = {course: index for index, course in enumerate(course_ids)}
        async with database.sessionmaker() as session:
            service = Recommendations(session, settings)
            for learner in itertools.islice(itertools.cycle(sampled[:20]), 20):  # warm-up
                await service.for_learner(learner_ids[int(learner)], TOP)
            for learner in sampled:
                user_id = learner_ids[int(learner)]
                started = time.perf_counter()
                await session.scalar(select(User.id).where(User.id == user_id))
                baseline.append(time.perf_counter() - started)
                started = time.perf_counter()
                answer = await service.for_learner(user_id, TOP)
                serving.append(time.perf_counter() - started)
                # The learner's feedback as the database holds it (no lessons here).
                mine = [
                    (index_of[f.course_id], feedback_weight(f.status, f.lesson_share, f.rating))
                    for f in await RecommendationRepository(session).learner_feedback(user_id)
                ]
                history = sp.csr_matrix(
                    ([w for _, w in mine], ([0] * len(mine), [c for c, _ in mine])),
                    shape=(1, courses),
                )
                expected = score_learners(history, stored, weights["popularity"])[0]
                ranked = np.lexsort((np.array([str(c) for c in course_ids]), -expected))[:TOP]
                got = [index_of[item.course.id] for item in answer.items]
                # Equal lists, or equal up to courses whose scores tie (to 1e-9).
                agree += len(got) == len(ranked) and bool(
                    np.allclose(expected[got], expected[ranked], rtol=0, atol=1e-9)
                )
                await session.rollback()
    finally:
        await database.dispose()
    serving.sort()
    baseline.sort()
    return {
        "build_seconds": build_seconds,
        "samples": len(serving),
        "p50_ms": percentile(serving, 50) * 1000,
        "p95_ms": percentile(serving, 95) * 1000,
        "baseline_p50_ms": percentile(baseline, 50) * 1000,
        "ratio": percentile(serving, 50) / percentile(baseline, 50),
        "agreement": agree / len(serving),
    }


def run(args: argparse.Namespace, temp: Path) -> dict[str, Any]:
    started = time.perf_counter()
    world = generate(args.courses, args.learners, args.seed)
    print(
        f"generated {args.courses} courses, {args.learners} learners, "
        f"{len(world.enrollments)} enrollments in {time.perf_counter() - started:.1f}s",
        flush=True,
    )
    started = time.perf_counter()
    vectors = embed(world)
    print(f"embedded {args.courses} course texts (MiniLM) in {time.perf_counter() - started:.1f}s")
    report: dict[str, Any] = {
        "scenario": SCENARIO,
        "machine": platform.platform(),
        "load_average": load_average(),
        "courses": args.courses,
        "learners": args.learners,
        "enrollments": len(world.enrollments),
        "k": args.k,
    }
    report["quality"] = quality(world, vectors, args.courses, args.k, args.seed)
    test = report["quality"]["test"]
    print(f"\n{'model':<20} {'hit@10':>8} {'NDCG@10':>8} {'hit vs popularity':>18}")
    for name, row in test.items():
        ratio = row["hit@10"] / test["popularity"]["hit@10"]
        print(f"{name:<20} {row['hit@10']:>8.4f} {row['ndcg@10']:>8.4f} {ratio:>17.2f}x")
    errors = 0
    blend_hit = test["blend"]["hit@10"]
    if blend_hit < 2 * test["popularity"]["hit@10"]:
        errors += 1
        print("the blend's hit@10 is not twice popularity's")
    for name in ("content only", "collaborative only"):
        if blend_hit <= test[name]["hit@10"]:
            errors += 1
            print(f"the blend's hit@10 does not beat {name}")
    if not args.no_serving:
        postgres, url = migrated_postgres(temp, DATABASE)
        try:
            report["serving"] = asyncio.run(
                serve(
                    url,
                    temp,
                    world,
                    args.courses,
                    args.serving_samples,
                    report["quality"]["tuned"],
                    args.k,
                    args.seed,
                )
            )
        finally:
            postgres.stop()
        serving = report["serving"]
        print(
            f"\nserving GET /me/recommendations (service, stored model): p50 "
            f"{serving['p50_ms']:.2f} ms, p95 {serving['p95_ms']:.2f} ms over "
            f"{serving['samples']} learners; baseline (user row by id) p50 "
            f"{serving['baseline_p50_ms']:.2f} ms, ratio {serving['ratio']:.1f}; "
            f"top 10 equal to score_learners for {100 * serving['agreement']:.1f}%; "
            f"build {serving['build_seconds']:.1f}s"
        )
        if serving["p50_ms"] >= 20:
            errors += 1
            print("serving p50 is not under 20 ms")
    report["errors"] = errors
    return report


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--courses", type=int, default=500, help="courses (500)")
    parser.add_argument("--learners", type=int, default=20_000, help="learners (20,000)")
    parser.add_argument("--seed", type=int, default=7, help="generator seed (7)")
    parser.add_argument("--k", type=int, default=50, help="neighbours per course (50)")
    parser.add_argument("--serving-samples", type=int, default=1000, help="timed learners (1000)")
    parser.add_argument("--no-serving", action="store_true", help="skip the PostgreSQL part")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write results here")
    parser.add_argument("--keep-temp", action="store_true", help="keep the temp dir afterwards")
    args = parser.parse_args(argv)
    if args.courses < 20 or args.learners < 100 or args.k < 1 or args.serving_samples < 1:
        parser.error("need --courses >= 20, --learners >= 100, --k and --serving-samples >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    return scenario_main(SCENARIO, parse_args(argv), run, errors_are="targets missed")


if __name__ == "__main__":
    sys.exit(main())
