"""Requests and responses of the notification centre, preferences and announcements."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    StrictBool,
    WithJsonSchema,
)

from lyceum.identity.schemas import TimeZone
from lyceum.kit.pagination import Page
from lyceum.kit.validation import IsoDateTime
from lyceum.models.notifications import Category, Channel, DeliveryStatus


class NotificationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    category: Category
    kind: str = Field(description="What happened, e.g. `announcement`, `submission.graded`.")
    title: str
    body: str
    url: str | None = Field(description="Where to look: an API path, or null.")
    data: dict[str, Any]
    created_at: dt.datetime
    read_at: dt.datetime | None


class NotificationPage(Page[NotificationOut]):
    unread_count: int = Field(ge=0, description="The caller's unread notifications, in all.")


class ReadAllOut(BaseModel):
    marked: int = Field(ge=0, description="Notifications marked read by this call.")


WALL_CLOCK = r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$"
_WALL_CLOCK = re.compile(WALL_CLOCK)


def _wall_clock(value: object) -> dt.time:
    """A time of day on the wall clock of the account's zone, as text `HH:MM` (or
    `HH:MM:SS`): no offset (the zone is the account's), no number of seconds."""
    if isinstance(value, dt.time):
        return value.replace(tzinfo=None)
    if not isinstance(value, str) or not _WALL_CLOCK.match(value):
        raise ValueError("a time of day is text such as 22:00 (HH:MM, 24-hour, no offset)")
    return dt.time.fromisoformat(value)


LocalTime = Annotated[
    dt.time,
    PlainValidator(_wall_clock),
    PlainSerializer(lambda value: value.strftime("%H:%M"), return_type=str),
    WithJsonSchema({"type": "string", "pattern": WALL_CLOCK, "examples": ["22:00"]}),
]


class QuietHoursIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: LocalTime = Field(description="Local time (the account's time zone) they begin.")
    end: LocalTime = Field(
        description="Local time they end; before `start` spans midnight; equal to `start`: "
        "an empty window (nothing is held)."
    )


class PreferencesOut(BaseModel):
    channels: dict[Category, dict[Channel, bool]] = Field(
        description="Per category, per channel: whether it is on. Security mail is always on."
    )
    quiet_hours: QuietHoursIn | None = Field(
        description="SMS and push wait until these end; null: none."
    )
    time_zone: str = Field(description="The account's IANA time zone, for quiet hours.")


class ChannelSwitches(BaseModel):
    """A category's channels to turn on (`true`) or off (`false`); absent or null: as
    they are."""

    model_config = ConfigDict(extra="forbid")

    in_app: StrictBool | None = None
    email: StrictBool | None = None
    sms: StrictBool | None = None
    push: StrictBool | None = None


class LockedEmailSwitches(BaseModel):
    """A category whose mail cannot be turned off (security, payments): `email` takes
    only `true`; the other channels as in `ChannelSwitches`."""

    model_config = ConfigDict(extra="forbid")

    in_app: StrictBool | None = None
    email: Literal[True] | None = None
    sms: StrictBool | None = None
    push: StrictBool | None = None


class CategorySwitches(BaseModel):
    """Per category (the `Category` names), the channels to change. The schema says
    which switches are locked, so a client (or a schema-driven test) knows before it
    asks."""

    model_config = ConfigDict(extra="forbid")

    security: LockedEmailSwitches | None = None
    course_activity: ChannelSwitches | None = None
    grades: ChannelSwitches | None = None
    reminders: ChannelSwitches | None = None
    announcements: ChannelSwitches | None = None
    weekly_digest: ChannelSwitches | None = None
    payments: LockedEmailSwitches | None = None

    def choices(self) -> dict[tuple[Category, Channel], bool]:
        """The (category, channel) pairs given, with their new setting."""
        return {
            (Category(category), Channel(channel)): enabled
            for category in type(self).model_fields
            if (switches := getattr(self, category)) is not None
            for channel, enabled in switches.model_dump(exclude_none=True).items()
        }


class PreferencesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channels: CategorySwitches = Field(
        default_factory=CategorySwitches, description="Only the pairs given change."
    )
    quiet_hours: QuietHoursIn | None = Field(
        default=None, description="A window to set; null clears it; absent leaves it."
    )
    time_zone: TimeZone | None = None


class AnnouncementIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1, max_length=20_000, description="Markdown.")
    publish_at: IsoDateTime | None = Field(
        default=None, description="When to publish (UTC); absent or past: at once."
    )


class AnnouncementOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    course_id: uuid.UUID
    author_id: uuid.UUID | None
    title: str
    body_markdown: str
    body_html: str = Field(description="The body as HTML: raw HTML in the markdown is escaped.")
    publish_at: dt.datetime
    published_at: dt.datetime | None
    created_at: dt.datetime


class DeliveryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    notification_id: uuid.UUID | None
    user_id: uuid.UUID
    channel: Channel
    status: DeliveryStatus
    attempts: int
    last_error: str | None
    provider_id: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
