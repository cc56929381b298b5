"""Assessment rules, one module per sub-area: the question bank (`questions`), quizzes
(`quizzes`), taking and grading attempts (`attempts`, `closing`), essay assignments
(`assignments`), submissions (`submissions`), their scoring and review (`proposals`,
`grades`, `review`), and the gradebook (`gradebook`).

What other domains may ask of assessments is here: where a learner stands on a
course's assessments (`learning` shows it with their progress, and completes the course
once every required one is passed). Assessments never calls into learning: a passed
assessment is announced with the `assessment.passed` event (`service.common.passed`),
which `learning` reacts to."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.assessments.repository.standings import StandingRepository
from lyceum.assessments.service.export import learner_export

__all__ = ["Standing", "learner_export", "standings", "unpassed_required"]


@dataclass(frozen=True, slots=True)
class Standing:
    """Where one learner stands on one published assessment."""

    id: uuid.UUID
    kind: Literal["quiz", "assignment"]
    title: str
    required: bool
    weight: float
    pass_percent: float
    percent: float | None
    passed: bool


async def standings(
    session: AsyncSession, course_id: uuid.UUID, user_id: uuid.UUID
) -> list[Standing]:
    """The learner's standing on every published assessment of the course (quizzes, then
    assignments, each oldest first): the best graded attempt of a quiz, the released
    grade of an assignment, as the gradebook counts them. One statement: it runs on
    every progress read and completed lesson."""
    found = []
    for row in await StandingRepository(session).standings_of(course_id, user_id):
        percent = float(row.percent or 0.0) if row.graded else None
        found.append(
            Standing(
                row.id,
                "quiz" if row.part == 0 else "assignment",
                row.title,
                row.required,
                row.weight,
                row.pass_percent,
                None if row.hidden else percent,  # a quiz that shows its learners no score
                bool(row.passed),
            )
        )
    return found


async def unpassed_required(session: AsyncSession, course_id: uuid.UUID, user_id: uuid.UUID) -> int:
    """How many of the course's published required assessments the learner has not
    passed yet (one query: it runs on every completed lesson and passed assessment)."""
    return await StandingRepository(session).unpassed_required(course_id, user_id)
