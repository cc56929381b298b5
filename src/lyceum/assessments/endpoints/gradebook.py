"""Gradebook routes: the course's learners x assessments for its instructors, as JSON
and CSV, and each learner's own grades."""

from __future__ import annotations

from fastapi import Response

from lyceum.assessments.permissions import Gradebooks, LearnerCourse
from lyceum.assessments.schemas import gradebook as schemas
from lyceum.courses.permissions import EditableCourse
from lyceum.identity.permissions import CurrentUser
from lyceum.kit.pagination import Paging
from lyceum.kit.routing import Router

router = Router()


@router.get(
    "/courses/{course_id:uuid}/gradebook",
    summary="Learners x assessments with weighted totals (its instructors and admins)",
)
async def gradebook(
    course: EditableCourse, service: Gradebooks, paging: Paging
) -> schemas.Gradebook:
    return await service.gradebook(course, paging.page, paging.size)


@router.get(
    "/courses/{course_id:uuid}/gradebook.csv",
    summary="The whole gradebook as CSV (its instructors and admins)",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "The gradebook"}},
)
async def gradebook_csv(course: EditableCourse, service: Gradebooks) -> Response:
    body = await service.csv(course)
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="gradebook-{course.id}.csv"'},
    )


@router.get(
    "/courses/{course_id:uuid}/grades/me",
    summary="The caller's own grades in a course",
)
async def my_grades(
    course: LearnerCourse, caller: CurrentUser, service: Gradebooks
) -> schemas.MyGrades:
    return await service.mine(course, caller)
