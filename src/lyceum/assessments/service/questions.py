"""A course's question bank: writing, replacing and deleting questions, with the
checks of an answer key that a schema cannot make."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.assessments.grading import UnsafePattern, compile_answer_pattern
from lyceum.assessments.repository.questions import QuestionFilters, QuestionRepository
from lyceum.assessments.schemas import questions as schemas
from lyceum.kit.errors import Conflict, Invalid
from lyceum.models.assessments import Question, QuestionKind
from lyceum.models.courses import Course
from lyceum.models.identity import User

TRUE_FALSE_OPTIONS = [{"id": "true", "text": "True"}, {"id": "false", "text": "False"}]


def normalised_tag(tag: str) -> str:
    return tag.strip().lower()


def _normalised_tags(tags: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(normalised_tag(tag) for tag in tags if tag.strip()))


async def _question_parts(data: schemas.QuestionIn) -> tuple[list[dict[str, Any]], dict[str, Any]]:
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


def _fill(
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


class QuestionService:
    """Works on courses and questions the caller may edit (`assessments.permissions`)."""

    def __init__(self, session: AsyncSession) -> None:
        self.repo = QuestionRepository(session)

    async def create(self, course: Course, author: User, data: schemas.QuestionIn) -> Question:
        options, key = await _question_parts(data)
        question = Question(course_id=course.id, created_by=author.id)
        _fill(question, data, options, key)
        await self.repo.add(question)
        await self.repo.reload(question)
        return question

    async def replace(self, question: Question, data: schemas.QuestionIn) -> Question:
        """Attempts already drawn keep their snapshot of the old version."""
        options, key = await _question_parts(data)
        _fill(question, data, options, key)
        await self.repo.reload(question)
        return question

    async def remove(self, question: Question) -> None:
        if await self.repo.question_in_a_quiz(question.id):
            raise Conflict(
                "A quiz names this question; take it out of the quiz first.",
                slug="question-in-use",
            )
        await self.repo.remove(question)

    async def listing(
        self, course: Course, filters: QuestionFilters, offset: int, limit: int
    ) -> tuple[list[Question], int]:
        if filters.tag is not None:
            filters = QuestionFilters(normalised_tag(filters.tag), filters.kind, filters.difficulty)
        return await self.repo.questions(course.id, filters, offset, limit)
