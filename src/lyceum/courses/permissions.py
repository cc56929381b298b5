"""Who may do what with a course: `Annotated` dependencies that routes put in their
signature, resolved from the path's `course_id` before the endpoint body runs.

Other domains reach courses through this module (and `courses.service` for narrow
queries), never through its repository or endpoints. A route that takes, say,
`course: EditableCourse` receives a course the caller is allowed to change; the
service it calls does no further access check.

- `VisibleCourse`: published for anyone; drafts and archived courses only for their
  instructors and admins (404 for everyone else, as if they did not exist).
  `SignedInVisibleCourse` is the same for routes that need a signed-in caller (401
  before anything else).
- `EditableCourse` / `LockedEditableCourse`: the course's instructors (while their
  account is an instructor's) and admins; the second locks the row for the update.
- `OwnedCourse`: an editable course whose owner the caller is (or an admin): who
  teaches it is theirs to change (403 for its other instructors).
- `MemberCourse`: the course's members (enrolled learners of a published course, its
  instructors and admins) with whether the caller can edit it; course material, the
  tutor and assessments are theirs. `MaterialCourse` is the same for routes that also
  answer anonymous callers (a draft is 404 to them too; a published course 401).
- `EditableModule`: a module of the path's editable course (404 for another course's).
- `EditableLesson`: a lesson and its course, which the caller may edit.
- `ReadableLesson`: a lesson whose body the caller may read (previews: everyone who
  sees the course; the rest: its members). `VisibleLesson`: a lesson of a course the
  caller may see, with that course (what a learner's progress needs).
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
from lyceum.models.courses import Course, Lesson, Module


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


async def signed_in_visible_course(
    course_id: uuid.UUID, caller: CurrentUser, service: Courses
) -> Course:
    return await service.visible_course(course_id, caller)


SignedInVisibleCourse = Annotated[Course, Depends(signed_in_visible_course)]


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


async def material_course(
    course_id: uuid.UUID, caller: OptionalUser, service: Courses
) -> Membership:
    course, can_edit = await service.member_access(course_id, caller)
    return Membership(course, can_edit)


MaterialCourse = Annotated[Membership, Depends(material_course)]


async def owned_course(course_id: uuid.UUID, caller: CurrentUser, service: Courses) -> Course:
    return await service.owned_course(course_id, caller)


OwnedCourse = Annotated[Course, Depends(owned_course)]


async def editable_module(module_id: uuid.UUID, course: EditableCourse, service: Courses) -> Module:
    return await service.editable_module(module_id, course)


EditableModule = Annotated[Module, Depends(editable_module)]


@dataclass(frozen=True)
class CourseLesson:
    """A lesson with its course, both already checked for the caller."""

    course: Course
    lesson: Lesson


async def editable_lesson(
    lesson_id: uuid.UUID, caller: CurrentUser, service: Courses
) -> CourseLesson:
    course, lesson = await service.lesson_for_editing(lesson_id, caller)
    return CourseLesson(course, lesson)


EditableLesson = Annotated[CourseLesson, Depends(editable_lesson)]


async def readable_lesson(lesson_id: uuid.UUID, caller: OptionalUser, service: Courses) -> Lesson:
    return await service.readable_lesson(lesson_id, caller)


ReadableLesson = Annotated[Lesson, Depends(readable_lesson)]


async def visible_lesson(
    lesson_id: uuid.UUID, caller: CurrentUser, service: Courses
) -> CourseLesson:
    course, lesson = await service.visible_lesson(lesson_id, caller)
    return CourseLesson(course, lesson)


VisibleLesson = Annotated[CourseLesson, Depends(visible_lesson)]
