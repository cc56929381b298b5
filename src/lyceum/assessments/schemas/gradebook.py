"""Gradebook bodies: columns per assessment, a cell per learner and assessment, and
the weighted totals."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, Field


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
