"""Assessment bodies.

Two families, kept apart on purpose. Authoring schemas (`QuestionOut`, `QuizOut`,
`AssignmentOut`, `SubmissionReview`, ...) carry answer keys, explanations, reference
answers and rubric key terms, and are only returned to a course's instructors and
admins. Learner schemas (`AttemptSheet`, `QuizInfo`, `AssignmentInfo`, `MySubmission`,
...) are separate classes that have no such fields, so no code path can put a key in a
learner's response before grading; only `AttemptResult`, served once an attempt is
graded, may carry the correct answers and explanations, as the quiz's review policy
allows.

Request models state their rules as JSON Schema constraints; rules that depend on
stored data (a question id of this course, a rubric whose points add up) are checked by
the services after authorization, and answer 422 naming the field.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, Field, Strict, StringConstraints

from lyceum.kit.validation import (
    NO_NUL,
    VISIBLE_TEXT,
    IsoDateTime,
    JsonInt,
    RequestModel,
    VisibleTitle,
    integral_float,
)
from lyceum.models.assessments import (
    AttemptStatus,
    Difficulty,
    LatePolicy,
    QuestionKind,
    ReviewPolicy,
    SubmissionStatus,
)

OptionId = Annotated[
    str, StringConstraints(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_-]+$")
]
Tag = Annotated[
    str,
    StringConstraints(min_length=1, max_length=50, pattern=VISIBLE_TEXT),
]
Prompt = Annotated[str, StringConstraints(min_length=1, max_length=10_000, pattern=VISIBLE_TEXT)]
LongText = Annotated[str, StringConstraints(max_length=20_000, pattern=NO_NUL)]
ShortText = Annotated[str, StringConstraints(max_length=2_000, pattern=NO_NUL)]
OptionText = Annotated[str, StringConstraints(min_length=1, max_length=1_000, pattern=VISIBLE_TEXT)]
AcceptedAnswer = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=NO_NUL)]
KeyTerm = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=VISIBLE_TEXT)]
# Points are stored to the hundredth: anything smaller would round to 0.
Points = Annotated[float, Field(ge=0.01, le=1000)]
# Bounds inside the integer type (not on the field), so they reach the OpenAPI schema
# as minimum/maximum also where the field is optional.
Words = Annotated[int, Strict(), Field(ge=1, le=20_000), BeforeValidator(integral_float)]
Seconds = Annotated[int, Strict(), Field(ge=10, le=7 * 24 * 3600), BeforeValidator(integral_float)]
Attempts = Annotated[int, Strict(), Field(ge=1, le=100), BeforeValidator(integral_float)]
Essay = Annotated[str, StringConstraints(min_length=1, max_length=200_000, pattern=VISIBLE_TEXT)]
MatchMode = Literal["exact", "case_insensitive", "regex", "numeric"]


# --- question bank (authoring) -----------------------------------------------------------


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


# --- quizzes (authoring) -----------------------------------------------------------------


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


# --- attempts (learners) -----------------------------------------------------------------


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


# --- essay assignments -------------------------------------------------------------------


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


class EssayIn(RequestModel):
    text: Essay


class CriterionGrade(BaseModel):
    criterion_id: str
    title: str
    points: float
    max_points: float
    level: str | None = Field(description="The rubric level the scorer chose, if any.")
    justification: str
    quote: str
    comment: str


class ReleasedGrade(BaseModel):
    """A grade as its learner sees it, once released."""

    points: float
    max_points: float
    percent: float
    passed: bool
    penalty_percent: float
    criteria: list[CriterionGrade]
    overall_feedback: str
    suggestions: list[str]
    comment: str
    released_at: dt.datetime


class MySubmission(BaseModel):
    id: uuid.UUID
    assignment_id: uuid.UUID
    status: SubmissionStatus
    text: str
    word_count: int
    source: str
    file_name: str | None
    submitted_at: dt.datetime
    late_days: int
    penalty_percent: float
    grade: ReleasedGrade | None = Field(description="Present once an instructor releases it.")


class ScoreProposal(BaseModel):
    scorer: str = Field(description="`offline-estimate`, or the provider and model.")
    estimate: bool = Field(description="True for the offline estimate: check it closely.")
    total_points: float
    criteria: list[CriterionGrade]
    overall_feedback: str
    suggestions: list[str]
    signals: dict[str, float] = Field(
        default_factory=dict, description="The offline estimate's measurements."
    )


class SimilarSubmission(BaseModel):
    submission_id: uuid.UUID
    user_id: uuid.UUID
    similarity: float


class SubmissionSummary(BaseModel):
    id: uuid.UUID
    assignment_id: uuid.UUID
    assignment_title: str
    user_id: uuid.UUID
    learner_name: str
    status: SubmissionStatus
    word_count: int
    submitted_at: dt.datetime
    late_days: int
    estimate: bool | None
    proposed_points: float | None
    points: float | None
    flagged: bool = Field(description="A near-duplicate of another learner's submission.")


class FinalCriterion(BaseModel):
    criterion_id: str
    points: float
    comment: str


class SubmissionReview(BaseModel):
    id: uuid.UUID
    assignment_id: uuid.UUID
    user_id: uuid.UUID
    learner_name: str
    status: SubmissionStatus
    text: str
    word_count: int
    source: str
    file_name: str | None
    submitted_at: dt.datetime
    late_days: int
    penalty_percent: float
    proposal: ScoreProposal | None
    scoring_error: str | None
    final: list[FinalCriterion] | None
    comment: str
    points_raw: float | None
    points: float | None
    percent: float | None
    passed: bool | None
    reviewed_at: dt.datetime | None
    released_at: dt.datetime | None
    similar: list[SimilarSubmission]


class AcceptIn(RequestModel):
    comment: ShortText = ""
    release: bool = Field(default=False, description="Also release it to the learner.")


class CriterionOverride(RequestModel):
    criterion_id: OptionId
    points: float = Field(ge=0, le=1000)
    comment: ShortText = ""


class OverrideIn(RequestModel):
    """Points per criterion; criteria left out keep the proposal's points."""

    criteria: list[CriterionOverride] = Field(min_length=1, max_length=20)
    comment: ShortText = ""
    release: bool = False


class AuditEntryOut(BaseModel):
    id: uuid.UUID
    subject_type: str
    subject_id: uuid.UUID
    actor_id: uuid.UUID | None = Field(description="None: the system (automatic release).")
    actor_name: str | None
    action: str
    before: dict[str, object] | None
    after: dict[str, object] | None
    comment: str
    at: dt.datetime


# --- gradebook ---------------------------------------------------------------------------


class GradebookColumn(BaseModel):
    id: uuid.UUID
    kind: Literal["quiz", "assignment"]
    title: str
    weight: float
    required: bool
    pass_percent: float


class GradeCell(BaseModel):
    assessment_id: uuid.UUID
    percent: float | None = Field(description="Best graded attempt, or the released grade.")
    passed: bool | None


class GradebookRow(BaseModel):
    user_id: uuid.UUID
    full_name: str
    email: str
    cells: list[GradeCell]
    weighted_total: float = Field(
        description="Sum of weight x percent over every column (missing counts 0) / sum of weights."
    )


class Gradebook(BaseModel):
    columns: list[GradebookColumn]
    items: list[GradebookRow]
    total: int
    page: int
    size: int
    pages: int


class MyGrades(BaseModel):
    course_id: uuid.UUID
    columns: list[GradebookColumn]
    cells: list[GradeCell]
    weighted_total: float
