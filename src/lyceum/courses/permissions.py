"""Who may do what with a course: `Annotated` dependencies that routes put in their
signature, resolved from the path's `course_id` before the endpoint body runs.

Other domains reach courses through this module (and `courses.service` for narrow
queries), never through its repository or endpoints. A route that takes, say,
`course: EditableCourse` receives a course the caller is allowed to change; the
service it calls does no further access check.

- `VisibleCourse`: published for anyone; drafts and archived courses only for their
  instructors and admins (404 for everyone else, as if they did not exist).
- `EditableCourse` / `LockedEditableCourse`: the course's instructors (while their
  account is an instructor's) and admins; the second locks the row for the update.
- `MemberCourse`: the course's members (enrolled learners of a published course, its
  instructors and admins) with whether the caller can edit it; course material, the
  tutor and assessments are theirs.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends

from lyceum.courses.service import CourseService
from lyceum.identity.permissions import CurrentUser, OptionalUser, RuntimeDep
from lyceum.kit.clock import ClockDep
from lyceum.kit.db import Session
from lyceum.models.courses import Course


async def course_service(runtime: RuntimeDep, session: Session, clock: ClockDep) -> CourseService:
    return CourseService(
        session,
        cache=runtime.cache,
        cache_ttl=runtime.settings.cache_ttl_seconds,
        now=clock.now(),
    )


Courses = Annotated[CourseService, Depends(course_service)]


async def visible_course(course_id: uuid.UUID, caller: OptionalUser, service: Courses) -> Course:
    return await service.visible_course(course_id, caller)


VisibleCourse = Annotated[Course, Depends(visible_course)]


async def editable_course(course_id: uuid.UUID, caller: CurrentUser, service: Courses) -> Course:
    return await service.editable_course(course_id, caller)


EditableCourse = Annotated[Course, Depends(editable_course)]


async def locked_editable_course(
    course_id: uuid.UUID, caller: CurrentUser, service: Courses
) -> Course:
    return await service.editable_course(course_id, caller, for_update=True)


LockedEditableCourse = Annotated[Course, Depends(locked_editable_course)]


@dataclass(frozen=True)
class Membership:
    """A course the caller belongs to, and whether they may change it."""

    course: Course
    can_edit: bool


async def member_course(course_id: uuid.UUID, caller: CurrentUser, service: Courses) -> Membership:
    course, can_edit = await service.member_access(course_id, caller)
    return Membership(course, can_edit)


MemberCourse = Annotated[Membership, Depends(member_course)]
