"""The demo's enrollment history: written once, plausible, and it enqueues a model
rebuild; recommendations for the demo student then come from it."""

from __future__ import annotations

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.config import Settings
from lyceum.demo import loader
from lyceum.demo.history import LEARNERS, learner_email
from lyceum.kit.runtime import Runtime
from lyceum.models.courses import Enrollment, LessonCompletion, Review
from lyceum.models.identity import User
from lyceum.recommendations.service import Recommendations, rebuild_model
from tests.recommendations.helpers import embedder
from tests.support.clock import FrozenClock


async def test_the_demo_history_is_written_once_and_feeds_recommendations(
    session: AsyncSession, runtime: Runtime, settings: Settings, clock: FrozenClock
) -> None:
    first = await loader.load_demo(session, cache=runtime.cache, now=clock.now())
    second = await loader.load_demo(session, cache=runtime.cache, now=clock.now())
    assert first.history is not None and second.history is None
    assert first.history.learners == LEARNERS
    assert first.history.enrollments >= 2 * LEARNERS
    assert first.history.completions > 0 and first.history.reviews > 0
    enrollments = await session.scalar(select(func.count()).select_from(Enrollment))
    assert enrollments is not None and enrollments >= first.history.enrollments
    assert await session.scalar(select(func.count()).select_from(LessonCompletion))
    assert await session.scalar(select(func.count()).select_from(Review))
    queued = await session.scalar(
        text(
            "SELECT count(*) FROM procrastinate_jobs "
            "WHERE task_name = 'lyceum.recommendations.rebuild' AND status = 'todo'"
        )
    )
    assert queued == 1
    student = await session.scalar(select(User.id).where(User.email == loader.STUDENT_EMAIL))
    assert student is not None
    assert await session.scalar(select(User.id).where(User.email == learner_email(LEARNERS)))
    await rebuild_model(session, embedder=await embedder(), settings=settings, now=clock.now())
    answer = await Recommendations(session, settings).for_learner(student, 5)
    assert answer.items
    assert all(item.course.slug != "python-foundations" for item in answer.items)
    assert any(item.reason.kind != "popular" for item in answer.items)
