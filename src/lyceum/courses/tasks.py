"""Course jobs: folding the appended counter changes into each course's counters, and
keeping the catalog's vocabulary (for "did you mean") in step with the catalog."""

from __future__ import annotations

from lyceum.courses.service import fold_counters, refresh_vocabulary
from lyceum.kit.jobs import JobContext, Queue, job_app, resources, task, transaction

# Every ten seconds (croniter's sixth field is the second): the catalog shows a new
# enrollment or review within seconds plus the catalog cache's lifetime.
FOLD_EVERY = "* * * * * */10"


@job_app.periodic(cron=FOLD_EVERY, periodic_id="fold-course-stats")
@task(
    name="lyceum.courses.fold_course_stats",
    queue=Queue.maintenance,
    retry=False,
    queueing_lock="fold_course_stats",
    pass_context=True,
)
async def fold_course_stats(context: JobContext, timestamp: int) -> int:
    """Add the appended enrollment and review changes to the courses' counters."""
    runtime = resources(context)
    async with transaction(runtime) as session:
        return await fold_counters(session, runtime.cache)


@job_app.periodic(cron="* * * * *", periodic_id="refresh-catalog-vocabulary")
@task(
    name="lyceum.courses.refresh_catalog_vocabulary",
    queue=Queue.maintenance,
    retry=False,
    queueing_lock="refresh_catalog_vocabulary",
    pass_context=True,
)
async def refresh_catalog_vocabulary(context: JobContext, timestamp: int) -> bool:
    """Every minute, if the catalog changed: rebuild the words misspellings are
    corrected to."""
    runtime = resources(context)
    async with transaction(runtime) as session:
        return await refresh_vocabulary(session, runtime.cache)
