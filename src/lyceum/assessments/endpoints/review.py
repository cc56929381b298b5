"""Essay review routes, for a course's instructors and admins: the submissions and the
review queue, one submission with the scorer's proposal, accepting, overriding and
releasing grades, and the audit trail of every grade change."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Query

from lyceum.assessments.permissions import (
    EditableAssignment,
    LockedReviewableSubmission,
    ReviewableSubmission,
    Reviews,
)
from lyceum.assessments.schemas import submissions as schemas
from lyceum.courses.permissions import EditableCourse
from lyceum.identity.permissions import CurrentUser
from lyceum.kit.pagination import Page, Paging
from lyceum.kit.routing import Router
from lyceum.models.assessments import SubmissionStatus

router = Router()


@router.get(
    "/assignments/{assignment_id:uuid}/submissions",
    summary="Every submission to an assignment (its instructors and admins)",
)
async def assignment_submissions(
    assignment: EditableAssignment, service: Reviews, paging: Paging
) -> Page[schemas.SubmissionSummary]:
    rows, total = await service.for_assignment(assignment, paging.offset, paging.size)
    return Page.of(rows, total, paging)


@router.get(
    "/courses/{course_id:uuid}/review-queue",
    summary="Submissions waiting for an instructor, oldest first",
    description="By default those `scoring`, `needs_review` or `reviewed` (not released); "
    "`flagged` marks near-duplicates of another learner's submission.",
)
async def review_queue(
    course: EditableCourse,
    service: Reviews,
    paging: Paging,
    status_: Annotated[list[SubmissionStatus] | None, Query(alias="status")] = None,
) -> Page[schemas.SubmissionSummary]:
    statuses = status_ or [
        SubmissionStatus.scoring,
        SubmissionStatus.needs_review,
        SubmissionStatus.reviewed,
    ]
    rows, total = await service.queue(course, statuses, paging.offset, paging.size)
    return Page.of(rows, total, paging)


@router.get(
    "/submissions/{submission_id:uuid}",
    summary="A submission with its proposal, final grade and similarity flags (instructors)",
)
async def get_submission(held: ReviewableSubmission, service: Reviews) -> schemas.SubmissionReview:
    return await service.review(held)


@router.post(
    "/submissions/{submission_id:uuid}/accept",
    summary="Accept the scorer's proposal as the grade (audited)",
)
async def accept_submission(
    held: LockedReviewableSubmission,
    body: schemas.AcceptIn,
    caller: CurrentUser,
    service: Reviews,
) -> schemas.SubmissionReview:
    await service.accept(held, caller, body)
    return await service.review(held)


@router.put(
    "/submissions/{submission_id:uuid}/grade",
    summary="Set points per criterion with a comment (audited)",
)
async def grade_submission(
    held: LockedReviewableSubmission,
    body: schemas.OverrideIn,
    caller: CurrentUser,
    service: Reviews,
) -> schemas.SubmissionReview:
    await service.override(held, caller, body)
    return await service.review(held)


@router.post(
    "/submissions/{submission_id:uuid}/release",
    summary="Release the grade to the learner (audited)",
)
async def release_submission(
    held: LockedReviewableSubmission, caller: CurrentUser, service: Reviews
) -> schemas.SubmissionReview:
    await service.release(held, caller)
    return await service.review(held)


@router.get(
    "/courses/{course_id:uuid}/assessment-audit",
    summary="Every grade change in the course: who, when, before, after (instructors)",
)
async def assessment_audit(
    course: EditableCourse,
    service: Reviews,
    paging: Paging,
    subject_id: uuid.UUID | None = None,
) -> Page[schemas.AuditEntryOut]:
    rows, total = await service.audit_trail(course, subject_id, paging.offset, paging.size)
    return Page.of(rows, total, paging)
