"""Fixtures of the payment tests: a course's instructor, a buyer and an admin."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from lyceum.models.identity import Role
from tests.identity.helpers import Account, account


@pytest.fixture
async def teacher(client: httpx.AsyncClient, connection: AsyncConnection) -> Account:
    return await account(client, connection, role=Role.instructor, prefix="teacher")


@pytest.fixture
async def buyer(client: httpx.AsyncClient, connection: AsyncConnection) -> Account:
    return await account(client, connection, prefix="buyer")


@pytest.fixture
async def admin(client: httpx.AsyncClient, connection: AsyncConnection) -> Account:
    return await account(client, connection, role=Role.admin, prefix="admin")
