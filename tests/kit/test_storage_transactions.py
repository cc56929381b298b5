"""Objects follow their rows: stored before the commit and removed if it rolls back;
deleted only after the commit that dropped their rows."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from lyceum.config import Settings
from lyceum.identity.permissions import RuntimeDep
from lyceum.kit.db import Session
from lyceum.kit.errors import Conflict
from lyceum.kit.runtime import Runtime
from lyceum.kit.storage import delete_after_commit, put_for_transaction
from tests.conftest import client_for, make_app

router = APIRouter(prefix="/api/v1/probe")


@router.put("/objects/{name}")
async def store(name: str, session: Session, runtime: RuntimeDep, fail: bool = False) -> None:
    await put_for_transaction(session, runtime.storage, f"probe/{name}", b"data", "text/plain")
    if fail:
        raise Conflict("the row never commits")


@router.delete("/objects/{name}")
async def drop(name: str, session: Session, runtime: RuntimeDep, fail: bool = False) -> None:
    key = f"probe/{name}"
    delete_after_commit(session, runtime.storage, key)
    assert await runtime.storage.exists(key)  # still there until the commit
    if fail:
        raise Conflict("the row stays")


@pytest.fixture
async def committing(settings: Settings, runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    app: FastAPI = make_app(settings, runtime, None)
    app.include_router(router)
    async with client_for(app) as http:
        yield http


async def test_an_object_stored_by_a_failed_request_is_removed(
    committing: httpx.AsyncClient, runtime: Runtime
) -> None:
    name = uuid.uuid4().hex
    assert (
        await committing.put(f"/api/v1/probe/objects/{name}", params={"fail": True})
    ).status_code == 409
    assert not await runtime.storage.exists(f"probe/{name}")
    assert (await committing.put(f"/api/v1/probe/objects/{name}")).status_code == 200
    assert await runtime.storage.exists(f"probe/{name}")


async def test_an_object_is_deleted_only_after_its_rows_commit(
    committing: httpx.AsyncClient, runtime: Runtime
) -> None:
    name = uuid.uuid4().hex
    await runtime.storage.put(f"probe/{name}", b"data", "text/plain")
    refused = await committing.delete(f"/api/v1/probe/objects/{name}", params={"fail": True})
    assert refused.status_code == 409
    assert await runtime.storage.exists(f"probe/{name}")  # rolled back: still referenced
    assert (await committing.delete(f"/api/v1/probe/objects/{name}")).status_code == 200
    assert not await runtime.storage.exists(f"probe/{name}")
