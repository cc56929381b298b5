"""Analytics report routes: a course's overview, lesson funnel, tutor insights and
learners at risk, a quiz's item analysis and an assignment's rubric scores (the course's
instructors and admins; students 403), and the learner's own dashboard. JSON by
default; CSV with `?format=csv` or `Accept: text/csv`."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from fastapi import Depends, Query, Request, Response

from lyceum.analytics import report_schemas as schemas
from lyceum.analytics.report_repository import AnalyticsReportRepository
from lyceum.analytics.reports import (
    AnalyticsReports,
    at_risk_csv,
    dashboard_csv,
    lessons_csv,
    overview_csv,
    quiz_items_csv,
    rubric_csv,
    tutor_csv,
    window_of,
)
from lyceum.courses.permissions import Courses
from lyceum.identity.permissions import CurrentUser, RuntimeDep
from lyceum.kit.clock import ClockDep
from lyceum.kit.db import Session
from lyceum.kit.errors import Forbidden
from lyceum.kit.pagination import Page, Paging
from lyceum.kit.periods import Period
from lyceum.kit.routing import Router
from lyceum.kit.validation import IsoDate
from lyceum.models.identity import Role, User

router = Router(tags=["analytics"])

ReportFormat = Literal["json", "csv"]


def analytics_reports(session: Session) -> AnalyticsReports:
    return AnalyticsReports(AnalyticsReportRepository(session))


Reports = Annotated[AnalyticsReports, Depends(analytics_reports)]


def output_format(
    request: Request,
    chosen: Annotated[
        ReportFormat | None,
        Query(
            alias="format",
            description="`csv` for a CSV file; default JSON, or CSV when the request "
            "accepts `text/csv`.",
        ),
    ] = None,
) -> ReportFormat:
    if chosen is not None:
        return chosen
    return "csv" if "text/csv" in request.headers.get("accept", "") else "json"


Format = Annotated[ReportFormat, Depends(output_format)]


def report_window(
    clock: ClockDep,
    first: Annotated[
        IsoDate | None,
        Query(alias="from", description="First UTC day (YYYY-MM-DD); default 29 days before `to`."),
    ] = None,
    last: Annotated[
        IsoDate | None,
        Query(alias="to", description="Last UTC day, included (YYYY-MM-DD); default today."),
    ] = None,
) -> Period:
    """At most 366 days; `from` after `to` is 422."""
    return window_of(first, last, today=clock.now().astimezone(dt.UTC).date())


ReportWindow = Annotated[Period, Depends(report_window)]


def _not_a_student(caller: User) -> None:
    # Before any lookup: a student learns nothing about which ids exist.
    if caller.role is Role.student:
        raise Forbidden("Analytics reports are for instructors and admins.")


async def _check_teaches(courses: Courses, course_id: uuid.UUID, caller: User) -> None:
    try:
        _, can_edit = await courses.member_access(course_id, caller)
    except Forbidden:
        can_edit = False
    if not can_edit:
        raise Forbidden("Only the course's instructors and admins see its analytics.")


async def taught_course(course_id: uuid.UUID, caller: CurrentUser, courses: Courses) -> uuid.UUID:
    """A course the caller teaches (owner or co-instructor) or, for an admin, any course:
    students 403 whatever the id, other instructors 403, an unknown course 404."""
    _not_a_student(caller)
    await _check_teaches(courses, course_id, caller)
    return course_id


TaughtCourse = Annotated[uuid.UUID, Depends(taught_course)]

CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"text/csv": {"schema": {"type": "string"}}},
        "description": "The report: JSON, or CSV (UTF-8 with BOM, the same numbers) with "
        "`?format=csv` or `Accept: text/csv`.",
    }
}


def _csv(body: str, name: str) -> Response:
    headers = {"Content-Disposition": f'attachment; filename="{name}.csv"'}
    return Response(body, media_type="text/csv; charset=utf-8", headers=headers)


@router.get(
    "/analytics/courses/{course_id:uuid}/overview",
    summary="A course's enrollments, active learners, completion and daily activity",
    description="Enrollments by status; learners active over 7 and 30 days; completion "
    "rate (completed / not cancelled); median time to complete; events and time on task "
    "per UTC day of the `from`-`to` window. The course's instructors and admins.",
    response_model=schemas.CourseOverview,
    responses=CSV_RESPONSE,
)
async def course_overview(
    course_id: TaughtCourse, window: ReportWindow, output: Format, reports: Reports, clock: ClockDep
) -> schemas.CourseOverview | Response:
    report = await reports.overview(course_id, window, clock.now())
    return _csv(overview_csv(report), f"overview-{course_id}") if output == "csv" else report


@router.get(
    "/analytics/courses/{course_id:uuid}/lessons",
    summary="A course's lesson funnel: reached, completed and dropped per lesson",
    description="Lessons in syllabus order with the enrolled learners who reached and "
    "completed each, those whose furthest lesson it is (course not completed), and the "
    "median and mean time on task. The course's instructors and admins.",
    response_model=schemas.LessonFunnel,
    responses=CSV_RESPONSE,
)
async def lesson_funnel(
    course_id: TaughtCourse, output: Format, reports: Reports
) -> schemas.LessonFunnel | Response:
    report = await reports.lessons(course_id)
    return _csv(lessons_csv(report), f"lessons-{course_id}") if output == "csv" else report


@router.get(
    "/analytics/quizzes/{quiz_id:uuid}/items",
    summary="A quiz's item analysis: difficulty, discrimination, option choices, flags",
    description="Over each learner's first graded attempt. The course's instructors and "
    "admins; students 403, an unknown quiz 404.",
    response_model=schemas.QuizItemAnalysis,
    responses=CSV_RESPONSE,
)
async def quiz_items(
    quiz_id: uuid.UUID, caller: CurrentUser, courses: Courses, output: Format, reports: Reports
) -> schemas.QuizItemAnalysis | Response:
    _not_a_student(caller)
    quiz = await reports.quiz(quiz_id)
    await _check_teaches(courses, quiz.course_id, caller)
    report = await reports.quiz_items(quiz.id)
    return _csv(quiz_items_csv(report), f"quiz-items-{quiz_id}") if output == "csv" else report


@router.get(
    "/analytics/assignments/{assignment_id:uuid}/rubric",
    summary="An essay assignment's scores per rubric criterion",
    description="Count, mean, median and level distribution per criterion over the "
    "settled grades (reviewed or released). The course's instructors and admins; "
    "students 403, an unknown assignment 404.",
    response_model=schemas.RubricReport,
    responses=CSV_RESPONSE,
)
async def rubric_scores(
    assignment_id: uuid.UUID,
    caller: CurrentUser,
    courses: Courses,
    output: Format,
    reports: Reports,
) -> schemas.RubricReport | Response:
    _not_a_student(caller)
    assignment = await reports.assignment(assignment_id)
    await _check_teaches(courses, assignment.course_id, caller)
    report = await reports.rubric(assignment)
    return _csv(rubric_csv(report), f"rubric-{assignment_id}") if output == "csv" else report


@router.get(
    "/analytics/courses/{course_id:uuid}/tutor",
    summary="What learners ask the course's tutor, and what the material does not answer",
    description="Questions per lesson in the window, the share answered from the course "
    "material, and the most frequent unanswered topics grouped by meaning. The course's "
    "instructors and admins.",
    response_model=schemas.TutorInsights,
    responses=CSV_RESPONSE,
)
async def tutor_insights(
    course_id: TaughtCourse, window: ReportWindow, output: Format, reports: Reports
) -> schemas.TutorInsights | Response:
    report = await reports.tutor(course_id, window)
    return _csv(tutor_csv(report), f"tutor-{course_id}") if output == "csv" else report


@router.get(
    "/analytics/courses/{course_id:uuid}/at-risk",
    summary="A course's learners at risk, each with the rules they meet",
    description="Active learners with no activity for AT_RISK_INACTIVE_DAYS days, falling "
    "quiz scores or stalled progress (rules in the README), most reasons first. The "
    "course's instructors and admins.",
    response_model=Page[schemas.AtRiskLearner],
    responses=CSV_RESPONSE,
)
async def learners_at_risk(
    course_id: TaughtCourse,
    paging: Paging,
    output: Format,
    reports: Reports,
    clock: ClockDep,
    runtime: RuntimeDep,
) -> Page[schemas.AtRiskLearner] | Response:
    page = await reports.at_risk(
        course_id,
        clock.now(),
        inactive_days=runtime.settings.at_risk_inactive_days,
        page=paging,
    )
    return _csv(at_risk_csv(page), f"at-risk-{course_id}") if output == "csv" else page


@router.get(
    "/me/analytics",
    summary="The caller's learning dashboard",
    description="Time on task (in all, and over the last 7 UTC days), streak of days with "
    "activity, progress in each enrolled course, and the last grades released.",
    response_model=schemas.LearnerDashboard,
    responses=CSV_RESPONSE,
)
async def my_analytics(
    caller: CurrentUser, output: Format, reports: Reports, clock: ClockDep
) -> schemas.LearnerDashboard | Response:
    report = await reports.dashboard(caller.id, clock.now().astimezone(dt.UTC).date())
    return _csv(dashboard_csv(report), "my-analytics") if output == "csv" else report
