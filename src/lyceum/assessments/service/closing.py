"""Closing quiz attempts: grading the objective items, the totals once no item waits
for an instructor, and the periodic sweep that closes attempts whose time ran out.

Time is the server's: an attempt's deadline is fixed when it starts (the time limit,
capped by the quiz's closing time). An attempt past its deadline is graded with the
answers saved before it, whenever it is next touched (read, saved to, submitted, a new
attempt started) or by the periodic sweep in `assessments.tasks`, whichever comes
first; answers arriving after it are refused."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.assessments.grading import grade_item
from lyceum.assessments.repository.quizzes import QuizRepository
from lyceum.assessments.service.common import passed
from lyceum.kit.events import emit
from lyceum.models.assessments import AttemptItem, AttemptStatus, Quiz, QuizAttempt


class Grader:
    """Closing and grading attempts, for requests and for the periodic sweep alike."""

    def __init__(self, session: AsyncSession, now: dt.datetime) -> None:
        self.session = session
        self.repo = QuizRepository(session)
        self.now = now

    async def finalise(
        self, quiz: Quiz, attempt: QuizAttempt, items: list[AttemptItem], *, auto: bool
    ) -> None:
        """Grade the objective items and close the attempt. Auto-submitted attempts are
        dated at their deadline: what counts is what was saved by then."""
        for item in items:
            grade = grade_item(item.kind, item.snapshot.get("key", {}), item.points, item.response)
            item.awarded = grade.awarded if grade is not None else None
            item.is_correct = grade.correct if grade is not None else None
        attempt.auto_submitted = auto
        attempt.submitted_at = (
            attempt.deadline_at if auto and attempt.deadline_at is not None else self.now
        )
        attempt.late = quiz.due_at is not None and attempt.submitted_at > quiz.due_at
        await self.settle(quiz, attempt, items)

    async def settle(self, quiz: Quiz, attempt: QuizAttempt, items: list[AttemptItem]) -> None:
        """Totals from the items' points; graded once no item waits for an instructor.
        The items and the attempt are written in one statement (`graded_write`): the
        `quiz.attempt.graded` event's own when the attempt is graded, else alone."""
        attempt.score = round(sum(item.awarded or 0.0 for item in items), 2)
        if any(item.awarded is None for item in items):
            attempt.status = AttemptStatus.needs_review
            attempt.percent = None
            attempt.passed = None
        else:
            attempt.status = AttemptStatus.graded
            attempt.graded_at = self.now
            attempt.percent = (
                round(100 * attempt.score / attempt.max_score, 2) if attempt.max_score else 100.0
            )
            attempt.passed = attempt.percent >= quiz.pass_percent
        if attempt.status is AttemptStatus.graded:
            # The items and totals go in the event row's statement: one round trip.
            await emit(
                self.session,
                "quiz.attempt.graded",
                alongside=self.repo.graded_write(attempt, items),
                attempt_id=str(attempt.id),
                quiz_id=str(attempt.quiz_id),
                user_id=str(attempt.user_id),
                course_id=str(attempt.course_id),
                score=float(attempt.score or 0.0),
                max_score=float(attempt.max_score),
                passed=bool(attempt.passed),
            )
        else:
            await self.repo.save_graded(attempt, items)
        if attempt.passed:
            await passed(
                self.session,
                course_id=attempt.course_id,
                user_id=attempt.user_id,
                required=quiz.required,
                at=self.now,
            )


def deadline_passed(attempt: QuizAttempt, now: dt.datetime, grace_seconds: int) -> bool:
    if attempt.status is not AttemptStatus.in_progress or attempt.deadline_at is None:
        return False
    return now > attempt.deadline_at + dt.timedelta(seconds=grace_seconds)


async def close_expired_attempts(
    session: AsyncSession, now: dt.datetime, grace_seconds: int, limit: int = 500
) -> int:
    """Grade, with what was saved, every attempt whose time ran out (the periodic
    sweep). Each is locked and re-checked, so a learner's request closing it at the
    same moment is not graded twice."""
    repo = QuizRepository(session)
    grader = Grader(session, now)
    closed = 0
    cutoff = now - dt.timedelta(seconds=grace_seconds)
    for attempt_id in await repo.expired_attempt_ids(cutoff, limit):
        attempt = await repo.attempt(attempt_id, for_update=True)
        if attempt is None or not deadline_passed(attempt, now, grace_seconds):
            continue
        quiz = await repo.quiz(attempt.quiz_id)
        assert quiz is not None
        await grader.finalise(quiz, attempt, await repo.items(attempt.id), auto=True)
        closed += 1
    return closed
