"""Request and response bodies of event ingest (`POST /analytics/events`): a batch of an
app's learning events, each checked field by field (a 422 names the first offending
field of every bad event: `body.events.3.timestamp`)."""

from __future__ import annotations

import enum
import uuid
from typing import Annotated, Any, Literal, NotRequired

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
    with_config,
)
from pydantic_core import PydanticCustomError
from typing_extensions import TypedDict  # pydantic reads only this one before 3.12

from lyceum.analytics.vocabulary import CLIENT_VERBS, ObjectType, Verb
from lyceum.kit.validation import IsoDateTime, SafeStr, integral_float


class Strict(BaseModel):
    """Unknown fields refused, numbers finite. Lighter than `kit.validation.RequestModel`
    (whose catch-all validator walks every field of every event): the free text fields
    are `SafeStr` (no NUL, no lone surrogate), the others visible ASCII by pattern."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


# The kinds of refusal no JSON schema can state (whether an object exists and is the
# caller's to see, a time against the server's clock, rules between fields): a schema-
# valid batch may still meet them (tests/test_openapi_contract.py knows them).
EVENT_RULE = "event_rule"
RULES_BEYOND_THE_SCHEMA = frozenset(
    {EVENT_RULE, "not_visible", "mismatch", "too_old", "too_far_ahead", "too_many_events"}
)


def _rule(message: str) -> PydanticCustomError:
    return PydanticCustomError(EVENT_RULE, message)


# The most events one batch may carry (ANALYTICS_MAX_BATCH_EVENTS may lower it).
MAX_BATCH_EVENTS = 500
MAX_DURATION_MS = 24 * 60 * 60 * 1000
MAX_RESPONSE_CHARS = 1000


class ClientVerb(enum.StrEnum):
    """What an app may say a learner did (`vocabulary.CLIENT_VERBS`); the other verbs
    are the platform's own."""

    viewed = Verb.viewed.value
    started = Verb.started.value
    paused = Verb.paused.value
    resumed = Verb.resumed.value
    answered = Verb.answered.value
    searched = Verb.searched.value
    downloaded = Verb.downloaded.value


class ClientObjectType(enum.StrEnum):
    """What an app's event may be about."""

    course = ObjectType.course.value
    lesson = ObjectType.lesson.value
    file_page = ObjectType.file_page.value
    quiz = ObjectType.quiz.value
    quiz_item = ObjectType.quiz_item.value
    assignment = ObjectType.assignment.value
    catalog = ObjectType.catalog.value


assert {verb.value for verb in ClientVerb} == {verb.value for verb in CLIENT_VERBS}

# The objects each verb may name; what is not listed is refused (422 naming object.type).
_ANY_MATERIAL = frozenset(
    {
        ClientObjectType.course,
        ClientObjectType.lesson,
        ClientObjectType.file_page,
        ClientObjectType.quiz,
        ClientObjectType.quiz_item,
        ClientObjectType.assignment,
    }
)
OBJECTS_OF_VERB: dict[ClientVerb, frozenset[ClientObjectType]] = {
    ClientVerb.viewed: _ANY_MATERIAL,
    ClientVerb.started: _ANY_MATERIAL,
    ClientVerb.paused: _ANY_MATERIAL,
    ClientVerb.resumed: _ANY_MATERIAL,
    ClientVerb.answered: frozenset({ClientObjectType.quiz_item}),
    ClientVerb.searched: frozenset({ClientObjectType.catalog, ClientObjectType.course}),
    ClientVerb.downloaded: frozenset({ClientObjectType.file_page}),
}

ClientEventId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=r"^[!-~]+$",
        description="The app's own id of the event, 1-64 visible ASCII characters, unique "
        "per learner: an event whose id the learner sent before (in this batch or an "
        "earlier one) is ignored, so a batch can be retried safely.",
        examples=["01JEX3Q4M2N7V8ZQ6T1R5C9B0D"],
    ),
]
Score = Annotated[float, Field(ge=-1e9, le=1e9, strict=True), BeforeValidator(integral_float)]
MaxScore = Annotated[float, Field(ge=0, le=1e9, strict=True), BeforeValidator(integral_float)]
DurationMs = Annotated[
    int, Field(ge=0, le=MAX_DURATION_MS, strict=True), BeforeValidator(integral_float)
]
Page = Annotated[int, Field(ge=1, le=100_000, strict=True), BeforeValidator(integral_float)]


class EventObject(Strict):
    """What the event is about: a course, a lesson, a page of a course file, a quiz, a
    quiz item (a question of the course's bank), an assignment, or the catalog (no id)."""

    type: ClientObjectType
    id: uuid.UUID | None = Field(
        default=None,
        validate_default=True,
        description="The object's id; required for all but `catalog`, which has none.",
    )
    page: Page | None = Field(
        default=None, description="The page of a `file_page` (from 1); other objects have none."
    )

    @field_validator("id")
    @classmethod
    def _id_fits_type(cls, value: uuid.UUID | None, info: ValidationInfo) -> uuid.UUID | None:
        kind = info.data.get("type")
        if kind is ClientObjectType.catalog and value is not None:
            raise _rule("the catalog has no id")
        if kind is not None and kind is not ClientObjectType.catalog and value is None:
            raise _rule(f"a {kind.value} needs its id")
        return value

    @field_validator("page")
    @classmethod
    def _page_of_file(cls, value: int | None, info: ValidationInfo) -> int | None:
        kind = info.data.get("type")
        if value is not None and kind is not None and kind is not ClientObjectType.file_page:
            raise _rule("only a file_page has a page")
        return value


class EventResult(Strict):
    """The outcome, where the verb has one (an answered quiz item, a finished video)."""

    score: Score | None = None
    max_score: MaxScore | None = None
    success: StrictBool | None = None
    completion: StrictBool | None = None
    response: SafeStr | None = Field(
        default=None,
        max_length=MAX_RESPONSE_CHARS,
        description=f"The learner's answer as text, at most {MAX_RESPONSE_CHARS} characters.",
    )

    @model_validator(mode="after")
    def _score_within(self) -> EventResult:
        if self.score is not None and self.max_score is not None and self.score > self.max_score:
            raise _rule("score must not be more than max_score")
        return self


class EventContext(Strict):
    """What the app says about itself: these documented keys only."""

    platform: str | None = Field(default=None, max_length=32, pattern=r"^[!-~]+$", examples=["ios"])
    app_version: str | None = Field(
        default=None, max_length=32, pattern=r"^[!-~]+$", examples=["3.2.1"]
    )
    session_id: str | None = Field(default=None, max_length=64, pattern=r"^[!-~]+$")
    query: SafeStr | None = Field(
        default=None, max_length=200, description="The search terms of a `searched` event."
    )


class ClientEvent(Strict):
    """One learning event. The actor is always the caller (the token's user): an
    `actor` or `user_id` field is refused (422), so nobody posts for someone else."""

    id: ClientEventId
    verb: ClientVerb
    object: EventObject
    course_id: uuid.UUID | None = Field(
        default=None,
        description="The course it happened in; derived from the object when omitted "
        "(and must match it when given).",
    )
    lesson_id: uuid.UUID | None = Field(
        default=None,
        description="The lesson it happened in; derived from the object where it has one.",
    )
    timestamp: IsoDateTime = Field(
        description="When it happened, with its UTC offset; not more than "
        "ANALYTICS_MAX_FUTURE_SKEW_SECONDS ahead of the server's clock, nor older than "
        "ANALYTICS_MAX_EVENT_AGE_DAYS."
    )
    duration_ms: DurationMs | None = Field(
        default=None, description="Time spent, in milliseconds (at most 24 hours)."
    )
    result: EventResult | None = None
    context: EventContext | None = None

    @field_validator("object")
    @classmethod
    def _verb_fits_object(cls, value: EventObject, info: ValidationInfo) -> EventObject:
        verb = info.data.get("verb")
        if verb is not None and value.type not in OBJECTS_OF_VERB[verb]:
            names = ", ".join(sorted(kind.value for kind in OBJECTS_OF_VERB[verb]))
            raise _rule(f"`{verb.value}` takes an object of type {names}")
        return value


class EventBatch(Strict):
    events: list[ClientEvent] = Field(
        min_length=1,
        max_length=MAX_BATCH_EVENTS,
        description=f"1 to {MAX_BATCH_EVENTS} events (ANALYTICS_MAX_BATCH_EVENTS); "
        "all are stored or none is.",
    )


class IngestOut(BaseModel):
    accepted: int = Field(description="Events stored by this request.")
    duplicates: int = Field(
        description="Events ignored because the learner sent their id before (in this "
        "batch or an earlier one)."
    )


# The fast path --------------------------------------------------------------------------
#
# Most batches are well formed, and building three models per event (with their Python
# validators) cost more than everything else the route does. A well-formed batch is read
# straight from the request's bytes into plain dicts by the lean `WireBatch` below (all
# in pydantic-core), and the rules between fields are checked by `wire_problem`. The
# lean schema accepts a subset of what `EventBatch` accepts (ids in canonical lowercase
# form, whole numbers written as integers, no explicit nulls) and gives the same values:
# anything it refuses is read again by `EventBatch`, which accepts it or names every bad
# field as before. tests/analytics/test_wire.py holds the two to that.

UUID_TEXT = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
_VISIBLE_ASCII = r"^[!-~]+$"
_NO_NUL = r"^[^\x00]*$"

_WIRE = ConfigDict(extra="forbid", allow_inf_nan=False)
UuidText = Annotated[str, Field(pattern=UUID_TEXT, strict=True)]
_WireInt = Annotated[int, Field(strict=True)]


@with_config(_WIRE)
class WireObject(TypedDict):
    type: Literal["course", "lesson", "file_page", "quiz", "quiz_item", "assignment", "catalog"]
    id: NotRequired[UuidText]
    page: NotRequired[Annotated[_WireInt, Field(ge=1, le=100_000)]]


@with_config(_WIRE)
class WireResult(TypedDict):
    score: NotRequired[Annotated[float, Field(ge=-1e9, le=1e9, strict=True)]]
    max_score: NotRequired[Annotated[float, Field(ge=0, le=1e9, strict=True)]]
    success: NotRequired[StrictBool]
    completion: NotRequired[StrictBool]
    response: NotRequired[
        Annotated[str, Field(max_length=MAX_RESPONSE_CHARS, pattern=_NO_NUL, strict=True)]
    ]


@with_config(_WIRE)
class WireContext(TypedDict):
    platform: NotRequired[Annotated[str, Field(max_length=32, pattern=_VISIBLE_ASCII)]]
    app_version: NotRequired[Annotated[str, Field(max_length=32, pattern=_VISIBLE_ASCII)]]
    session_id: NotRequired[Annotated[str, Field(max_length=64, pattern=_VISIBLE_ASCII)]]
    query: NotRequired[Annotated[str, Field(max_length=200, pattern=_NO_NUL)]]


@with_config(_WIRE)
class WireEvent(TypedDict):
    id: Annotated[str, Field(min_length=1, max_length=64, pattern=_VISIBLE_ASCII)]
    verb: Literal["viewed", "started", "paused", "resumed", "answered", "searched", "downloaded"]
    object: WireObject
    course_id: NotRequired[UuidText]
    lesson_id: NotRequired[UuidText]
    timestamp: IsoDateTime
    duration_ms: NotRequired[Annotated[_WireInt, Field(ge=0, le=MAX_DURATION_MS)]]
    result: NotRequired[WireResult]
    context: NotRequired[WireContext]


@with_config(_WIRE)
class WireBatch(TypedDict):
    events: Annotated[list[WireEvent], Field(min_length=1, max_length=MAX_BATCH_EVENTS)]


WIRE_BATCH: TypeAdapter[WireBatch] = TypeAdapter(WireBatch)
_OBJECTS_OF_VERB = {
    verb.value: frozenset(kind.value for kind in kinds) for verb, kinds in OBJECTS_OF_VERB.items()
}


def wire_problem(event: WireEvent) -> bool:
    """Whether a lean-read event breaks a rule between its fields (those `EventBatch`'s
    validators state): then the batch is read again by `EventBatch` to name it."""
    target = event["object"]
    kind = target["type"]
    if kind not in _OBJECTS_OF_VERB[event["verb"]]:
        return True
    if ("id" in target) == (kind == "catalog"):
        return True
    if "page" in target and kind != "file_page":
        return True
    result = event.get("result")
    if result is not None and "score" in result and "max_score" in result:
        return result["score"] > result["max_score"]
    return False


def read_wire(body: bytes) -> list[WireEvent] | None:
    """The events of a well-formed batch, read by the fast path; None when the lean
    schema or a rule between fields refuses the batch (`EventBatch` then reads it)."""
    try:
        events = WIRE_BATCH.validate_json(body)["events"]
    except ValidationError:
        return None
    for event in events:
        if wire_problem(event):
            return None
    return events


def wire_event(event: ClientEvent) -> WireEvent:
    """An event read by `EventBatch`, in the form the fast path reads it."""
    target: dict[str, Any] = {"type": event.object.type.value}
    if event.object.id is not None:
        target["id"] = str(event.object.id)
    if event.object.page is not None:
        target["page"] = event.object.page
    found: dict[str, Any] = {
        "id": event.id,
        "verb": event.verb.value,
        "object": target,
        "timestamp": event.timestamp,
    }
    if event.course_id is not None:
        found["course_id"] = str(event.course_id)
    if event.lesson_id is not None:
        found["lesson_id"] = str(event.lesson_id)
    if event.duration_ms is not None:
        found["duration_ms"] = event.duration_ms
    for name, part in (("result", event.result), ("context", event.context)):
        if part is not None:
            found[name] = part.model_dump(exclude_none=True)
    return found  # type: ignore[return-value]
