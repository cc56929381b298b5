"""Assessment jobs: scoring a submitted essay, and closing quiz attempts whose time ran
out."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.assessments.scoring import ai_score, essay_vector, offline_score
from lyceum.assessments.service.closing import close_expired_attempts
from lyceum.assessments.service.proposals import (
    record_scoring_failure,
    scoring_input,
    store_score,
)
from lyceum.config import Settings
from lyceum.kit.ai.embedding import get_embedder
from lyceum.kit.events import on
from lyceum.kit.jobs import (
    JobContext,
    Queue,
    is_last_attempt,
    job_app,
    resources,
    task,
    transaction,
)

logger = structlog.get_logger("lyceum.assessments")

SCORING_FAILED = (
    "Automatic scoring failed repeatedly (the AI provider did not give a usable answer); "
    "grade this submission by criterion."
)


SessionScope = Callable[[], AbstractAsyncContextManager[AsyncSession]]


async def score(
    submission_id: uuid.UUID,
    *,
    settings: Settings,
    last_try: bool,
    sessions: SessionScope,
) -> str:
    """Score one submission. No transaction is open while the model works; the result
    is stored only if the submission still waits for it, so a second run (a retry, a
    job rescued from a dead worker) stores nothing twice. Returns what happened.
    `sessions` opens each short transaction."""
    async with sessions() as session:
        data = await scoring_input(session, submission_id)
    if data is None:
        return "nothing to score"
    try:
        embedder = await asyncio.to_thread(get_embedder)
        vector = await essay_vector(embedder, data.essay)
        if settings.ai_offline:
            proposal = await offline_score(embedder, data, vector)
        else:
            proposal = await ai_score(settings, data)
    except Exception as error:
        logger.warning(
            "essay_scoring_failed", submission_id=str(submission_id), error=repr(error)[:500]
        )
        if not last_try:
            raise  # procrastinate retries with backoff
        async with sessions() as session:
            await record_scoring_failure(session, submission_id, SCORING_FAILED)
        return "failed"
    async with sessions() as session:
        stored = await store_score(
            session,
            submission_id,
            proposal,
            vector,
            similarity_threshold=settings.assessment_similarity_threshold,
            now=dt.datetime.now(dt.UTC),
        )
    logger.info(
        "essay_scored", submission_id=str(submission_id), scorer=proposal.scorer, stored=stored
    )
    return "scored" if stored else "already scored"


@task(name="lyceum.assessments.score_submission", queue=Queue.ai, pass_context=True)
async def score_submission(context: JobContext, submission_id: str) -> str:
    runtime = resources(context)
    return await score(
        uuid.UUID(submission_id),
        settings=runtime.settings,
        last_try=is_last_attempt(context),
        sessions=lambda: transaction(runtime),
    )


@job_app.periodic(cron="* * * * *", periodic_id="close-expired-attempts")
@task(
    name="lyceum.assessments.close_expired_attempts",
    queue=Queue.progress,
    retry=False,
    queueing_lock="close_expired_attempts",
    pass_context=True,
)
async def close_expired_attempts_task(context: JobContext, timestamp: int) -> int:
    """Every minute: grade the attempts whose time ran out while nobody touched them."""
    runtime = resources(context)
    settings = runtime.settings
    async with transaction(runtime) as session:
        closed = await close_expired_attempts(
            session, dt.datetime.now(dt.UTC), settings.assessment_deadline_grace_seconds
        )
    if closed:
        logger.info("expired_attempts_closed", count=closed)
    return closed


on("essay.submitted", score_submission)
