"""Assessment rules, one module per sub-area: the question bank (`questions`), quizzes
(`quizzes`), taking and grading attempts (`attempts`, `closing`), essay assignments
(`assignments`), submissions (`submissions`), their scoring and review (`proposals`,
`grades`, `review`), and the gradebook (`gradebook`).

What other domains may ask of assessments is here: where a learner stands on a
course's assessments (`learning` shows it with their progress, and completes the
course once every required one is passed). A passed assessment is announced with the
`assessment.passed` event (`service.common.passed`), so assessments never calls into
learning."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.assessments.repository.standings import Standing, StandingRepository

__all__ = ["Standing", "standings", "unpassed_required"]


async def standings(
    session: AsyncSession, course_id: uuid.UUID, user_id: uuid.UUID
) -> list[Standing]:
    """The learner's standing on every published assessment of the course."""
    return await StandingRepository(session).standings(course_id, user_id)


async def unpassed_required(session: AsyncSession, course_id: uuid.UUID, user_id: uuid.UUID) -> int:
    """How many of the course's published required assessments the learner has not
    passed yet."""
    return await StandingRepository(session).unpassed_required(course_id, user_id)
