"""Essay assignments: authoring them with a rubric (the checks a schema cannot express)
and listing them for a course."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.assessments.repository.essays import EssayRepository
from lyceum.assessments.schemas import assignments as schemas
from lyceum.assessments.service.common import check_instants, check_placement
from lyceum.kit.errors import Conflict, Invalid
from lyceum.models.assessments import Assignment
from lyceum.models.courses import Course
from lyceum.models.identity import User

NULLABLE = {"module_id", "lesson_id", "min_words", "max_words", "due_at"}


def rubric_document(rubric: schemas.RubricIn, points: float) -> dict[str, Any]:
    """The stored rubric, after the checks a schema cannot express: unique criterion
    ids, levels from lowest to highest points, and top levels adding up to the
    assignment's points."""
    ids = [criterion.id for criterion in rubric.criteria]
    for index, criterion in enumerate(rubric.criteria):
        field = f"body.rubric.criteria.{index}"
        if ids.count(criterion.id) > 1:
            raise Invalid(f"Criterion id {criterion.id!r} is used twice.", field=f"{field}.id")
        for level, (lower, upper) in enumerate(
            zip(criterion.levels, criterion.levels[1:], strict=False), start=1
        ):
            if upper.points <= lower.points:
                raise Invalid(
                    f"Levels go from lowest to highest points: level {level} "
                    f"({upper.title!r}, {upper.points:g} points) is not above level "
                    f"{level - 1} ({lower.title!r}, {lower.points:g} points).",
                    field=f"{field}.levels.{level}.points",
                    slug="rubric-levels-out-of-order",
                )
    top = round(sum(criterion.levels[-1].points for criterion in rubric.criteria), 2)
    if abs(top - points) > 0.005:
        raise Invalid(
            f"The criteria's top levels add up to {top:g} points, not the assignment's {points:g}.",
            field="body.points",
            slug="rubric-points-mismatch",
        )
    return {
        "criteria": [
            {
                "id": criterion.id,
                "title": criterion.title,
                "description": criterion.description,
                "key_terms": list(dict.fromkeys(term.strip() for term in criterion.key_terms)),
                "levels": [level.model_dump() for level in criterion.levels],
            }
            for criterion in rubric.criteria
        ]
    }


def _check_limits(min_words: int | None, max_words: int | None, due_at: dt.datetime | None) -> None:
    check_instants(due_at=due_at)
    if min_words is not None and max_words is not None and min_words > max_words:
        raise Invalid("`min_words` is above `max_words`.", field="body.min_words")


class AssignmentService:
    """Works on courses and assignments the caller may see or edit
    (`assessments.permissions`)."""

    def __init__(self, session: AsyncSession) -> None:
        self.repo = EssayRepository(session)

    async def create(
        self, course: Course, author: User, data: schemas.AssignmentCreate
    ) -> Assignment:
        await check_placement(self.repo, course.id, data.module_id, data.lesson_id)
        _check_limits(data.min_words, data.max_words, data.due_at)
        assignment = Assignment(
            course_id=course.id,
            created_by=author.id,
            rubric=rubric_document(data.rubric, data.points),
            **data.model_dump(exclude={"rubric"}),
        )
        await self.repo.add(assignment)
        await self.repo.reload(assignment)
        return assignment

    async def change(self, assignment: Assignment, data: schemas.AssignmentUpdate) -> Assignment:
        sent = data.model_fields_set
        if ({"rubric", "points"} & sent) and await self.repo.assignment_has_submissions(
            assignment.id
        ):
            raise Conflict(
                "Learners have submitted: the rubric and points can no longer change.",
                slug="assignment-has-submissions",
            )
        for name in sent - {"rubric"}:
            value = getattr(data, name)
            if value is None and name not in NULLABLE:
                continue
            setattr(assignment, name, value)
        if data.rubric is not None:
            assignment.rubric = rubric_document(data.rubric, assignment.points)
        elif "points" in sent:
            stored = schemas.RubricIn.model_validate(assignment.rubric)
            rubric_document(stored, assignment.points)
        _check_limits(assignment.min_words, assignment.max_words, assignment.due_at)
        await check_placement(
            self.repo, assignment.course_id, assignment.module_id, assignment.lesson_id
        )
        await self.repo.reload(assignment)
        return assignment

    async def remove(self, assignment: Assignment) -> None:
        if await self.repo.assignment_has_submissions(assignment.id):
            raise Conflict(
                "Learners have submitted; unpublish the assignment instead of deleting grades.",
                slug="assignment-has-submissions",
            )
        await self.repo.remove(assignment)

    async def listing(
        self, course: Course, *, published_only: bool, offset: int, limit: int
    ) -> tuple[list[Assignment], int]:
        return await self.repo.assignments(
            course.id, published_only=published_only, offset=offset, limit=limit
        )
