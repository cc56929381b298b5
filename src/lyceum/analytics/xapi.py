"""One learning event (`analytics_events` row) as an xAPI 1.0.3 statement
(adlnet/xAPI-Spec, xAPI-Data.md), the shape both `GET /analytics/xapi/statements` and
the forwarding job hand out.

- `id` is the event's `event_id`: stable, so a statement sent twice is one statement.
- `actor` is an Agent identified by an `account` on this deployment (`homePage` the
  public base URL, `name` the user's id), never by `mbox`: an email address is personal
  data an external store would keep forever, and it can change; the spec asks for an
  opaque account name when identity must not leak (Data 2.4.2.4).
- `verb` and `object.definition.type` come from `analytics.vocabulary` (ADL's IRIs
  where it has them); `object` is an Activity whose id is an IRI under the public base
  URL (`/courses/{id}`, `/lessons/{id}`, `/files/{id}#page=N`, `/quizzes/{id}`,
  `/questions/{id}` for a quiz item, `/assignments/{id}`, `/chat/rooms/{id}`,
  `/courses` for the catalog).
- `result` carries only what the event has (but a learner reading their own
  passed/failed statement of a quiz whose review policy is "none" gets neither its
  score nor its success, as the quiz's own attempt view hides them): a score (`raw`, `min` 0 and `max` with
  `scaled` = raw/max when the maximum is known), `success`, `completion`, `response`,
  `duration` in ISO 8601 (`PT12.34S`, 0.01 s precision, Data 4.6), and for a tutor
  question whether the material answered it (an extension).
- `context.contextActivities`: `parent` the lesson the object sits in (or the course),
  `grouping` the course when the parent is a lesson; `platform` "Lyceum"; what the app
  said about itself (`context` column: session id, app version, search terms, ...) and
  the event's source as `extensions` under `{base}/xapi/extensions/...`.
- `timestamp` is when it happened, `stored` when Lyceum received it (UTC, ms).
- `version` is "1.0.0": the spec lets a statement's provider set only that value
  (Data 2.4.10: "If Learning Record Providers set the Statement version, they MUST set
  it to 1.0.0"), and the 1.0.x patch followed (1.0.3) travels in the
  `X-Experience-API-Version` header.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Mapping
from typing import Any, Protocol

from lyceum.analytics.vocabulary import ACTIVITY_TYPES, VERBS, ObjectType, Verb

XAPI_VERSION = "1.0.3"  # the X-Experience-API-Version header
STATEMENT_VERSION = "1.0.0"  # a statement's own `version` (Data 2.4.10)
PLATFORM = "Lyceum"
DISPLAY_LANGUAGE = "en-US"
# Context keys an app may send that become extensions (the others are left out: an
# extension key is an IRI this deployment answers for, so only documented ones).
CONTEXT_EXTENSIONS = ("platform", "app_version", "session_id", "query", "device", "locale")
_KEY = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
# Where each kind of object lives under the public base URL (its activity IRI).
COLLECTIONS: dict[ObjectType, str] = {
    ObjectType.course: "courses",
    ObjectType.lesson: "lessons",
    ObjectType.file_page: "files",
    ObjectType.quiz: "quizzes",
    ObjectType.quiz_item: "questions",
    ObjectType.assignment: "assignments",
    ObjectType.chat_room: "chat/rooms",
    ObjectType.catalog: "courses",
}


class EventRow(Protocol):
    """The columns of an `analytics_events` row a statement is made of."""

    @property
    def event_id(self) -> uuid.UUID: ...
    @property
    def user_id(self) -> uuid.UUID: ...
    @property
    def course_id(self) -> uuid.UUID | None: ...
    @property
    def lesson_id(self) -> uuid.UUID | None: ...
    @property
    def source(self) -> str: ...
    @property
    def verb(self) -> str: ...
    @property
    def object_type(self) -> str: ...
    @property
    def object_id(self) -> uuid.UUID | None: ...
    @property
    def page(self) -> int | None: ...
    @property
    def duration_ms(self) -> int | None: ...
    @property
    def result(self) -> dict[str, Any] | None: ...
    @property
    def context(self) -> dict[str, Any] | None: ...
    @property
    def occurred_at(self) -> dt.datetime: ...
    @property
    def received_at(self) -> dt.datetime: ...


def timestamp(moment: dt.datetime) -> str:
    """UTC, millisecond precision, `Z` (Data 4.5)."""
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def duration(milliseconds: int) -> str:
    """An ISO 8601 duration in seconds, to 0.01 s (Data 4.6): 12345 ms is `PT12.34S`."""
    centiseconds = max(milliseconds, 0) // 10
    seconds, fraction = divmod(centiseconds, 100)
    if fraction == 0:
        return f"PT{seconds}S"
    return f"PT{seconds}.{fraction:02d}".rstrip("0") + "S"


def extension_iri(base: str, name: str) -> str:
    return f"{base}/xapi/extensions/{name.replace('_', '-')}"


def activity_iri(base: str, object_type: str, object_id: uuid.UUID | None) -> str:
    """The IRI of one of Lyceum's activities; the collection's when the id is unknown."""
    kind = _object_type(object_type)
    collection = COLLECTIONS[kind] if kind is not None else "activities"
    if object_id is None or object_type == ObjectType.catalog:
        return f"{base}/{collection}"
    return f"{base}/{collection}/{object_id}"


def _object_type(value: str) -> ObjectType | None:
    try:
        return ObjectType(value)
    except ValueError:
        return None


def _activity(base: str, object_type: str, object_id: uuid.UUID | None) -> dict[str, Any]:
    activity: dict[str, Any] = {
        "objectType": "Activity",
        "id": activity_iri(base, object_type, object_id),
    }
    known = _object_type(object_type)
    if known is not None:
        activity["definition"] = {"type": ACTIVITY_TYPES[known]}
    return activity


def _verb(base: str, name: str) -> dict[str, Any]:
    try:
        info = VERBS[Verb(name)]
    except ValueError:  # a verb added to the store before this mapping knows it
        return {"id": f"{base}/xapi/verbs/{name}", "display": {DISPLAY_LANGUAGE: name}}
    return {"id": info.iri, "display": {DISPLAY_LANGUAGE: info.display}}


def _object(base: str, event: EventRow) -> dict[str, Any]:
    kind = _object_type(event.object_type)
    object_id = event.object_id
    if object_id is None and kind is ObjectType.course:
        object_id = event.course_id
    if object_id is None and kind is ObjectType.lesson:
        object_id = event.lesson_id
    activity = _activity(base, event.object_type, object_id)
    if kind is ObjectType.file_page and event.page is not None and object_id is not None:
        activity["id"] += f"#page={event.page}"
    return activity


def _number(value: Any) -> float | int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value


def _score(result: Mapping[str, Any]) -> dict[str, Any] | None:
    raw = _number(result.get("score"))
    if raw is None:
        return None
    score: dict[str, Any] = {"raw": raw}
    top = _number(result.get("max_score"))
    if top is not None and top > 0 and 0 <= raw <= top:
        score.update(min=0, max=top, scaled=round(raw / top, 4))
    return score


# Verbs whose score and success a quiz with review policy "none" keeps from its learner.
GRADED_VERBS = frozenset({Verb.passed.value, Verb.failed.value})


def _result(base: str, event: EventRow, *, hide_score: bool) -> dict[str, Any] | None:
    stored = event.result or {}
    result: dict[str, Any] = {}
    hidden = hide_score and event.verb in GRADED_VERBS
    score = None if hidden else _score(stored)
    if score is not None:
        result["score"] = score
    for key in ("success", "completion"):
        if key == "success" and hidden:
            continue
        if isinstance(stored.get(key), bool):
            result[key] = stored[key]
    # A tutor question stays private (README: tutor conversations are private), even
    # where an older `asked` row still holds its text.
    if isinstance(stored.get("response"), str) and event.verb != Verb.asked.value:
        result["response"] = stored["response"]
    if event.duration_ms is not None:
        result["duration"] = duration(event.duration_ms)
    if isinstance(stored.get("answered"), bool):
        result["extensions"] = {extension_iri(base, "answered_from_material"): stored["answered"]}
    return result or None


def _context(base: str, event: EventRow) -> dict[str, Any]:
    course = (
        _activity(base, ObjectType.course, event.course_id) if event.course_id is not None else None
    )
    lesson = (
        _activity(base, ObjectType.lesson, event.lesson_id) if event.lesson_id is not None else None
    )
    activities: dict[str, list[dict[str, Any]]] = {}
    kind = _object_type(event.object_type)
    if lesson is not None and kind is not ObjectType.lesson:
        activities["parent"] = [lesson]
        if course is not None:
            activities["grouping"] = [course]
    elif course is not None and kind is not ObjectType.course:
        activities["parent"] = [course]
    extensions: dict[str, Any] = {extension_iri(base, "source"): event.source}
    for key, value in (event.context or {}).items():
        if key in CONTEXT_EXTENSIONS and _KEY.match(key) and value is not None:
            extensions[extension_iri(base, key)] = value
    context: dict[str, Any] = {"platform": PLATFORM, "extensions": extensions}
    if activities:
        context["contextActivities"] = activities
    return context


def statement(
    event: EventRow, *, base_url: str, stored: bool = True, hide_score: bool = False
) -> dict[str, Any]:
    """The xAPI statement of `event`; `base_url` is the deployment's public base URL
    (`Settings.base_url()`). `stored=False` leaves `stored` out (when sending to an LRS,
    which sets it: Data 2.4.8). `hide_score` leaves a passed/failed statement's score
    and success out (a learner reading a quiz whose review policy is "none", which
    shows its learners neither)."""
    base = base_url.rstrip("/")
    body: dict[str, Any] = {
        "id": str(event.event_id),
        "actor": {
            "objectType": "Agent",
            "account": {"homePage": base, "name": str(event.user_id)},
        },
        "verb": _verb(base, event.verb),
        "object": _object(base, event),
    }
    result = _result(base, event, hide_score=hide_score)
    if result is not None:
        body["result"] = result
    body["context"] = _context(base, event)
    body["timestamp"] = timestamp(event.occurred_at)
    if stored:
        body["stored"] = timestamp(event.received_at)
    body["version"] = STATEMENT_VERSION
    return body


__all__ = [
    "PLATFORM",
    "STATEMENT_VERSION",
    "XAPI_VERSION",
    "EventRow",
    "activity_iri",
    "duration",
    "extension_iri",
    "statement",
    "timestamp",
]
