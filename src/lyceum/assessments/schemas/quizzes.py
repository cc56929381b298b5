"""Quiz bodies: a quiz's settings and composition (sections of fixed or drawn
questions), for instructors, and its settings only for learners."""

from __future__ import annotations

import datetime as dt
import uuid

from pydantic import BaseModel, Field

from lyceum.assessments.schemas.fields import Attempts, LongText, Seconds, Tag
from lyceum.kit.validation import IsoDateTime, JsonInt, RequestModel, VisibleTitle
from lyceum.models.assessments import ReviewPolicy


class SectionIn(RequestModel):
    """A fixed question (`question_id`), or `draw` questions picked at random from the
    bank's questions tagged `tag`. Exactly one of `question_id` and `tag`."""

    question_id: uuid.UUID | None = None
    tag: Tag | None = None
    draw: JsonInt = Field(default=1, ge=1, le=100)


class _QuizFields(RequestModel):
    description: LongText = ""
    module_id: uuid.UUID | None = None
    lesson_id: uuid.UUID | None = None
    time_limit_seconds: Seconds | None = None
    max_attempts: Attempts | None = Field(default=None, description="Unset: unlimited.")
    pass_percent: float = Field(default=60.0, ge=0, le=100)
    shuffle_questions: bool = False
    shuffle_options: bool = False
    review_policy: ReviewPolicy = ReviewPolicy.answers_after_submit
    available_from: IsoDateTime | None = None
    available_until: IsoDateTime | None = Field(
        default=None, description="No attempt starts after it, and open attempts end at it."
    )
    due_at: IsoDateTime | None = Field(
        default=None,
        description="Attempts submitted later are marked late; `answers_after_due` reveals "
        "answers after it.",
    )
    required: bool = Field(default=False, description="Passing it is needed to complete.")
    weight: float = Field(default=1.0, ge=0, le=1000, description="Weight in the gradebook.")
    published: bool = False
    sections: list[SectionIn] = Field(default_factory=list, max_length=100)


class QuizCreate(_QuizFields):
    title: VisibleTitle


class QuizUpdate(RequestModel):
    """Only the fields sent change; `sections`, when sent, replaces the composition."""

    title: VisibleTitle | None = None
    description: LongText | None = None
    module_id: uuid.UUID | None = None
    lesson_id: uuid.UUID | None = None
    time_limit_seconds: Seconds | None = None
    max_attempts: Attempts | None = None
    pass_percent: float | None = Field(default=None, ge=0, le=100)
    shuffle_questions: bool | None = None
    shuffle_options: bool | None = None
    review_policy: ReviewPolicy | None = None
    available_from: IsoDateTime | None = None
    available_until: IsoDateTime | None = None
    due_at: IsoDateTime | None = None
    required: bool | None = None
    weight: float | None = Field(default=None, ge=0, le=1000)
    published: bool | None = None
    sections: list[SectionIn] | None = Field(default=None, max_length=100)


class SectionOut(BaseModel):
    position: int
    question_id: uuid.UUID | None
    tag: str | None
    draw: int


class QuizInfo(BaseModel):
    """A quiz as its learners see it: settings, never its questions."""

    id: uuid.UUID
    course_id: uuid.UUID
    module_id: uuid.UUID | None
    lesson_id: uuid.UUID | None
    title: str
    description: str
    time_limit_seconds: int | None
    max_attempts: int | None
    pass_percent: float
    review_policy: ReviewPolicy
    available_from: dt.datetime | None
    available_until: dt.datetime | None
    due_at: dt.datetime | None
    required: bool
    weight: float
    published: bool
    question_count: int


class QuizOut(QuizInfo):
    """A quiz as its instructors see it, with its composition."""

    shuffle_questions: bool
    shuffle_options: bool
    sections: list[SectionOut]
    created_at: dt.datetime
    updated_at: dt.datetime
