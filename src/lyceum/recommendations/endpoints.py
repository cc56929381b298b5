"""Recommendation routes: "courses for you" for the signed-in learner, and the courses
related to one course (for whoever may see that course, as its detail page)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query

from lyceum.courses.permissions import VisibleCourse
from lyceum.identity.permissions import CurrentUser, RuntimeDep
from lyceum.kit.db import Session
from lyceum.kit.routing import Router
from lyceum.recommendations import schemas
from lyceum.recommendations.service import Recommendations

router = Router(tags=["recommendations"])

MAX_LIMIT = 50


def recommendations(session: Session, runtime: RuntimeDep) -> Recommendations:
    return Recommendations(session, runtime.settings)


Service = Annotated[Recommendations, Depends(recommendations)]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="How many courses (1-50).")]


@router.get(
    "/me/recommendations",
    summary="Courses for you, each with the reason it was picked",
    description="From the newest stored model: the courses nearest to those the caller "
    "took (collaborative filtering blended with content similarity) plus popularity; "
    "never a course the caller took (any enrollment status), teaches, that is not "
    "published, or that the price policy (RECOMMENDATIONS_MAX_PRICE_CENTS) leaves out. "
    "Before the first model build: the most popular courses.",
)
async def my_recommendations(
    caller: CurrentUser, service: Service, limit: Limit = 10
) -> schemas.RecommendationList:
    return await service.for_learner(caller.id, limit)


@router.get(
    "/courses/{course_id:uuid}/related",
    summary="Courses related to a course (taken together, or similar in content)",
    description="Whoever may see the course (as `GET /courses/{course_id}`: a published "
    "course for anyone, a draft for its instructors and admins) sees its stored "
    "neighbours that are published and within the price policy; a course the model "
    "does not know yet gets the most popular courses.",
)
async def related_courses(
    course: VisibleCourse, service: Service, limit: Limit = 10
) -> schemas.RecommendationList:
    return await service.related(course, limit)
