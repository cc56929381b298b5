"""Admin user search is case- and accent-blind, treats `%` and `_` as plain characters,
and can use its trigram index."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from lyceum.identity.repository import user_matches
from lyceum.models.identity import Role, User
from tests.identity.helpers import Account, account

NAMES = ["Trần Thị Bích", "Nguyễn Đức Anh", "Tran Van Minh", "Zoë Ångström", "Ana 100%_sure"]


async def found(client: httpx.AsyncClient, admin: Account, query: str, marker: str) -> set[str]:
    response = await client.get(
        "/api/v1/users", params={"q": query, "size": 100}, headers=admin.headers
    )
    assert response.status_code == 200, response.text
    return {item["full_name"] for item in response.json()["items"] if marker in item["email"]}


async def test_search_ignores_case_and_accents(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await account(client, connection, role=Role.admin, prefix="admin")
    marker = f"s{uuid.uuid4().hex[:8]}"
    for name in NAMES:
        person = await account(client, connection, prefix=f"{marker}-p")
        await connection.execute(update(User).where(User.id == person.id).values(full_name=name))

    assert await found(client, admin, "tran", marker) == {"Trần Thị Bích", "Tran Van Minh"}
    assert await found(client, admin, "TRẦN", marker) == {"Trần Thị Bích", "Tran Van Minh"}
    assert await found(client, admin, "duc", marker) == {"Nguyễn Đức Anh"}
    assert await found(client, admin, "nguyen đức", marker) == {"Nguyễn Đức Anh"}
    assert await found(client, admin, "angstrom", marker) == {"Zoë Ångström"}
    assert await found(client, admin, "zoe", marker) == {"Zoë Ångström"}
    # Wildcards are characters, not patterns.
    assert await found(client, admin, "100%_", marker) == {"Ana 100%_sure"}
    assert await found(client, admin, "%", marker) == {"Ana 100%_sure"}
    assert await found(client, admin, "t_an", marker) == set()
    # The email is searched too.
    assert len(await found(client, admin, marker, marker)) == len(NAMES)


async def test_the_search_can_use_the_trigram_index(connection: AsyncConnection) -> None:
    await connection.execute(text("SET LOCAL enable_seqscan = off"))
    query = select(User.id).where(user_matches("tran"))
    compiled = query.compile(connection.sync_connection, compile_kwargs={"literal_binds": True})
    plan = "\n".join(row[0] for row in await connection.execute(text(f"EXPLAIN {compiled}")))
    assert "ix_users_search_trgm" in plan, plan
