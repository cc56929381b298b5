"""`lyceum demo`: six published courses (English and Vietnamese) with real lesson text,
an instructor who teaches them, a student, and an enrollment history of 24 demo
learners (`history.py`), after which a recommendation model rebuild is enqueued.
Running it again changes nothing."""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass
from importlib import resources
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.courses import schemas
from lyceum.courses.service import CourseService
from lyceum.demo.history import HistoryResult, load_history
from lyceum.identity.service import ensure_account
from lyceum.kit.cache import Cache
from lyceum.models.identity import Role
from lyceum.recommendations.service import request_rebuild

INSTRUCTOR_EMAIL = "teacher@demo.lyceum.dev"
INSTRUCTOR_PASSWORD = "demo teacher passphrase"  # noqa: S105 (published demo login)
STUDENT_EMAIL = "student@demo.lyceum.dev"
STUDENT_PASSWORD = "demo student passphrase"  # noqa: S105 (published demo login)


@dataclass(frozen=True)
class DemoResult:
    created: list[str]
    existing: list[str]
    history: HistoryResult | None = None  # None: it was loaded before


def demo_courses() -> list[dict[str, Any]]:
    folder = resources.files("lyceum.demo") / "courses"
    courses = []
    for entry in sorted(folder.iterdir(), key=lambda item: item.name):
        if entry.name.endswith(".toml"):
            courses.append(tomllib.loads(entry.read_text(encoding="utf-8")))
    return courses


async def load_demo(session: AsyncSession, *, cache: Cache, now: dt.datetime) -> DemoResult:
    teacher = await ensure_account(
        session,
        email=INSTRUCTOR_EMAIL,
        password=INSTRUCTOR_PASSWORD,
        full_name="Minh Trần",
        role=Role.instructor,
        now=now,
    )
    student = await ensure_account(
        session,
        email=STUDENT_EMAIL,
        password=STUDENT_PASSWORD,
        full_name="Lan Nguyễn",
        role=Role.student,
        now=now,
    )
    service = CourseService(session, cache=cache, cache_ttl=60, now=now)
    created, existing = [], []
    for data in demo_courses():
        if await service.course_by_slug(data["slug"]) is not None:
            existing.append(data["slug"])
            continue
        course = await service.create(
            teacher,
            schemas.CourseCreate(
                title=data["title"],
                slug=data["slug"],
                subtitle=data.get("subtitle", ""),
                description=data.get("description", ""),
                language=data["language"],
                level=data["level"],
                category=data["category"],
                tags=data.get("tags", []),
                price=schemas.Price(
                    amount_cents=data.get("price_cents", 0), currency=data.get("currency", "USD")
                ),
            ),
        )
        for module_data in data["modules"]:
            module = await service.add_module(course, module_data["title"])
            for lesson in module_data["lessons"]:
                await service.add_lesson(
                    course,
                    module,
                    schemas.LessonCreate(
                        title=lesson["title"],
                        kind=lesson.get("kind", "text"),
                        content=lesson.get("content", ""),
                        video_url=lesson.get("video_url"),
                        duration_seconds=lesson.get("duration_seconds"),
                        estimated_minutes=lesson.get("minutes", 10),
                        is_preview=lesson.get("preview", False),
                    ),
                )
        await service.publish(course)
        created.append(data["slug"])
    await session.flush()
    history = await load_history(session, service, student_id=student.id, now=now)
    if history is not None:  # the model is rebuilt by a job, in this transaction
        await request_rebuild(session, now)
    return DemoResult(created=created, existing=existing, history=history)
