"""Attempt bodies: a learner's answers, the sheet they answer on (no keys), the
result the review policy allows, and an instructor's review and grades."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from lyceum.assessments.schemas.fields import OptionId, ShortText
from lyceum.assessments.schemas.questions import Option
from lyceum.kit.validation import NO_NUL, RequestModel
from lyceum.models.assessments import AttemptStatus, QuestionKind, ReviewPolicy


class AnswerIn(RequestModel):
    """One answer: `choice` (single choice), `choices` (multiple choice), `value`
    (true/false) or `text` (short answer, essay), as the question's kind needs."""

    question_id: uuid.UUID
    choice: OptionId | None = None
    choices: list[OptionId] | None = Field(default=None, max_length=20)
    value: bool | None = None
    text: Annotated[str, StringConstraints(max_length=50_000, pattern=NO_NUL)] | None = None


class AnswersIn(RequestModel):
    answers: list[AnswerIn] = Field(max_length=200)


class SubmitIn(RequestModel):
    answers: list[AnswerIn] = Field(
        default_factory=list, max_length=200, description="Last answers, saved before grading."
    )


class Answer(BaseModel):
    choice: str | None = None
    choices: list[str] | None = None
    value: bool | None = None
    text: str | None = None


class SheetQuestion(BaseModel):
    question_id: uuid.UUID
    position: int
    kind: QuestionKind
    prompt: str
    points: float
    options: list[Option]
    min_words: int | None = None
    max_words: int | None = None
    answer: Answer | None = Field(description="What the learner saved, if anything.")


class AttemptSheet(BaseModel):
    """An attempt as its learner works on it: the drawn questions and saved answers."""

    id: uuid.UUID
    quiz_id: uuid.UUID
    number: int
    status: AttemptStatus
    started_at: dt.datetime
    deadline_at: dt.datetime | None = Field(
        description="Set by the server; answers are refused after it."
    )
    seconds_left: int | None
    submitted_at: dt.datetime | None
    questions: list[SheetQuestion]


class AttemptSummary(BaseModel):
    id: uuid.UUID
    quiz_id: uuid.UUID
    user_id: uuid.UUID
    number: int
    status: AttemptStatus
    started_at: dt.datetime
    deadline_at: dt.datetime | None
    submitted_at: dt.datetime | None
    auto_submitted: bool
    late: bool
    score: float | None
    max_score: float
    percent: float | None
    passed: bool | None


class CorrectAnswer(BaseModel):
    option_ids: list[str] | None = None
    value: bool | None = None
    accepted: list[str] | None = None
    number: float | None = None
    tolerance: float | None = None


class ItemResult(BaseModel):
    question_id: uuid.UUID
    position: int
    kind: QuestionKind
    prompt: str
    points: float
    options: list[Option]
    answer: Answer | None
    awarded: float | None = Field(description="None while an instructor has not graded it.")
    is_correct: bool | None
    comment: str
    correct_answer: CorrectAnswer | None
    explanation: str | None


class AttemptResult(BaseModel):
    """A submitted attempt as its learner sees it, filtered by the quiz's review policy:
    `none` shows no score, `score_only` the score, `answers_after_submit` also every
    item with its correct answer and explanation, `answers_after_due` the score at once
    and the items after the due date. While essay items wait for an instructor
    (`needs_review`) the score is null, but the items the policy shows are there: the
    auto-graded ones graded, the essays with `awarded` null until graded."""

    id: uuid.UUID
    quiz_id: uuid.UUID
    number: int
    status: AttemptStatus
    review_policy: ReviewPolicy
    started_at: dt.datetime
    submitted_at: dt.datetime | None
    auto_submitted: bool
    late: bool
    score: float | None
    max_score: float | None
    percent: float | None
    passed: bool | None
    items: list[ItemResult]
    answers_available_at: dt.datetime | None = Field(
        description="When items and answers become visible, if later."
    )


class ItemReview(ItemResult):
    """An item as an instructor sees it: the key whatever the review policy."""


class AttemptReview(AttemptSummary):
    items: list[ItemReview]


class ItemGradeIn(RequestModel):
    question_id: uuid.UUID
    points: float = Field(ge=0, le=1000)
    comment: ShortText = ""


class ItemGradesIn(RequestModel):
    grades: list[ItemGradeIn] = Field(min_length=1, max_length=200)
