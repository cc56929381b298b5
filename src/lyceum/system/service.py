"""Job operations for admins: the figures and steering of kit.jobops, as API answers and
typed errors (404 for no such job, 409 for a job in the wrong state)."""

from __future__ import annotations

import dataclasses

from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.kit import jobops
from lyceum.kit.errors import Conflict, NotFound
from lyceum.kit.pagination import Page, PageParams
from lyceum.system.schemas import JobCounts, JobOut, JobSummaryOut, QueueOut


def _queue_out(figures: jobops.QueueFigures) -> QueueOut:
    return QueueOut(
        queue=figures.queue,
        counts=JobCounts(**figures.counts),
        oldest_waiting_seconds=round(figures.oldest_waiting_seconds, 3),
    )


async def queues(session: AsyncSession) -> Page[QueueOut]:
    return Page.of_all([_queue_out(figures) for figures in await jobops.queue_figures(session)])


async def failed(
    session: AsyncSession, paging: PageParams, queue: str | None = None
) -> Page[JobSummaryOut]:
    found, total = await jobops.failed_jobs(
        session, queue=queue, offset=paging.offset, limit=paging.size
    )
    items = [JobSummaryOut(**dataclasses.asdict(job)) for job in found]
    return Page.of(items, total, paging)


async def job(session: AsyncSession, job_id: int) -> JobOut:
    try:
        detail = await jobops.job_detail(session, job_id)
    except jobops.JobNotFound:
        raise NotFound(f"No job {job_id}.") from None
    return JobOut.model_validate(dataclasses.asdict(detail))


async def retry(session: AsyncSession, job_id: int) -> JobOut:
    try:
        await jobops.retry_failed(session, job_id)
    except jobops.JobNotFound:
        raise NotFound(f"No job {job_id}.") from None
    except jobops.JobStateConflict as error:
        raise Conflict(
            f"Job {job_id} is {error.status}: only a failed job can be retried, and only "
            "while no job with its queueing lock waits.",
            slug="job-not-failed",
        ) from None
    return await job(session, job_id)


async def cancel(session: AsyncSession, job_id: int) -> JobOut:
    try:
        await jobops.cancel_waiting(session, job_id)
    except jobops.JobNotFound:
        raise NotFound(f"No job {job_id}.") from None
    except jobops.JobStateConflict as error:
        raise Conflict(
            f"Job {job_id} is {error.status}: only a waiting (todo) job can be cancelled.",
            slug="job-not-waiting",
        ) from None
    return await job(session, job_id)
