"""Every query of the grade audit trail."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from lyceum.assessments.repository.base import Repository
from lyceum.models.assessments import AuditEntry
from lyceum.models.identity import User


class AuditRepository(Repository):
    async def entries(
        self, course_id: uuid.UUID, subject_id: uuid.UUID | None, offset: int, limit: int
    ) -> tuple[list[tuple[AuditEntry, str | None]], int]:
        """(entry, actor's name), newest first."""
        conditions: list[Any] = [AuditEntry.course_id == course_id]
        if subject_id is not None:
            conditions.append(AuditEntry.subject_id == subject_id)
        total = await self._count(AuditEntry, conditions)
        rows = await self.session.execute(
            select(AuditEntry, User.full_name)
            .outerjoin(User, User.id == AuditEntry.actor_id)
            .where(*conditions)
            .order_by(AuditEntry.seq.desc())
            .offset(offset)
            .limit(limit)
        )
        return [(entry, name) for entry, name in rows], total
