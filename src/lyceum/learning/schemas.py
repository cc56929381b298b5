"""Enrollment and progress bodies."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from lyceum.kit.validation import NO_NUL, JsonInt, RequestModel
from lyceum.models.courses import EnrollmentStatus


class EnrollmentOut(BaseModel):
    id: uuid.UUID
    course_id: uuid.UUID
    course_title: str
    course_slug: str
    status: EnrollmentStatus
    enrolled_at: dt.datetime
    completed_at: dt.datetime | None
    percent: float = Field(ge=0, le=100)


class RosterEntry(BaseModel):
    user_id: uuid.UUID
    full_name: str
    email: str
    status: EnrollmentStatus
    enrolled_at: dt.datetime
    percent: float = Field(ge=0, le=100)


class LessonProgress(BaseModel):
    id: uuid.UUID
    title: str
    module_id: uuid.UUID
    completed: bool
    completed_at: dt.datetime | None


class AssessmentProgress(BaseModel):
    id: uuid.UUID
    kind: Literal["quiz", "assignment"]
    title: str
    required: bool
    passed: bool
    percent: float | None = Field(
        description="Best graded quiz attempt or released grade; None when not graded yet "
        "(or when the quiz shows no scores)."
    )


class CourseProgress(BaseModel):
    course_id: uuid.UUID
    status: EnrollmentStatus
    percent: float = Field(ge=0, le=100, description="Completed lessons / all lessons x 100.")
    completed_lessons: int
    total_lessons: int
    last_lesson_id: uuid.UUID | None = Field(description="The lesson completed most recently.")
    resume_lesson_id: uuid.UUID | None = Field(
        description="Where to continue: the first lesson not completed yet, in syllabus order."
    )
    lessons: list[LessonProgress]
    assessments: list[AssessmentProgress] = Field(
        default_factory=list,
        description="The course's published quizzes and assignments. The course completes "
        "when every lesson is done and every `required` one is passed.",
    )


class CertificatePublic(BaseModel):
    """What anyone holding a certificate's code may verify: nothing more."""

    code: str
    learner_name: str
    course_title: str
    issued_on: dt.date


class CertificateOut(CertificatePublic):
    course_id: uuid.UUID
    instructor_name: str
    download_url: str = Field(description="The PDF; needs the learner's token.")
    verify_url: str


class ReviewIn(RequestModel):
    rating: JsonInt = Field(ge=1, le=5)
    text: Annotated[str, Field(max_length=5_000, pattern=NO_NUL)] = ""


class ReviewOut(BaseModel):
    id: uuid.UUID
    course_id: uuid.UUID
    user_id: uuid.UUID
    author_name: str
    rating: int
    text: str
    created_at: dt.datetime
    updated_at: dt.datetime
