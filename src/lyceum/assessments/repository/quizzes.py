"""Every query of quizzes, their sections, and learners' attempts at them."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, exists, func, select

from lyceum.assessments.repository.questions import QuestionRepository
from lyceum.models.assessments import AttemptItem, AttemptStatus, Quiz, QuizAttempt, QuizSection


class QuizRepository(QuestionRepository):
    """Quizzes draw from the question bank, so this reads the bank too."""

    async def quiz(self, quiz_id: uuid.UUID, *, for_update: bool = False) -> Quiz | None:
        return await self.session.get(Quiz, quiz_id, with_for_update=for_update)

    async def quizzes(
        self, course_id: uuid.UUID, *, published_only: bool, offset: int, limit: int
    ) -> tuple[list[Quiz], int]:
        return await self._course_page(Quiz, course_id, published_only, offset, limit)

    async def sections(self, quiz_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[QuizSection]]:
        found: dict[uuid.UUID, list[QuizSection]] = {quiz_id: [] for quiz_id in quiz_ids}
        if not quiz_ids:
            return found
        rows = await self.session.execute(
            select(QuizSection)
            .where(QuizSection.quiz_id.in_(set(quiz_ids)))
            .order_by(QuizSection.quiz_id, QuizSection.position)
        )
        for section in rows.scalars():
            found[section.quiz_id].append(section)
        return found

    async def replace_sections(self, quiz_id: uuid.UUID, sections: list[QuizSection]) -> None:
        await self.session.execute(delete(QuizSection).where(QuizSection.quiz_id == quiz_id))
        await self.add_all(sections)

    async def quiz_has_attempts(self, quiz_id: uuid.UUID) -> bool:
        query = select(exists().where(QuizAttempt.quiz_id == quiz_id))
        return bool((await self.session.execute(query)).scalar_one())

    # Attempts -------------------------------------------------------------------------

    async def attempt(
        self, attempt_id: uuid.UUID, *, for_update: bool = False
    ) -> QuizAttempt | None:
        return await self.session.get(QuizAttempt, attempt_id, with_for_update=for_update)

    async def attempt_with_quiz(
        self, attempt_id: uuid.UUID, *, for_update: bool = False
    ) -> tuple[QuizAttempt, Quiz] | None:
        """The attempt (locked if asked) and its quiz, in one round trip."""
        query = (
            select(QuizAttempt, Quiz)
            .join(Quiz, Quiz.id == QuizAttempt.quiz_id)
            .where(QuizAttempt.id == attempt_id)
        )
        if for_update:
            query = query.with_for_update(of=QuizAttempt)
        row = (await self.session.execute(query)).first()
        return (row[0], row[1]) if row is not None else None

    async def open_attempt(self, quiz_id: uuid.UUID, user_id: uuid.UUID) -> QuizAttempt | None:
        query = (
            select(QuizAttempt)
            .where(
                QuizAttempt.quiz_id == quiz_id,
                QuizAttempt.user_id == user_id,
                QuizAttempt.status == AttemptStatus.in_progress,
            )
            .with_for_update()
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def attempts_used(self, quiz_id: uuid.UUID, user_id: uuid.UUID) -> int:
        query = select(func.coalesce(func.max(QuizAttempt.number), 0)).where(
            QuizAttempt.quiz_id == quiz_id, QuizAttempt.user_id == user_id
        )
        return int((await self.session.execute(query)).scalar_one())

    async def items(self, attempt_id: uuid.UUID) -> list[AttemptItem]:
        rows = await self.session.execute(
            select(AttemptItem)
            .where(AttemptItem.attempt_id == attempt_id)
            .order_by(AttemptItem.position)
        )
        return list(rows.scalars())

    async def attempts(
        self,
        quiz_id: uuid.UUID,
        *,
        user_id: uuid.UUID | None,
        offset: int,
        limit: int,
    ) -> tuple[list[QuizAttempt], int]:
        conditions: list[Any] = [QuizAttempt.quiz_id == quiz_id]
        if user_id is not None:
            conditions.append(QuizAttempt.user_id == user_id)
        return await self._page(
            QuizAttempt,
            conditions,
            (QuizAttempt.started_at.desc(), QuizAttempt.id),
            offset,
            limit,
        )

    async def expired_attempt_ids(self, before: dt.datetime, limit: int) -> list[uuid.UUID]:
        """Attempts in progress whose deadline (with its grace) has passed."""
        rows = await self.session.execute(
            select(QuizAttempt.id)
            .where(
                QuizAttempt.status == AttemptStatus.in_progress,
                QuizAttempt.deadline_at < before,
            )
            .order_by(QuizAttempt.deadline_at)
            .limit(limit)
        )
        return list(rows.scalars())
