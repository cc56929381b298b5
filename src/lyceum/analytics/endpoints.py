"""Event ingest route: apps post a learner's events in batches."""

from __future__ import annotations

import email.message
import json
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError

from lyceum.analytics import schemas
from lyceum.analytics.ingest import EventsInvalid, Limits, ingest
from lyceum.analytics.tasks import ROLLUPS_LOCK, defer_rollups
from lyceum.identity.permissions import CurrentUser, RuntimeDep
from lyceum.kit.clock import ClockDep
from lyceum.kit.db import Session
from lyceum.kit.openapi import request_body
from lyceum.kit.routing import Router

router = Router(tags=["analytics"])

_FULL_BATCH: TypeAdapter[schemas.EventBatch] = TypeAdapter(schemas.EventBatch)
_NO_BODY = object()


def _is_json(content_type: str | None) -> bool:
    """FastAPI's test of a JSON body's content type (`application/json`, `.../*+json`)."""
    if not content_type:
        return False
    message = email.message.Message()
    message["content-type"] = content_type
    if message.get_content_maintype() != "application":
        return False
    subtype = message.get_content_subtype()
    return subtype == "json" or subtype.endswith("+json")


@dataclass(frozen=True)
class ReadBatch:
    """The body, read before the caller is authenticated as FastAPI reads a declared
    body (so malformed JSON is a 400 whoever sends it): the events when the fast path
    took them, else what `EventBatch` is to validate once the caller is known."""

    events: list[schemas.WireEvent] | None
    pending: Any = _NO_BODY


async def read_batch(request: Request) -> ReadBatch:
    """The body as FastAPI would read a declared `EventBatch` body: the fast path
    (`schemas.read_wire`) for a well-formed JSON batch, otherwise FastAPI's own steps
    (the same answers to malformed JSON, another content type, an empty body)."""
    body = await request.body()
    if not body:
        return ReadBatch(None)
    if not _is_json(request.headers.get("content-type")):
        return ReadBatch(None, body)
    events = schemas.read_wire(body)
    if events is not None:
        return ReadBatch(events)
    try:
        return ReadBatch(None, json.loads(body))
    except json.JSONDecodeError as error:
        raise RequestValidationError(
            [
                {
                    "type": "json_invalid",
                    "loc": ("body", error.pos),
                    "msg": "JSON decode error",
                    "input": {},
                    "ctx": {"error": error.msg},
                }
            ],
            body=error.doc,
        ) from error
    except Exception as error:
        raise HTTPException(
            status_code=400, detail="There was an error parsing the body"
        ) from error


def _validated(read: ReadBatch) -> list[schemas.WireEvent]:
    """The events, validated by `EventBatch` when the fast path did not take them; its
    422 names every bad field, as FastAPI's validation of a declared body does."""
    if read.events is not None:
        return read.events
    if read.pending is _NO_BODY:
        raise RequestValidationError(
            [{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}]
        )
    try:
        batch = _FULL_BATCH.validate_python(read.pending, from_attributes=True)
    except ValidationError as error:
        raise RequestValidationError(
            [
                {**problem, "loc": ("body", *problem["loc"])}
                for problem in error.errors(include_url=False)
            ]
        ) from None
    return [schemas.wire_event(event) for event in batch.events]


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
    # The body is read by `read_batch` (a fast path for well-formed batches); its
    # schema is `EventBatch`'s, as if it were declared.
    openapi_extra=request_body({"application/json": schemas.EventBatch}),
)
async def post_events(
    read: Annotated[ReadBatch, Depends(read_batch)],
    caller: CurrentUser,
    session: Session,
    runtime: RuntimeDep,
    clock: ClockDep,
) -> schemas.IngestOut:
    settings = runtime.settings
    events = _validated(read)
    try:
        outcome = await ingest(
            session,
            caller,
            events,
            limits=Limits.of(settings),
            now=clock.now(),
            rollups_lock=ROLLUPS_LOCK,
        )
    except EventsInvalid as refused:
        raise RequestValidationError(refused.problems) from refused
    # Under a stream of batches a rollup run nearly always waits already (the insert
    # looked): only otherwise is one asked for.
    if outcome.accepted and settings.analytics_rollup_after_ingest and not outcome.rollups_waiting:
        await defer_rollups(session)
    return schemas.IngestOut(accepted=outcome.accepted, duplicates=outcome.duplicates)
