"""How learning reacts, inside the emitting transaction, to other domains' events: a
passed required assessment may be what completes the course (whichever comes last, the
last lesson or the last required pass, completes it), so the response that shows the
pass shows the completed course too."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.kit.events import react
from lyceum.learning.service import complete_if_done


async def complete_after_passing(
    session: AsyncSession, *, course_id: str, user_id: str, required: bool, at: str
) -> None:
    """`assessment.passed`: only a required assessment can be what completes a course."""
    if required:
        await complete_if_done(
            session, uuid.UUID(course_id), uuid.UUID(user_id), dt.datetime.fromisoformat(at)
        )


react("assessment.passed", complete_after_passing)
