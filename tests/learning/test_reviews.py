"""Reviews: enrolled learners rate once (editable); the course shows average and count."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from lyceum.kit.runtime import Runtime
from lyceum.models.identity import Role
from tests.courses.test_courses import fold, published
from tests.identity.helpers import Account, account


@pytest.fixture
async def teacher(client: httpx.AsyncClient, connection: AsyncConnection) -> Account:
    return await account(client, connection, role=Role.instructor, prefix="teacher")


async def test_reviews_average_count_and_editing(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    teacher: Account,
    runtime: Runtime,
) -> None:
    course, _ = await published(client, teacher)
    path = f"/api/v1/courses/{course['id']}"
    alice = await account(client, connection, prefix="alice")
    bob = await account(client, connection, prefix="bob")
    outsider = await account(client, connection, prefix="outsider")
    for learner in (alice, bob):
        await client.post(f"{path}/enrollments", headers=learner.headers)

    first = await client.put(
        f"{path}/reviews/me", json={"rating": 5, "text": "Great"}, headers=alice.headers
    )
    assert first.status_code == 201, first.text
    await client.put(f"{path}/reviews/me", json={"rating": 2}, headers=bob.headers)
    edited = await client.put(
        f"{path}/reviews/me", json={"rating": 4, "text": "Good"}, headers=alice.headers
    )
    assert edited.status_code == 200 and edited.json()["id"] == first.json()["id"]

    await fold(connection, runtime.cache)
    detail = (await client.get(path)).json()
    assert detail["rating_count"] == 2 and detail["rating_average"] == 3.0
    listing = (await client.get(f"{path}/reviews")).json()
    assert listing["total"] == 2 and {r["author_name"] for r in listing["items"]} == {
        "Ada Lovelace"
    }

    assert (
        await client.put(f"{path}/reviews/me", json={"rating": 5}, headers=outsider.headers)
    ).status_code == 403
    for bad in (
        {"rating": 0},
        {"rating": 6},
        {"rating": "5"},
        {"rating": True},
        {"text": "no rating"},
    ):
        assert (
            await client.put(f"{path}/reviews/me", json=bad, headers=alice.headers)
        ).status_code == 422

    assert (await client.delete(f"{path}/reviews/me", headers=bob.headers)).status_code == 204
    await fold(connection, runtime.cache)
    after = (await client.get(path)).json()
    assert after["rating_count"] == 1 and after["rating_average"] == 4.0
    assert (await client.delete(f"{path}/reviews/me", headers=bob.headers)).status_code == 404


async def test_popular_courses_follow_enrollments(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    teacher: Account,
    runtime: Runtime,
) -> None:
    quiet, _ = await published(client, teacher)
    busy, _ = await published(client, teacher)
    for index in range(2):
        learner = await account(client, connection, prefix=f"fan{index}")
        await client.post(f"/api/v1/courses/{busy['id']}/enrollments", headers=learner.headers)
    await fold(connection, runtime.cache)
    popular = (await client.get("/api/v1/courses/popular", params={"size": 20})).json()["items"]
    ids = [item["id"] for item in popular]
    assert busy["id"] in ids
    if quiet["id"] in ids:
        assert ids.index(busy["id"]) < ids.index(quiet["id"])
