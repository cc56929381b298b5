"""Taking quizzes: drawing an attempt's questions, saving answers against the server's
clock, submitting, and an instructor's grading of what needs a person.

An attempt past its deadline is closed (`service.closing`) whenever it is touched here,
before anything else happens to it."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.assessments.grading import MAX_SHORT_ANSWER_CHARS
from lyceum.assessments.repository.quizzes import QuizRepository
from lyceum.assessments.schemas import attempts as schemas
from lyceum.assessments.service.closing import Grader, deadline_passed
from lyceum.assessments.service.common import audit
from lyceum.kit.errors import Conflict, Invalid
from lyceum.models.assessments import (
    AttemptItem,
    AttemptStatus,
    Question,
    QuestionKind,
    Quiz,
    QuizAttempt,
)
from lyceum.models.identity import User

_draws = random.Random()


class TimeUp(Conflict):
    """The attempt's time ran out: it has just been graded with what was saved, and that
    grading must stick although the request fails."""

    persist_changes = True


@dataclass(frozen=True)
class AttemptOfQuiz:
    """An attempt with its quiz, as a permission dependency hands it over."""

    quiz: Quiz
    attempt: QuizAttempt
    # Its items, when the dependency read them with it (`OwnAttempt`).
    items: list[AttemptItem] | None = None


class AttemptService:
    """Works on quizzes and attempts the caller may take, own or grade
    (`assessments.permissions`)."""

    def __init__(self, session: AsyncSession, *, grace_seconds: int, now: dt.datetime) -> None:
        self.repo = QuizRepository(session)
        self.grace_seconds = grace_seconds
        self.now = now
        self.grader = Grader(session, now)

    def _expired(self, attempt: QuizAttempt) -> bool:
        return deadline_passed(attempt, self.now, self.grace_seconds)

    async def _draw(self, quiz: Quiz) -> list[Question]:
        chosen: list[Question] = []
        taken: set[uuid.UUID] = set()
        for section, fixed in await self.repo.sections_to_draw(quiz):
            if section.question_id is not None:
                if fixed is not None and fixed.id not in taken:
                    chosen.append(fixed)
                    taken.add(fixed.id)
                continue
            assert section.tag is not None
            pool = [
                question
                for question in await self.repo.tagged_questions(quiz.course_id, section.tag)
                if question.id not in taken
            ]
            # The pool was big enough when the quiz was saved; questions deleted since
            # make it draw fewer rather than fail the learner.
            for question in _draws.sample(pool, min(section.draw_count, len(pool))):
                chosen.append(question)
                taken.add(question.id)
        if quiz.shuffle_questions:
            _draws.shuffle(chosen)
        return chosen

    @staticmethod
    def _snapshot(question: Question, shuffle_options: bool) -> dict[str, Any]:
        options = list(question.options or [])
        if shuffle_options and question.kind in {
            QuestionKind.single_choice,
            QuestionKind.multiple_choice,
        }:
            _draws.shuffle(options)
        key = dict(question.answer_key or {})
        return {
            "prompt": question.prompt,
            "options": options,
            "key": key,
            "explanation": question.explanation,
            "min_words": key.get("min_words"),
            "max_words": key.get("max_words"),
        }

    async def start(self, quiz: Quiz, learner: User) -> tuple[QuizAttempt, list[AttemptItem], bool]:
        """(attempt, items, created): an attempt already in progress is resumed."""
        current = await self.repo.open_attempt(quiz.id, learner.id)
        if current is not None:
            items = await self.repo.items(current.id)
            if not self._expired(current):
                return current, items, False
            await self.grader.finalise(quiz, current, items, auto=True)
        if quiz.available_from is not None and self.now < quiz.available_from:
            raise Conflict(
                f"This quiz opens at {quiz.available_from.isoformat()}.", slug="quiz-not-open"
            )
        if quiz.available_until is not None and self.now >= quiz.available_until:
            raise Conflict(
                f"This quiz closed at {quiz.available_until.isoformat()}.", slug="quiz-closed"
            )
        used = await self.repo.attempts_used(quiz.id, learner.id)
        if quiz.max_attempts is not None and used >= quiz.max_attempts:
            raise Conflict(
                f"You have used all {quiz.max_attempts} attempts at this quiz.",
                slug="no-attempts-left",
            )
        questions = await self._draw(quiz)
        if not questions:
            raise Conflict("This quiz has no questions yet.", slug="quiz-empty")
        deadlines = []
        if quiz.time_limit_seconds is not None:
            deadlines.append(self.now + dt.timedelta(seconds=quiz.time_limit_seconds))
        if quiz.available_until is not None:
            deadlines.append(quiz.available_until)
        attempt = QuizAttempt(
            id=uuid.uuid4(),
            quiz_id=quiz.id,
            course_id=quiz.course_id,
            user_id=learner.id,
            number=used + 1,
            status=AttemptStatus.in_progress,
            started_at=self.now,
            deadline_at=min(deadlines) if deadlines else None,
            auto_submitted=False,
            late=False,
            max_score=round(sum(question.points for question in questions), 2),
        )
        items = [
            AttemptItem(
                attempt_id=attempt.id,
                position=position,
                question_id=question.id,
                kind=question.kind,
                points=question.points,
                snapshot=self._snapshot(question, quiz.shuffle_options),
                comment="",
            )
            for position, question in enumerate(questions)
        ]
        if not await self.repo.insert_attempt(attempt, items):
            raise Conflict(
                "Another attempt at this quiz started at the same moment; reload it.",
                slug="attempt-race",
            )
        return attempt, items, True

    async def read(self, held: AttemptOfQuiz) -> list[AttemptItem]:
        """The attempt's items. Reading an attempt is touching it: past its deadline it
        is graded now."""
        items = await self.repo.items(held.attempt.id)
        if self._expired(held.attempt):
            await self.grader.finalise(held.quiz, held.attempt, items, auto=True)
        return items

    async def _open_for_answers(self, held: AttemptOfQuiz) -> list[AttemptItem]:
        attempt = held.attempt
        if attempt.status is not AttemptStatus.in_progress:
            raise Conflict("This attempt has been submitted already.", slug="already-submitted")
        items = held.items if held.items is not None else await self.repo.items(attempt.id)
        if self._expired(attempt):
            await self.grader.finalise(held.quiz, attempt, items, auto=True)
            assert attempt.deadline_at is not None
            raise TimeUp(
                f"Time ran out at {attempt.deadline_at.isoformat()}: answers sent after the "
                "deadline are refused, and the attempt was graded with the answers saved "
                "before it.",
                slug="time-up",
            )
        return items

    async def save_answers(
        self, held: AttemptOfQuiz, answers: list[schemas.AnswerIn]
    ) -> list[AttemptItem]:
        items = await self._open_for_answers(held)
        await self.repo.save_answers(held.attempt.id, self._apply_answers(items, answers))
        return items

    async def submit(
        self, held: AttemptOfQuiz, answers: list[schemas.AnswerIn]
    ) -> list[AttemptItem]:
        items = await self._open_for_answers(held)
        self._apply_answers(items, answers)
        await self.grader.finalise(held.quiz, held.attempt, items, auto=False)
        return items

    def _apply_answers(
        self, items: list[AttemptItem], answers: list[schemas.AnswerIn]
    ) -> list[AttemptItem]:
        """Check every answer, then set them all on their items: a bad one sets none.
        Returns the items answered."""
        by_question = {item.question_id: item for item in items}
        responses: list[tuple[AttemptItem, dict[str, Any] | None]] = []
        seen: set[uuid.UUID] = set()
        for index, answer in enumerate(answers):
            field = f"body.answers.{index}"
            item = _attempt_item(by_question, answer.question_id, field)
            if answer.question_id in seen:
                raise Invalid("The question is answered twice.", field=f"{field}.question_id")
            seen.add(answer.question_id)
            responses.append((item, _response(item, answer, field)))
        for item, response in responses:
            item.response = response
            item.answered_at = self.now if response is not None else None
        return [item for item, _ in responses]

    async def result(self, held: AttemptOfQuiz) -> list[AttemptItem]:
        items = await self.read(held)
        if held.attempt.status is AttemptStatus.in_progress:
            raise Conflict("Submit the attempt to see its result.", slug="not-submitted")
        return items

    async def attempts(
        self, quiz: Quiz, learner: User | None, offset: int, limit: int
    ) -> tuple[list[QuizAttempt], int]:
        """A learner's attempts at a quiz, or (no learner) everyone's, newest first."""
        return await self.repo.attempts(
            quiz.id,
            user_id=learner.id if learner is not None else None,
            offset=offset,
            limit=limit,
        )

    async def grade_items(
        self, held: AttemptOfQuiz, grader: User, grades: list[schemas.ItemGradeIn]
    ) -> list[AttemptItem]:
        """An instructor grades (or regrades) items of a submitted attempt; audited."""
        attempt = held.attempt
        items = await self.read(held)
        if attempt.status is AttemptStatus.in_progress:
            raise Conflict("The attempt is still in progress.", slug="not-submitted")
        by_question = {item.question_id: item for item in items}
        changes: list[tuple[AttemptItem, float, str]] = []
        for index, grade in enumerate(grades):
            field = f"body.grades.{index}"
            item = _attempt_item(by_question, grade.question_id, field)
            if grade.points > item.points:
                raise Invalid(
                    f"The question is worth {item.points:g} points.", field=f"{field}.points"
                )
            changes.append((item, round(grade.points, 2), grade.comment))
        before = _attempt_state(attempt, items)
        for item, points, comment in changes:
            item.awarded = points
            item.is_correct = points >= item.points
            item.comment = comment
        await self.grader.settle(held.quiz, attempt, items)
        await audit(
            self.repo,
            course_id=attempt.course_id,
            subject_type="attempt",
            subject_id=attempt.id,
            actor=grader,
            action="grade_items",
            before=before,
            after=_attempt_state(attempt, items),
            comment="; ".join(comment for _, _, comment in changes if comment),
            at=self.now,
        )
        return items


def _attempt_state(attempt: QuizAttempt, items: list[AttemptItem]) -> dict[str, Any]:
    return {
        "status": attempt.status.value,
        "score": attempt.score,
        "percent": attempt.percent,
        "passed": attempt.passed,
        "items": {str(item.question_id): item.awarded for item in items},
    }


def _response(item: AttemptItem, answer: schemas.AnswerIn, field: str) -> dict[str, Any] | None:
    """The stored form of one answer, checked against the item it answers. An answer
    with no value clears the saved one."""
    given = {
        name: value
        for name, value in (
            ("choice", answer.choice),
            ("choices", answer.choices),
            ("value", answer.value),
            ("text", answer.text),
        )
        if value is not None
    }
    if not given:
        return None
    expected = {
        QuestionKind.single_choice: "choice",
        QuestionKind.multiple_choice: "choices",
        QuestionKind.true_false: "value",
        QuestionKind.short_answer: "text",
        QuestionKind.essay: "text",
    }[item.kind]
    if set(given) != {expected}:
        raise Invalid(
            f"Answer a {item.kind.value.replace('_', ' ')} question with `{expected}` only.",
            field=f"{field}.{expected}",
        )
    option_ids = {option["id"] for option in item.snapshot.get("options", [])}
    if item.kind is QuestionKind.single_choice and answer.choice not in option_ids:
        raise Invalid("No such option in this question.", field=f"{field}.choice")
    if item.kind is QuestionKind.multiple_choice:
        choices = answer.choices or []
        if len(set(choices)) != len(choices) or not set(choices) <= option_ids:
            raise Invalid("Choose distinct options of this question.", field=f"{field}.choices")
    if item.kind is QuestionKind.short_answer and len(answer.text or "") > MAX_SHORT_ANSWER_CHARS:
        raise Invalid(
            f"Short answers are at most {MAX_SHORT_ANSWER_CHARS} characters.",
            field=f"{field}.text",
        )
    return given


def _attempt_item(
    by_question: dict[uuid.UUID, AttemptItem], question_id: uuid.UUID, field: str
) -> AttemptItem:
    """The attempt's item for a question named in the request body at `field`."""
    item = by_question.get(question_id)
    if item is None:
        raise Invalid(
            "This question is not part of the attempt.",
            field=f"{field}.question_id",
            slug="not-in-attempt",
        )
    return item
