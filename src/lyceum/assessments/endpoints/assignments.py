"""Essay assignment routes: authoring (their instructors and admins), reading (the
course's members), and learners' submissions as text or a file."""

from __future__ import annotations

from typing import Annotated

from fastapi import File, Response, UploadFile, status

from lyceum.assessments import views
from lyceum.assessments.permissions import (
    Assignments,
    EditableAssignment,
    LearnerAssignment,
    ReadableAssignment,
    Submissions,
)
from lyceum.assessments.schemas import assignments as schemas
from lyceum.assessments.schemas import submissions as submission_schemas
from lyceum.courses.permissions import EditableCourse, MemberCourse
from lyceum.identity.permissions import CurrentUser, RuntimeDep
from lyceum.kit.errors import PayloadTooLarge
from lyceum.kit.pagination import Page, Paging
from lyceum.kit.routing import Router

router = Router()

API = "/api/v1"


@router.post(
    "/courses/{course_id:uuid}/assignments",
    status_code=status.HTTP_201_CREATED,
    summary="Create an essay assignment with its rubric (its instructors and admins)",
    description="Each criterion's levels go from lowest to highest points, and the top "
    "levels add up to `points`; otherwise 422 (`rubric-levels-out-of-order`, "
    "`rubric-points-mismatch`).",
)
async def create_assignment(
    course: EditableCourse,
    body: schemas.AssignmentCreate,
    caller: CurrentUser,
    service: Assignments,
    response: Response,
) -> schemas.AssignmentOut:
    assignment = await service.create(course, caller, body)
    response.headers["Location"] = f"{API}/assignments/{assignment.id}"
    return views.assignment_out(assignment)


@router.get(
    "/courses/{course_id:uuid}/assignments",
    summary="The course's assignments (learners: published ones)",
)
async def list_assignments(
    membership: MemberCourse, service: Assignments, paging: Paging
) -> Page[schemas.AssignmentInfo]:
    rows, total = await service.listing(
        membership.course,
        published_only=not membership.can_edit,
        offset=paging.offset,
        limit=paging.size,
    )
    return Page.of([views.assignment_info(row) for row in rows], total, paging)


@router.get(
    "/assignments/{assignment_id:uuid}",
    summary="An assignment's prompt and rubric (no reference answer or key terms)",
)
async def get_assignment(assignment: ReadableAssignment) -> schemas.AssignmentInfo:
    return views.assignment_info(assignment)


@router.get(
    "/assignments/{assignment_id:uuid}/definition",
    summary="An assignment with its reference answer and key terms (instructors, admins)",
)
async def get_assignment_definition(assignment: EditableAssignment) -> schemas.AssignmentOut:
    return views.assignment_out(assignment)


@router.patch("/assignments/{assignment_id:uuid}", summary="Change an assignment")
async def update_assignment(
    assignment: EditableAssignment, body: schemas.AssignmentUpdate, service: Assignments
) -> schemas.AssignmentOut:
    return views.assignment_out(await service.change(assignment, body))


@router.delete(
    "/assignments/{assignment_id:uuid}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete an assignment nobody has submitted to",
)
async def delete_assignment(assignment: EditableAssignment, service: Assignments) -> None:
    await service.remove(assignment)


@router.post(
    "/assignments/{assignment_id:uuid}/submissions",
    status_code=status.HTTP_201_CREATED,
    summary="Submit an essay as text (enrolled learners, once)",
    description="Word limits are enforced (422 `word-limit`). After the due date: 409 "
    "`deadline-passed` when the assignment refuses late work, otherwise accepted with "
    "its late penalty. Scoring runs in a job; the grade shows once released.",
)
async def submit_essay(
    assignment: LearnerAssignment,
    body: submission_schemas.EssayIn,
    caller: CurrentUser,
    service: Submissions,
    response: Response,
) -> submission_schemas.MySubmission:
    submission = await service.submit_text(assignment, caller, body.text)
    response.headers["Location"] = f"{API}/assignments/{assignment.id}/submissions/me"
    return views.my_submission(assignment, submission)


@router.post(
    "/assignments/{assignment_id:uuid}/submissions/file",
    status_code=status.HTTP_201_CREATED,
    summary="Submit an essay as a PDF or Word (.docx) file (enrolled learners, once)",
    description="Up to ESSAY_UPLOAD_MAX_BYTES; the file's name and content must agree and "
    "its text is extracted; the same rules as a text submission then apply. Reading the "
    "file is bounded: more than ESSAY_MAX_PAGES pages, or more text than an essay can "
    "hold, is refused with 413; a file that takes longer than "
    "ESSAY_EXTRACTION_TIMEOUT_SECONDS to read (or more memory than SANDBOX_MEMORY_MB) with "
    "422. Essay uploads are limited per learner to ESSAY_UPLOAD_RATE_LIMIT (429 with "
    "Retry-After beyond).",
)
async def submit_essay_file(
    assignment: LearnerAssignment,
    file: Annotated[UploadFile, File(description="The essay (.pdf or .docx).")],
    caller: CurrentUser,
    service: Submissions,
    runtime: RuntimeDep,
    response: Response,
) -> submission_schemas.MySubmission:
    settings = runtime.settings
    await runtime.rate_limiter.check(
        settings.essay_upload_rate_limit, "upload-essay", str(caller.id)
    )
    limit = settings.essay_upload_max_bytes
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLarge(f"The file exceeds the limit of {limit} bytes.", field="body.file")
    submission = await service.submit_file(
        assignment, caller, data, file.filename or "", runtime.sandbox
    )
    response.headers["Location"] = f"{API}/assignments/{assignment.id}/submissions/me"
    return views.my_submission(assignment, submission)


@router.get(
    "/assignments/{assignment_id:uuid}/submissions/me",
    summary="The caller's submission, with the grade once released",
)
async def my_submission(
    assignment: ReadableAssignment, caller: CurrentUser, service: Submissions
) -> submission_schemas.MySubmission:
    return views.my_submission(assignment, await service.mine(assignment, caller))
