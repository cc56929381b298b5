"""What the assessment services share: the times a course can use, where a quiz or
assignment may sit, the audit entry every grade change writes, and the event a passed
assessment emits."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.assessments.repository.base import Repository
from lyceum.kit.errors import Invalid
from lyceum.kit.events import emit
from lyceum.models.assessments import AuditEntry
from lyceum.models.identity import User

# Times a course can sensibly use; outside them PostgreSQL would store a value Python
# cannot read back (year 0, year 10000 after the UTC shift).
EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(9000, 1, 1, tzinfo=dt.UTC)

ASSESSMENT_PASSED = "assessment.passed"


def check_instants(**values: dt.datetime | None) -> None:
    for name, value in values.items():
        if value is not None and not EARLIEST <= value <= LATEST:
            raise Invalid(
                f"`{name}` must be between the years 2000 and 9000.", field=f"body.{name}"
            )


async def check_placement(
    repo: Repository,
    course_id: uuid.UUID,
    module_id: uuid.UUID | None,
    lesson_id: uuid.UUID | None,
) -> None:
    """A quiz or assignment sits in a module or lesson of its own course."""
    if module_id is not None and await repo.module_course(module_id) != course_id:
        raise Invalid("No such module in this course.", field="body.module_id")
    if lesson_id is not None and await repo.lesson_course(lesson_id) != course_id:
        raise Invalid("No such lesson in this course.", field="body.lesson_id")


async def audit(
    repo: Repository,
    *,
    course_id: uuid.UUID,
    subject_type: str,
    subject_id: uuid.UUID,
    actor: User | None,
    action: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    comment: str,
    at: dt.datetime,
) -> None:
    await repo.add(
        AuditEntry(
            course_id=course_id,
            subject_type=subject_type,
            subject_id=subject_id,
            actor_id=actor.id if actor is not None else None,
            action=action,
            before=before,
            after=after,
            comment=comment,
            at=at,
        )
    )


async def passed(
    session: AsyncSession,
    *,
    course_id: uuid.UUID,
    user_id: uuid.UUID,
    required: bool,
    at: dt.datetime,
) -> None:
    """Announce, in this transaction, that a learner passed an assessment (a quiz
    attempt graded as passed, an essay grade released or regraded as passed). Course
    completion reacts to it (`learning.reactions`), within the same transaction, so the
    response that shows the pass shows the completed course too."""
    await emit(
        session,
        ASSESSMENT_PASSED,
        course_id=str(course_id),
        user_id=str(user_id),
        required=required,
        at=at.isoformat(),
    )
