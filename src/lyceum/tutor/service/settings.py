"""A course's tutor settings (on or off, mode, instructions, budget, rate limit) and the
checks a question passes before the tutor spends anything on it: the tutor is on, the
learner is under their hourly limit, the course under its monthly token budget."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.config import Settings
from lyceum.kit.errors import Conflict, RateLimited
from lyceum.kit.ratelimit import RateLimiter
from lyceum.models.courses import Course
from lyceum.models.identity import User
from lyceum.models.tutor import TutorMode, TutorSettings
from lyceum.tutor import schemas
from lyceum.tutor.repository import TutorRepository

# Fields whose `null` means "none" (no budget, no own limit) rather than "unchanged".
CLEARABLE = frozenset({"monthly_token_budget", "hourly_message_limit"})


def month_start(now: dt.datetime) -> dt.datetime:
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


class TutorSettingsService:
    def __init__(
        self, session: AsyncSession, *, settings: Settings, limiter: RateLimiter, now: dt.datetime
    ) -> None:
        self.settings = settings
        self.limiter = limiter
        self.now = now
        self.repo = TutorRepository(session)

    async def of(self, course_id: uuid.UUID) -> TutorSettings:
        """The course's settings; the defaults (on, socratic) until someone changes them."""
        row = await self.repo.settings(course_id)
        return row or TutorSettings(
            course_id=course_id,
            enabled=True,
            mode=TutorMode.socratic,
            instructions="",
            monthly_token_budget=None,
            hourly_message_limit=None,
        )

    async def enabled(self, course: Course) -> TutorSettings:
        """The course's settings, if its tutor is on (409 `tutor-disabled` otherwise)."""
        settings = await self.of(course.id)
        if not settings.enabled:
            raise Conflict(
                "The course's instructors have switched the tutor off for this course.",
                slug="tutor-disabled",
            )
        return settings

    async def tokens_this_month(self, course_id: uuid.UUID) -> int:
        return await self.repo.tokens_since(course_id, month_start(self.now))

    async def update(
        self, course: Course, data: schemas.TutorSettingsIn
    ) -> schemas.TutorSettingsOut:
        row = await self.repo.settings(course.id, for_update=True)
        if row is None:
            row = await self.of(course.id)
            self.repo.add(row)
        for name in data.model_fields_set:
            value = getattr(data, name)
            if value is None and name not in CLEARABLE:
                continue
            setattr(row, name, value)
        await self.repo.flush()
        return await self.out(course.id)

    async def out(self, course_id: uuid.UUID) -> schemas.TutorSettingsOut:
        row = await self.of(course_id)
        return schemas.TutorSettingsOut(
            course_id=course_id,
            enabled=row.enabled,
            mode=row.mode,
            instructions=row.instructions,
            monthly_token_budget=row.monthly_token_budget,
            hourly_message_limit=row.hourly_message_limit,
            tokens_used_this_month=await self.tokens_this_month(course_id),
        )

    async def check_limits(
        self, caller: User, course: Course, tutor: TutorSettings
    ) -> dict[str, str]:
        """The rate limit (per user, atomic across replicas) and the course's monthly
        token budget. Returns the X-RateLimit-* headers for the response."""
        rule = (
            f"{tutor.hourly_message_limit}/hour"
            if tutor.hourly_message_limit
            else self.settings.tutor_rate_limit
        )
        decision = await self.limiter.hit(rule, "tutor", str(caller.id))
        headers = decision.headers()
        if not decision.allowed:
            error = RateLimited(
                f"You have asked the tutor {decision.limit} questions in the last hour; "
                f"try again in {decision.retry_after} s.",
                retry_after=decision.retry_after,
            )
            error.headers = {**(error.headers or {}), **headers}
            raise error
        budget = tutor.monthly_token_budget
        if budget is not None and await self.tokens_this_month(course.id) >= budget:
            error = RateLimited(
                "The tutor has used this course's token budget for the month.",
                retry_after=int(
                    (month_start(self.now) + dt.timedelta(days=32)).replace(day=1).timestamp()
                    - self.now.timestamp()
                ),
            )
            error.slug = "token-budget-exhausted"
            raise error
        return headers
