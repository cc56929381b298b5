"""Quizzes: composing them from the question bank (fixed questions, and questions drawn
by tag per attempt), their window in time, and listing them for a course."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.assessments.repository.quizzes import QuizRepository
from lyceum.assessments.schemas import quizzes as schemas
from lyceum.assessments.service.common import check_instants, check_placement
from lyceum.assessments.service.questions import normalised_tag
from lyceum.kit.errors import Conflict, Invalid
from lyceum.models.assessments import Quiz, QuizSection
from lyceum.models.courses import Course

MAX_QUESTIONS_PER_ATTEMPT = 200
NULLABLE = {
    "module_id",
    "lesson_id",
    "time_limit_seconds",
    "max_attempts",
    "available_from",
    "available_until",
    "due_at",
}


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


class QuizService:
    """Works on courses and quizzes the caller may see or edit (`assessments.permissions`)."""

    def __init__(self, session: AsyncSession) -> None:
        self.repo = QuizRepository(session)

    async def _sections(
        self, course_id: uuid.UUID, quiz_id: uuid.UUID, given: list[schemas.SectionIn]
    ) -> list[QuizSection]:
        fixed = [section.question_id for section in given if section.question_id is not None]
        known = await self.repo.questions_by_id(course_id, fixed)
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
            tag = normalised_tag(section.tag)
            drawn_by_tag[tag] = drawn_by_tag.get(tag, 0) + section.draw
            available = await self.repo.tagged_question_ids(course_id, tag)
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

    async def create(
        self, course: Course, data: schemas.QuizCreate
    ) -> tuple[Quiz, list[QuizSection]]:
        await check_placement(self.repo, course.id, data.module_id, data.lesson_id)
        quiz = Quiz(course_id=course.id, **data.model_dump(exclude={"sections"}))
        _check_window(quiz)
        await self.repo.add(quiz)
        sections = await self._sections(course.id, quiz.id, data.sections)
        await self.repo.add_all(sections)
        if quiz.published and not sections:
            raise Conflict("Add questions before publishing the quiz.", slug="quiz-empty")
        await self.repo.reload(quiz)
        return quiz, sections

    async def change(self, quiz: Quiz, data: schemas.QuizUpdate) -> tuple[Quiz, list[QuizSection]]:
        for name in data.model_fields_set - {"sections"}:
            value = getattr(data, name)
            if value is None and name not in NULLABLE:
                continue
            setattr(quiz, name, value)
        _check_window(quiz)
        await check_placement(self.repo, quiz.course_id, quiz.module_id, quiz.lesson_id)
        if data.sections is not None:
            sections = await self._sections(quiz.course_id, quiz.id, data.sections)
            await self.repo.replace_sections(quiz.id, sections)
        else:
            sections = await self.sections_of(quiz)
        if quiz.published and not sections:
            raise Conflict("Add questions before publishing the quiz.", slug="quiz-empty")
        await self.repo.reload(quiz)
        return quiz, sections

    async def remove(self, quiz: Quiz) -> None:
        if await self.repo.quiz_has_attempts(quiz.id):
            raise Conflict(
                "Learners have attempted this quiz; unpublish it instead of deleting grades.",
                slug="quiz-has-attempts",
            )
        await self.repo.remove(quiz)

    async def listing(
        self, course: Course, *, published_only: bool, offset: int, limit: int
    ) -> tuple[list[tuple[Quiz, list[QuizSection]]], int]:
        rows, total = await self.repo.quizzes(
            course.id, published_only=published_only, offset=offset, limit=limit
        )
        sections = await self.repo.sections([quiz.id for quiz in rows])
        return [(quiz, sections[quiz.id]) for quiz in rows], total

    async def sections_of(self, quiz: Quiz) -> list[QuizSection]:
        return (await self.repo.sections([quiz.id]))[quiz.id]
