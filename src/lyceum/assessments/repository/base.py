"""What every assessments repository shares: the session, adding and deleting rows,
counted pages, and the lookups of course structure an assessment is placed in."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.models.assessments import Assignment, Quiz
from lyceum.models.base import Base
from lyceum.models.courses import Lesson, Module
from lyceum.models.identity import User

M = TypeVar("M", bound=Base)
Published = TypeVar("Published", Quiz, Assignment)


class Repository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def _count(self, model: type[Base], conditions: Sequence[Any]) -> int:
        query = select(func.count()).select_from(model).where(*conditions)
        return int((await self.session.execute(query)).scalar_one())

    async def _page(
        self,
        model: type[M],
        conditions: Sequence[Any],
        order_by: tuple[Any, ...],
        offset: int,
        limit: int,
    ) -> tuple[list[M], int]:
        """One page of `model` rows matching `conditions`, and how many match in all."""
        total = await self._count(model, conditions)
        rows = await self.session.scalars(
            select(model).where(*conditions).order_by(*order_by).offset(offset).limit(limit)
        )
        return list(rows), total

    async def _course_page(
        self,
        model: type[Published],
        course_id: uuid.UUID,
        published_only: bool,
        offset: int,
        limit: int,
    ) -> tuple[list[Published], int]:
        """A course's quizzes or assignments (only the published ones for learners),
        oldest first."""
        conditions: list[Any] = [model.course_id == course_id]
        if published_only:
            conditions.append(model.published.is_(True))
        return await self._page(model, conditions, (model.created_at, model.id), offset, limit)

    async def add(self, entity: object) -> None:
        self.session.add(entity)
        await self.session.flush()

    async def add_all(self, entities: Sequence[object]) -> None:
        self.session.add_all(entities)
        await self.session.flush()

    async def add_unique(self, *batches: Sequence[object]) -> bool:
        """Add rows, batch after batch, that a unique constraint may refuse (two
        requests racing to create the same thing): False, and nothing added, when it
        does."""
        try:
            async with self.session.begin_nested():
                for batch in batches:
                    await self.add_all(batch)
        except IntegrityError:
            return False
        return True

    async def remove(self, entity: object) -> None:
        await self.session.delete(entity)
        await self.session.flush()

    async def flush(self) -> None:
        await self.session.flush()

    async def reload(self, entity: object) -> None:
        """Read back what the database set (defaults, timestamps) after a write."""
        await self.session.flush()
        await self.session.refresh(entity)

    async def user_names(self, user_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
        if not user_ids:
            return {}
        rows = await self.session.execute(
            select(User.id, User.full_name).where(User.id.in_(set(user_ids)))
        )
        return {user_id: name for user_id, name in rows}  # noqa: C416 (Row, not tuple)

    async def module_course(self, module_id: uuid.UUID) -> uuid.UUID | None:
        """The course a module belongs to (None: no such module)."""
        module = await self.session.get(Module, module_id)
        return module.course_id if module is not None else None

    async def lesson_course(self, lesson_id: uuid.UUID) -> uuid.UUID | None:
        """The course a lesson belongs to (None: no such lesson)."""
        lesson = await self.session.get(Lesson, lesson_id)
        return lesson.course_id if lesson is not None else None
