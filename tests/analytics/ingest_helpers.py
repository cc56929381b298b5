"""Building and posting analytics events in tests, and reading back what was stored."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx
from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncConnection

from lyceum.models.analytics import AnalyticsEvent

EVENTS = "/api/v1/analytics/events"


def event(
    object_type: str = "course",
    object_id: str | uuid.UUID | None = None,
    *,
    verb: str = "viewed",
    at: dt.datetime | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """One client event (a fresh id, now) with `fields` on top."""
    body: dict[str, Any] = {
        "id": fields.pop("id", uuid.uuid4().hex),
        "verb": verb,
        "object": {"type": object_type} | ({"id": str(object_id)} if object_id is not None else {}),
        "timestamp": (at or dt.datetime.now(dt.UTC)).isoformat(),
    }
    body.update(fields)
    return body


async def post(
    client: httpx.AsyncClient, headers: dict[str, str], events: list[dict[str, Any]]
) -> httpx.Response:
    return await client.post(EVENTS, json={"events": events}, headers=headers)


async def stored(
    connection: AsyncConnection, user_id: uuid.UUID, source: str | None = "client"
) -> list[Row[Any]]:
    """The user's events (rows of `analytics_events`) sent by apps (or of `source`, or
    all with None), oldest first."""
    table = AnalyticsEvent.__table__
    query = select(table).where(table.c.user_id == user_id)
    if source is not None:
        query = query.where(table.c.source == source)
    rows = await connection.execute(query.order_by(table.c.occurred_at, table.c.id))
    return list(rows)


def fields_named(response: httpx.Response) -> list[str]:
    """The fields a 422 names."""
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return [problem["field"] for problem in response.json()["errors"]]
