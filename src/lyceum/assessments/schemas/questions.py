"""Question bank bodies: the kinds of question an instructor writes, and the question
with its key as instructors read it."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from lyceum.assessments.schemas.fields import (
    AcceptedAnswer,
    LongText,
    MatchMode,
    OptionId,
    OptionText,
    Points,
    Prompt,
    Tag,
    Words,
)
from lyceum.kit.validation import RequestModel
from lyceum.models.assessments import Difficulty, QuestionKind


class OptionIn(RequestModel):
    id: OptionId
    text: OptionText


class _QuestionFields(RequestModel):
    prompt: Prompt
    points: Points = 1.0
    tags: list[Tag] = Field(default_factory=list, max_length=20)
    difficulty: Difficulty = Difficulty.medium
    explanation: LongText = Field(
        default="", description="Shown to learners after grading, as the quiz's review allows."
    )


class SingleChoiceIn(_QuestionFields):
    kind: Literal["single_choice"]
    options: list[OptionIn] = Field(min_length=2, max_length=20)
    correct: OptionId = Field(description="The id of the one correct option.")


class MultipleChoiceIn(_QuestionFields):
    kind: Literal["multiple_choice"]
    options: list[OptionIn] = Field(min_length=2, max_length=20)
    correct: list[OptionId] = Field(min_length=1, max_length=20)
    partial_credit: bool = Field(
        default=False,
        description="Each correct option earns its share and each wrong one takes a share "
        "back (never below 0); otherwise all or nothing.",
    )


class TrueFalseIn(_QuestionFields):
    kind: Literal["true_false"]
    correct: bool


class ShortAnswerIn(_QuestionFields):
    kind: Literal["short_answer"]
    match: MatchMode = Field(
        default="exact",
        description="`exact` (whitespace-normalised), `case_insensitive`, `regex` (Python "
        "syntax, case-insensitive, matched against the whole answer; vetted on save: no "
        "backreferences, nested or overlapping repeats) or `numeric` (`number` within "
        "`tolerance`).",
    )
    accepted: list[AcceptedAnswer] = Field(
        default_factory=list, max_length=20, description="Accepted answers or patterns."
    )
    number: float | None = None
    tolerance: float = Field(default=0.0, ge=0, le=1e12)


class EssayQuestionIn(_QuestionFields):
    kind: Literal["essay"]
    reference_answer: LongText = ""
    min_words: Words | None = None
    max_words: Words | None = None


QuestionIn = Annotated[
    SingleChoiceIn | MultipleChoiceIn | TrueFalseIn | ShortAnswerIn | EssayQuestionIn,
    Field(discriminator="kind"),
]


class Option(BaseModel):
    id: str
    text: str


class QuestionKey(BaseModel):
    """What grading needs; which fields are set depends on the kind."""

    correct: str | list[str] | bool | None = None
    partial_credit: bool | None = None
    match: MatchMode | None = None
    accepted: list[str] | None = None
    number: float | None = None
    tolerance: float | None = None
    reference_answer: str | None = None
    min_words: int | None = None
    max_words: int | None = None


class QuestionOut(BaseModel):
    id: uuid.UUID
    course_id: uuid.UUID
    kind: QuestionKind
    prompt: str
    points: float
    tags: list[str]
    difficulty: Difficulty
    explanation: str
    options: list[Option]
    key: QuestionKey
    created_at: dt.datetime
    updated_at: dt.datetime
