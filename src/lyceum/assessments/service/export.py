"""A learner's own attempts and submissions for their data export, shown as the
learner-facing routes show them: a score only where `GET /quizzes/{id}/attempts/me`
shows it, an essay's grade and feedback only once released (`views.my_submission`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.assessments import views
from lyceum.assessments.repository.essays import EssayRepository
from lyceum.assessments.repository.quizzes import QuizRepository
from lyceum.models.assessments import AttemptStatus, ReviewPolicy
from lyceum.models.identity import User


async def learner_export(session: AsyncSession, learner: User) -> dict[str, list[dict[str, Any]]]:
    attempts = []
    for attempt, quiz in await QuizRepository(session).attempts_of_learner(learner.id):
        hide = quiz.review_policy is ReviewPolicy.none or attempt.status is not AttemptStatus.graded
        summary = views.attempt_summary(attempt, hide_score=hide)
        attempts.append(
            {
                "quiz_id": str(quiz.id),
                "quiz_title": quiz.title,
                "course_id": str(quiz.course_id),
                **summary.model_dump(mode="json"),
            }
        )
    submissions = []
    for submission, assignment in await EssayRepository(session).submissions_of_learner(learner.id):
        mine = views.my_submission(assignment, submission)
        submissions.append(
            {
                "assignment_id": str(assignment.id),
                "assignment_title": assignment.title,
                "course_id": str(assignment.course_id),
                **mine.model_dump(mode="json"),
            }
        )
    return {"quiz_attempts": attempts, "essay_submissions": submissions}
