"""Who may do what with enrollments, progress, reviews and certificates: `Annotated`
dependencies that routes put in their signature, resolved from the path before the
endpoint body runs. Services receive what these return and check nothing further.

- `ActiveEnrollment`: the caller's enrollment (active or completed) in a course they
  may see, locked; 403 `not-enrolled` without one, 404 for a course they cannot see.
- `LearnerLesson`: a lesson of such a course, with the caller's enrollment in it.
- `MyEnrollment`: the caller's own enrollment in the path's course, to leave it (404
  when there is none).
- `ReviewableCourse`: a course the caller may see and is enrolled in (403
  `not-enrolled` otherwise). `MyReview`: the caller's own review of the path's course.
- `MyCertificate`: one of the caller's certificates, by code (404 for anyone else's).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path

from lyceum.courses.permissions import Courses, SignedInVisibleCourse, VisibleLesson
from lyceum.identity.permissions import CurrentUser
from lyceum.kit.clock import ClockDep
from lyceum.kit.db import Session
from lyceum.learning.certificates import own_certificate
from lyceum.learning.service import LearningService
from lyceum.models.courses import Certificate, Course, Enrollment, Lesson, Review


async def learning_service(session: Session, courses: Courses, clock: ClockDep) -> LearningService:
    return LearningService(session, courses, clock.now())


Learning = Annotated[LearningService, Depends(learning_service)]


@dataclass(frozen=True)
class Learner:
    """A course and the caller's enrollment in it (not cancelled)."""

    course: Course
    enrollment: Enrollment


async def active_enrollment(
    caller: CurrentUser, course: SignedInVisibleCourse, service: Learning
) -> Learner:
    return Learner(course, await service.active_enrollment(caller, course))


ActiveEnrollment = Annotated[Learner, Depends(active_enrollment)]


@dataclass(frozen=True)
class LessonLearner:
    lesson: Lesson
    course: Course
    enrollment: Enrollment


async def learner_lesson(
    caller: CurrentUser, found: VisibleLesson, service: Learning
) -> LessonLearner:
    enrollment = await service.active_enrollment(caller, found.course)
    return LessonLearner(found.lesson, found.course, enrollment)


LearnerLesson = Annotated[LessonLearner, Depends(learner_lesson)]


async def my_enrollment(course_id: uuid.UUID, caller: CurrentUser, service: Learning) -> Enrollment:
    return await service.own_enrollment(caller, course_id)


MyEnrollment = Annotated[Enrollment, Depends(my_enrollment)]


async def reviewable_course(
    caller: CurrentUser, course: SignedInVisibleCourse, service: Learning
) -> Course:
    await service.require_learner(caller, course)
    return course


ReviewableCourse = Annotated[Course, Depends(reviewable_course)]


async def my_review(course_id: uuid.UUID, caller: CurrentUser, service: Learning) -> Review:
    return await service.own_review(caller, course_id)


MyReview = Annotated[Review, Depends(my_review)]

CertificateCode = Annotated[str, Path(max_length=32, pattern=r"^[A-Z0-9-]+$")]


async def my_certificate(
    code: CertificateCode, caller: CurrentUser, session: Session
) -> Certificate:
    return await own_certificate(session, caller.id, code)


MyCertificate = Annotated[Certificate, Depends(my_certificate)]
