"""Assessment routes: question banks, quizzes and attempts, essay assignments and their
review, the gradebook. Parse, authorize (the services check course roles and
ownership), call the service, shape the answer."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, File, Query, Response, UploadFile, status

from lyceum.assessments import schemas, views
from lyceum.assessments.essays import EssayService
from lyceum.assessments.gradebook import GradebookService
from lyceum.assessments.repository import QuestionFilters
from lyceum.assessments.service import AssessmentService
from lyceum.courses.permissions import Courses
from lyceum.identity.permissions import CurrentUser, RuntimeDep
from lyceum.kit.clock import ClockDep
from lyceum.kit.db import Session
from lyceum.kit.errors import PayloadTooLarge
from lyceum.kit.pagination import Page, Paging
from lyceum.models.assessments import (
    AttemptStatus,
    Difficulty,
    QuestionKind,
    ReviewPolicy,
    SubmissionStatus,
)

assessments = APIRouter(tags=["assessments"])

API = "/api/v1"


async def assessment_service(
    session: Session, courses: Courses, runtime: RuntimeDep, clock: ClockDep
) -> AssessmentService:
    return AssessmentService(session, courses, settings=runtime.settings, now=clock.now())


async def essay_service(
    session: Session, courses: Courses, runtime: RuntimeDep, clock: ClockDep
) -> EssayService:
    return EssayService(session, courses, settings=runtime.settings, now=clock.now())


async def gradebook_service(session: Session, courses: Courses) -> GradebookService:
    return GradebookService(session, courses)


Assessments = Annotated[AssessmentService, Depends(assessment_service)]
Essays = Annotated[EssayService, Depends(essay_service)]
Gradebooks = Annotated[GradebookService, Depends(gradebook_service)]
TagQuery = Annotated[str | None, Query(min_length=1, max_length=50, pattern=r"^[^\x00]*$")]


# Question bank --------------------------------------------------------------------------


@assessments.post(
    "/courses/{course_id:uuid}/questions",
    status_code=status.HTTP_201_CREATED,
    summary="Add a question to the course's bank (its instructors and admins)",
    description="Single choice, multiple choice, true/false, short answer (exact, "
    "case-insensitive, regex or numeric with tolerance) or essay; `kind` selects the "
    "shape. Regex answers are vetted: invalid or potentially catastrophic patterns "
    "answer 422 (`unsafe-pattern`).",
)
async def create_question(
    course_id: uuid.UUID,
    body: schemas.QuestionIn,
    caller: CurrentUser,
    service: Assessments,
    response: Response,
) -> schemas.QuestionOut:
    question = await service.create_question(caller, course_id, body)
    response.headers["Location"] = f"{API}/questions/{question.id}"
    return views.question_out(question)


@assessments.get(
    "/courses/{course_id:uuid}/questions",
    summary="The course's question bank (its instructors and admins)",
)
async def list_questions(
    course_id: uuid.UUID,
    caller: CurrentUser,
    service: Assessments,
    paging: Paging,
    tag: TagQuery = None,
    kind: QuestionKind | None = None,
    difficulty: Difficulty | None = None,
) -> Page[schemas.QuestionOut]:
    rows, total = await service.questions(
        caller,
        course_id,
        QuestionFilters(tag=tag, kind=kind, difficulty=difficulty),
        paging.offset,
        paging.size,
    )
    return Page.of([views.question_out(row) for row in rows], total, paging)


@assessments.get("/questions/{question_id:uuid}", summary="One question with its key")
async def get_question(
    question_id: uuid.UUID, caller: CurrentUser, service: Assessments
) -> schemas.QuestionOut:
    return views.question_out(await service.editable_question(caller, question_id))


@assessments.put(
    "/questions/{question_id:uuid}",
    summary="Replace a question (attempts already started keep the version they drew)",
)
async def replace_question(
    question_id: uuid.UUID, body: schemas.QuestionIn, caller: CurrentUser, service: Assessments
) -> schemas.QuestionOut:
    return views.question_out(await service.replace_question(caller, question_id, body))


@assessments.delete(
    "/questions/{question_id:uuid}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a question (409 while a quiz names it)",
)
async def delete_question(
    question_id: uuid.UUID, caller: CurrentUser, service: Assessments
) -> None:
    await service.delete_question(caller, question_id)


# Quizzes --------------------------------------------------------------------------------


@assessments.post(
    "/courses/{course_id:uuid}/quizzes",
    status_code=status.HTTP_201_CREATED,
    summary="Create a quiz (its instructors and admins)",
    description="`sections` compose it in order: fixed questions, and `draw` questions "
    "picked at random per attempt from the bank's questions with a `tag`.",
)
async def create_quiz(
    course_id: uuid.UUID,
    body: schemas.QuizCreate,
    caller: CurrentUser,
    service: Assessments,
    response: Response,
) -> schemas.QuizOut:
    quiz, sections = await service.create_quiz(caller, course_id, body)
    response.headers["Location"] = f"{API}/quizzes/{quiz.id}"
    return views.quiz_out(quiz, sections)


@assessments.get(
    "/courses/{course_id:uuid}/quizzes",
    summary="The course's quizzes (learners: published ones)",
)
async def list_quizzes(
    course_id: uuid.UUID, caller: CurrentUser, service: Assessments, paging: Paging
) -> Page[schemas.QuizInfo]:
    rows, total = await service.quizzes(caller, course_id, paging.offset, paging.size)
    return Page.of([views.quiz_info(quiz, sections) for quiz, sections in rows], total, paging)


@assessments.get("/quizzes/{quiz_id:uuid}", summary="A quiz's settings (never its questions)")
async def get_quiz(
    quiz_id: uuid.UUID, caller: CurrentUser, service: Assessments
) -> schemas.QuizInfo:
    quiz, _ = await service.readable_quiz(caller, quiz_id)
    return views.quiz_info(quiz, await service.sections_of(quiz))


@assessments.get(
    "/quizzes/{quiz_id:uuid}/definition",
    summary="A quiz with its composition (its instructors and admins)",
)
async def get_quiz_definition(
    quiz_id: uuid.UUID, caller: CurrentUser, service: Assessments
) -> schemas.QuizOut:
    _, quiz = await service.editable_quiz(caller, quiz_id)
    return views.quiz_out(quiz, await service.sections_of(quiz))


@assessments.patch("/quizzes/{quiz_id:uuid}", summary="Change a quiz")
async def update_quiz(
    quiz_id: uuid.UUID, body: schemas.QuizUpdate, caller: CurrentUser, service: Assessments
) -> schemas.QuizOut:
    quiz, sections = await service.update_quiz(caller, quiz_id, body)
    return views.quiz_out(quiz, sections)


@assessments.delete(
    "/quizzes/{quiz_id:uuid}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a quiz nobody has attempted",
)
async def delete_quiz(quiz_id: uuid.UUID, caller: CurrentUser, service: Assessments) -> None:
    await service.delete_quiz(caller, quiz_id)


# Attempts -------------------------------------------------------------------------------


@assessments.post(
    "/quizzes/{quiz_id:uuid}/attempts",
    status_code=status.HTTP_201_CREATED,
    summary="Start an attempt (enrolled learners); an attempt in progress is resumed",
    description="The server draws the questions and fixes the deadline (the time limit, "
    "capped by the quiz's closing time). 200 with the attempt in progress if there is "
    "one; 409 `no-attempts-left`, `quiz-not-open` or `quiz-closed` otherwise.",
    responses={200: {"model": schemas.AttemptSheet, "description": "Resumed."}},
)
async def start_attempt(
    quiz_id: uuid.UUID,
    caller: CurrentUser,
    service: Assessments,
    clock: ClockDep,
    response: Response,
) -> schemas.AttemptSheet:
    attempt, items, created = await service.start_attempt(caller, quiz_id)
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    response.headers["Location"] = f"{API}/attempts/{attempt.id}"
    return views.attempt_sheet(attempt, items, clock.now())


@assessments.get(
    "/quizzes/{quiz_id:uuid}/attempts/me",
    summary="The caller's attempts at a quiz, newest first",
)
async def my_attempts(
    quiz_id: uuid.UUID, caller: CurrentUser, service: Assessments, paging: Paging
) -> Page[schemas.AttemptSummary]:
    quiz, rows, total = await service.my_attempts(caller, quiz_id, paging.offset, paging.size)
    hide = quiz.review_policy is ReviewPolicy.none
    return Page.of(
        [
            views.attempt_summary(
                attempt, hide_score=hide or attempt.status is not AttemptStatus.graded
            )
            for attempt in rows
        ],
        total,
        paging,
    )


@assessments.get(
    "/quizzes/{quiz_id:uuid}/attempts",
    summary="Every learner's attempts at a quiz (its instructors and admins)",
)
async def quiz_attempts(
    quiz_id: uuid.UUID, caller: CurrentUser, service: Assessments, paging: Paging
) -> Page[schemas.AttemptSummary]:
    rows, total = await service.quiz_attempts(caller, quiz_id, paging.offset, paging.size)
    return Page.of([views.attempt_summary(attempt) for attempt in rows], total, paging)


@assessments.get(
    "/attempts/{attempt_id:uuid}",
    summary="The caller's attempt: its questions and saved answers (no keys)",
    description="Past its deadline an attempt in progress is graded now, with what was saved.",
)
async def get_attempt(
    attempt_id: uuid.UUID, caller: CurrentUser, service: Assessments, clock: ClockDep
) -> schemas.AttemptSheet:
    _, attempt, items = await service.attempt_for_learner(caller, attempt_id)
    return views.attempt_sheet(attempt, items, clock.now())


@assessments.put(
    "/attempts/{attempt_id:uuid}/answers",
    summary="Save answers (any subset; an answer with no value clears it)",
    description="Refused after the deadline (409 `time-up`, and the attempt is graded with "
    "the answers saved before it) or once submitted (409 `already-submitted`); an answer "
    "to a question not in the attempt is 422 `not-in-attempt`, and then nothing is saved.",
)
async def save_answers(
    attempt_id: uuid.UUID,
    body: schemas.AnswersIn,
    caller: CurrentUser,
    service: Assessments,
    clock: ClockDep,
) -> schemas.AttemptSheet:
    attempt, items = await service.save_answers(caller, attempt_id, body.answers)
    return views.attempt_sheet(attempt, items, clock.now())


@assessments.post(
    "/attempts/{attempt_id:uuid}/submit",
    summary="Submit an attempt (with last answers); graded at once",
    description="Objective questions are graded immediately; essay questions wait for an "
    "instructor (`needs_review`). The result shows what the quiz's review policy allows.",
)
async def submit_attempt(
    attempt_id: uuid.UUID,
    caller: CurrentUser,
    service: Assessments,
    clock: ClockDep,
    body: schemas.SubmitIn | None = None,
) -> schemas.AttemptResult:
    quiz, attempt, items = await service.submit(
        caller, attempt_id, body.answers if body is not None else []
    )
    return views.attempt_result(quiz, attempt, items, clock.now())


@assessments.get(
    "/attempts/{attempt_id:uuid}/result",
    summary="A submitted attempt's result, as the quiz's review policy allows",
)
async def attempt_result(
    attempt_id: uuid.UUID, caller: CurrentUser, service: Assessments, clock: ClockDep
) -> schemas.AttemptResult:
    quiz, attempt, items = await service.result(caller, attempt_id)
    return views.attempt_result(quiz, attempt, items, clock.now())


@assessments.get(
    "/attempts/{attempt_id:uuid}/review",
    summary="An attempt with keys and answers (the course's instructors and admins)",
)
async def review_attempt(
    attempt_id: uuid.UUID, caller: CurrentUser, service: Assessments
) -> schemas.AttemptReview:
    _, attempt, items = await service.attempt_for_review(caller, attempt_id)
    return views.attempt_review(attempt, items)


@assessments.post(
    "/attempts/{attempt_id:uuid}/grades",
    summary="Grade or regrade items of a submitted attempt (audited)",
)
async def grade_attempt_items(
    attempt_id: uuid.UUID, body: schemas.ItemGradesIn, caller: CurrentUser, service: Assessments
) -> schemas.AttemptReview:
    attempt, items = await service.grade_items(caller, attempt_id, body.grades)
    return views.attempt_review(attempt, items)


# Essay assignments ----------------------------------------------------------------------


@assessments.post(
    "/courses/{course_id:uuid}/assignments",
    status_code=status.HTTP_201_CREATED,
    summary="Create an essay assignment with its rubric (its instructors and admins)",
    description="Each criterion's levels go from lowest to highest points, and the top "
    "levels add up to `points`; otherwise 422 (`rubric-levels-out-of-order`, "
    "`rubric-points-mismatch`).",
)
async def create_assignment(
    course_id: uuid.UUID,
    body: schemas.AssignmentCreate,
    caller: CurrentUser,
    service: Essays,
    response: Response,
) -> schemas.AssignmentOut:
    assignment = await service.create(caller, course_id, body)
    response.headers["Location"] = f"{API}/assignments/{assignment.id}"
    return views.assignment_out(assignment)


@assessments.get(
    "/courses/{course_id:uuid}/assignments",
    summary="The course's assignments (learners: published ones)",
)
async def list_assignments(
    course_id: uuid.UUID, caller: CurrentUser, service: Essays, paging: Paging
) -> Page[schemas.AssignmentInfo]:
    rows, total = await service.listing(caller, course_id, paging.offset, paging.size)
    return Page.of([views.assignment_info(row) for row in rows], total, paging)


@assessments.get(
    "/assignments/{assignment_id:uuid}",
    summary="An assignment's prompt and rubric (no reference answer or key terms)",
)
async def get_assignment(
    assignment_id: uuid.UUID, caller: CurrentUser, service: Essays
) -> schemas.AssignmentInfo:
    assignment, _ = await service.readable(caller, assignment_id)
    return views.assignment_info(assignment)


@assessments.get(
    "/assignments/{assignment_id:uuid}/definition",
    summary="An assignment with its reference answer and key terms (instructors, admins)",
)
async def get_assignment_definition(
    assignment_id: uuid.UUID, caller: CurrentUser, service: Essays
) -> schemas.AssignmentOut:
    _, assignment = await service.editable(caller, assignment_id)
    return views.assignment_out(assignment)


@assessments.patch("/assignments/{assignment_id:uuid}", summary="Change an assignment")
async def update_assignment(
    assignment_id: uuid.UUID,
    body: schemas.AssignmentUpdate,
    caller: CurrentUser,
    service: Essays,
) -> schemas.AssignmentOut:
    return views.assignment_out(await service.update(caller, assignment_id, body))


@assessments.delete(
    "/assignments/{assignment_id:uuid}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete an assignment nobody has submitted to",
)
async def delete_assignment(assignment_id: uuid.UUID, caller: CurrentUser, service: Essays) -> None:
    await service.delete(caller, assignment_id)


@assessments.post(
    "/assignments/{assignment_id:uuid}/submissions",
    status_code=status.HTTP_201_CREATED,
    summary="Submit an essay as text (enrolled learners, once)",
    description="Word limits are enforced (422 `word-limit`). After the due date: 409 "
    "`deadline-passed` when the assignment refuses late work, otherwise accepted with "
    "its late penalty. Scoring runs in a job; the grade shows once released.",
)
async def submit_essay(
    assignment_id: uuid.UUID,
    body: schemas.EssayIn,
    caller: CurrentUser,
    service: Essays,
    response: Response,
) -> schemas.MySubmission:
    assignment, submission = await service.submit_text(caller, assignment_id, body.text)
    response.headers["Location"] = f"{API}/assignments/{assignment.id}/submissions/me"
    return views.my_submission(assignment, submission)


@assessments.post(
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
    assignment_id: uuid.UUID,
    file: Annotated[UploadFile, File(description="The essay (.pdf or .docx).")],
    caller: CurrentUser,
    service: Essays,
    runtime: RuntimeDep,
    response: Response,
) -> schemas.MySubmission:
    settings = runtime.settings
    await runtime.rate_limiter.check(
        settings.essay_upload_rate_limit, "upload-essay", str(caller.id)
    )
    limit = settings.essay_upload_max_bytes
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLarge(f"The file exceeds the limit of {limit} bytes.", field="body.file")
    assignment, submission = await service.submit_file(
        caller, assignment_id, data, file.filename or "", runtime.sandbox
    )
    response.headers["Location"] = f"{API}/assignments/{assignment.id}/submissions/me"
    return views.my_submission(assignment, submission)


@assessments.get(
    "/assignments/{assignment_id:uuid}/submissions/me",
    summary="The caller's submission, with the grade once released",
)
async def my_submission(
    assignment_id: uuid.UUID, caller: CurrentUser, service: Essays
) -> schemas.MySubmission:
    assignment, submission = await service.mine(caller, assignment_id)
    return views.my_submission(assignment, submission)


@assessments.get(
    "/assignments/{assignment_id:uuid}/submissions",
    summary="Every submission to an assignment (its instructors and admins)",
)
async def assignment_submissions(
    assignment_id: uuid.UUID, caller: CurrentUser, service: Essays, paging: Paging
) -> Page[schemas.SubmissionSummary]:
    rows, total = await service.for_assignment(caller, assignment_id, paging.offset, paging.size)
    return Page.of(rows, total, paging)


@assessments.get(
    "/courses/{course_id:uuid}/review-queue",
    summary="Submissions waiting for an instructor, oldest first",
    description="By default those `scoring`, `needs_review` or `reviewed` (not released); "
    "`flagged` marks near-duplicates of another learner's submission.",
)
async def review_queue(
    course_id: uuid.UUID,
    caller: CurrentUser,
    service: Essays,
    paging: Paging,
    status_: Annotated[list[SubmissionStatus] | None, Query(alias="status")] = None,
) -> Page[schemas.SubmissionSummary]:
    statuses = status_ or [
        SubmissionStatus.scoring,
        SubmissionStatus.needs_review,
        SubmissionStatus.reviewed,
    ]
    rows, total = await service.queue(caller, course_id, statuses, paging.offset, paging.size)
    return Page.of(rows, total, paging)


@assessments.get(
    "/submissions/{submission_id:uuid}",
    summary="A submission with its proposal, final grade and similarity flags (instructors)",
)
async def get_submission(
    submission_id: uuid.UUID, caller: CurrentUser, service: Essays
) -> schemas.SubmissionReview:
    return await service.review(caller, submission_id)


@assessments.post(
    "/submissions/{submission_id:uuid}/accept",
    summary="Accept the scorer's proposal as the grade (audited)",
)
async def accept_submission(
    submission_id: uuid.UUID, body: schemas.AcceptIn, caller: CurrentUser, service: Essays
) -> schemas.SubmissionReview:
    assignment, submission = await service.accept(caller, submission_id, body)
    return await service.review_view(assignment, submission)


@assessments.put(
    "/submissions/{submission_id:uuid}/grade",
    summary="Set points per criterion with a comment (audited)",
)
async def grade_submission(
    submission_id: uuid.UUID, body: schemas.OverrideIn, caller: CurrentUser, service: Essays
) -> schemas.SubmissionReview:
    assignment, submission = await service.override(caller, submission_id, body)
    return await service.review_view(assignment, submission)


@assessments.post(
    "/submissions/{submission_id:uuid}/release",
    summary="Release the grade to the learner (audited)",
)
async def release_submission(
    submission_id: uuid.UUID, caller: CurrentUser, service: Essays
) -> schemas.SubmissionReview:
    assignment, submission = await service.release(caller, submission_id)
    return await service.review_view(assignment, submission)


@assessments.get(
    "/courses/{course_id:uuid}/assessment-audit",
    summary="Every grade change in the course: who, when, before, after (instructors)",
)
async def assessment_audit(
    course_id: uuid.UUID,
    caller: CurrentUser,
    service: Essays,
    paging: Paging,
    subject_id: uuid.UUID | None = None,
) -> Page[schemas.AuditEntryOut]:
    rows, total = await service.audit_trail(
        caller, course_id, subject_id, paging.offset, paging.size
    )
    return Page.of(rows, total, paging)


# Gradebook ------------------------------------------------------------------------------


@assessments.get(
    "/courses/{course_id:uuid}/gradebook",
    summary="Learners x assessments with weighted totals (its instructors and admins)",
)
async def gradebook(
    course_id: uuid.UUID, caller: CurrentUser, service: Gradebooks, paging: Paging
) -> schemas.Gradebook:
    return await service.gradebook(caller, course_id, paging.page, paging.size)


@assessments.get(
    "/courses/{course_id:uuid}/gradebook.csv",
    summary="The whole gradebook as CSV (its instructors and admins)",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "The gradebook"}},
)
async def gradebook_csv(course_id: uuid.UUID, caller: CurrentUser, service: Gradebooks) -> Response:
    body = await service.csv(caller, course_id)
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="gradebook-{course_id}.csv"'},
    )


@assessments.get(
    "/courses/{course_id:uuid}/grades/me",
    summary="The caller's own grades in a course",
)
async def my_grades(
    course_id: uuid.UUID, caller: CurrentUser, service: Gradebooks
) -> schemas.MyGrades:
    return await service.mine(caller, course_id)
