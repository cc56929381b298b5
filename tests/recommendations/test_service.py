"""The stored model against real PostgreSQL: a rebuild writes a complete version whose
neighbours are the hand-computed cosines, readers use the newest complete version,
old ones are pruned, and what a learner is offered never includes a course they took,
teach, an unpublished one or one the price policy leaves out."""

from __future__ import annotations

import math

import pytest
import scipy.sparse as sp
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.config import Settings
from lyceum.models.courses import Course, EnrollmentStatus
from lyceum.models.recommendations import RecommendationModel
from lyceum.recommendations.builder import feedback_weight, score_learners
from lyceum.recommendations.repository import RecommendationRepository
from lyceum.recommendations.service import Recommendations, rebuild_model
from tests.recommendations.helpers import NOW, Catalog, catalog, embedder, enroll, history, user


@pytest.fixture
async def world(session: AsyncSession) -> Catalog:
    built = await catalog(session)
    await history(session, built)
    return built


async def rebuild(session: AsyncSession, settings: Settings) -> int:
    built = await rebuild_model(session, embedder=await embedder(), settings=settings, now=NOW)
    assert built is not None
    return built.model_id


def titles(answer: object) -> list[str]:
    return [item.course.title for item in answer.items]  # type: ignore[attr-defined]


async def test_before_any_model_a_learner_gets_popular_courses_minus_taken(
    session: AsyncSession, settings: Settings, world: Catalog
) -> None:
    # No model yet: a worker of another test may have built one in this database, so
    # the test's transaction removes them (rolled back afterwards).
    await session.execute(delete(RecommendationModel))
    assert await RecommendationRepository(session).newest_model() is None
    learner = await user(session)
    await enroll(session, learner, world.courses["python"])
    answer = await Recommendations(session, settings).for_learner(learner, 50)
    offered = titles(answer)
    assert "Python basics" not in offered  # taken
    assert "Python internals (draft)" not in offered  # unpublished
    assert {"Python data analysis", "Genetics", "Cell biology"} <= set(offered)
    assert {item.reason.kind for item in answer.items} == {"popular"}


async def test_a_rebuild_stores_a_complete_version_with_the_hand_computed_cosines(
    session: AsyncSession, settings: Settings, world: Catalog
) -> None:
    model_id = await rebuild(session, settings)
    repo = RecommendationRepository(session)
    newest = await repo.newest_model()
    assert newest is not None and newest.id == model_id and newest.completed_at == NOW
    assert newest.parameters["k"] == settings.recommendations_neighbours
    ids = list(world.courses.values())
    stored = await repo.stored_model(model_id, ids)
    python, python2 = ids.index(world.courses["python"]), ids.index(world.courses["python2"])
    cells, genes = ids.index(world.courses["cells"]), ids.index(world.courses["genes"])
    # python: six completions (2.0 each); python2: those six and two more at 1.0
    # cosine = 6 x 2 x 1 / (sqrt(6 x 4) x sqrt(8)) = sqrt(3) / 2
    weight = settings.recommendations_collaborative_weight
    assert stored.collaborative[python, python2] == pytest.approx(weight * math.sqrt(3) / 2)
    assert stored.collaborative[cells, genes] == pytest.approx(weight * 1.0)
    assert stored.collaborative[python, cells] == 0.0  # no learner in common
    # the content part is the cosine of the MiniLM vectors: same-subject courses closer
    assert stored.content[cells, genes] > stored.content[cells, python]
    assert stored.neighbours[python, python2] == pytest.approx(
        stored.collaborative[python, python2] + stored.content[python, python2]
    )
    draft = ids.index(world.courses["draft"])
    assert stored.neighbours[draft].nnz == 0 and stored.neighbours[:, draft].nnz == 0


async def test_a_learner_is_offered_neighbours_with_reasons_and_never_excluded_courses(
    session: AsyncSession, settings: Settings, world: Catalog
) -> None:
    learner = await user(session)
    await enroll(session, learner, world.courses["python"])
    await enroll(session, learner, world.courses["genes"], EnrollmentStatus.cancelled)
    await rebuild(session, settings)
    answer = await Recommendations(session, settings).for_learner(learner, 50)
    offered = titles(answer)
    assert offered[0] == "Python data analysis"
    first = answer.items[0].reason
    assert first.kind == "because_you_took" and first.course is not None
    assert first.text == "Because you took Python basics"
    assert "Python basics" not in offered and "Genetics" not in offered  # any status
    assert "Python internals (draft)" not in offered
    assert "Python web apps" in offered
    capped = settings.model_copy(update={"recommendations_max_price_cents": 0})
    assert "Python web apps" not in titles(
        await Recommendations(session, capped).for_learner(learner, 50)
    )
    # an instructor is not offered the courses they teach (here: all of the world's;
    # courses other tests committed to this database may be offered)
    teacher = await Recommendations(session, settings).for_learner(world.teacher, 50)
    assert not {item.course.id for item in teacher.items} & set(world.courses.values())


async def test_a_new_learner_gets_popularity_from_the_model(
    session: AsyncSession, settings: Settings, world: Catalog
) -> None:
    await rebuild(session, settings)
    answer = await Recommendations(session, settings).for_learner(await user(session), 50)
    # python2 has 8 learners, python 6, priced 3: most taken first (of this world's
    # courses: others that tests committed to this database may rank among them)
    ours = [item for item in answer.items if item.course.id in set(world.courses.values())]
    assert ours[0].course.title == "Python data analysis"
    assert {item.reason.kind for item in answer.items} == {"popular"}
    assert len(ours) >= 3


async def test_the_database_answers_what_the_builder_scores(
    session: AsyncSession, settings: Settings, world: Catalog
) -> None:
    learner = await user(session)
    await enroll(session, learner, world.courses["python2"], EnrollmentStatus.completed)
    await enroll(session, learner, world.courses["cells"])
    model_id = await rebuild(session, settings)
    ids = list(world.courses.values())
    stored = await RecommendationRepository(session).stored_model(model_id, ids)
    # completed (no lessons to complete here) and active
    weights = [feedback_weight("completed", 0.0, None), feedback_weight("active", 0.0, None)]
    history_row = sp.csr_matrix(
        (
            weights,
            ([0, 0], [ids.index(world.courses["python2"]), ids.index(world.courses["cells"])]),
        ),
        shape=(1, len(ids)),
    )
    scores = score_learners(history_row, stored, settings.recommendations_popularity_weight)[0]
    answer = await Recommendations(session, settings).for_learner(learner, 50)
    mine = [item for item in answer.items if item.course.id in ids]
    draft = ids.index(world.courses["draft"])
    for item in mine:
        index = ids.index(item.course.id)
        assert index != draft
        assert item.score == pytest.approx(scores[index], abs=1e-5)
    assert [item.score for item in mine] == sorted((item.score for item in mine), reverse=True)


async def test_readers_use_the_newest_complete_version_and_old_ones_are_pruned(
    session: AsyncSession, settings: Settings, world: Catalog
) -> None:
    repo = RecommendationRepository(session)
    keep = settings.model_copy(update={"recommendations_keep_versions": 2})
    first = await rebuild(session, keep)
    second = await rebuild(session, keep)
    # a build still being written is never read
    unfinished = await repo.start_model(
        started_at=NOW, courses=0, learners=0, interactions=0, parameters={}
    )
    newest = await repo.newest_model()
    assert newest is not None and newest.id == second
    third = await rebuild(session, keep)
    assert third > unfinished > second > first
    assert await repo.model_ids() == [second, third]  # the unfinished one is gone too
    newest = await repo.newest_model()
    assert newest is not None and newest.id == third


async def test_related_courses_come_from_the_stored_neighbours(
    session: AsyncSession, settings: Settings, world: Catalog
) -> None:
    service = Recommendations(session, settings)
    python = await session.get(Course, world.courses["python"])
    assert python is not None
    before = await service.related(python, 10)
    assert {item.reason.kind for item in before.items} == {"popular"}
    assert "Python basics" not in titles(before)
    await rebuild(session, settings)
    after = await service.related(python, 10)
    assert titles(after)[0] == "Python data analysis"
    assert after.items[0].reason.kind == "taken_together"
    assert "Python internals (draft)" not in titles(after)
