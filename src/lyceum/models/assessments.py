"""Assessments: a course's question bank, quizzes and their attempts, essay assignments
and their submissions, and the audit trail of every grade an instructor changes."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Any

from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from lyceum.models.base import Base, Timestamps, UUIDPrimaryKey
from lyceum.models.content import EMBEDDING_DIMENSIONS
from lyceum.models.courses import _enum


def _points() -> Numeric[float]:
    return Numeric(10, 2, asdecimal=False)


class QuestionKind(enum.StrEnum):
    single_choice = "single_choice"
    multiple_choice = "multiple_choice"
    true_false = "true_false"
    short_answer = "short_answer"
    essay = "essay"


class Difficulty(enum.StrEnum):
    easy = "easy"
    medium = "medium"
    hard = "hard"


class ReviewPolicy(enum.StrEnum):
    """What a learner sees of a graded attempt."""

    none = "none"
    score_only = "score_only"
    answers_after_submit = "answers_after_submit"
    answers_after_due = "answers_after_due"


class AttemptStatus(enum.StrEnum):
    in_progress = "in_progress"
    # Objective items are graded; essay items wait for an instructor.
    needs_review = "needs_review"
    graded = "graded"


class LatePolicy(enum.StrEnum):
    refuse = "refuse"
    penalty = "penalty"


class SubmissionStatus(enum.StrEnum):
    # Waiting for (or in) the scoring job.
    scoring = "scoring"
    # A proposal (or a scoring failure) waits for an instructor.
    needs_review = "needs_review"
    # An instructor accepted or overrode the grade; the learner does not see it yet.
    reviewed = "reviewed"
    released = "released"


class Question(UUIDPrimaryKey, Timestamps, Base):
    """One item of a course's question bank. `answer_key` holds what grading needs
    (kind-specific, see assessments.schemas.QuestionKey); it never leaves the server in
    a learner's response before grading."""

    __tablename__ = "assessment_questions"
    __table_args__ = (
        Index("ix_assessment_questions_tags", "tags", postgresql_using="gin"),
        CheckConstraint("points > 0", name="points_positive"),
    )

    course_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("courses.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[QuestionKind] = mapped_column(_enum(QuestionKind, "question_kind"))
    prompt: Mapped[str] = mapped_column(Text)
    points: Mapped[float] = mapped_column(_points())
    tags: Mapped[list[str]] = mapped_column(ARRAY(String(50)), default=list)
    difficulty: Mapped[Difficulty] = mapped_column(
        _enum(Difficulty, "question_difficulty"), default=Difficulty.medium
    )
    explanation: Mapped[str] = mapped_column(Text, default="")
    options: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    answer_key: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )


class Quiz(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "quizzes"
    __table_args__ = (
        CheckConstraint("time_limit_seconds IS NULL OR time_limit_seconds > 0", name="time_limit"),
        CheckConstraint("max_attempts IS NULL OR max_attempts > 0", name="max_attempts"),
        CheckConstraint("pass_percent BETWEEN 0 AND 100", name="pass_percent"),
        CheckConstraint("weight >= 0", name="weight_not_negative"),
        CheckConstraint(
            "available_from IS NULL OR available_until IS NULL OR available_from < available_until",
            name="window",
        ),
    )

    course_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("courses.id", ondelete="CASCADE"), index=True
    )
    # Where the quiz sits in the syllabus; deleting the module or lesson keeps the quiz
    # (and its grades) at course level.
    module_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("modules.id", ondelete="SET NULL")
    )
    lesson_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("lessons.id", ondelete="SET NULL")
    )
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    time_limit_seconds: Mapped[int | None] = mapped_column(Integer)
    max_attempts: Mapped[int | None] = mapped_column(Integer)
    pass_percent: Mapped[float] = mapped_column(Numeric(5, 2, asdecimal=False))
    shuffle_questions: Mapped[bool] = mapped_column(default=False)
    shuffle_options: Mapped[bool] = mapped_column(default=False)
    review_policy: Mapped[ReviewPolicy] = mapped_column(
        _enum(ReviewPolicy, "quiz_review_policy"), default=ReviewPolicy.answers_after_submit
    )
    available_from: Mapped[dt.datetime | None]
    available_until: Mapped[dt.datetime | None]
    due_at: Mapped[dt.datetime | None]
    required: Mapped[bool] = mapped_column(default=False)
    weight: Mapped[float] = mapped_column(Numeric(6, 2, asdecimal=False), default=1.0)
    published: Mapped[bool] = mapped_column(default=False)


class QuizSection(Base):
    """One step of a quiz's composition, in order: a fixed question, or `draw_count`
    questions drawn at random from the bank's questions carrying `tag`."""

    __tablename__ = "quiz_sections"
    __table_args__ = (
        CheckConstraint("(question_id IS NULL) <> (tag IS NULL)", name="one_source"),
        CheckConstraint("draw_count >= 1", name="draw_count_positive"),
    )

    quiz_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("quizzes.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    # RESTRICT: a question a quiz names cannot disappear from under it.
    question_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("assessment_questions.id", ondelete="RESTRICT"), index=True
    )
    tag: Mapped[str | None] = mapped_column(String(50))
    draw_count: Mapped[int] = mapped_column(Integer, default=1)


class QuizAttempt(UUIDPrimaryKey, Base):
    __tablename__ = "quiz_attempts"
    __table_args__ = (
        UniqueConstraint("quiz_id", "user_id", "number"),
        # At most one attempt in progress per learner and quiz, whatever the races.
        Index(
            "uq_quiz_attempts_open",
            "quiz_id",
            "user_id",
            unique=True,
            postgresql_where=text("status = 'in_progress'"),
        ),
        # The periodic sweep of attempts whose time ran out.
        Index(
            "ix_quiz_attempts_deadline",
            "deadline_at",
            postgresql_where=text("status = 'in_progress'"),
        ),
        Index("ix_quiz_attempts_user_status", "user_id", "status"),
    )

    quiz_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("quizzes.id", ondelete="CASCADE"))
    course_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("courses.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    status: Mapped[AttemptStatus] = mapped_column(
        _enum(AttemptStatus, "quiz_attempt_status"), default=AttemptStatus.in_progress
    )
    started_at: Mapped[dt.datetime]
    # The server's deadline: start + time limit, capped by the quiz's closing time.
    deadline_at: Mapped[dt.datetime | None]
    submitted_at: Mapped[dt.datetime | None]
    auto_submitted: Mapped[bool] = mapped_column(default=False)
    late: Mapped[bool] = mapped_column(default=False)
    graded_at: Mapped[dt.datetime | None]
    score: Mapped[float | None] = mapped_column(_points())
    max_score: Mapped[float] = mapped_column(_points())
    percent: Mapped[float | None] = mapped_column(Numeric(5, 2, asdecimal=False))
    passed: Mapped[bool | None]


class AttemptItem(Base):
    """A question as drawn into one attempt. `snapshot` keeps the question as it was
    (prompt, options in the order shown, key, explanation), so later edits to the bank
    never change an attempt; `question_id` is therefore a plain reference, not a
    foreign key."""

    __tablename__ = "quiz_attempt_items"
    __table_args__ = (UniqueConstraint("attempt_id", "question_id"),)

    attempt_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("quiz_attempts.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    question_id: Mapped[uuid.UUID]
    kind: Mapped[QuestionKind] = mapped_column(_enum(QuestionKind, "question_kind"))
    points: Mapped[float] = mapped_column(_points())
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSONB)
    response: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    answered_at: Mapped[dt.datetime | None]
    awarded: Mapped[float | None] = mapped_column(_points())
    is_correct: Mapped[bool | None]
    comment: Mapped[str] = mapped_column(Text, default="")


class Assignment(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "assignments"
    __table_args__ = (
        CheckConstraint("points > 0", name="points_positive"),
        CheckConstraint("pass_percent BETWEEN 0 AND 100", name="pass_percent"),
        CheckConstraint("weight >= 0", name="weight_not_negative"),
        CheckConstraint(
            "late_penalty_percent_per_day BETWEEN 0 AND 100", name="late_penalty_percent"
        ),
        CheckConstraint(
            "min_words IS NULL OR max_words IS NULL OR min_words <= max_words", name="word_limits"
        ),
    )

    course_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("courses.id", ondelete="CASCADE"), index=True
    )
    module_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("modules.id", ondelete="SET NULL")
    )
    lesson_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("lessons.id", ondelete="SET NULL")
    )
    title: Mapped[str] = mapped_column(String(200))
    prompt: Mapped[str] = mapped_column(Text)
    # {"criteria": [{"id", "title", "description", "key_terms", "levels": [{"title",
    # "descriptor", "points"}, ...ascending]}]}; validated by the service on write.
    rubric: Mapped[dict[str, Any]] = mapped_column(JSONB)
    points: Mapped[float] = mapped_column(_points())
    reference_answer: Mapped[str] = mapped_column(Text, default="")
    min_words: Mapped[int | None] = mapped_column(Integer)
    max_words: Mapped[int | None] = mapped_column(Integer)
    due_at: Mapped[dt.datetime | None]
    late_policy: Mapped[LatePolicy] = mapped_column(
        _enum(LatePolicy, "assignment_late_policy"), default=LatePolicy.refuse
    )
    late_penalty_percent_per_day: Mapped[float] = mapped_column(
        Numeric(5, 2, asdecimal=False), default=0.0
    )
    auto_release: Mapped[bool] = mapped_column(default=False)
    required: Mapped[bool] = mapped_column(default=False)
    weight: Mapped[float] = mapped_column(Numeric(6, 2, asdecimal=False), default=1.0)
    pass_percent: Mapped[float] = mapped_column(Numeric(5, 2, asdecimal=False))
    published: Mapped[bool] = mapped_column(default=False)
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )


class EssaySubmission(UUIDPrimaryKey, Base):
    """A learner's one submission to an assignment, its scorer's proposal and the
    grade an instructor settles on."""

    __tablename__ = "essay_submissions"
    __table_args__ = (
        UniqueConstraint("assignment_id", "user_id"),
        Index("ix_essay_submissions_course_status", "course_id", "status"),
    )

    assignment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("assignments.id", ondelete="CASCADE")
    )
    course_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    text: Mapped[str] = mapped_column(Text)
    word_count: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(8))  # text | docx | pdf
    file_name: Mapped[str | None] = mapped_column(String(255))
    submitted_at: Mapped[dt.datetime]
    late_days: Mapped[int] = mapped_column(Integer, default=0)
    penalty_percent: Mapped[float] = mapped_column(Numeric(5, 2, asdecimal=False), default=0.0)
    status: Mapped[SubmissionStatus] = mapped_column(
        _enum(SubmissionStatus, "essay_submission_status"), default=SubmissionStatus.scoring
    )
    proposal: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    scored_at: Mapped[dt.datetime | None]
    scoring_error: Mapped[str | None] = mapped_column(Text)
    # {"criteria": [{"criterion_id", "points", "comment"}], "comment"}
    final: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    points_raw: Mapped[float | None] = mapped_column(_points())
    points: Mapped[float | None] = mapped_column(_points())
    percent: Mapped[float | None] = mapped_column(Numeric(5, 2, asdecimal=False))
    passed: Mapped[bool | None]
    reviewed_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    reviewed_at: Mapped[dt.datetime | None]
    released_at: Mapped[dt.datetime | None]
    embedding: Mapped[list[float] | None] = mapped_column(Vector(EMBEDDING_DIMENSIONS))


class SimilarityFlag(Base):
    """Two learners' submissions to one assignment that are near-duplicates (stored in
    both directions, so each submission lists its matches)."""

    __tablename__ = "essay_similarity_flags"

    submission_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("essay_submissions.id", ondelete="CASCADE"), primary_key=True
    )
    other_submission_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("essay_submissions.id", ondelete="CASCADE"), primary_key=True
    )
    similarity: Mapped[float] = mapped_column(Numeric(5, 4, asdecimal=False))
    flagged_at: Mapped[dt.datetime]


class AuditEntry(UUIDPrimaryKey, Base):
    """Who changed which grade, when, from what to what."""

    __tablename__ = "assessment_audit"
    __table_args__ = (
        Index("ix_assessment_audit_course_seq", "course_id", "seq"),
        Index("ix_assessment_audit_subject_seq", "subject_id", "seq"),
    )

    # The order entries were written in: two changes in one request share `at`.
    seq: Mapped[int] = mapped_column(BigInteger, Identity(always=True))
    course_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"))
    subject_type: Mapped[str] = mapped_column(String(20))  # submission | attempt
    subject_id: Mapped[uuid.UUID]
    # None: the system (automatic release of an AI score).
    actor_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(40))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    comment: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[dt.datetime]
