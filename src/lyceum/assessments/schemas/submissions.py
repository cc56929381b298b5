"""Essay submission bodies: the learner's essay and their released grade, the
scorer's proposal, and the instructors' review queue, grading and audit trail."""

from __future__ import annotations

import datetime as dt
import uuid

from pydantic import BaseModel, Field

from lyceum.assessments.schemas.fields import Essay, OptionId, ShortText
from lyceum.kit.validation import RequestModel
from lyceum.models.assessments import SubmissionStatus


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
