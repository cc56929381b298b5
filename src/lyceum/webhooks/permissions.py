"""Who may manage webhooks: admins only. `Annotated` dependencies for the endpoints'
signatures."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends

from lyceum.identity.permissions import AdminUser, RuntimeDep
from lyceum.kit.clock import ClockDep
from lyceum.kit.db import Session
from lyceum.models.webhooks import WebhookEndpoint
from lyceum.webhooks.service import WebhookService
from lyceum.webhooks.tasks import enqueue


async def webhook_service(
    session: Session, runtime: RuntimeDep, clock: ClockDep, admin: AdminUser
) -> WebhookService:
    """The service, for admins only (403 to everyone else)."""
    return WebhookService(
        session,
        settings=runtime.settings,
        box=runtime.secret_box,
        now=clock.now(),
        enqueue=enqueue,
    )


Webhooks = Annotated[WebhookService, Depends(webhook_service)]


async def managed_endpoint(endpoint_id: uuid.UUID, service: Webhooks) -> WebhookEndpoint:
    """The endpoint in the path, locked for the request (admins; 404 if there is none)."""
    return await service.endpoint(endpoint_id, for_update=True)


ManagedEndpoint = Annotated[WebhookEndpoint, Depends(managed_endpoint)]
