"""An essay's grade: the final points per criterion with the late penalty, what an
audit entry records of it, and releasing it to the learner.

A submission moves `scoring` -> `needs_review` -> `reviewed` -> `released`. The
scoring job stores a proposal; an instructor accepts it or overrides points per
criterion, then releases the grade. With `auto_release`, an AI score (never an
offline estimate, never a flagged near-duplicate) is released by the job itself.
Every change to a grade writes an audit entry with its before and after."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.assessments.repository.base import Repository
from lyceum.assessments.service.common import audit, passed
from lyceum.kit.events import emit
from lyceum.models.assessments import Assignment, EssaySubmission, SubmissionStatus
from lyceum.models.identity import User


def criterion_max(assignment: Assignment) -> dict[str, float]:
    return {
        criterion["id"]: float(criterion["levels"][-1]["points"])
        for criterion in assignment.rubric["criteria"]
    }


def grade_state(submission: EssaySubmission) -> dict[str, Any]:
    """What an audit entry records of a submission's grade."""
    return {
        "status": submission.status.value,
        "points": submission.points,
        "percent": submission.percent,
        "criteria": {
            item["criterion_id"]: item["points"]
            for item in (submission.final or {}).get("criteria", [])
        },
    }


def settle(assignment: Assignment, submission: EssaySubmission, final: dict[str, Any]) -> None:
    """Set the final grade: criteria points, the late penalty, percent and pass."""
    submission.final = final
    raw = round(sum(float(item["points"]) for item in final["criteria"]), 2)
    submission.points_raw = raw
    submission.points = round(raw * (1 - submission.penalty_percent / 100), 2)
    submission.percent = round(100 * submission.points / assignment.points, 2)
    submission.passed = submission.percent >= assignment.pass_percent


def final_from_proposal(proposal: dict[str, Any], comment: str) -> dict[str, Any]:
    return {
        "criteria": [
            {"criterion_id": item["criterion_id"], "points": item["points"], "comment": ""}
            for item in proposal["criteria"]
        ],
        "comment": comment,
    }


async def announce_if_passed(
    session: AsyncSession, assignment: Assignment, submission: EssaySubmission, now: dt.datetime
) -> None:
    """A released grade that passes counts at once (course completion reacts)."""
    if submission.passed:
        await passed(
            session,
            course_id=submission.course_id,
            user_id=submission.user_id,
            required=assignment.required,
            at=now,
        )


async def release_grade(
    session: AsyncSession,
    assignment: Assignment,
    submission: EssaySubmission,
    *,
    actor: User | None,
    action: str,
    before: dict[str, Any],
    comment: str,
    now: dt.datetime,
) -> None:
    repo = Repository(session)
    submission.status = SubmissionStatus.released
    submission.released_at = now
    await repo.flush()
    await audit(
        repo,
        course_id=submission.course_id,
        subject_type="submission",
        subject_id=submission.id,
        actor=actor,
        action=action,
        before=before,
        after=grade_state(submission),
        comment=comment,
        at=now,
    )
    await emit(
        session,
        "submission.graded",
        submission_id=str(submission.id),
        assignment_id=str(assignment.id),
        user_id=str(submission.user_id),
        course_id=str(submission.course_id),
        score=float(submission.points or 0.0),
        max_score=float(assignment.points),
    )
    await announce_if_passed(session, assignment, submission, now)
