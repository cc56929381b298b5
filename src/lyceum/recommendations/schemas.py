"""What the recommendation routes answer: courses with a score and the reason they were
picked."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, Field

from lyceum.courses.schemas import Price
from lyceum.kit.pagination import Page
from lyceum.models.courses import CourseLevel


class CourseSummary(BaseModel):
    id: uuid.UUID
    slug: str
    title: str
    subtitle: str
    language: str
    level: CourseLevel
    category: str
    price: Price
    enrollment_count: int
    rating_average: float | None
    rating_count: int


class CourseRef(BaseModel):
    id: uuid.UUID
    title: str


class Reason(BaseModel):
    """Why the course is on the list: `because_you_took` (learners who took `course`,
    which the caller took, took this one), `similar_to` (its title and description are
    close to `course`'s), `taken_together` (related courses: learners of `course` took
    it too) or `popular` (popular with learners; no `course`)."""

    kind: Literal["because_you_took", "similar_to", "taken_together", "popular"]
    course: CourseRef | None = None
    text: str = Field(description="The reason as a sentence, in English.")


class Recommendation(BaseModel):
    course: CourseSummary
    score: float = Field(
        description="The blended score the list is sorted by (comparable within one list "
        "only; 0 for popularity answered before the first model build)."
    )
    reason: Reason


# One page holding every recommendation asked for (`limit`).
RecommendationList = Page[Recommendation]
