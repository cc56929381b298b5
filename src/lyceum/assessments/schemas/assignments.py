"""Essay assignment bodies: the prompt with its rubric; the reference answer and key
terms only in the instructors' view."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from lyceum.assessments.schemas.fields import KeyTerm, LongText, OptionId, Prompt, ShortText, Words
from lyceum.kit.validation import VISIBLE_TEXT, IsoDateTime, RequestModel, VisibleTitle
from lyceum.models.assessments import LatePolicy


class RubricLevelIn(RequestModel):
    title: Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=VISIBLE_TEXT)]
    descriptor: ShortText = ""
    points: float = Field(ge=0, le=1000)


class CriterionIn(RequestModel):
    id: OptionId
    title: VisibleTitle
    description: ShortText = ""
    key_terms: list[KeyTerm] = Field(
        default_factory=list,
        max_length=30,
        description="Terms a good answer uses; the offline estimate counts them.",
    )
    levels: list[RubricLevelIn] = Field(
        min_length=2, max_length=10, description="From lowest to highest, points ascending."
    )


class RubricIn(RequestModel):
    criteria: list[CriterionIn] = Field(min_length=1, max_length=20)


class _AssignmentFields(RequestModel):
    module_id: uuid.UUID | None = None
    lesson_id: uuid.UUID | None = None
    reference_answer: LongText = ""
    min_words: Words | None = None
    max_words: Words | None = None
    due_at: IsoDateTime | None = None
    late_policy: LatePolicy = LatePolicy.refuse
    late_penalty_percent_per_day: float = Field(default=0.0, ge=0, le=100)
    auto_release: bool = Field(
        default=False,
        description="Release AI scores without review (offline estimates always wait).",
    )
    required: bool = False
    weight: float = Field(default=1.0, ge=0, le=1000)
    pass_percent: float = Field(default=60.0, ge=0, le=100)
    published: bool = False


class AssignmentCreate(_AssignmentFields):
    title: VisibleTitle
    prompt: Prompt
    rubric: RubricIn
    points: float = Field(ge=0.01, le=10_000, description="The sum of the criteria's top levels.")


class AssignmentUpdate(RequestModel):
    title: VisibleTitle | None = None
    prompt: Prompt | None = None
    rubric: RubricIn | None = None
    points: float | None = Field(default=None, ge=0.01, le=10_000)
    module_id: uuid.UUID | None = None
    lesson_id: uuid.UUID | None = None
    reference_answer: LongText | None = None
    min_words: Words | None = None
    max_words: Words | None = None
    due_at: IsoDateTime | None = None
    late_policy: LatePolicy | None = None
    late_penalty_percent_per_day: float | None = Field(default=None, ge=0, le=100)
    auto_release: bool | None = None
    required: bool | None = None
    weight: float | None = Field(default=None, ge=0, le=1000)
    pass_percent: float | None = Field(default=None, ge=0, le=100)
    published: bool | None = None


class RubricLevel(BaseModel):
    title: str
    descriptor: str
    points: float


class RubricCriterion(BaseModel):
    id: str
    title: str
    description: str
    levels: list[RubricLevel]


class RubricCriterionOut(RubricCriterion):
    key_terms: list[str]


class _AssignmentView(BaseModel):
    id: uuid.UUID
    course_id: uuid.UUID
    module_id: uuid.UUID | None
    lesson_id: uuid.UUID | None
    title: str
    prompt: str
    points: float
    min_words: int | None
    max_words: int | None
    due_at: dt.datetime | None
    late_policy: LatePolicy
    late_penalty_percent_per_day: float
    required: bool
    weight: float
    pass_percent: float
    published: bool


class AssignmentInfo(_AssignmentView):
    """An assignment as its learners see it: prompt and rubric, not the reference
    answer or the rubric's key terms."""

    rubric: list[RubricCriterion]


class AssignmentOut(_AssignmentView):
    rubric: list[RubricCriterionOut]
    reference_answer: str
    auto_release: bool
    created_at: dt.datetime
    updated_at: dt.datetime
