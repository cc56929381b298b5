"""The scoring job's side of an essay: what the scorer reads, storing its proposal
(with the near-duplicates it reveals) once, and giving up to a person."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.assessments.repository.essays import EssayRepository
from lyceum.assessments.schemas.submissions import ScoreProposal
from lyceum.assessments.scoring import ScoringInput
from lyceum.assessments.service.grades import (
    final_from_proposal,
    grade_state,
    release_grade,
    settle,
)
from lyceum.models.assessments import SubmissionStatus


async def scoring_input(session: AsyncSession, submission_id: uuid.UUID) -> ScoringInput | None:
    """What the scorer needs, or None when there is nothing to score (deleted, or
    scored already: the job is safe to run twice)."""
    repo = EssayRepository(session)
    submission = await repo.submission(submission_id)
    if submission is None or submission.status is not SubmissionStatus.scoring:
        return None
    assignment = await repo.assignment(submission.assignment_id)
    if assignment is None:
        return None
    return ScoringInput(
        prompt=assignment.prompt,
        criteria=list(assignment.rubric["criteria"]),
        reference_answer=assignment.reference_answer,
        min_words=assignment.min_words,
        max_words=assignment.max_words,
        essay=submission.text,
    )


async def store_score(
    session: AsyncSession,
    submission_id: uuid.UUID,
    proposal: ScoreProposal,
    vector: list[float],
    *,
    similarity_threshold: float,
    now: dt.datetime,
) -> bool:
    """Store the proposal once: a submission no longer `scoring` (scored by an earlier
    run, or graded by hand meanwhile) is left alone. Returns whether it stored."""
    repo = EssayRepository(session)
    submission = await repo.submission(submission_id, for_update=True)
    if submission is None or submission.status is not SubmissionStatus.scoring:
        return False
    assignment = await repo.assignment(submission.assignment_id)
    if assignment is None:
        return False
    submission.proposal = proposal.model_dump(mode="json")
    submission.scored_at = now
    submission.scoring_error = None
    submission.embedding = vector
    submission.status = SubmissionStatus.needs_review
    await repo.flush()
    near = await repo.near_duplicates(submission, vector, similarity_threshold)
    for other_id, similarity in near:
        await repo.flag_pair(submission.id, other_id, round(similarity, 4), now)
    if assignment.auto_release and not proposal.estimate and not near:
        before = grade_state(submission)
        settle(assignment, submission, final_from_proposal(submission.proposal, ""))
        await release_grade(
            session,
            assignment,
            submission,
            actor=None,
            action="auto_release",
            before=before,
            comment=f"Released automatically ({proposal.scorer}).",
            now=now,
        )
    return True


async def record_scoring_failure(
    session: AsyncSession, submission_id: uuid.UUID, reason: str
) -> None:
    """Scoring gave up: the submission waits for an instructor to grade it by hand."""
    submission = await EssayRepository(session).submission(submission_id, for_update=True)
    if submission is not None and submission.status is SubmissionStatus.scoring:
        submission.status = SubmissionStatus.needs_review
        submission.scoring_error = reason
