"""Response bodies of the analytics reports and the learner's dashboard. Times on task
are in milliseconds; percents are 0-100, shares 0-1."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Literal

from pydantic import BaseModel, Field


class AnalyticsWindow(BaseModel):
    first_day: dt.date = Field(description="First UTC day covered.")
    last_day: dt.date = Field(description="Last UTC day covered (included).")


class EnrollmentCounts(BaseModel):
    total: int = Field(description="Every enrollment, whatever its status.")
    active: int = Field(description="Enrolled and not completed or cancelled.")
    completed: int
    cancelled: int


class CourseActivityDay(BaseModel):
    day: dt.date = Field(description="UTC day.")
    events: int = Field(description="Learning events recorded.")
    time_ms: int = Field(description="Time on task reported by the events.")
    views: int
    completions: int = Field(description="Lessons completed.")
    enrollments: int = Field(description="New enrollments.")
    tutor_questions: int


class CourseOverview(BaseModel):
    course_id: uuid.UUID
    window: AnalyticsWindow
    enrollments: EnrollmentCounts
    active_learners_7d: int = Field(
        description="Learners enrolled (not cancelled) whose last activity in the course (analytics "
        "events or recorded progress) is within the 7 days before now."
    )
    active_learners_30d: int = Field(description="The same over 30 days.")
    completion_rate: float | None = Field(
        description="Completed enrollments / enrollments not cancelled (0-1); null without any."
    )
    median_seconds_to_complete: float | None = Field(
        description="Median of completed_at - enrolled_at over completed enrollments."
    )
    days: list[CourseActivityDay] = Field(description="Every day of the window, oldest first.")


class LessonFunnelRow(BaseModel):
    module_id: uuid.UUID
    module_title: str
    module_position: int
    lesson_id: uuid.UUID
    lesson_title: str
    lesson_position: int
    reached: int = Field(
        description="Enrolled learners with any event on the lesson or a completion of it."
    )
    completed: int = Field(description="Enrolled learners who completed the lesson.")
    dropped: int = Field(
        description="Learners whose furthest lesson reached (in syllabus order) is this one "
        "and whose enrollment is not completed."
    )
    median_time_ms: float | None = Field(
        description="Median time on task of the learners with time recorded on the lesson."
    )
    mean_time_ms: float | None


class LessonFunnel(BaseModel):
    course_id: uuid.UUID
    learners: int = Field(description="Enrolled learners (any status): the funnel's top.")
    items: list[LessonFunnelRow] = Field(description="Lessons in syllabus order.")


class QuizOptionCount(BaseModel):
    option_id: str
    text: str
    correct: bool
    chosen: int = Field(description="Attempts that chose it.")


class QuizItemRow(BaseModel):
    question_id: uuid.UUID
    kind: str
    prompt: str
    attempts: int = Field(description="Counted attempts that drew the question.")
    difficulty: float | None = Field(
        description="p: mean of awarded / points (the share correct for right/wrong items)."
    )
    discrimination: float | None = Field(
        description="Corrected item-total correlation (point-biserial for right/wrong "
        "items): item score against the attempt's percent on its other questions; null "
        "when either does not vary."
    )
    upper_lower: float | None = Field(
        description="Mean item score in the top 27% of attempts by total minus the bottom 27%."
    )
    unanswered: int
    options: list[QuizOptionCount] = Field(
        description="Choice and true/false items: each option and how often it was chosen."
    )
    flags: list[Literal["negative_discrimination", "too_hard", "too_easy", "few_attempts"]] = Field(
        description="negative_discrimination: below 0; too_hard: p < 0.2; too_easy: "
        "p > 0.95; few_attempts: under 20 attempts (read the rest with care)."
    )


class QuizItemAnalysis(BaseModel):
    quiz_id: uuid.UUID
    attempts: int = Field(description="Attempts counted: each learner's first graded attempt.")
    items: list[QuizItemRow]


class RubricLevelCount(BaseModel):
    title: str
    points: float
    count: int = Field(description="Grades whose points fall in this level.")


class RubricCriterionRow(BaseModel):
    criterion_id: str
    title: str
    max_points: float
    count: int = Field(description="Settled grades that score this criterion.")
    mean: float | None
    median: float | None
    levels: list[RubricLevelCount]


class RubricReport(BaseModel):
    assignment_id: uuid.UUID
    graded: int = Field(
        description="Submissions with a settled grade (reviewed or released) counted."
    )
    released: int = Field(description="Of which released to the learner.")
    items: list[RubricCriterionRow]


class TutorLessonRow(BaseModel):
    lesson_id: uuid.UUID | None = Field(description="Null: asked outside any lesson.")
    lesson_title: str | None
    questions: int
    answered: int = Field(description="Answered from the course material.")
    not_found: int = Field(description="The material did not answer.")


class TutorTopic(BaseModel):
    representative: str = Field(description="The question nearest the topic's centre.")
    count: int = Field(description="Unanswered questions in the topic.")
    examples: list[str] = Field(description="Up to three other questions of the topic.")


class TutorInsights(BaseModel):
    course_id: uuid.UUID
    window: AnalyticsWindow
    questions: int
    answered: int
    not_found: int
    answered_share: float | None = Field(description="answered / questions (0-1).")
    lessons: list[TutorLessonRow] = Field(description="Most questions first.")
    topics: list[TutorTopic] = Field(
        description="The most frequent unanswered topics, grouped by meaning."
    )
    pending: int = Field(
        description="Unanswered questions still waiting for their embedding (not grouped yet)."
    )


class RiskReason(BaseModel):
    code: Literal["inactive", "falling_scores", "stalled"]
    detail: str


class AtRiskLearner(BaseModel):
    user_id: uuid.UUID
    full_name: str
    email: str
    enrolled_at: dt.datetime
    last_activity_at: dt.datetime | None
    lessons_completed: int
    lessons_total: int
    reasons: list[RiskReason]


class DashboardCourse(BaseModel):
    course_id: uuid.UUID
    title: str
    status: str
    lessons_completed: int
    lessons_total: int
    percent: float = Field(description="lessons_completed / lessons_total, 0-100.")


class DashboardScore(BaseModel):
    kind: Literal["quiz", "essay"]
    id: uuid.UUID = Field(description="The quiz attempt or the essay submission.")
    title: str
    course_id: uuid.UUID
    score: float
    max_score: float
    percent: float
    at: dt.datetime = Field(description="When it was graded (quiz) or released (essay).")


class LearnerDashboard(BaseModel):
    time_ms_total: int = Field(description="Time on task over every day recorded.")
    time_ms_7d: int = Field(description="Time on task today and the 6 UTC days before.")
    streak_days: int = Field(
        description="Consecutive UTC days with activity, ending today or yesterday."
    )
    courses: list[DashboardCourse]
    recent_scores: list[DashboardScore] = Field(
        description="The last 10 grades the learner can see: graded quiz attempts (quizzes "
        "that show scores) and released essay grades, newest first."
    )
