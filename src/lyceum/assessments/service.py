"""Question banks, quizzes and attempts: who may author and take what, drawing an
attempt's questions, saving answers against the server's clock, and grading.

Time is the server's: an attempt's deadline is fixed when it starts (the time limit,
capped by the quiz's closing time). An attempt past its deadline is graded with the
answers saved before it, whenever it is next touched (read, saved to, submitted, a new
attempt started) or by the periodic sweep in `assessments.tasks`, whichever comes
first; answers arriving after it are refused."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.assessments import schemas
from lyceum.assessments.grading import (
    MAX_SHORT_ANSWER_CHARS,
    UnsafePattern,
    compile_answer_pattern,
    grade_item,
)
from lyceum.assessments.repository import AssessmentRepository, Published, QuestionFilters
from lyceum.config import Settings
from lyceum.courses.service import CourseService
from lyceum.kit.errors import Conflict, Forbidden, Invalid, NotFound
from lyceum.learning.service import complete_if_done
from lyceum.models.assessments import (
    AttemptItem,
    AttemptStatus,
    AuditEntry,
    Question,
    QuestionKind,
    Quiz,
    QuizAttempt,
    QuizSection,
)
from lyceum.models.courses import Course, Lesson, Module
from lyceum.models.identity import Role, User

TRUE_FALSE_OPTIONS = [{"id": "true", "text": "True"}, {"id": "false", "text": "False"}]
MAX_QUESTIONS_PER_ATTEMPT = 200
_draws = random.Random()


class TimeUp(Conflict):
    """The attempt's time ran out: it has just been graded with what was saved, and that
    grading must stick although the request fails."""

    persist_changes = True


# Times a course can sensibly use; outside them PostgreSQL would store a value Python
# cannot read back (year 0, year 10000 after the UTC shift).
EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(9000, 1, 1, tzinfo=dt.UTC)


def check_instants(**values: dt.datetime | None) -> None:
    for name, value in values.items():
        if value is not None and not EARLIEST <= value <= LATEST:
            raise Invalid(
                f"`{name}` must be between the years 2000 and 9000.", field=f"body.{name}"
            )


def _normalised_tags(tags: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(tag.strip().lower() for tag in tags if tag.strip()))


async def audit(
    session: AsyncSession,
    *,
    course_id: uuid.UUID,
    subject_type: str,
    subject_id: uuid.UUID,
    actor: User | None,
    action: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    comment: str,
    at: dt.datetime,
) -> None:
    await AssessmentRepository(session).add(
        AuditEntry(
            course_id=course_id,
            subject_type=subject_type,
            subject_id=subject_id,
            actor_id=actor.id if actor is not None else None,
            action=action,
            before=before,
            after=after,
            comment=comment,
            at=at,
        )
    )


async def readable_by(
    courses: CourseService, caller: User, item: Published | None, noun: str
) -> tuple[Published, bool]:
    """(item, caller can edit it): a published quiz or assignment for the course's
    learners, drafts only for its instructors and admins; 404 for anyone else."""
    if item is None:
        raise NotFound(f"No such {noun}.")
    _, can_edit = await courses.member_access(item.course_id, caller)
    if not item.published and not can_edit:
        raise NotFound(f"No such {noun}.")
    return item, can_edit


async def check_placement(
    session: AsyncSession,
    course: Course,
    module_id: uuid.UUID | None,
    lesson_id: uuid.UUID | None,
) -> None:
    """A quiz or assignment sits in a module or lesson of its own course."""
    if module_id is not None:
        module = await session.get(Module, module_id)
        if module is None or module.course_id != course.id:
            raise Invalid("No such module in this course.", field="body.module_id")
    if lesson_id is not None:
        lesson = await session.get(Lesson, lesson_id)
        if lesson is None or lesson.course_id != course.id:
            raise Invalid("No such lesson in this course.", field="body.lesson_id")


class Grader:
    """Closing and grading attempts, for requests and for the periodic sweep alike."""

    def __init__(self, session: AsyncSession, now: dt.datetime) -> None:
        self.session = session
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
        """Totals from the items' points; graded once no item waits for an instructor."""
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
        await self.session.flush()
        # Only a required assessment can be what completes the course.
        if attempt.passed and quiz.required:
            await complete_if_done(self.session, attempt.course_id, attempt.user_id, self.now)


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
    repo = AssessmentRepository(session)
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


class AssessmentService:
    def __init__(
        self,
        session: AsyncSession,
        courses: CourseService,
        *,
        settings: Settings,
        now: dt.datetime,
    ) -> None:
        self.session = session
        self.courses = courses
        self.repo = AssessmentRepository(session)
        self.settings = settings
        self.now = now
        self.grader = Grader(session, now)

    # Question bank --------------------------------------------------------------------

    async def _question_parts(
        self, data: schemas.QuestionIn
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """(options, answer key) of a question, after the checks the schema cannot make."""
        if isinstance(data, schemas.SingleChoiceIn | schemas.MultipleChoiceIn):
            ids = [option.id for option in data.options]
            if len(set(ids)) != len(ids):
                raise Invalid("Option ids must be unique.", field="body.options")
            options = [{"id": option.id, "text": option.text} for option in data.options]
            if isinstance(data, schemas.SingleChoiceIn):
                if data.correct not in ids:
                    raise Invalid("`correct` must be the id of an option.", field="body.correct")
                return options, {"correct": data.correct}
            if len(set(data.correct)) != len(data.correct) or not set(data.correct) <= set(ids):
                raise Invalid("`correct` must list distinct ids of options.", field="body.correct")
            return options, {"correct": list(data.correct), "partial_credit": data.partial_credit}
        if isinstance(data, schemas.TrueFalseIn):
            return list(TRUE_FALSE_OPTIONS), {"correct": data.correct}
        if isinstance(data, schemas.ShortAnswerIn):
            if data.match == "numeric":
                if data.number is None:
                    raise Invalid("A numeric answer needs `number`.", field="body.number")
                return [], {"match": "numeric", "number": data.number, "tolerance": data.tolerance}
            if not data.accepted:
                raise Invalid("List at least one accepted answer.", field="body.accepted")
            if data.match == "regex":
                for index, pattern in enumerate(data.accepted):
                    try:
                        # CPU work with a time budget per probe: off the event loop.
                        await asyncio.to_thread(compile_answer_pattern, pattern)
                    except UnsafePattern as error:
                        raise Invalid(
                            str(error), field=f"body.accepted.{index}", slug="unsafe-pattern"
                        ) from None
            return [], {"match": data.match, "accepted": list(data.accepted)}
        if (
            data.min_words is not None
            and data.max_words is not None
            and data.min_words > data.max_words
        ):
            raise Invalid("`min_words` is above `max_words`.", field="body.min_words")
        return [], {
            "reference_answer": data.reference_answer,
            "min_words": data.min_words,
            "max_words": data.max_words,
        }

    def _fill_question(
        self,
        question: Question,
        data: schemas.QuestionIn,
        options: list[dict[str, Any]],
        key: dict[str, Any],
    ) -> None:
        question.kind = QuestionKind(data.kind)
        question.prompt = data.prompt
        question.points = data.points
        question.tags = _normalised_tags(data.tags)
        question.difficulty = data.difficulty
        question.explanation = data.explanation
        question.options = options
        question.answer_key = key

    async def create_question(
        self, caller: User, course_id: uuid.UUID, data: schemas.QuestionIn
    ) -> Question:
        course = await self.courses.editable_course(course_id, caller)
        options, key = await self._question_parts(data)
        question = Question(course_id=course.id, created_by=caller.id)
        self._fill_question(question, data, options, key)
        await self.repo.add(question)
        await self.session.refresh(question)
        return question

    async def editable_question(self, caller: User, question_id: uuid.UUID) -> Question:
        question = await self.repo.question(question_id)
        if question is None:
            raise NotFound("No such question.")
        await self.courses.editable_course(question.course_id, caller)
        return question

    async def replace_question(
        self, caller: User, question_id: uuid.UUID, data: schemas.QuestionIn
    ) -> Question:
        """Attempts already drawn keep their snapshot of the old version."""
        question = await self.editable_question(caller, question_id)
        options, key = await self._question_parts(data)
        self._fill_question(question, data, options, key)
        await self.session.flush()
        await self.session.refresh(question)
        return question

    async def delete_question(self, caller: User, question_id: uuid.UUID) -> None:
        question = await self.editable_question(caller, question_id)
        if await self.repo.question_in_a_quiz(question.id):
            raise Conflict(
                "A quiz names this question; take it out of the quiz first.",
                slug="question-in-use",
            )
        await self.repo.delete(question)

    async def questions(
        self, caller: User, course_id: uuid.UUID, filters: QuestionFilters, offset: int, limit: int
    ) -> tuple[list[Question], int]:
        course = await self.courses.editable_course(course_id, caller)
        if filters.tag is not None:
            filters = QuestionFilters(filters.tag.strip().lower(), filters.kind, filters.difficulty)
        return await self.repo.questions(course.id, filters, offset, limit)

    # Quizzes --------------------------------------------------------------------------

    async def _sections(
        self, course: Course, quiz_id: uuid.UUID, given: list[schemas.SectionIn]
    ) -> list[QuizSection]:
        fixed = [section.question_id for section in given if section.question_id is not None]
        known = await self.repo.questions_by_id(course.id, fixed)
        seen: set[uuid.UUID] = set()
        drawn_by_tag: dict[str, int] = {}
        sections = []
        for position, section in enumerate(given):
            field = f"body.sections.{position}"
            if (section.question_id is None) == (section.tag is None):
                raise Invalid("Give either `question_id` or `tag`.", field=field)
            if section.question_id is not None:
                if section.question_id not in known:
                    raise Invalid(
                        "No such question in this course's bank.", field=f"{field}.question_id"
                    )
                if section.question_id in seen:
                    raise Invalid(
                        "A question appears twice in the quiz.", field=f"{field}.question_id"
                    )
                if section.draw != 1:
                    raise Invalid("A fixed question is drawn once.", field=f"{field}.draw")
                seen.add(section.question_id)
                sections.append(
                    QuizSection(
                        quiz_id=quiz_id,
                        position=position,
                        question_id=section.question_id,
                        draw_count=1,
                    )
                )
                continue
            assert section.tag is not None
            tag = section.tag.strip().lower()
            drawn_by_tag[tag] = drawn_by_tag.get(tag, 0) + section.draw
            available = await self.repo.tagged_question_ids(course.id, tag)
            if len(available - seen) < drawn_by_tag[tag]:
                raise Invalid(
                    f"The bank has {len(available - seen)} questions tagged {tag!r} besides "
                    f"the fixed ones; the quiz draws {drawn_by_tag[tag]}.",
                    field=f"{field}.draw",
                )
            sections.append(
                QuizSection(quiz_id=quiz_id, position=position, tag=tag, draw_count=section.draw)
            )
        total = sum(section.draw_count for section in sections)
        if total > MAX_QUESTIONS_PER_ATTEMPT:
            raise Invalid(
                f"A quiz draws at most {MAX_QUESTIONS_PER_ATTEMPT} questions.",
                field="body.sections",
            )
        return sections

    @staticmethod
    def _check_window(quiz: Quiz) -> None:
        check_instants(
            available_from=quiz.available_from,
            available_until=quiz.available_until,
            due_at=quiz.due_at,
        )
        if (
            quiz.available_from is not None
            and quiz.available_until is not None
            and quiz.available_from >= quiz.available_until
        ):
            raise Invalid(
                "`available_from` must be before `available_until`.", field="body.available_until"
            )

    async def create_quiz(
        self, caller: User, course_id: uuid.UUID, data: schemas.QuizCreate
    ) -> tuple[Quiz, list[QuizSection]]:
        course = await self.courses.editable_course(course_id, caller)
        await check_placement(self.session, course, data.module_id, data.lesson_id)
        quiz = Quiz(
            course_id=course.id,
            **data.model_dump(exclude={"sections"}),
        )
        self._check_window(quiz)
        await self.repo.add(quiz)
        sections = await self._sections(course, quiz.id, data.sections)
        await self.repo.add_all(sections)
        if quiz.published and not sections:
            raise Conflict("Add questions before publishing the quiz.", slug="quiz-empty")
        await self.session.refresh(quiz)
        return quiz, sections

    async def editable_quiz(self, caller: User, quiz_id: uuid.UUID) -> tuple[Course, Quiz]:
        quiz = await self.repo.quiz(quiz_id)
        if quiz is None:
            raise NotFound("No such quiz.")
        course = await self.courses.editable_course(quiz.course_id, caller)
        return course, quiz

    async def update_quiz(
        self, caller: User, quiz_id: uuid.UUID, data: schemas.QuizUpdate
    ) -> tuple[Quiz, list[QuizSection]]:
        course, quiz = await self.editable_quiz(caller, quiz_id)
        sent = data.model_fields_set
        nullable = {
            "module_id",
            "lesson_id",
            "time_limit_seconds",
            "max_attempts",
            "available_from",
            "available_until",
            "due_at",
        }
        for name in sent - {"sections"}:
            value = getattr(data, name)
            if value is None and name not in nullable:
                continue
            setattr(quiz, name, value)
        self._check_window(quiz)
        await check_placement(self.session, course, quiz.module_id, quiz.lesson_id)
        if data.sections is not None:
            sections = await self._sections(course, quiz.id, data.sections)
            await self.repo.replace_sections(quiz.id, sections)
        else:
            sections = (await self.repo.sections([quiz.id]))[quiz.id]
        if quiz.published and not sections:
            raise Conflict("Add questions before publishing the quiz.", slug="quiz-empty")
        await self.session.flush()
        await self.session.refresh(quiz)
        return quiz, sections

    async def delete_quiz(self, caller: User, quiz_id: uuid.UUID) -> None:
        _, quiz = await self.editable_quiz(caller, quiz_id)
        if await self.repo.quiz_has_attempts(quiz.id):
            raise Conflict(
                "Learners have attempted this quiz; unpublish it instead of deleting grades.",
                slug="quiz-has-attempts",
            )
        await self.repo.delete(quiz)

    async def readable_quiz(self, caller: User, quiz_id: uuid.UUID) -> tuple[Quiz, bool]:
        return await readable_by(self.courses, caller, await self.repo.quiz(quiz_id), "quiz")

    async def quizzes(
        self, caller: User, course_id: uuid.UUID, offset: int, limit: int
    ) -> tuple[list[tuple[Quiz, list[QuizSection]]], int]:
        course, can_edit = await self.courses.member_access(course_id, caller)
        rows, total = await self.repo.quizzes(
            course.id, published_only=not can_edit, offset=offset, limit=limit
        )
        sections = await self.repo.sections([quiz.id for quiz in rows])
        return [(quiz, sections[quiz.id]) for quiz in rows], total

    async def sections_of(self, quiz: Quiz) -> list[QuizSection]:
        return (await self.repo.sections([quiz.id]))[quiz.id]

    # Attempts -------------------------------------------------------------------------

    def _expired(self, attempt: QuizAttempt) -> bool:
        return deadline_passed(attempt, self.now, self.settings.assessment_deadline_grace_seconds)

    async def _draw(self, course_id: uuid.UUID, quiz: Quiz) -> list[Question]:
        sections = await self.sections_of(quiz)
        fixed = await self.repo.questions_by_id(
            course_id, [section.question_id for section in sections if section.question_id]
        )
        chosen: list[Question] = []
        taken: set[uuid.UUID] = set()
        for section in sections:
            if section.question_id is not None:
                question = fixed.get(section.question_id)
                if question is not None and question.id not in taken:
                    chosen.append(question)
                    taken.add(question.id)
                continue
            assert section.tag is not None
            pool = [
                question
                for question in await self.repo.tagged_questions(course_id, section.tag)
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

    async def start_attempt(
        self, caller: User, quiz_id: uuid.UUID
    ) -> tuple[QuizAttempt, list[AttemptItem], bool]:
        """(attempt, items, created): an attempt already in progress is resumed."""
        quiz = await self.repo.quiz(quiz_id)
        if quiz is None:
            raise NotFound("No such quiz.")
        _, can_edit = await self.courses.member_access(quiz.course_id, caller)
        if not quiz.published and not can_edit:
            raise NotFound("No such quiz.")
        if can_edit:
            raise Forbidden(
                "Only the course's enrolled learners take its quizzes.", slug="not-a-learner"
            )
        current = await self.repo.open_attempt(quiz.id, caller.id)
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
        used = await self.repo.attempts_used(quiz.id, caller.id)
        if quiz.max_attempts is not None and used >= quiz.max_attempts:
            raise Conflict(
                f"You have used all {quiz.max_attempts} attempts at this quiz.",
                slug="no-attempts-left",
            )
        questions = await self._draw(quiz.course_id, quiz)
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
            user_id=caller.id,
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
        try:
            async with self.session.begin_nested():
                await self.repo.add(attempt)
                await self.repo.add_all(items)
        except IntegrityError:
            raise Conflict(
                "Another attempt at this quiz started at the same moment; reload it.",
                slug="attempt-race",
            ) from None
        return attempt, items, True

    async def _own_attempt(
        self, caller: User, attempt_id: uuid.UUID, *, for_update: bool, read_only: bool
    ) -> tuple[Quiz, QuizAttempt]:
        """The learner's own attempt (admins may read anyone's); to everyone else it
        does not exist."""
        found = await self.repo.attempt_with_quiz(attempt_id, for_update=for_update)
        if found is None:
            raise NotFound("No such attempt.")
        attempt, quiz = found
        if attempt.user_id != caller.id and not (read_only and caller.role is Role.admin):
            raise NotFound("No such attempt.")
        return quiz, attempt

    async def attempt_for_learner(
        self, caller: User, attempt_id: uuid.UUID
    ) -> tuple[Quiz, QuizAttempt, list[AttemptItem]]:
        """Reading an attempt is touching it: past its deadline it is graded now."""
        quiz, attempt = await self._own_attempt(caller, attempt_id, for_update=True, read_only=True)
        items = await self.repo.items(attempt.id)
        if self._expired(attempt):
            await self.grader.finalise(quiz, attempt, items, auto=True)
        return quiz, attempt, items

    async def _open_for_answers(
        self, caller: User, attempt_id: uuid.UUID
    ) -> tuple[Quiz, QuizAttempt, list[AttemptItem]]:
        quiz, attempt = await self._own_attempt(
            caller, attempt_id, for_update=True, read_only=False
        )
        if attempt.status is not AttemptStatus.in_progress:
            raise Conflict("This attempt has been submitted already.", slug="already-submitted")
        items = await self.repo.items(attempt.id)
        if self._expired(attempt):
            await self.grader.finalise(quiz, attempt, items, auto=True)
            assert attempt.deadline_at is not None
            raise TimeUp(
                f"Time ran out at {attempt.deadline_at.isoformat()}: answers sent after the "
                "deadline are refused, and the attempt was graded with the answers saved "
                "before it.",
                slug="time-up",
            )
        return quiz, attempt, items

    async def save_answers(
        self, caller: User, attempt_id: uuid.UUID, answers: list[schemas.AnswerIn]
    ) -> tuple[QuizAttempt, list[AttemptItem]]:
        _, attempt, items = await self._open_for_answers(caller, attempt_id)
        self._apply_answers(items, answers)
        await self.session.flush()
        return attempt, items

    async def submit(
        self, caller: User, attempt_id: uuid.UUID, answers: list[schemas.AnswerIn]
    ) -> tuple[Quiz, QuizAttempt, list[AttemptItem]]:
        quiz, attempt, items = await self._open_for_answers(caller, attempt_id)
        self._apply_answers(items, answers)
        await self.grader.finalise(quiz, attempt, items, auto=False)
        return quiz, attempt, items

    def _apply_answers(self, items: list[AttemptItem], answers: list[schemas.AnswerIn]) -> None:
        """Check every answer, then store them all: a bad one stores none."""
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

    async def result(
        self, caller: User, attempt_id: uuid.UUID
    ) -> tuple[Quiz, QuizAttempt, list[AttemptItem]]:
        quiz, attempt, items = await self.attempt_for_learner(caller, attempt_id)
        if attempt.status is AttemptStatus.in_progress:
            raise Conflict("Submit the attempt to see its result.", slug="not-submitted")
        return quiz, attempt, items

    async def my_attempts(
        self, caller: User, quiz_id: uuid.UUID, offset: int, limit: int
    ) -> tuple[Quiz, list[QuizAttempt], int]:
        quiz, _ = await self.readable_quiz(caller, quiz_id)
        rows, total = await self.repo.attempts(
            quiz.id, user_id=caller.id, offset=offset, limit=limit
        )
        return quiz, rows, total

    # Instructors ----------------------------------------------------------------------

    async def quiz_attempts(
        self, caller: User, quiz_id: uuid.UUID, offset: int, limit: int
    ) -> tuple[list[QuizAttempt], int]:
        _, quiz = await self.editable_quiz(caller, quiz_id)
        return await self.repo.attempts(quiz.id, user_id=None, offset=offset, limit=limit)

    async def attempt_for_review(
        self, caller: User, attempt_id: uuid.UUID, *, for_update: bool = False
    ) -> tuple[Quiz, QuizAttempt, list[AttemptItem]]:
        found = await self.repo.attempt_with_quiz(attempt_id, for_update=for_update)
        if found is None:
            raise NotFound("No such attempt.")
        attempt, quiz = found
        await self.courses.editable_course(attempt.course_id, caller)
        items = await self.repo.items(attempt.id)
        if self._expired(attempt):
            await self.grader.finalise(quiz, attempt, items, auto=True)
        return quiz, attempt, items

    async def grade_items(
        self, caller: User, attempt_id: uuid.UUID, grades: list[schemas.ItemGradeIn]
    ) -> tuple[QuizAttempt, list[AttemptItem]]:
        """An instructor grades (or regrades) items of a submitted attempt; audited."""
        quiz, attempt, items = await self.attempt_for_review(caller, attempt_id, for_update=True)
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
        await self.grader.settle(quiz, attempt, items)
        await audit(
            self.session,
            course_id=attempt.course_id,
            subject_type="attempt",
            subject_id=attempt.id,
            actor=caller,
            action="grade_items",
            before=before,
            after=_attempt_state(attempt, items),
            comment="; ".join(comment for _, _, comment in changes if comment),
            at=self.now,
        )
        return attempt, items


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
