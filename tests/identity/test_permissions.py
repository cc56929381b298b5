"""The authorization building blocks later domains use."""

from __future__ import annotations

import uuid

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from sqlalchemy.ext.asyncio import AsyncConnection

from lyceum.identity.permissions import (
    AdminUser,
    CurrentUser,
    InstructorUser,
    VerifiedUser,
    require_owner_or_admin,
)
from lyceum.models.identity import Role
from tests.identity.helpers import account

probe = APIRouter(prefix="/api/v1/probe")


@probe.get("/verified")
async def verified(user: VerifiedUser) -> dict[str, str]:
    return {"id": str(user.id)}


@probe.get("/instructor")
async def instructor(user: InstructorUser) -> dict[str, str]:
    return {"id": str(user.id)}


@probe.get("/admin")
async def admin(user: AdminUser) -> dict[str, str]:
    return {"id": str(user.id)}


@probe.get("/things/{owner_id}")
async def thing(owner_id: uuid.UUID, user: CurrentUser) -> dict[str, str]:
    require_owner_or_admin(user, owner_id)
    return {"owner": str(owner_id)}


@pytest.fixture
def app(app: FastAPI) -> FastAPI:
    app.include_router(probe)
    return app


@pytest.mark.parametrize(
    ("role", "verified", "expected"),
    [
        (Role.student, False, {"verified": 403, "instructor": 403, "admin": 403}),
        (Role.student, True, {"verified": 200, "instructor": 403, "admin": 403}),
        (Role.instructor, True, {"verified": 200, "instructor": 200, "admin": 403}),
        (Role.admin, True, {"verified": 200, "instructor": 200, "admin": 200}),
    ],
)
async def test_role_dependencies(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    role: Role,
    verified: bool,
    expected: dict[str, int],
) -> None:
    caller = await account(client, connection, role=role, verified=verified)
    for name, status in expected.items():
        response = await client.get(f"/api/v1/probe/{name}", headers=caller.headers)
        assert response.status_code == status, (name, response.text)


async def test_object_rule_hides_other_peoples_objects(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    alice = await account(client, connection, prefix="alice")
    bob = await account(client, connection, prefix="bob")
    root = await account(client, connection, role=Role.admin, prefix="root")
    assert (
        await client.get(f"/api/v1/probe/things/{alice.id}", headers=alice.headers)
    ).status_code == 200
    assert (
        await client.get(f"/api/v1/probe/things/{alice.id}", headers=bob.headers)
    ).status_code == 404
    assert (
        await client.get(f"/api/v1/probe/things/{alice.id}", headers=root.headers)
    ).status_code == 200
