"""Every query of the demo loader's enrollment history: which demo learners exist."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.models.identity import User


async def users_by_email(session: AsyncSession, emails: Sequence[str]) -> dict[str, uuid.UUID]:
    rows = await session.execute(select(User.email, User.id).where(User.email.in_(emails)))
    return {row.email: row.id for row in rows}
