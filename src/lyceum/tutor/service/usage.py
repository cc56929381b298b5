"""The tutor's usage report: answers and tokens by course, learner and day, with their
estimated cost (`lyceum.kit.ai.usage` prices the tokens)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.config import Settings
from lyceum.kit.ai.usage import COST_DIGITS, estimated_cost
from lyceum.tutor import schemas
from lyceum.tutor.repository import TutorRepository


@dataclass(frozen=True, slots=True)
class UsageScope:
    """The courses whose usage a caller sees, decided by `tutor.permissions.usage_scope`:
    one course they edit, the courses they teach, or (admins) every course."""

    course_ids: list[uuid.UUID] | None = None
    taught_by: uuid.UUID | None = None


class UsageService:
    def __init__(self, session: AsyncSession, *, settings: Settings) -> None:
        self.settings = settings
        self.repo = TutorRepository(session)

    async def report(self, scope: UsageScope, since: dt.date | None) -> schemas.UsageReport:
        rows = await self.repo.usage(
            course_ids=scope.course_ids, taught_by=scope.taught_by, since=since
        )
        items = [
            schemas.UsageRow(
                course_id=row.course_id,
                user_id=row.user_id,
                day=row.day,
                messages=row.messages,
                tokens_in=int(row.tokens_in or 0),
                tokens_out=int(row.tokens_out or 0),
                estimated_cost_usd=estimated_cost(self.settings, row.tokens_in, row.tokens_out),
            )
            for row in rows
        ]
        return schemas.UsageReport(
            items=items,
            total_messages=sum(item.messages for item in items),
            total_tokens_in=sum(item.tokens_in for item in items),
            total_tokens_out=sum(item.tokens_out for item in items),
            total_estimated_cost_usd=round(
                sum(item.estimated_cost_usd for item in items), COST_DIGITS
            ),
        )
