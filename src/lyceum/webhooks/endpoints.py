"""Webhook routes (admins): endpoints, their signing secret, the delivery log,
redelivery and the test event."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Query, Response, status

from lyceum.identity.permissions import AdminUser
from lyceum.kit.pagination import Page, Paging
from lyceum.kit.routing import Router
from lyceum.models.webhooks import WebhookDeliveryStatus
from lyceum.webhooks import schemas
from lyceum.webhooks.permissions import ManagedEndpoint, Webhooks
from lyceum.webhooks.service import delivery_out, endpoint_out

webhooks = Router(prefix="/webhooks", tags=["webhooks"])


@webhooks.post(
    "/endpoints",
    status_code=status.HTTP_201_CREATED,
    summary="Register a webhook endpoint (admins)",
    description="The answer carries the signing secret, shown only here. The URL must be "
    "https:// on a public address (422 otherwise, unless private networks are allowed); "
    "`event_types` are names from this document's `webhooks` section.",
)
async def create_webhook_endpoint(
    body: schemas.EndpointIn, admin: AdminUser, service: Webhooks, response: Response
) -> schemas.EndpointCreated:
    endpoint, secret = await service.create(admin, body)
    response.headers["Location"] = f"/api/v1/webhooks/endpoints/{endpoint.id}"
    return schemas.EndpointCreated(**endpoint_out(endpoint).model_dump(), secret=secret)


@webhooks.get("/endpoints", summary="Webhook endpoints (admins)")
async def list_webhook_endpoints(service: Webhooks, paging: Paging) -> Page[schemas.EndpointOut]:
    items, total = await service.listing(paging.offset, paging.size)
    return Page.of(items, total, paging)


@webhooks.get("/endpoints/{endpoint_id:uuid}", summary="One webhook endpoint (admins)")
async def get_webhook_endpoint(endpoint: ManagedEndpoint) -> schemas.EndpointOut:
    return endpoint_out(endpoint)


@webhooks.patch(
    "/endpoints/{endpoint_id:uuid}",
    summary="Change a webhook endpoint (admins)",
    description="Only the fields sent change. Setting `is_active` to true on a disabled "
    "endpoint clears its failure record.",
)
async def update_webhook_endpoint(
    body: schemas.EndpointUpdate, endpoint: ManagedEndpoint, service: Webhooks
) -> schemas.EndpointOut:
    return endpoint_out(await service.update(endpoint, body))


@webhooks.delete(
    "/endpoints/{endpoint_id:uuid}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a webhook endpoint and its delivery log (admins)",
)
async def delete_webhook_endpoint(endpoint: ManagedEndpoint, service: Webhooks) -> None:
    await service.delete(endpoint)


@webhooks.post(
    "/endpoints/{endpoint_id:uuid}/secret",
    summary="Rotate an endpoint's signing secret (admins)",
    description="The new secret signs every attempt from now on and is shown only here.",
)
async def rotate_webhook_secret(endpoint: ManagedEndpoint, service: Webhooks) -> schemas.SecretOut:
    return schemas.SecretOut(secret=await service.rotate_secret(endpoint))


@webhooks.get(
    "/endpoints/{endpoint_id:uuid}/deliveries",
    summary="An endpoint's delivery log, newest first (admins)",
)
async def list_webhook_deliveries(
    endpoint: ManagedEndpoint,
    service: Webhooks,
    paging: Paging,
    delivery_status: Annotated[
        WebhookDeliveryStatus | None,
        Query(alias="status", description="Only deliveries in this state."),
    ] = None,
) -> Page[schemas.WebhookDeliveryOut]:
    items, total = await service.deliveries(endpoint, delivery_status, paging.offset, paging.size)
    return Page.of(items, total, paging)


@webhooks.post(
    "/endpoints/{endpoint_id:uuid}/deliveries/{delivery_id:uuid}/redeliver",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Send a delivery again (admins)",
    description="A new delivery of the same message (same `webhook-id` and body), queued "
    "now. 409 while the endpoint is disabled.",
)
async def redeliver_webhook(
    delivery_id: uuid.UUID, endpoint: ManagedEndpoint, service: Webhooks
) -> schemas.WebhookDeliveryOut:
    return delivery_out(await service.redeliver(endpoint, delivery_id))


@webhooks.post(
    "/endpoints/{endpoint_id:uuid}/test",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Send a `webhook.test` event to an endpoint (admins)",
    description="Queued now, whatever event types the endpoint receives; its outcome "
    "shows in the delivery log. 409 while the endpoint is disabled.",
)
async def send_webhook_test(
    endpoint: ManagedEndpoint, service: Webhooks
) -> schemas.WebhookDeliveryOut:
    return delivery_out(await service.send_test(endpoint))
