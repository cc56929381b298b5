"""Bodies of the chat's REST routes, and the payloads of its Socket.IO events."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StrictBool, model_validator

from lyceum.kit.validation import NO_NUL, JsonInt
from lyceum.kit.validation import RequestModel as Strict
from lyceum.models.chat import RoomKind

MAX_MUTE_MINUTES = 30 * 24 * 60
HISTORY_PAGE_MAX = 100

# REST -------------------------------------------------------------------------------


class DirectRoomIn(Strict):
    user_id: uuid.UUID = Field(description="The other person; you must share a course.")


class MuteIn(Strict):
    minutes: JsonInt = Field(ge=1, le=MAX_MUTE_MINUTES)
    reason: Annotated[str, Field(max_length=300, pattern=NO_NUL)] = ""


class Person(BaseModel):
    id: uuid.UUID
    full_name: str


class RoomOut(BaseModel):
    id: uuid.UUID
    kind: RoomKind
    course_id: uuid.UUID | None = Field(description="The course of a course room; null for direct.")
    title: str = Field(description="The course's title, or the other person's name.")
    peer: Person | None = Field(description="The other person of a direct room.")
    unread_count: int = Field(ge=0, description="Others' messages after your last `read`.")
    last_message_at: dt.datetime | None
    created_at: dt.datetime


class ChatMessageOut(BaseModel):
    id: uuid.UUID
    room_id: uuid.UUID
    sender: Person
    client_id: str
    text: str
    created_at: dt.datetime


class MessagePage(BaseModel):
    """Newest first. Pass `next` as `before` for the page of older messages; `null`
    when there are none."""

    items: list[ChatMessageOut]
    next: uuid.UUID | None


class MuteOut(BaseModel):
    course_id: uuid.UUID
    room_id: uuid.UUID
    user_id: uuid.UUID
    muted_until: dt.datetime
    reason: str


class PresenceOut(BaseModel):
    room_id: uuid.UUID
    online: list[Person]


# Socket.IO events (client to server) ------------------------------------------------


class JoinRoomIn(Strict):
    """A room by its id, or a course's room by the course id (created on first use)."""

    room_id: uuid.UUID | None = None
    course_id: uuid.UUID | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> JoinRoomIn:
        if (self.room_id is None) == (self.course_id is None):
            raise ValueError("give exactly one of room_id and course_id")
        return self


class RoomRefIn(Strict):
    room_id: uuid.UUID


class MessageIn(Strict):
    room_id: uuid.UUID
    client_id: Annotated[
        str,
        Field(
            min_length=1,
            max_length=64,
            pattern=r"^[\x21-\x7e]+$",
            description="The client's id for this message; a retry with the same id "
            "returns the stored message instead of sending it twice.",
        ),
    ]
    # The real limit is CHAT_MESSAGE_MAX_CHARS, checked with its own error; this bound
    # only keeps absurd payloads out of the validator.
    text: Annotated[str, Field(max_length=1_000_000)]


class TypingIn(Strict):
    room_id: uuid.UUID
    typing: StrictBool = True


class ReadIn(Strict):
    room_id: uuid.UUID
    message_id: uuid.UUID


class DeleteMessageIn(Strict):
    message_id: uuid.UUID


class MuteUserIn(Strict):
    room_id: uuid.UUID = Field(description="A course room.")
    user_id: uuid.UUID
    minutes: JsonInt = Field(ge=1, le=MAX_MUTE_MINUTES)
    reason: Annotated[str, Field(max_length=300)] = ""


# Socket.IO events (server to client) ------------------------------------------------


class PresenceEvent(BaseModel):
    room_id: uuid.UUID
    user_id: uuid.UUID
    status: Literal["online", "offline"]
    online: list[Person]


class TypingEvent(BaseModel):
    room_id: uuid.UUID
    user: Person
    typing: bool


class ReadEvent(BaseModel):
    room_id: uuid.UUID
    user_id: uuid.UUID
    message_id: uuid.UUID


class MessageDeletedEvent(BaseModel):
    room_id: uuid.UUID
    message_id: uuid.UUID
    deleted_by: uuid.UUID


class UserMutedEvent(BaseModel):
    room_id: uuid.UUID
    course_id: uuid.UUID
    user_id: uuid.UUID
    muted_until: dt.datetime | None = Field(description="null: the mute was lifted.")
    reason: str
