"""The catalog's caches and counters under concurrent writers: nothing stale is cached
between a change and its commit, enrolling never rewrites (or locks) the course row,
and cached answers keep their CORS headers."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from lyceum.config import Settings
from lyceum.courses import schemas
from lyceum.courses.service import (
    CATALOG_VERSION_KEY,
    CourseService,
    course_version_key,
    fold_counters,
)
from lyceum.identity.repository import IdentityRepository
from lyceum.kit.cache import version_of
from lyceum.kit.clock import SystemClock
from lyceum.kit.db import unit_of_work
from lyceum.kit.errors import Conflict
from lyceum.kit.runtime import Runtime
from lyceum.models.identity import Role
from tests.conftest import client_for, make_app
from tests.content.helpers import Person, course_with_lesson, enroll, person


@pytest.fixture
async def live(settings: Settings, runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """Requests that commit for real, as a second client would see them."""
    async with client_for(make_app(settings, runtime, None)) as http:
        yield http


async def _row_version(runtime: Runtime, course_id: str) -> str:
    """The course row's xmin: it changes whenever the row is rewritten."""
    async with runtime.database.engine.connect() as conn:
        found = await conn.execute(
            text("SELECT xmin::text FROM courses WHERE id = :id"), {"id": course_id}
        )
        return str(found.scalar_one())


async def test_a_reader_between_a_change_and_its_commit_caches_nothing_stale(
    live: httpx.AsyncClient, runtime: Runtime
) -> None:
    teacher = await person(live, runtime, Role.instructor)
    course, _ = await course_with_lesson(live, teacher)
    before = course["title"]
    listing = {"instructor": str(teacher.id)}
    async with runtime.database.sessionmaker() as writer, unit_of_work(writer):
        caller = await IdentityRepository(writer).user_by_id(teacher.id)
        assert caller is not None
        service = CourseService(writer, cache=runtime.cache, cache_ttl=60, now=SystemClock().now())
        editable = await service.editable_course(uuid.UUID(course["id"]), caller, for_update=True)
        await service.update(editable, schemas.CourseUpdate(title="After the change"))
        # Flushed, not committed: a reader now sees (and caches) the old course.
        detail = await live.get(f"/api/v1/courses/{course['id']}")
        page = await live.get("/api/v1/courses", params=listing)
        assert detail.json()["title"] == before
        assert [item["title"] for item in page.json()["items"]] == [before]
    # Committed: nobody is served what the reader cached in between.
    detail = await live.get(f"/api/v1/courses/{course['id']}")
    page = await live.get("/api/v1/courses", params=listing)
    assert detail.json()["title"] == "After the change"
    assert [item["title"] for item in page.json()["items"]] == ["After the change"]


async def test_a_rolled_back_change_leaves_the_caches_as_they_were(
    live: httpx.AsyncClient, runtime: Runtime
) -> None:
    teacher = await person(live, runtime, Role.instructor)
    course, _ = await course_with_lesson(live, teacher)
    assert (await live.get(f"/api/v1/courses/{course['id']}")).status_code == 200
    versions = [
        await version_of(runtime.cache, key)
        for key in (CATALOG_VERSION_KEY, course_version_key(uuid.UUID(course["id"])))
    ]

    async def change_then_fail() -> None:
        async with runtime.database.sessionmaker() as writer, unit_of_work(writer):
            caller = await IdentityRepository(writer).user_by_id(teacher.id)
            assert caller is not None
            service = CourseService(
                writer, cache=runtime.cache, cache_ttl=60, now=SystemClock().now()
            )
            editable = await service.editable_course(uuid.UUID(course["id"]), caller)
            await service.update(editable, schemas.CourseUpdate(title="Never committed"))
            raise Conflict("a later step of the request failed")

    with pytest.raises(Conflict):
        await change_then_fail()
    assert versions == [
        await version_of(runtime.cache, key)
        for key in (CATALOG_VERSION_KEY, course_version_key(uuid.UUID(course["id"])))
    ]
    detail = await live.get(f"/api/v1/courses/{course['id']}")
    assert detail.json()["title"] == course["title"]


async def test_enrolling_never_rewrites_the_course_nor_flushes_the_catalog(
    live: httpx.AsyncClient, runtime: Runtime
) -> None:
    teacher = await person(live, runtime, Role.instructor)
    course, _ = await course_with_lesson(live, teacher)
    listing = {"instructor": str(teacher.id)}
    assert (await live.get("/api/v1/courses", params=listing)).headers["x-cache"] == "miss"
    row = await _row_version(runtime, course["id"])
    catalog = await version_of(runtime.cache, CATALOG_VERSION_KEY)

    learners: list[Person] = [await person(live, runtime) for _ in range(5)]
    await asyncio.gather(*(enroll(live, course["id"], learner) for learner in learners))
    review = await live.put(
        f"/api/v1/courses/{course['id']}/reviews/me",
        json={"rating": 4},
        headers=learners[0].headers,
    )
    assert review.status_code == 201
    await live.delete(f"/api/v1/courses/{course['id']}/enrollments/me", headers=learners[1].headers)

    # The course row (and its stored search document) was not touched, no catalog page
    # was thrown away, and the cached page still answers.
    assert await _row_version(runtime, course["id"]) == row
    assert await version_of(runtime.cache, CATALOG_VERSION_KEY) == catalog
    assert (await live.get("/api/v1/courses", params=listing)).headers["x-cache"] == "hit"

    # The periodic fold brings the counters (and the course's detail) up to date.
    async with runtime.database.sessionmaker() as session, unit_of_work(session):
        assert await fold_counters(session, runtime.cache) >= 1
    detail = (await live.get(f"/api/v1/courses/{course['id']}")).json()
    assert (detail["enrollment_count"], detail["rating_count"]) == (4, 1)
    assert detail["rating_average"] == 4.0
    assert await _row_version(runtime, course["id"]) == row


async def test_a_cached_catalog_page_keeps_its_cors_headers(
    settings: Settings, runtime: Runtime, connection: AsyncConnection
) -> None:
    origin = "https://app.example"
    app = make_app(settings.model_copy(update={"cors_origins": [origin]}), runtime, connection)
    params = {"category": f"cors-{uuid.uuid4().hex[:8]}"}
    async with client_for(app) as http:
        first = await http.get("/api/v1/courses", params=params, headers={"Origin": origin})
        second = await http.get("/api/v1/courses", params=params, headers={"Origin": origin})
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("miss", "hit")
    for response in (first, second):
        assert response.headers["access-control-allow-origin"] == origin
        assert "Origin" in response.headers["vary"]
        assert response.headers["x-request-id"]
