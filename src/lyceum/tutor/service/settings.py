"""A course's tutor settings (on or off, mode, instructions, budget, rate limit) and the
checks a question passes before the tutor spends anything on it: the tutor is on, the
learner is under their hourly limit, the course under its monthly token budget.

What every turn reads of the course and not of the learner (the settings and the
syllabus's titles) is kept in the cache under the course's version
(`courses.service.course_version_key`, bumped after the commit of any change to the
course, its modules and lessons, and here to its tutor settings): a question reads it
from the database only once per change of the course."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.config import Settings
from lyceum.courses.service import course_version_key
from lyceum.kit.cache import Cache, bump_after_commit, get_json, set_json, version_of
from lyceum.kit.errors import Conflict, RateLimited
from lyceum.kit.ratelimit import RateLimiter
from lyceum.models.courses import Course
from lyceum.models.identity import User
from lyceum.models.tutor import TutorMode, TutorSettings
from lyceum.tutor import schemas
from lyceum.tutor.repository import SyllabusEntry, TutorRepository

# Fields whose `null` means "none" (no budget, no own limit) rather than "unchanged".
CLEARABLE = frozenset({"monthly_token_budget", "hourly_message_limit"})
SETTING_FIELDS = ("enabled", "mode", "instructions", "monthly_token_budget", "hourly_message_limit")


@dataclass(frozen=True, slots=True)
class CourseTutorFacts:
    """A course's tutor settings (a transient row: the defaults when it has none) and
    its syllabus, as a turn reads them."""

    settings: TutorSettings
    syllabus: list[SyllabusEntry]


def facts_key(course_id: uuid.UUID, version: str) -> str:
    return f"tutor:course:{course_id}:v{version}"


def _settings_json(row: TutorSettings) -> dict[str, Any]:
    return {name: getattr(row, name) for name in SETTING_FIELDS}


def _settings_of(course_id: uuid.UUID, data: dict[str, Any]) -> TutorSettings:
    return TutorSettings(
        course_id=course_id,
        enabled=bool(data["enabled"]),
        mode=TutorMode(data["mode"]),
        instructions=str(data["instructions"]),
        monthly_token_budget=data["monthly_token_budget"],
        hourly_message_limit=data["hourly_message_limit"],
    )


def month_start(now: dt.datetime) -> dt.datetime:
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


class TutorSettingsService:
    def __init__(
        self,
        session: AsyncSession,
        *,
        settings: Settings,
        limiter: RateLimiter,
        now: dt.datetime,
        cache: Cache | None = None,
    ) -> None:
        """Without a `cache`, the course's facts are read from the database every time."""
        self.session = session
        self.settings = settings
        self.limiter = limiter
        self.now = now
        self.cache = cache
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

    async def facts(self, course: Course) -> CourseTutorFacts:
        """The course's settings and syllabus, from the cache entry of the course's
        current version, else the database (and then kept under that version: a change
        committed meanwhile bumps it, so what was read before it is never read again)."""
        if self.cache is None:
            return CourseTutorFacts(await self.of(course.id), await self.repo.syllabus(course.id))
        key = facts_key(course.id, await version_of(self.cache, course_version_key(course.id)))
        cached = await get_json(self.cache, key)
        if cached is not None:
            return CourseTutorFacts(
                _settings_of(course.id, cached["settings"]),
                [
                    SyllabusEntry(
                        uuid.UUID(module_id),
                        module_title,
                        None if lesson_id is None else uuid.UUID(lesson_id),
                        lesson_title,
                    )
                    for module_id, module_title, lesson_id, lesson_title in cached["syllabus"]
                ],
            )
        facts = CourseTutorFacts(await self.of(course.id), await self.repo.syllabus(course.id))
        await set_json(
            self.cache,
            key,
            {
                "settings": _settings_json(facts.settings),
                "syllabus": [
                    [
                        str(entry.module_id),
                        entry.module_title,
                        None if entry.lesson_id is None else str(entry.lesson_id),
                        entry.lesson_title,
                    ]
                    for entry in facts.syllabus
                ],
            },
            self.settings.cache_ttl_seconds,
        )
        return facts

    async def enabled_facts(self, course: Course) -> CourseTutorFacts:
        """The course's settings and syllabus, if its tutor is on (409 `tutor-disabled`
        otherwise)."""
        facts = await self.facts(course)
        if not facts.settings.enabled:
            raise Conflict(
                "The course's instructors have switched the tutor off for this course.",
                slug="tutor-disabled",
            )
        return facts

    async def enabled(self, course: Course) -> TutorSettings:
        """The course's settings, if its tutor is on (409 `tutor-disabled` otherwise)."""
        return (await self.enabled_facts(course)).settings

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
        if self.cache is not None:
            # The turns' cached copy of the settings goes stale once this commits.
            bump_after_commit(self.session, self.cache, course_version_key(course.id))
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
