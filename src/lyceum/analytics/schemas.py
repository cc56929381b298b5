"""Request and response bodies of event ingest (`POST /analytics/events`): a batch of an
app's learning events, each checked field by field (a 422 names the first offending
field of every bad event: `body.events.3.timestamp`)."""

from __future__ import annotations

import enum
import uuid
from typing import Annotated

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

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
