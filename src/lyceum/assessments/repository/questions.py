"""Every query of a course's question bank."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exists, select

from lyceum.assessments.repository.base import Repository
from lyceum.models.assessments import Question, QuestionKind, QuizSection


@dataclass(frozen=True, slots=True)
class QuestionFilters:
    tag: str | None = None
    kind: QuestionKind | None = None
    difficulty: str | None = None


class QuestionRepository(Repository):
    async def question(self, question_id: uuid.UUID) -> Question | None:
        return await self.session.get(Question, question_id)

    async def questions(
        self, course_id: uuid.UUID, filters: QuestionFilters, offset: int, limit: int
    ) -> tuple[list[Question], int]:
        conditions: list[Any] = [Question.course_id == course_id]
        if filters.tag is not None:
            conditions.append(Question.tags.contains([filters.tag]))
        if filters.kind is not None:
            conditions.append(Question.kind == filters.kind)
        if filters.difficulty is not None:
            conditions.append(Question.difficulty == filters.difficulty)
        return await self._page(
            Question, conditions, (Question.created_at, Question.id), offset, limit
        )

    async def questions_by_id(
        self, course_id: uuid.UUID, ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, Question]:
        if not ids:
            return {}
        rows = await self.session.execute(
            select(Question).where(Question.course_id == course_id, Question.id.in_(set(ids)))
        )
        return {question.id: question for question in rows.scalars()}

    async def tagged_questions(self, course_id: uuid.UUID, tag: str) -> list[Question]:
        rows = await self.session.execute(
            select(Question)
            .where(Question.course_id == course_id, Question.tags.contains([tag]))
            .order_by(Question.id)
        )
        return list(rows.scalars())

    async def tagged_question_ids(self, course_id: uuid.UUID, tag: str) -> set[uuid.UUID]:
        rows = await self.session.execute(
            select(Question.id).where(
                Question.course_id == course_id, Question.tags.contains([tag])
            )
        )
        return set(rows.scalars())

    async def question_in_a_quiz(self, question_id: uuid.UUID) -> bool:
        query = select(exists().where(QuizSection.question_id == question_id))
        return bool((await self.session.execute(query)).scalar_one())
