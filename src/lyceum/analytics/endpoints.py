"""Event ingest route: apps post a learner's events in batches."""

from __future__ import annotations

from fastapi import status
from fastapi.exceptions import RequestValidationError

from lyceum.analytics import schemas
from lyceum.analytics.ingest import EventsInvalid, Limits, ingest
from lyceum.analytics.tasks import defer_rollups
from lyceum.identity.permissions import CurrentUser, RuntimeDep
from lyceum.kit.clock import ClockDep
from lyceum.kit.db import Session
from lyceum.kit.routing import Router

router = Router(tags=["analytics"])


@router.post(
    "/analytics/events",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Post a batch of the caller's learning events",
    description="1 to ANALYTICS_MAX_BATCH_EVENTS (500) events of the caller's, each with "
    "the app's own event id, a verb an app may send (viewed, started, paused, resumed, "
    "answered, searched, downloaded), its object (a course, lesson, file page, quiz, quiz "
    "item, assignment, or the catalog) and when it happened. The actor is always the "
    "caller: an `actor` or `user_id` field is refused (422). Every object must be one the "
    "caller may see (a published course; its preview lessons; the rest of it once "
    "enrolled; a course's instructors and admins see all of it); a hidden or unknown one "
    "is refused like a wrong id (422, `not_visible`). The course and lesson are taken "
    "from the object. A timestamp more than ANALYTICS_MAX_FUTURE_SKEW_SECONDS ahead or "
    "older than ANALYTICS_MAX_EVENT_AGE_DAYS is refused. One bad event refuses the whole "
    "batch, and the 422 names every bad field (`body.events.3.timestamp`). An event "
    "whose id the caller sent before, in this batch or an earlier one, is not stored "
    "again: it is counted in `duplicates`, so a batch can be retried safely. 202: "
    "stored; the reports count the events within a minute.",
)
async def post_events(
    batch: schemas.EventBatch,
    caller: CurrentUser,
    session: Session,
    runtime: RuntimeDep,
    clock: ClockDep,
) -> schemas.IngestOut:
    settings = runtime.settings
    try:
        outcome = await ingest(session, caller, batch, limits=Limits.of(settings), now=clock.now())
    except EventsInvalid as refused:
        raise RequestValidationError(refused.problems) from refused
    if outcome.accepted and settings.analytics_rollup_after_ingest:
        await defer_rollups(session)
    return schemas.IngestOut(accepted=outcome.accepted, duplicates=outcome.duplicates)
