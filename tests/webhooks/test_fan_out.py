"""Fanning a public event out to the subscribed endpoints: the event row's INSERT
answers which endpoints are subscribed (no lookup of its own), and an event recorded
without that answer is looked up."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.kit.events import PublicEvent, emit
from lyceum.models.events import Event
from lyceum.models.webhooks import WebhookDelivery, WebhookEndpoint
from lyceum.webhooks.repository import WebhookRepository
from lyceum.webhooks.service import SUBSCRIBED, fan_out


async def endpoint(session: AsyncSession, *event_types: str, active: bool = True) -> uuid.UUID:
    row = WebhookEndpoint(
        url="https://hooks.example.com/in",
        event_types=list(event_types),
        is_active=active,
        secret="sealed",
    )
    session.add(row)
    await session.flush()
    return row.id


async def delivered_to(session: AsyncSession, event_id: uuid.UUID) -> set[uuid.UUID]:
    rows = await session.scalars(
        select(WebhookDelivery.endpoint_id).where(WebhookDelivery.event_id == event_id)
    )
    return set(rows)


async def no_lookup(self: WebhookRepository, event_type: str) -> list[uuid.UUID]:
    raise AssertionError("the event's INSERT answers the subscribed endpoints")


async def test_the_event_insert_answers_which_endpoints_are_subscribed(
    session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    subscribed = await endpoint(session, "user.registered", "order.paid")
    also = await endpoint(session, "user.registered")
    await endpoint(session, "user.registered", active=False)
    await endpoint(session, "order.paid")
    monkeypatch.setattr(WebhookRepository, "subscribed_to", no_lookup)
    user_id = str(uuid.uuid4())

    await emit(session, "user.registered", user_id=user_id)

    event_id = await session.scalar(
        select(Event.id).where(
            Event.type == "user.registered", Event.payload["user_id"].astext == user_id
        )
    )
    assert event_id is not None
    assert await delivered_to(session, event_id) == {subscribed, also}


async def test_an_event_without_the_answer_looks_the_endpoints_up(session: AsyncSession) -> None:
    subscribed = await endpoint(session, "user.registered")
    await endpoint(session, "user.registered", active=False)
    queued: list[uuid.UUID] = []

    async def enqueue(_: AsyncSession, delivery: WebhookDelivery) -> None:
        queued.append(delivery.endpoint_id)

    event = PublicEvent(
        uuid.uuid4(), "user.registered", "v1", dt.datetime.now(dt.UTC), {"user_id": "x"}
    )
    assert SUBSCRIBED not in event.answers
    assert await fan_out(session, event, enqueue) == 1
    assert queued == [subscribed]
    assert await delivered_to(session, event.id) == {subscribed}
    answered = PublicEvent(
        uuid.uuid4(), "user.registered", "v1", event.occurred_at, {}, {SUBSCRIBED: None}
    )
    assert await fan_out(session, answered, enqueue) == 0
