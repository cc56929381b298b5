"""Every query of webhook endpoints and deliveries."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, ScalarSelect, String, bindparam, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.kit.db import driver_execute, driver_sql
from lyceum.models.events import Event
from lyceum.models.identity import Role, User
from lyceum.models.webhooks import WebhookDelivery, WebhookDeliveryStatus, WebhookEndpoint


def subscribed_ids(event_type: ColumnElement[str]) -> ScalarSelect[Any]:
    """The ids of the active endpoints that receive `event_type`, as one array (NULL
    for none). Asked on every public event (a graded quiz attempt is one), and nearly
    always answered "none": the event row's INSERT answers it
    (`kit.events.ask_with_events`), so it costs no round trip of its own."""
    return (
        select(func.array_agg(WebhookEndpoint.id))
        .where(WebhookEndpoint.is_active, WebhookEndpoint.event_types.any_() == event_type)
        .scalar_subquery()
    )


# For an event recorded without the question (compiled once, a prepared statement).
_SUBSCRIBED_IDS_SQL = driver_sql(
    select(subscribed_ids(bindparam("event_type", type_=String())).label("ids"))
)


class WebhookRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, row: WebhookEndpoint | WebhookDelivery) -> None:
        self.session.add(row)
        await self.session.flush()

    async def endpoint(
        self, endpoint_id: uuid.UUID, *, for_update: bool = False
    ) -> WebhookEndpoint | None:
        query = select(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id)
        if for_update:
            query = query.with_for_update()
        return (await self.session.execute(query)).scalar_one_or_none()

    async def endpoints(self, offset: int, limit: int) -> tuple[list[WebhookEndpoint], int]:
        total = await self.session.scalar(select(func.count()).select_from(WebhookEndpoint))
        rows = await self.session.scalars(
            select(WebhookEndpoint)
            .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
            .offset(offset)
            .limit(limit)
        )
        return list(rows), total or 0

    async def subscribed_to(self, event_type: str) -> list[uuid.UUID]:
        """The ids of the active endpoints that receive `event_type`."""
        found = await driver_execute(self.session, _SUBSCRIBED_IDS_SQL, {"event_type": event_type})
        return list(found.rows[0][0] or [])

    async def count_disabled(self) -> int:
        """Endpoints Lyceum disabled (inactive, with the reason it gave)."""
        total = await self.session.scalar(
            select(func.count())
            .select_from(WebhookEndpoint)
            .where(~WebhookEndpoint.is_active, WebhookEndpoint.disabled_reason.is_not(None))
        )
        return int(total or 0)

    async def delete_endpoint(self, endpoint: WebhookEndpoint) -> None:
        await self.session.delete(endpoint)
        await self.session.flush()

    async def add_deliveries(self, deliveries: Sequence[WebhookDelivery]) -> None:
        self.session.add_all(deliveries)
        await self.session.flush()

    async def delivery(
        self, delivery_id: uuid.UUID, *, for_update: bool = False
    ) -> WebhookDelivery | None:
        query = select(WebhookDelivery).where(WebhookDelivery.id == delivery_id)
        if for_update:
            query = query.with_for_update()
        return (await self.session.execute(query)).scalar_one_or_none()

    async def delivery_and_endpoint(
        self, delivery_id: uuid.UUID, *, for_update: bool = False
    ) -> tuple[WebhookDelivery, WebhookEndpoint] | None:
        """A delivery with its endpoint, in one query (both rows locked with `for_update`)."""
        query = (
            select(WebhookDelivery, WebhookEndpoint)
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .where(WebhookDelivery.id == delivery_id)
        )
        if for_update:
            query = query.with_for_update()
        row = (await self.session.execute(query)).one_or_none()
        return (row[0], row[1]) if row is not None else None

    async def deliveries(
        self,
        endpoint_id: uuid.UUID,
        status: WebhookDeliveryStatus | None,
        offset: int,
        limit: int,
    ) -> tuple[list[WebhookDelivery], int]:
        where = [WebhookDelivery.endpoint_id == endpoint_id]
        if status is not None:
            where.append(WebhookDelivery.status == status)
        total = await self.session.scalar(
            select(func.count()).select_from(WebhookDelivery).where(*where)
        )
        rows = await self.session.scalars(
            select(WebhookDelivery)
            .where(*where)
            .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id)
            .offset(offset)
            .limit(limit)
        )
        return list(rows), total or 0

    async def admin_emails(self) -> list[tuple[str, str, str]]:
        """(email, full name, locale) of every active admin."""
        rows = await self.session.execute(
            select(User.email, User.full_name, User.locale).where(
                User.role == Role.admin, User.is_active
            )
        )
        return [(email, name, locale) for email, name, locale in rows]

    async def purge_deliveries(self, before: dt.datetime) -> int:
        result = await self.session.execute(
            delete(WebhookDelivery).where(WebhookDelivery.created_at < before)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def purge_events(self, before: dt.datetime) -> int:
        """The event log past the same retention (a delivery keeps the exact body it
        sent, so redelivery never needs the event row)."""
        result = await self.session.execute(delete(Event).where(Event.occurred_at < before))
        return int(getattr(result, "rowcount", 0) or 0)
