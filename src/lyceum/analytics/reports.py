"""The analytics reports for a course's instructors and admins (overview, lesson funnel,
quiz item analysis, rubric scores, tutor insights, learners at risk) and the learner's
own dashboard: each assembled from a handful of queries of `report_repository`, and
written as JSON (the schemas) or CSV (the `*_csv` functions, the same numbers)."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any, Final

import numpy as np

from lyceum.analytics import insights, risk
from lyceum.analytics import report_schemas as schemas
from lyceum.analytics.report_repository import AnalyticsReportRepository
from lyceum.kit.csvexport import csv_text
from lyceum.kit.errors import Invalid, NotFound
from lyceum.kit.pagination import Page, PageParams
from lyceum.kit.periods import Period, days_ending
from lyceum.models.assessments import Assignment, Quiz

# Without `from`, a windowed report covers the 30 days up to `to` (default: today, UTC);
# a window is at most a year and a day.
DEFAULT_DAYS: Final = 30
MAX_DAYS: Final = 366
# Unanswered topics shown by the tutor report.
TOPIC_LIMIT: Final = 10


def window_out(window: Period) -> schemas.AnalyticsWindow:
    return schemas.AnalyticsWindow(first_day=window.first, last_day=window.last)


def window_of(first: dt.date | None, last: dt.date | None, *, today: dt.date) -> Period:
    """`to` defaults to today, `from` to 29 days before `to`; `from` may not be after
    `to` nor more than 366 days before it (422 naming `from`)."""
    last = last or today
    first = first or days_ending(last, DEFAULT_DAYS)
    if first > last:
        raise Invalid("`from` is after `to`.", field="from")
    if (last - first).days + 1 > MAX_DAYS:
        raise Invalid(f"A report covers at most {MAX_DAYS} days.", field="from")
    return Period(first, last)


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


class AnalyticsReports:
    def __init__(self, repository: AnalyticsReportRepository) -> None:
        self.repository = repository

    # --- what a report is about ---------------------------------------------------

    async def quiz(self, quiz_id: uuid.UUID) -> Quiz:
        quiz = await self.repository.quiz(quiz_id)
        if quiz is None:
            raise NotFound("No such quiz.")
        return quiz

    async def assignment(self, assignment_id: uuid.UUID) -> Assignment:
        assignment = await self.repository.assignment(assignment_id)
        if assignment is None:
            raise NotFound("No such assignment.")
        return assignment

    # --- the reports --------------------------------------------------------------

    async def overview(
        self, course_id: uuid.UUID, window: Period, now: dt.datetime
    ) -> schemas.CourseOverview:
        """Enrollments by status; learners active over 7 and 30 days (an enrollment
        whose later of the rollup's last event and the enrollment's last activity is
        within that many days before now); completion rate (completed / not cancelled);
        median time from enrollment to completion; and every day of the window from the
        course/day rollup (days without a row are zeros)."""
        summary = await self.repository.enrollment_summary(course_id, now)
        days_found = await self.repository.course_days(course_id, window.first, window.last)
        rows = {row.day: row for row in days_found}
        not_cancelled = summary.total - summary.cancelled
        days = []
        for day in window.days():
            row = rows.get(day)
            days.append(
                schemas.CourseActivityDay(
                    day=day,
                    events=row.events if row else 0,
                    time_ms=row.time_ms if row else 0,
                    views=row.views if row else 0,
                    completions=row.completions if row else 0,
                    enrollments=row.enrollments if row else 0,
                    tutor_questions=row.tutor_questions if row else 0,
                )
            )
        return schemas.CourseOverview(
            course_id=course_id,
            window=window_out(window),
            enrollments=schemas.EnrollmentCounts(
                total=summary.total,
                active=summary.active,
                completed=summary.completed,
                cancelled=summary.cancelled,
            ),
            active_learners_7d=summary.active_7d,
            active_learners_30d=summary.active_30d,
            completion_rate=summary.completed / not_cancelled if not_cancelled else None,
            median_seconds_to_complete=_number(summary.median_seconds),
            days=days,
        )

    async def lessons(self, course_id: uuid.UUID) -> schemas.LessonFunnel:
        """The funnel over the course's enrolled learners (any status), lessons in
        syllabus order (module position, then lesson position):

        - reached: learners with a rollup row for the lesson (any event on it) or a
          completion of it;
        - completed: learners who completed it;
        - dropped: learners whose furthest reached lesson, in syllabus order, is this one
          and whose enrollment is not completed (they stopped here, for now or for good);
        - median / mean time on task: over the learners with time recorded on it."""
        rows = await self.repository.lesson_funnel(course_id)
        return schemas.LessonFunnel(
            course_id=course_id,
            learners=await self.repository.learner_count(course_id),
            items=[
                schemas.LessonFunnelRow(
                    module_id=row.module_id,
                    module_title=row.module_title,
                    module_position=row.module_position,
                    lesson_id=row.lesson_id,
                    lesson_title=row.lesson_title,
                    lesson_position=row.lesson_position,
                    reached=row.reached,
                    completed=row.completed,
                    dropped=row.dropped,
                    median_time_ms=_number(row.median_time_ms),
                    mean_time_ms=_number(row.mean_time_ms),
                )
                for row in rows
            ],
        )

    async def quiz_items(self, quiz_id: uuid.UUID) -> schemas.QuizItemAnalysis:
        """Item analysis over each learner's first graded attempt (later attempts are
        practised on the same questions); see `insights.item_statistics`."""
        items = await self.repository.counted_attempt_items(quiz_id)
        snapshots = {
            row.question_id: row for row in await self.repository.question_snapshots(quiz_id)
        }
        totals: dict[uuid.UUID, list[float]] = {}
        for item in items:
            total = totals.setdefault(item.attempt_id, [0.0, 0.0])
            total[0] += float(item.awarded or 0.0)
            total[1] += float(item.points)
        by_question: dict[uuid.UUID, list[insights.ItemResponse]] = {}
        kinds: dict[uuid.UUID, str] = {}
        positions: dict[uuid.UUID, int] = {}
        for item in items:
            awarded, points = totals[item.attempt_id]
            kinds[item.question_id] = str(item.kind)
            positions[item.question_id] = min(
                item.position, positions.get(item.question_id, item.position)
            )
            by_question.setdefault(item.question_id, []).append(
                insights.ItemResponse(
                    awarded=float(item.awarded or 0.0),
                    points=float(item.points),
                    attempt_awarded=awarded,
                    attempt_points=points,
                    response=item.response,
                )
            )
        rows = []
        for question_id, responses in by_question.items():
            kind = kinds[question_id]
            stats = insights.item_statistics(kind, responses)
            snapshot = snapshots.get(question_id)
            rows.append(
                schemas.QuizItemRow(
                    question_id=question_id,
                    kind=kind,
                    prompt=snapshot.prompt if snapshot else "",
                    attempts=stats.attempts,
                    difficulty=stats.difficulty,
                    discrimination=stats.discrimination,
                    upper_lower=stats.upper_lower,
                    unanswered=stats.unanswered,
                    options=_options(kind, snapshot, stats.chosen),
                    flags=stats.flags,
                )
            )
        # In the order the quiz shows them (a question's earliest place in an attempt).
        rows.sort(key=lambda row: (positions[row.question_id], row.prompt, str(row.question_id)))
        return schemas.QuizItemAnalysis(quiz_id=quiz_id, attempts=len(totals), items=rows)

    async def rubric(self, assignment: Assignment) -> schemas.RubricReport:
        """Per rubric criterion, over the submissions whose grade is settled: reviewed
        by an instructor (released to the learner or not yet) or released. Scoring
        proposals nobody accepted are not grades and do not count. A criterion's points
        fall in the highest level whose points they reach."""
        grades = await self.repository.settled_grades(assignment.id)
        criteria = (assignment.rubric or {}).get("criteria", [])
        points_by_criterion: dict[str, list[float]] = {str(c["id"]): [] for c in criteria}
        for grade in grades:
            for entry in (grade.final or {}).get("criteria", []):
                found = points_by_criterion.get(str(entry.get("criterion_id")))
                if found is not None and entry.get("points") is not None:
                    found.append(float(entry["points"]))
        rows = []
        for criterion in criteria:
            values = points_by_criterion[str(criterion["id"])]
            levels = list(criterion.get("levels", []))
            level_points = [float(level["points"]) for level in levels]
            counts = [0] * len(levels)
            for value in values:
                if levels:
                    counts[insights.level_index(value, level_points)] += 1
            rows.append(
                schemas.RubricCriterionRow(
                    criterion_id=str(criterion["id"]),
                    title=str(criterion.get("title", "")),
                    max_points=max(level_points, default=0.0),
                    count=len(values),
                    mean=insights.mean(values),
                    median=insights.median(values),
                    levels=[
                        schemas.RubricLevelCount(
                            title=str(level.get("title", "")),
                            points=float(level["points"]),
                            count=count,
                        )
                        for level, count in zip(levels, counts, strict=True)
                    ],
                )
            )
        return schemas.RubricReport(
            assignment_id=assignment.id,
            graded=len(grades),
            released=sum(1 for grade in grades if grade.status == "released"),
            items=rows,
        )

    async def tutor(self, course_id: uuid.UUID, window: Period) -> schemas.TutorInsights:
        """Questions asked to the tutor in the window, per lesson, answered from the
        material or not, and the most frequent unanswered topics (see
        `insights.topics`) among the window's latest 1,000 unanswered questions."""
        start, end = window.bounds()
        lessons = await self.repository.tutor_by_lesson(course_id, start, end)
        unanswered = await self.repository.unanswered_questions(course_id, start, end)
        pending = await self.repository.pending_embeddings(course_id, start, end)
        questions = [
            insights.Question(row.message_id, row.question, np.asarray(row.embedding, np.float32))
            for row in unanswered
        ]
        found = await asyncio.to_thread(insights.topics, questions, TOPIC_LIMIT)
        asked = sum(row.questions for row in lessons)
        answered = sum(row.answered for row in lessons)
        return schemas.TutorInsights(
            course_id=course_id,
            window=window_out(window),
            questions=asked,
            answered=answered,
            not_found=asked - answered,
            answered_share=answered / asked if asked else None,
            lessons=[
                schemas.TutorLessonRow(
                    lesson_id=row.lesson_id,
                    lesson_title=row.lesson_title,
                    questions=row.questions,
                    answered=row.answered,
                    not_found=row.questions - row.answered,
                )
                for row in lessons
            ],
            topics=[
                schemas.TutorTopic(
                    representative=topic.representative, count=topic.count, examples=topic.examples
                )
                for topic in found
            ],
            pending=pending,
        )

    async def at_risk(
        self, course_id: uuid.UUID, now: dt.datetime, *, inactive_days: int, page: PageParams
    ) -> Page[schemas.AtRiskLearner]:
        """The course's active learners that meet at least one rule of `risk`, most
        reasons first, then longest inactive first."""
        learners = await self.repository.active_learners(course_id)
        lesson_count = await self.repository.lesson_count(course_id)
        percents = await self.repository.quiz_percents(course_id)
        found = []
        for learner in learners:
            state = risk.LearnerState(
                enrolled_at=learner.enrolled_at,
                last_activity_at=learner.last_activity_at,
                lessons_completed=learner.lessons_completed,
                last_completion_at=learner.last_completion_at,
                quiz_percents=percents.get(learner.user_id, []),
            )
            reasons = risk.reasons(
                state, now, lesson_count=lesson_count, inactive_days=inactive_days
            )
            if reasons:
                found.append((learner, state, reasons))
        found.sort(
            key=lambda entry: (
                -len(entry[2]),
                entry[1].last_activity_at or entry[1].enrolled_at,
                str(entry[0].user_id),
            )
        )
        chosen = found[page.offset : page.offset + page.size]
        return Page.of(
            [
                schemas.AtRiskLearner(
                    user_id=learner.user_id,
                    full_name=learner.full_name,
                    email=learner.email,
                    enrolled_at=learner.enrolled_at,
                    last_activity_at=learner.last_activity_at,
                    lessons_completed=learner.lessons_completed,
                    lessons_total=lesson_count,
                    reasons=[schemas.RiskReason(code=r.code, detail=r.detail) for r in reasons],
                )
                for learner, _, reasons in chosen
            ],
            len(found),
            page,
        )

    async def dashboard(self, user_id: uuid.UUID, today: dt.date) -> schemas.LearnerDashboard:
        """The learner's time on task (all days; today and the 6 days before), streak,
        progress per course, and last grades."""
        days = await self.repository.learner_days(user_id)
        week_start = today - dt.timedelta(days=6)
        courses = await self.repository.learner_courses(user_id)
        scores = await self.repository.recent_scores(user_id)
        return schemas.LearnerDashboard(
            time_ms_total=sum(row.time_ms for row in days),
            time_ms_7d=sum(row.time_ms for row in days if week_start <= row.day <= today),
            streak_days=insights.streak(
                (row.day for row in days if row.events > 0 or row.time_ms > 0), today
            ),
            courses=[
                schemas.DashboardCourse(
                    course_id=row.id,
                    title=row.title,
                    status=str(row.status),
                    lessons_completed=row.lessons_completed,
                    lessons_total=row.lessons_total,
                    percent=round(100.0 * row.lessons_completed / row.lessons_total, 2)
                    if row.lessons_total
                    else 0.0,
                )
                for row in courses
            ],
            recent_scores=[
                schemas.DashboardScore(
                    kind=row.kind,
                    id=row.id,
                    title=row.title,
                    course_id=row.course_id,
                    score=float(row[4]),
                    max_score=float(row[5]),
                    percent=float(row.percent or 0.0),
                    at=row.at,
                )
                for row in scores
            ],
        )


def _options(kind: str, snapshot: Any, chosen: dict[str, int]) -> list[schemas.QuizOptionCount]:
    if kind == "true_false":
        correct = snapshot.correct if snapshot else None
        return [
            schemas.QuizOptionCount(
                option_id=value,
                text=value,
                correct=correct is (value == "true"),
                chosen=chosen.get(value, 0),
            )
            for value in ("true", "false")
        ]
    if kind not in ("single_choice", "multiple_choice") or snapshot is None:
        return []
    correct = snapshot.correct
    keys = set(correct) if isinstance(correct, list) else {correct}
    return [
        schemas.QuizOptionCount(
            option_id=str(option["id"]),
            text=str(option.get("text", "")),
            correct=option["id"] in keys,
            chosen=chosen.get(str(option["id"]), 0),
        )
        for option in snapshot.options or []
    ]


# --- CSV: the same numbers as the JSON --------------------------------------------


def _cell(value: float | None) -> float | str:
    return "" if value is None else value


def overview_csv(report: schemas.CourseOverview) -> str:
    """The summary figures, then one row per day: `metric, day, value` (a long table a
    spreadsheet pivots)."""
    summary: Sequence[tuple[str, float | None]] = (
        ("enrollments_total", report.enrollments.total),
        ("enrollments_active", report.enrollments.active),
        ("enrollments_completed", report.enrollments.completed),
        ("enrollments_cancelled", report.enrollments.cancelled),
        ("active_learners_7d", report.active_learners_7d),
        ("active_learners_30d", report.active_learners_30d),
        ("completion_rate", report.completion_rate),
        ("median_seconds_to_complete", report.median_seconds_to_complete),
    )
    rows: list[list[Any]] = [[name, "", _cell(value)] for name, value in summary]
    for day in report.days:
        for name in ("events", "time_ms", "views", "completions", "enrollments", "tutor_questions"):
            rows.append([name, day.day.isoformat(), getattr(day, name)])
    return csv_text(("metric", "day", "value"), rows)


def lessons_csv(report: schemas.LessonFunnel) -> str:
    return csv_text(
        (
            "module_position",
            "module_title",
            "lesson_position",
            "lesson_id",
            "lesson_title",
            "reached",
            "completed",
            "dropped",
            "median_time_ms",
            "mean_time_ms",
        ),
        (
            [
                row.module_position,
                row.module_title,
                row.lesson_position,
                str(row.lesson_id),
                row.lesson_title,
                row.reached,
                row.completed,
                row.dropped,
                _cell(row.median_time_ms),
                _cell(row.mean_time_ms),
            ]
            for row in report.items
        ),
    )


def quiz_items_csv(report: schemas.QuizItemAnalysis) -> str:
    """One row per question; option counts as `id=count` pairs, flags space-separated."""
    return csv_text(
        (
            "question_id",
            "kind",
            "prompt",
            "attempts",
            "difficulty",
            "discrimination",
            "upper_lower",
            "unanswered",
            "options",
            "flags",
        ),
        (
            [
                str(row.question_id),
                row.kind,
                row.prompt,
                row.attempts,
                _cell(row.difficulty),
                _cell(row.discrimination),
                _cell(row.upper_lower),
                row.unanswered,
                " ".join(f"{option.option_id}={option.chosen}" for option in row.options),
                " ".join(row.flags),
            ]
            for row in report.items
        ),
    )


def rubric_csv(report: schemas.RubricReport) -> str:
    """One row per criterion and level (the criterion's figures repeated)."""
    rows: list[list[Any]] = []
    for row in report.items:
        for level in row.levels or [schemas.RubricLevelCount(title="", points=0.0, count=0)]:
            rows.append(
                [
                    row.criterion_id,
                    row.title,
                    row.max_points,
                    row.count,
                    _cell(row.mean),
                    _cell(row.median),
                    level.title,
                    level.points,
                    level.count,
                ]
            )
    return csv_text(
        (
            "criterion_id",
            "criterion",
            "max_points",
            "count",
            "mean",
            "median",
            "level",
            "level_points",
            "level_count",
        ),
        rows,
    )


def tutor_csv(report: schemas.TutorInsights) -> str:
    """Per-lesson rows (`section` lesson), then the topics (`section` topic: the
    representative question in `label`, its count in `questions`)."""
    rows: list[list[Any]] = [
        [
            "lesson",
            "" if row.lesson_id is None else str(row.lesson_id),
            row.lesson_title or "",
            row.questions,
            row.answered,
            row.not_found,
        ]
        for row in report.lessons
    ]
    rows += [
        ["topic", "", topic.representative, topic.count, 0, topic.count] for topic in report.topics
    ]
    return csv_text(("section", "lesson_id", "label", "questions", "answered", "not_found"), rows)


def at_risk_csv(page: Page[schemas.AtRiskLearner]) -> str:
    """The page's learners, one row each; reasons as `code: detail` lines in one cell."""
    return csv_text(
        (
            "user_id",
            "full_name",
            "email",
            "enrolled_at",
            "last_activity_at",
            "lessons_completed",
            "lessons_total",
            "reasons",
        ),
        (
            [
                str(row.user_id),
                row.full_name,
                row.email,
                row.enrolled_at.isoformat(),
                row.last_activity_at.isoformat() if row.last_activity_at else "",
                row.lessons_completed,
                row.lessons_total,
                "; ".join(reason.code for reason in row.reasons),
            ]
            for row in page.items
        ),
    )


def dashboard_csv(report: schemas.LearnerDashboard) -> str:
    """Course progress rows, after the totals as `metric` rows."""
    rows: list[list[Any]] = [
        ["time_ms_total", "", "", report.time_ms_total, ""],
        ["time_ms_7d", "", "", report.time_ms_7d, ""],
        ["streak_days", "", "", report.streak_days, ""],
    ]
    rows += [
        ["course", str(row.course_id), row.title, row.lessons_completed, row.lessons_total]
        for row in report.courses
    ]
    rows += [
        [f"{row.kind}_score", str(row.id), row.title, row.score, row.max_score]
        for row in report.recent_scores
    ]
    return csv_text(("metric", "id", "title", "value", "of"), rows)
