"""Catalog search as people type it: each course in its own language (English stemmed,
every language accent-blind), the last word as a prefix, and "did you mean" for
misspellings."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from lyceum.courses.service import refresh_vocabulary
from lyceum.courses.spelling import best_correction, edit_distance
from lyceum.kit.db import unit_of_work
from lyceum.kit.runtime import Runtime
from lyceum.models.identity import Role
from tests.courses.test_courses import published
from tests.identity.helpers import Account, account
from tests.support.words import search_marker


@pytest.fixture
async def teacher(client: httpx.AsyncClient, connection: AsyncConnection) -> Account:
    return await account(client, connection, role=Role.instructor, prefix="teacher")


async def search(client: httpx.AsyncClient, q: str, **filters: str) -> dict[str, Any]:
    response = await client.get("/api/v1/courses", params={"q": q, **filters})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def titles(body: dict[str, Any]) -> list[str]:
    return [item["title"] for item in body["items"]]


async def test_english_courses_match_other_forms_of_a_word(
    client: httpx.AsyncClient, teacher: Account
) -> None:
    marker = search_marker()
    await published(client, teacher, title=f"Statistics essentials {marker}", language="en")
    await published(client, teacher, title=f"Investing for beginners {marker}", language="en")
    assert titles(await search(client, f"statistic {marker}")) == [
        f"Statistics essentials {marker}"
    ]
    assert titles(await search(client, f"invested {marker}")) == [
        f"Investing for beginners {marker}"
    ]


async def test_the_last_word_matches_as_a_prefix_while_typing(
    client: httpx.AsyncClient, teacher: Account
) -> None:
    marker = search_marker()
    await published(client, teacher, title=f"Photosynthesis explained {marker}", language="en")
    await published(client, teacher, title=f"Lập trình Python {marker}", language="vi")
    assert titles(await search(client, f"{marker} photosynth")) == [
        f"Photosynthesis explained {marker}"
    ]
    assert titles(await search(client, f"{marker} lap tri")) == [f"Lập trình Python {marker}"]
    # Two letters are not a prefix search yet.
    assert (await search(client, f"{marker} ph"))["total"] == 0


async def test_other_languages_are_not_english_stemmed(
    client: httpx.AsyncClient, teacher: Account
) -> None:
    marker = search_marker()
    await published(client, teacher, title=f"Địa lý Việt Nam {marker}", language="vi")
    body = await search(client, f"dia ly {marker}")
    assert titles(body) == [f"Địa lý Việt Nam {marker}"]
    assert "<mark>" in body["items"][0]["snippet"]


async def test_a_misspelt_word_gets_a_did_you_mean(
    client: httpx.AsyncClient, teacher: Account, connection: AsyncConnection, runtime: Runtime
) -> None:
    marker = search_marker()
    await published(client, teacher, title=f"Python programming {marker}", language="en")
    async with (
        AsyncSession(bind=connection, join_transaction_mode="create_savepoint") as session,
        unit_of_work(session),
    ):
        await runtime.cache.delete("catalog:vocabulary-version")
        assert await refresh_vocabulary(session, runtime.cache)
    body = await search(client, f"pyhton {marker}")
    assert body["total"] == 0
    assert body["did_you_mean"] == f"python {marker}"
    assert body["suggestions"] == [f"Python programming {marker}"]
    # A query with nothing to correct gets no correction.
    assert (await search(client, f"zzzqqq{marker}"))["did_you_mean"] is None


@pytest.mark.parametrize(
    ("left", "right", "distance"),
    [
        ("python", "python", 0),
        ("pyhton", "python", 1),  # a transposition is one edit
        ("invset", "invest", 1),
        ("statistcs", "statistics", 1),
        ("photosinthesys", "photosynthesis", 2),
        ("kitten", "sitting", 3),
    ],
)
def test_edit_distance_counts_transpositions_once(left: str, right: str, distance: int) -> None:
    assert edit_distance(left, right) == distance == edit_distance(right, left)


def test_corrections_stay_close_and_prefer_common_words() -> None:
    assert best_correction("pyhton", [("python", 5), ("photon", 9)]) == "python"
    assert best_correction("cel", [("cell", 3), ("eel", 1)]) == "cell"
    assert best_correction("zzz", [("python", 5)]) is None
    assert best_correction("py", [("pi", 5)]) is None  # too short to guess
