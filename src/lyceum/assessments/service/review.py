"""Instructors' review of essays: the review queue, one submission with the scorer's
proposal and its similarity flags, accepting or overriding the grade, releasing it,
and the course's audit trail of grade changes."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.assessments.repository.audit import AuditRepository
from lyceum.assessments.repository.essays import EssayRepository
from lyceum.assessments.schemas import submissions as schemas
from lyceum.assessments.service.common import audit
from lyceum.assessments.service.grades import (
    announce_if_passed,
    criterion_max,
    final_from_proposal,
    grade_state,
    release_grade,
    settle,
)
from lyceum.kit.errors import Conflict, Invalid
from lyceum.models.assessments import Assignment, EssaySubmission, SubmissionStatus
from lyceum.models.courses import Course
from lyceum.models.identity import User


@dataclass(frozen=True)
class SubmissionOfAssignment:
    """A submission with its assignment, as a permission dependency hands it over."""

    assignment: Assignment
    submission: EssaySubmission


class ReviewService:
    """Works on courses, assignments and submissions the caller may grade
    (`assessments.permissions`)."""

    def __init__(self, session: AsyncSession, *, now: dt.datetime) -> None:
        self.session = session
        self.repo = EssayRepository(session)
        self.now = now

    async def queue(
        self, course: Course, statuses: list[SubmissionStatus], offset: int, limit: int
    ) -> tuple[list[schemas.SubmissionSummary], int]:
        rows, total = await self.repo.submissions(
            course_id=course.id, statuses=statuses, offset=offset, limit=limit
        )
        return [_summary(*row) for row in rows], total

    async def for_assignment(
        self, assignment: Assignment, offset: int, limit: int
    ) -> tuple[list[schemas.SubmissionSummary], int]:
        rows, total = await self.repo.submissions(
            assignment_id=assignment.id, offset=offset, limit=limit
        )
        return [_summary(*row) for row in rows], total

    async def review(self, held: SubmissionOfAssignment) -> schemas.SubmissionReview:
        assignment, submission = held.assignment, held.submission
        names = await self.repo.user_names([submission.user_id])
        similar = await self.repo.similar_to(submission.id)
        final = submission.final or {}
        return schemas.SubmissionReview(
            id=submission.id,
            assignment_id=assignment.id,
            user_id=submission.user_id,
            learner_name=names.get(submission.user_id, ""),
            status=submission.status,
            text=submission.text,
            word_count=submission.word_count,
            source=submission.source,
            file_name=submission.file_name,
            submitted_at=submission.submitted_at,
            late_days=submission.late_days,
            penalty_percent=submission.penalty_percent,
            proposal=schemas.ScoreProposal.model_validate(submission.proposal)
            if submission.proposal
            else None,
            scoring_error=submission.scoring_error,
            final=[schemas.FinalCriterion.model_validate(item) for item in final["criteria"]]
            if final
            else None,
            comment=final.get("comment", ""),
            points_raw=submission.points_raw,
            points=submission.points,
            percent=submission.percent,
            passed=submission.passed,
            reviewed_at=submission.reviewed_at,
            released_at=submission.released_at,
            similar=[
                schemas.SimilarSubmission(submission_id=other, user_id=user, similarity=score)
                for other, user, score in similar
            ],
        )

    async def _settle_reviewed(
        self,
        reviewer: User,
        held: SubmissionOfAssignment,
        final: dict[str, Any],
        *,
        action: str,
        comment: str,
        release_now: bool,
    ) -> None:
        assignment, submission = held.assignment, held.submission
        before = grade_state(submission)
        settle(assignment, submission, final)
        was_released = submission.status is SubmissionStatus.released
        if not was_released:
            submission.status = SubmissionStatus.reviewed
        submission.reviewed_by = reviewer.id
        submission.reviewed_at = self.now
        await self.repo.flush()
        await audit(
            self.repo,
            course_id=submission.course_id,
            subject_type="submission",
            subject_id=submission.id,
            actor=reviewer,
            action=action,
            before=before,
            after=grade_state(submission),
            comment=comment,
            at=self.now,
        )
        if was_released and submission.passed and assignment.required:
            # A regrade of a released grade counts at once, for the learner too.
            await announce_if_passed(self.session, assignment, submission, self.now)
        elif release_now:
            await self._release(reviewer, held)

    async def _release(self, reviewer: User, held: SubmissionOfAssignment) -> None:
        await release_grade(
            self.session,
            held.assignment,
            held.submission,
            actor=reviewer,
            action="release",
            before=grade_state(held.submission),
            comment="",
            now=self.now,
        )

    async def accept(
        self, held: SubmissionOfAssignment, reviewer: User, data: schemas.AcceptIn
    ) -> None:
        submission = held.submission
        if submission.proposal is None:
            raise Conflict(
                "There is no proposal to accept yet; grade it by criterion instead.",
                slug="no-proposal",
            )
        if submission.status is SubmissionStatus.released:
            raise Conflict("This grade is released already.", slug="already-released")
        await self._settle_reviewed(
            reviewer,
            held,
            final_from_proposal(submission.proposal, data.comment),
            action="accept",
            comment=data.comment,
            release_now=data.release,
        )

    async def override(
        self, held: SubmissionOfAssignment, reviewer: User, data: schemas.OverrideIn
    ) -> None:
        submission = held.submission
        maxima = criterion_max(held.assignment)
        current = {
            item["criterion_id"]: item
            for item in (
                submission.final or final_from_proposal(submission.proposal or {"criteria": []}, "")
            )["criteria"]
        }
        given: dict[str, schemas.CriterionOverride] = {}
        for index, item in enumerate(data.criteria):
            field = f"body.criteria.{index}"
            if item.criterion_id not in maxima:
                raise Invalid("No such criterion in the rubric.", field=f"{field}.criterion_id")
            if item.criterion_id in given:
                raise Invalid("The criterion is graded twice.", field=f"{field}.criterion_id")
            if item.points > maxima[item.criterion_id]:
                raise Invalid(
                    f"This criterion is worth at most {maxima[item.criterion_id]:g} points.",
                    field=f"{field}.points",
                )
            given[item.criterion_id] = item
        missing = [
            criterion for criterion in maxima if criterion not in given and criterion not in current
        ]
        if missing:
            raise Invalid(
                f"There is no proposal to keep for {', '.join(missing)}: grade every criterion.",
                field="body.criteria",
            )
        final = {
            "criteria": [
                {
                    "criterion_id": criterion,
                    "points": round(given[criterion].points, 2)
                    if criterion in given
                    else float(current[criterion]["points"]),
                    "comment": given[criterion].comment
                    if criterion in given
                    else current[criterion].get("comment", ""),
                }
                for criterion in maxima
            ],
            "comment": data.comment,
        }
        await self._settle_reviewed(
            reviewer,
            held,
            final,
            action="override",
            comment=data.comment,
            release_now=data.release,
        )

    async def release(self, held: SubmissionOfAssignment, reviewer: User) -> None:
        status = held.submission.status
        if status is SubmissionStatus.released:
            raise Conflict("This grade is released already.", slug="already-released")
        if status is not SubmissionStatus.reviewed:
            raise Conflict(
                "Accept the proposal or grade the submission before releasing it.",
                slug="not-reviewed",
            )
        await self._release(reviewer, held)

    async def audit_trail(
        self, course: Course, subject_id: uuid.UUID | None, offset: int, limit: int
    ) -> tuple[list[schemas.AuditEntryOut], int]:
        rows, total = await AuditRepository(self.session).entries(
            course.id, subject_id, offset, limit
        )
        return [
            schemas.AuditEntryOut(
                id=entry.id,
                subject_type=entry.subject_type,
                subject_id=entry.subject_id,
                actor_id=entry.actor_id,
                actor_name=name,
                action=entry.action,
                before=entry.before,
                after=entry.after,
                comment=entry.comment,
                at=entry.at,
            )
            for entry, name in rows
        ], total


def _summary(
    submission: EssaySubmission, assignment: Assignment, name: str, flagged: bool
) -> schemas.SubmissionSummary:
    proposal = submission.proposal or {}
    return schemas.SubmissionSummary(
        id=submission.id,
        assignment_id=assignment.id,
        assignment_title=assignment.title,
        user_id=submission.user_id,
        learner_name=name,
        status=submission.status,
        word_count=submission.word_count,
        submitted_at=submission.submitted_at,
        late_days=submission.late_days,
        estimate=proposal.get("estimate") if proposal else None,
        proposed_points=proposal.get("total_points") if proposal else None,
        points=submission.points,
        flagged=flagged,
    )
