"""The two routes over HTTP: the items envelope with course, score and reason; limits
validated (422 problem+json naming the field); sign-in required for "courses for you"."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from lyceum.config import Settings
from lyceum.models.identity import Role
from lyceum.recommendations.service import rebuild_model
from tests.identity.helpers import account
from tests.recommendations.helpers import NOW, catalog, embedder, enroll, history


async def test_courses_for_you_need_a_signed_in_caller(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/me/recommendations")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("limit", ["0", "51", "ten"])
async def test_a_limit_out_of_bounds_is_a_422_naming_it(
    client: httpx.AsyncClient, connection: AsyncConnection, session: AsyncSession, limit: str
) -> None:
    learner = await account(client, connection)
    world = await catalog(session)
    for path in (
        "/api/v1/me/recommendations",
        f"/api/v1/courses/{world.courses['python']}/related",
    ):
        response = await client.get(path, params={"limit": limit}, headers=learner.headers)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert "limit" in response.text


async def test_a_learner_gets_courses_with_score_and_reason(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    session: AsyncSession,
    settings: Settings,
) -> None:
    learner = await account(client, connection)
    teacher = await account(client, connection, role=Role.instructor, prefix="teacher")
    world = await catalog(session, teacher.id)
    await history(session, world)
    await enroll(session, learner.id, world.courses["python"])
    await rebuild_model(session, embedder=await embedder(), settings=settings, now=NOW)
    response = await client.get(
        "/api/v1/me/recommendations", params={"limit": 3}, headers=learner.headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == len(body["items"]) <= 3
    first = body["items"][0]
    assert first["course"]["title"] == "Python data analysis"
    assert first["course"]["price"] == {"amount_cents": 0, "currency": "USD"}
    assert first["reason"] == {
        "kind": "because_you_took",
        "course": {"id": str(world.courses["python"]), "title": "Python basics"},
        "text": "Because you took Python basics",
    }
    assert first["score"] > 0
    related = await client.get(f"/api/v1/courses/{world.courses['python']}/related")
    assert related.status_code == 200
    titles = [item["course"]["title"] for item in related.json()["items"]]
    assert titles[0] == "Python data analysis"
    assert "Python basics" not in titles and "Python internals (draft)" not in titles
