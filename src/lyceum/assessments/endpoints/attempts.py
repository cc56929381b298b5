"""Attempt routes: learners take quizzes (start, save answers, submit, read the result
the review policy allows); instructors review and grade what needs a person."""

from __future__ import annotations

from fastapi import Response, status

from lyceum.assessments import views
from lyceum.assessments.permissions import (
    Attempts,
    EditableQuiz,
    LearnerQuiz,
    LockedReviewableAttempt,
    OwnAttempt,
    ReadableAttempt,
    ReadableQuiz,
    ReviewableAttempt,
)
from lyceum.assessments.schemas import attempts as schemas
from lyceum.identity.permissions import CurrentUser
from lyceum.kit.clock import ClockDep
from lyceum.kit.pagination import Page, Paging
from lyceum.kit.routing import Router
from lyceum.models.assessments import AttemptStatus, ReviewPolicy

router = Router()

API = "/api/v1"


@router.post(
    "/quizzes/{quiz_id:uuid}/attempts",
    status_code=status.HTTP_201_CREATED,
    summary="Start an attempt (enrolled learners); an attempt in progress is resumed",
    description="The server draws the questions and fixes the deadline (the time limit, "
    "capped by the quiz's closing time). 200 with the attempt in progress if there is "
    "one; 409 `no-attempts-left`, `quiz-not-open` or `quiz-closed` otherwise.",
    responses={200: {"model": schemas.AttemptSheet, "description": "Resumed."}},
)
async def start_attempt(
    quiz: LearnerQuiz,
    caller: CurrentUser,
    service: Attempts,
    clock: ClockDep,
    response: Response,
) -> schemas.AttemptSheet:
    attempt, items, created = await service.start(quiz, caller)
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    response.headers["Location"] = f"{API}/attempts/{attempt.id}"
    return views.attempt_sheet(attempt, items, clock.now())


@router.get(
    "/quizzes/{quiz_id:uuid}/attempts/me",
    summary="The caller's attempts at a quiz, newest first",
)
async def my_attempts(
    quiz: ReadableQuiz, caller: CurrentUser, service: Attempts, paging: Paging
) -> Page[schemas.AttemptSummary]:
    rows, total = await service.attempts(quiz, caller, paging.offset, paging.size)
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


@router.get(
    "/quizzes/{quiz_id:uuid}/attempts",
    summary="Every learner's attempts at a quiz (its instructors and admins)",
)
async def quiz_attempts(
    quiz: EditableQuiz, service: Attempts, paging: Paging
) -> Page[schemas.AttemptSummary]:
    rows, total = await service.attempts(quiz, None, paging.offset, paging.size)
    return Page.of([views.attempt_summary(attempt) for attempt in rows], total, paging)


@router.get(
    "/attempts/{attempt_id:uuid}",
    summary="The caller's attempt: its questions and saved answers (no keys)",
    description="Past its deadline an attempt in progress is graded now, with what was saved.",
)
async def get_attempt(
    held: ReadableAttempt, service: Attempts, clock: ClockDep
) -> schemas.AttemptSheet:
    items = await service.read(held)
    return views.attempt_sheet(held.attempt, items, clock.now())


@router.put(
    "/attempts/{attempt_id:uuid}/answers",
    summary="Save answers (any subset; an answer with no value clears it)",
    description="Refused after the deadline (409 `time-up`, and the attempt is graded with "
    "the answers saved before it) or once submitted (409 `already-submitted`); an answer "
    "to a question not in the attempt is 422 `not-in-attempt`, and then nothing is saved.",
)
async def save_answers(
    held: OwnAttempt, body: schemas.AnswersIn, service: Attempts, clock: ClockDep
) -> schemas.AttemptSheet:
    items = await service.save_answers(held, body.answers)
    return views.attempt_sheet(held.attempt, items, clock.now())


@router.post(
    "/attempts/{attempt_id:uuid}/submit",
    summary="Submit an attempt (with last answers); graded at once",
    description="Objective questions are graded immediately; essay questions wait for an "
    "instructor (`needs_review`). The result shows what the quiz's review policy allows.",
)
async def submit_attempt(
    held: OwnAttempt,
    service: Attempts,
    clock: ClockDep,
    body: schemas.SubmitIn | None = None,
) -> schemas.AttemptResult:
    items = await service.submit(held, body.answers if body is not None else [])
    return views.attempt_result(held.quiz, held.attempt, items, clock.now())


@router.get(
    "/attempts/{attempt_id:uuid}/result",
    summary="A submitted attempt's result, as the quiz's review policy allows",
)
async def attempt_result(
    held: ReadableAttempt, service: Attempts, clock: ClockDep
) -> schemas.AttemptResult:
    items = await service.result(held)
    return views.attempt_result(held.quiz, held.attempt, items, clock.now())


@router.get(
    "/attempts/{attempt_id:uuid}/review",
    summary="An attempt with keys and answers (the course's instructors and admins)",
)
async def review_attempt(held: ReviewableAttempt, service: Attempts) -> schemas.AttemptReview:
    items = await service.read(held)
    return views.attempt_review(held.attempt, items)


@router.post(
    "/attempts/{attempt_id:uuid}/grades",
    summary="Grade or regrade items of a submitted attempt (audited)",
)
async def grade_attempt_items(
    held: LockedReviewableAttempt,
    body: schemas.ItemGradesIn,
    caller: CurrentUser,
    service: Attempts,
) -> schemas.AttemptReview:
    items = await service.grade_items(held, caller, body.grades)
    return views.attempt_review(held.attempt, items)
