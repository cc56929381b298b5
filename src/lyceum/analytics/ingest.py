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

from lyceum.analytics import repository
from lyceum.analytics.repository import EventRow, Placement
from lyceum.analytics.schemas import WireEvent
from lyceum.config import Settings
from lyceum.kit.errors import Invalid
from lyceum.models.identity import Role, User

# xAPI statement ids of client events: uuid5 of the learner and the app's event id, so
# a repeat of an event would carry the same statement id.
STATEMENT_NAMESPACE = uuid.UUID("6f1c7a52-4c1e-5b8e-9f3a-2d0c5e7b9a41")


def statement_id(user_id: uuid.UUID, client_event_id: str) -> uuid.UUID:
    return uuid.uuid5(STATEMENT_NAMESPACE, f"{user_id}/{client_event_id}")


_NAMESPACE = STATEMENT_NAMESPACE.bytes


# The uuid5 version nibble is "5"; the variant's top two bits are 10 (RFC 4122).
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def _statement_text(prefix: bytes, client_event_id: str) -> str:
    """`str(statement_id(...))` without building UUID objects (500 per batch); `prefix`
    is the namespace's bytes and the learner's id with its slash."""
    hexed = hashlib.sha1(prefix + client_event_id.encode()).hexdigest()  # noqa: S324 (uuid5)
    return (
        f"{hexed[:8]}-{hexed[8:12]}-5{hexed[13:16]}-{_VARIANT[hexed[16]]}{hexed[17:20]}-"
        f"{hexed[20:32]}"
    )


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
    rollups_waiting: bool  # a rollup run is asked for already


def _problem(index: int, field: tuple[str, ...], message: str, kind: str) -> dict[str, Any]:
    return {"loc": ("body", "events", index, *field), "msg": message, "type": kind}


def _wanted(events: Sequence[WireEvent]) -> list[tuple[str, str]]:
    """Every object the batch names: each event's object, and the course and lesson it
    says it happened in."""
    wanted: set[tuple[str, str]] = set()
    for event in events:
        target = event["object"]
        if "id" in target:
            wanted.add((target["type"], target["id"]))
        if "course_id" in event:
            wanted.add(("course", event["course_id"]))
        if "lesson_id" in event:
            wanted.add(("lesson", event["lesson_id"]))
    return sorted(wanted)


_HIDDEN = "no such {}, or not one you may see"


def _place(
    index: int,
    event: WireEvent,
    visible: dict[tuple[str, str], Placement],
    problems: list[dict[str, Any]],
) -> tuple[str | None, str | None]:
    """The event's course and lesson, from its object where it has them; those the
    event names must be visible and agree with its object."""
    course_id: str | None = None
    lesson_id: str | None = None
    target = event["object"]
    if "id" in target:
        placed = visible.get((target["type"], target["id"]))
        if placed is None:
            problems.append(
                _problem(index, ("object", "id"), _HIDDEN.format(target["type"]), "not_visible")
            )
        else:
            course_id, lesson_id = placed.course_id, placed.lesson_id
    named = event.get("course_id")
    if named is not None:
        if ("course", named) not in visible:
            problems.append(
                _problem(index, ("course_id",), _HIDDEN.format("course"), "not_visible")
            )
        elif course_id is not None and course_id != named:
            problems.append(
                _problem(index, ("course_id",), "is not the course of the object", "mismatch")
            )
        else:
            course_id = named
    named = event.get("lesson_id")
    if named is not None:
        lesson = visible.get(("lesson", named))
        if lesson is None:
            problems.append(
                _problem(index, ("lesson_id",), _HIDDEN.format("lesson"), "not_visible")
            )
        elif (lesson_id is not None and lesson_id != named) or (
            course_id is not None and lesson.course_id != course_id
        ):
            problems.append(
                _problem(index, ("lesson_id",), "is not the lesson of the object", "mismatch")
            )
        else:
            lesson_id, course_id = named, lesson.course_id
    return course_id, lesson_id


def _row(prefix: bytes, event: WireEvent, course_id: str | None, lesson_id: str | None) -> EventRow:
    """The event as the insert reads it (a dict `orjson` writes in one pass; the time
    as RFC 3339 text, an empty result or context as none)."""
    target = event["object"]
    return {
        "client_event_id": event["id"],
        "event_id": _statement_text(prefix, event["id"]),
        "occurred_at": event["timestamp"],
        "verb": event["verb"],
        "object_type": target["type"],
        "object_id": target.get("id"),
        "course_id": course_id,
        "lesson_id": lesson_id,
        "page": target.get("page"),
        "duration_ms": event.get("duration_ms"),
        "result": event.get("result") or None,
        "context": event.get("context") or None,
    }


async def ingest(
    session: AsyncSession,
    caller: User,
    events: Sequence[WireEvent],
    *,
    limits: Limits,
    now: dt.datetime,
    rollups_lock: str,
) -> Outcome:
    """Check and store `caller`'s batch (its events as `schemas.read_wire` or
    `schemas.wire_event` give them); raises `EventsInvalid` naming every bad field
    (nothing is stored then). Whether a rollup run (a job of `rollups_lock`) waits
    already is looked up in the same statement as the insert."""
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
        occurred = event["timestamp"]
        if occurred > latest:
            problems.append(
                _problem(
                    index,
                    ("timestamp",),
                    f"is more than {int(limits.max_future_skew.total_seconds())} seconds "
                    "ahead of the server's clock",
                    "too_far_ahead",
                )
            )
        elif occurred < earliest:
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
        course_id, lesson_id = _place(index, event, visible, problems)
        if event["id"] not in rows:  # a repeat within the batch counts as a duplicate
            rows[event["id"]] = _row(prefix, event, course_id, lesson_id)
    if problems:
        problems.sort(key=lambda problem: int(problem["loc"][2]))
        raise EventsInvalid(problems)
    stored = await repository.insert_client_events(
        session, caller.id, list(rows.values()), queueing_lock=rollups_lock
    )
    return Outcome(
        accepted=stored.events,
        duplicates=len(events) - stored.events,
        rollups_waiting=stored.job_waiting,
    )
