"""Request and response bodies of the webhook endpoints."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StrictBool

from lyceum.kit.validation import NO_NUL
from lyceum.kit.validation import RequestModel as Strict
from lyceum.models.webhooks import WebhookDeliveryStatus

Url = Annotated[
    str,
    Field(
        min_length=8,
        max_length=2000,
        pattern=r"^https?://[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.?"
        r"(:([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?"
        r"(/[^\x00-\x20\x7f#]*)?$",
        description="Where deliveries are POSTed: `https://` (plain `http://` only where "
        "private networks are allowed), a host name or IPv4 address that is public.",
        examples=["https://hooks.example.com/lyceum"],
    ),
]
# The public events of `lyceum.events.catalogue` (tests/webhooks checks they agree).
EventType = Literal[
    "user.registered",
    "user.email_verified",
    "enrollment.created",
    "lesson.completed",
    "course.completed",
    "certificate.issued",
    "quiz.attempt.graded",
    "submission.graded",
    "announcement.published",
    "order.paid",
    "order.refunded",
    "order.failed",
]
EventTypes = Annotated[
    list[EventType],
    Field(
        min_length=1,
        max_length=50,
        description="Public event types delivered to this endpoint (see the `webhooks` "
        "section of this document).",
        examples=[["enrollment.created", "certificate.issued"]],
    ),
]
Description = Annotated[str, Field(max_length=500, pattern=NO_NUL)]


class EndpointIn(Strict):
    url: Url
    event_types: EventTypes
    description: Description = ""
    is_active: StrictBool = True


class EndpointUpdate(Strict):
    """Only the fields sent change. Re-activating an endpoint clears its failure record."""

    url: Url | None = None
    event_types: EventTypes | None = None
    description: Description | None = None
    is_active: StrictBool | None = None


class EndpointOut(BaseModel):
    id: uuid.UUID
    url: str
    event_types: list[str]
    description: str
    is_active: bool
    failing_since: dt.datetime | None = Field(
        description="When deliveries started failing with no success since (null: healthy)."
    )
    disabled_reason: str | None = Field(
        description="Why Lyceum disabled the endpoint (null if it did not)."
    )
    created_at: dt.datetime
    updated_at: dt.datetime


class EndpointCreated(EndpointOut):
    secret: str = Field(
        description="The signing secret (`whsec_` + base64). Shown only in this response: "
        "store it now to verify the `webhook-signature` header."
    )


class SecretOut(BaseModel):
    secret: str = Field(description="The new signing secret, shown only in this response.")


class WebhookDeliveryOut(BaseModel):
    id: uuid.UUID
    endpoint_id: uuid.UUID
    event_id: uuid.UUID = Field(description="Also the `webhook-id` header of every attempt.")
    event_type: str
    status: WebhookDeliveryStatus
    attempts: int
    next_attempt_at: dt.datetime | None
    last_attempt_at: dt.datetime | None
    status_code: int | None = Field(description="The last attempt's HTTP status.")
    duration_ms: int | None = Field(description="How long the last attempt took.")
    response_body: str | None = Field(
        description="The start (at most 2 KB) of the last attempt's response body."
    )
    last_error: str | None
    created_at: dt.datetime
