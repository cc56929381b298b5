"""Recommendation jobs: every hour, rebuild the stored model (a new version, the old
ones pruned); also deferred by `lyceum demo` once its enrollment history is in."""

from __future__ import annotations

import asyncio
import datetime as dt

from lyceum.kit.ai.embedding import get_embedder
from lyceum.kit.jobs import JobContext, Queue, job_app, resources, task, transaction
from lyceum.recommendations.service import REBUILD_LOCK, rebuild_model


@job_app.periodic(cron="23 * * * *", periodic_id="rebuild-recommendations")
@task(
    name="lyceum.recommendations.rebuild",
    queue=Queue.ai,
    pass_context=True,
    retry=False,
    queueing_lock=REBUILD_LOCK,
)
async def rebuild_recommendations(context: JobContext, timestamp: int) -> int | None:
    """Build and store a new model version (CPU-bound: course embeddings and the
    neighbour search, on the AI queue). Safe to run twice: each run writes a complete
    version of its own, and a run that finds another one building does nothing."""
    runtime = resources(context)
    embedder = await asyncio.to_thread(get_embedder)
    async with transaction(runtime) as session:
        built = await rebuild_model(
            session, embedder=embedder, settings=runtime.settings, now=dt.datetime.now(dt.UTC)
        )
    return built.model_id if built is not None else None
