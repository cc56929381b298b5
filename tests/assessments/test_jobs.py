"""The scoring job on the real job queue, with committed data: enqueued in the
submission's own transaction, run by a procrastinate worker, safe to run twice and
to run twice at once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text

from lyceum.assessments.tasks import close_expired_attempts_task, score
from lyceum.config import AIProvider
from lyceum.kit.jobs import job_app, transaction
from lyceum.kit.runtime import Runtime
from lyceum.models.assessments import AuditEntry, EssaySubmission, SimilarityFlag
from lyceum.models.identity import Role
from tests.assessments.helpers import API, GOOD_ESSAY, assignment_body
from tests.conftest import committing_client
from tests.content.helpers import Person, course_with_lesson, drain_jobs, enroll, person


@pytest.fixture
async def live(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """The app on real, committed sessions, so the worker sees what the API wrote."""
    async with committing_client(runtime) as http:
        yield http


async def course_with_assignment(
    http: httpx.AsyncClient, runtime: Runtime, **extra: Any
) -> tuple[Person, dict[str, Any], str]:
    teacher = await person(http, runtime, Role.instructor)
    course, _ = await course_with_lesson(http, teacher)
    made = await http.post(
        f"{API}/courses/{course['id']}/assignments",
        json=assignment_body(**extra),
        headers=teacher.headers,
    )
    assert made.status_code == 201, made.text
    return teacher, course, made.json()["id"]


async def learner_submits(
    http: httpx.AsyncClient, runtime: Runtime, course_id: str, assignment_id: str, essay: str
) -> str:
    learner = await person(http, runtime)
    await enroll(http, course_id, learner)
    response = await http.post(
        f"{API}/assignments/{assignment_id}/submissions",
        json={"text": essay},
        headers=learner.headers,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def test_a_submission_is_scored_by_the_worker_from_its_own_transaction(
    live: httpx.AsyncClient, runtime: Runtime
) -> None:
    assert runtime.settings.ai_offline  # no provider configured: the offline estimate
    teacher, course, assignment_id = await course_with_assignment(live, runtime)
    submission_id = await learner_submits(live, runtime, course["id"], assignment_id, GOOD_ESSAY)
    async with runtime.database.sessionmaker() as session:
        queued = await session.scalar(
            text(
                "SELECT count(*) FROM procrastinate_jobs WHERE task_name = :task "
                "AND args->>'submission_id' = :id AND status = 'todo'"
            ),
            {"task": "lyceum.assessments.score_submission", "id": submission_id},
        )
    assert queued == 1
    await drain_jobs()
    review = (await live.get(f"{API}/submissions/{submission_id}", headers=teacher.headers)).json()
    assert review["status"] == "needs_review" and review["proposal"]["estimate"] is True
    # The job rescued from a dead worker runs again: nothing changes.
    again = await score(
        uuid.UUID(submission_id),
        settings=runtime.settings,
        last_try=False,
        sessions=lambda: transaction(runtime),
    )
    assert again == "nothing to score"


async def test_a_refused_submission_enqueues_nothing(
    live: httpx.AsyncClient, runtime: Runtime
) -> None:
    _, course, assignment_id = await course_with_assignment(live, runtime, min_words=200)
    learner = await person(live, runtime)
    await enroll(live, course["id"], learner)
    response = await live.post(
        f"{API}/assignments/{assignment_id}/submissions",
        json={"text": GOOD_ESSAY},
        headers=learner.headers,
    )
    assert response.status_code == 422
    async with runtime.database.sessionmaker() as session:
        jobs = await session.scalar(
            text(
                "SELECT count(*) FROM procrastinate_jobs j JOIN essay_submissions s "
                "ON s.id::text = j.args->>'submission_id' WHERE s.assignment_id = :id"
            ),
            {"id": assignment_id},
        )
        stored = await session.scalar(
            select(func.count())
            .select_from(EssaySubmission)
            .where(EssaySubmission.assignment_id == uuid.UUID(assignment_id))
        )
    assert jobs == 0 and stored == 0


async def test_two_runs_at_once_grade_once(live: httpx.AsyncClient, runtime: Runtime) -> None:
    """The original job and a rescued copy of it race: the row lock and the status
    check let exactly one store (and auto-release) the score."""
    _, course, assignment_id = await course_with_assignment(live, runtime)
    first = await learner_submits(live, runtime, course["id"], assignment_id, GOOD_ESSAY)
    copy = await learner_submits(
        live, runtime, course["id"], assignment_id, GOOD_ESSAY.replace("Green plants", "Plants")
    )
    settings = runtime.settings.model_copy(update={"ai_provider": AIProvider.offline})
    await score(
        uuid.UUID(first), settings=settings, last_try=False, sessions=lambda: transaction(runtime)
    )
    outcomes = await asyncio.gather(
        score(
            uuid.UUID(copy),
            settings=settings,
            last_try=False,
            sessions=lambda: transaction(runtime),
        ),
        score(
            uuid.UUID(copy),
            settings=settings,
            last_try=False,
            sessions=lambda: transaction(runtime),
        ),
    )
    assert sorted(outcomes) in (
        ["already scored", "scored"],
        ["nothing to score", "scored"],
    )
    async with runtime.database.sessionmaker() as session:
        flags = await session.scalar(
            select(func.count())
            .select_from(SimilarityFlag)
            .where(SimilarityFlag.submission_id.in_([uuid.UUID(first), uuid.UUID(copy)]))
        )
        audits = await session.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.subject_id.in_([uuid.UUID(first), uuid.UUID(copy)]))
        )
    assert flags == 2 and audits == 0  # one pair, both directions; estimates never auto-release
    await drain_jobs()  # the queued jobs find both scored


def test_expired_attempts_are_swept_every_minute() -> None:
    periodic = {
        task.task.name: task.cron for task in job_app.periodic_registry.periodic_tasks.values()
    }
    assert periodic[close_expired_attempts_task.name] == "* * * * *"
