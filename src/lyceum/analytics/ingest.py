"""Event ingest: a batch of an app's learning events, checked as a whole (times within
bounds, every object one the caller may see, in one query) and stored in one statement
that skips the client ids the learner sent before. All or nothing: one bad event refuses
the batch, naming each bad field. The rollups are not touched here; a job folds the new
events in (deferred at most once at a time, and every minute anyway)."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.analytics import repository, schemas
from lyceum.analytics.repository import EventRow, Placement
from lyceum.config import Settings
from lyceum.kit.errors import Invalid
from lyceum.models.identity import Role, User

# xAPI statement ids of client events: uuid5 of the learner and the app's event id, so
# a repeat of an event would carry the same statement id.
STATEMENT_NAMESPACE = uuid.UUID("6f1c7a52-4c1e-5b8e-9f3a-2d0c5e7b9a41")


def statement_id(user_id: uuid.UUID, client_event_id: str) -> uuid.UUID:
    return uuid.uuid5(STATEMENT_NAMESPACE, f"{user_id}/{client_event_id}")


_NAMESPACE = STATEMENT_NAMESPACE.bytes


def _statement_text(prefix: bytes, client_event_id: str) -> str:
    """`str(statement_id(...))` without building UUID objects (500 per batch); `prefix`
    is the namespace's bytes and the learner's id with its slash."""
    digest = bytearray(hashlib.sha1(prefix + client_event_id.encode()).digest()[:16])  # noqa: S324 (uuid5)
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    hexed = digest.hex()
    return f"{hexed[:8]}-{hexed[8:12]}-{hexed[12:16]}-{hexed[16:20]}-{hexed[20:]}"


@dataclass(frozen=True)
class Limits:
    """The batch size and the window of acceptable event times (ANALYTICS_* settings)."""

    max_events: int
    max_future_skew: dt.timedelta
    max_age: dt.timedelta

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(
            max_events=settings.analytics_max_batch_events,
            max_future_skew=dt.timedelta(seconds=settings.analytics_max_future_skew_seconds),
            max_age=dt.timedelta(days=settings.analytics_max_event_age_days),
        )


class EventsInvalid(Invalid):
    """A batch refused: `problems` are FastAPI validation errors (loc, msg, type), one per
    offending field, so the answer reads like any other 422."""

    def __init__(self, problems: list[dict[str, Any]]) -> None:
        super().__init__(f"{len(problems)} invalid field(s) in the batch.")
        self.problems = problems


@dataclass(frozen=True)
class Outcome:
    accepted: int
    duplicates: int


def _problem(index: int, field: tuple[str, ...], message: str, kind: str) -> dict[str, Any]:
    return {"loc": ("body", "events", index, *field), "msg": message, "type": kind}


def _wanted(events: Sequence[schemas.ClientEvent]) -> list[tuple[str, uuid.UUID]]:
    """Every object the batch names: each event's object, and the course and lesson it
    says it happened in."""
    wanted: set[tuple[str, uuid.UUID]] = set()
    for event in events:
        if event.object.id is not None:
            wanted.add((event.object.type.value, event.object.id))
        if event.course_id is not None:
            wanted.add(("course", event.course_id))
        if event.lesson_id is not None:
            wanted.add(("lesson", event.lesson_id))
    return sorted(wanted)


def _place(
    index: int,
    event: schemas.ClientEvent,
    visible: dict[tuple[str, uuid.UUID], Placement],
    problems: list[dict[str, Any]],
) -> Placement:
    """The event's course and lesson, from its object where it has them; those the
    event names must be visible and agree with its object."""
    course_id: uuid.UUID | None = None
    lesson_id: uuid.UUID | None = None
    hidden = "no such {}, or not one you may see"
    if event.object.id is not None:
        placed = visible.get((event.object.type.value, event.object.id))
        if placed is None:
            problems.append(
                _problem(
                    index, ("object", "id"), hidden.format(event.object.type.value), "not_visible"
                )
            )
        else:
            course_id, lesson_id = placed.course_id, placed.lesson_id
    if event.course_id is not None:
        if ("course", event.course_id) not in visible:
            problems.append(_problem(index, ("course_id",), hidden.format("course"), "not_visible"))
        elif course_id is not None and course_id != event.course_id:
            problems.append(
                _problem(index, ("course_id",), "is not the course of the object", "mismatch")
            )
        else:
            course_id = event.course_id
    if event.lesson_id is not None:
        lesson = visible.get(("lesson", event.lesson_id))
        if lesson is None:
            problems.append(_problem(index, ("lesson_id",), hidden.format("lesson"), "not_visible"))
        elif (lesson_id is not None and lesson_id != event.lesson_id) or (
            course_id is not None and lesson.course_id != course_id
        ):
            problems.append(
                _problem(index, ("lesson_id",), "is not the lesson of the object", "mismatch")
            )
        else:
            lesson_id, course_id = event.lesson_id, lesson.course_id
    return Placement(course_id, lesson_id)


RESULT_KEYS = ("score", "max_score", "success", "completion", "response")
CONTEXT_KEYS = ("platform", "app_version", "session_id", "query")


def _present(model: object, keys: tuple[str, ...]) -> dict[str, Any]:
    """The fields that are set (a model_dump of 500 events costs more than the SQL)."""
    found = {}
    for key in keys:
        value = getattr(model, key)
        if value is not None:
            found[key] = value
    return found


def _row(prefix: bytes, event: schemas.ClientEvent, placement: Placement) -> EventRow:
    result = _present(event.result, RESULT_KEYS) if event.result else None
    context = _present(event.context, CONTEXT_KEYS) if event.context else None
    return {
        "client_event_id": event.id,
        "event_id": _statement_text(prefix, event.id),
        "occurred_at": event.timestamp.isoformat(),
        "verb": event.verb.value,
        "object_type": event.object.type.value,
        "object_id": None if event.object.id is None else str(event.object.id),
        "course_id": None if placement.course_id is None else str(placement.course_id),
        "lesson_id": None if placement.lesson_id is None else str(placement.lesson_id),
        "page": event.object.page,
        "duration_ms": event.duration_ms,
        "result": result or None,
        "context": context or None,
    }


async def ingest(
    session: AsyncSession,
    caller: User,
    batch: schemas.EventBatch,
    *,
    limits: Limits,
    now: dt.datetime,
) -> Outcome:
    """Check and store `caller`'s batch; raises `EventsInvalid` naming every bad field
    (nothing is stored then)."""
    events = batch.events
    if len(events) > limits.max_events:
        raise EventsInvalid(
            [
                {
                    "loc": ("body", "events"),
                    "msg": f"a batch holds at most {limits.max_events} events",
                    "type": "too_many_events",
                }
            ]
        )
    problems: list[dict[str, Any]] = []
    latest, earliest = now + limits.max_future_skew, now - limits.max_age
    for index, event in enumerate(events):
        if event.timestamp > latest:
            problems.append(
                _problem(
                    index,
                    ("timestamp",),
                    f"is more than {int(limits.max_future_skew.total_seconds())} seconds "
                    "ahead of the server's clock",
                    "too_far_ahead",
                )
            )
        elif event.timestamp < earliest:
            problems.append(
                _problem(
                    index,
                    ("timestamp",),
                    f"is older than {limits.max_age.days} days",
                    "too_old",
                )
            )
    visible = await repository.visible_objects(
        session,
        user_id=caller.id,
        admin=caller.role is Role.admin,
        instructor=caller.role is Role.instructor,
        objects=_wanted(events),
    )
    rows: dict[str, EventRow] = {}
    prefix = _NAMESPACE + f"{caller.id}/".encode()
    for index, event in enumerate(events):
        placement = _place(index, event, visible, problems)
        if event.id not in rows:  # a repeat within the batch counts as a duplicate
            rows[event.id] = _row(prefix, event, placement)
    if problems:
        problems.sort(key=lambda problem: int(problem["loc"][2]))
        raise EventsInvalid(problems)
    accepted = await repository.insert_client_events(session, caller.id, list(rows.values()))
    return Outcome(accepted=accepted, duplicates=len(events) - accepted)
