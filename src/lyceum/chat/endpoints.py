"""Chat routes: rooms, message history, presence, and moderation. The live side
(sending, typing, read markers, presence updates) is the Socket.IO server at
/socket.io (`lyceum.chat.gateway`); moderation here broadcasts to it too."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import BackgroundTasks, Depends, Query, Request, Response, status

from lyceum.chat import schemas
from lyceum.chat.gateway import ChatGateway, muted_event
from lyceum.chat.permissions import (
    Chat,
    CourseRoom,
    DeletableMessage,
    MemberRoom,
    ModeratedCourse,
)
from lyceum.identity.permissions import VerifiedUser
from lyceum.kit.pagination import Page, Paging
from lyceum.kit.routing import Router

chat = Router(prefix="/chat", tags=["chat"])


async def chat_gateway(request: Request) -> ChatGateway:
    gateway: ChatGateway = request.app.state.chat
    return gateway


Gateway = Annotated[ChatGateway, Depends(chat_gateway)]


@chat.get(
    "/rooms",
    summary="Your chat rooms: your courses' rooms and your direct rooms",
    description="Most recently active first, each with your unread count (others' "
    "messages after your last `read`).",
)
async def list_chat_rooms(
    caller: VerifiedUser, service: Chat, paging: Paging
) -> Page[schemas.RoomOut]:
    return await service.rooms(caller, paging)


@chat.post(
    "/rooms/direct",
    summary="Open (or find) your direct room with someone you share a course with",
    description="201 with `Location` when the room is new, 200 when it already existed. "
    "404 for anyone you do not share a course with.",
    responses={201: {"model": schemas.RoomOut, "description": "A new direct room."}},
)
async def open_direct_room(
    body: schemas.DirectRoomIn, caller: VerifiedUser, service: Chat, response: Response
) -> schemas.RoomOut:
    access, created = await service.open_direct(caller, body.user_id)
    if created:
        response.status_code = status.HTTP_201_CREATED
        response.headers["Location"] = f"/api/v1/chat/rooms/{access.room.id}"
    return await service.room_out(access, caller)


@chat.get("/rooms/{room_id:uuid}", summary="One of your chat rooms")
async def get_chat_room(caller: VerifiedUser, access: MemberRoom, service: Chat) -> schemas.RoomOut:
    return await service.room_out(access, caller)


@chat.get(
    "/rooms/{room_id:uuid}/messages",
    summary="A room's messages, newest first, a page at a time",
    description="Pass the page's `next` as `before` for older messages. Deleted messages "
    "are left out.",
)
async def list_chat_messages(
    access: MemberRoom,
    service: Chat,
    before: Annotated[
        uuid.UUID | None, Query(description="A message id: only older messages.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=schemas.HISTORY_PAGE_MAX)] = 50,
) -> schemas.MessagePage:
    return await service.history(access, before=before, limit=limit)


@chat.get("/rooms/{room_id:uuid}/presence", summary="Who is online in a room now")
async def get_chat_presence(access: MemberRoom, gateway: Gateway) -> schemas.PresenceOut:
    return schemas.PresenceOut(room_id=access.room.id, online=await gateway.online(access.room.id))


@chat.get(
    "/courses/{course_id:uuid}/room",
    summary="A course's chat room (its enrolled learners, instructors and admins)",
    description="Created on first use. 403 `not-enrolled` for a published course you "
    "are not enrolled in; 404 for a course you cannot see.",
)
async def get_course_chat_room(
    caller: VerifiedUser, access: CourseRoom, service: Chat
) -> schemas.RoomOut:
    return await service.room_out(access, caller)


@chat.delete(
    "/messages/{message_id:uuid}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a message (its author, or the course's instructors and admins)",
    description="Broadcasts `message_deleted` to the room.",
)
async def delete_chat_message(
    caller: VerifiedUser,
    message: DeletableMessage,
    service: Chat,
    gateway: Gateway,
    background: BackgroundTasks,
) -> None:
    event = await service.delete_message(caller, message)
    # After the response, so after the commit: nobody hears of a deletion that failed.
    background.add_task(gateway.broadcast_model, "message_deleted", event, event.room_id)


@chat.get(
    "/courses/{course_id:uuid}/mutes",
    summary="The learners muted in a course's chat now (its instructors and admins)",
)
async def list_chat_mutes(moderation: ModeratedCourse, service: Chat) -> Page[schemas.MuteOut]:
    return Page.of_all(await service.mutes(moderation))


@chat.put(
    "/courses/{course_id:uuid}/mutes/{user_id:uuid}",
    summary="Mute a learner in a course's chat for some minutes (its instructors and admins)",
    description="Replaces any mute in force: 201 when there was none, 200 otherwise. "
    "A muted learner's messages are refused with `muted`. Broadcasts `user_muted`.",
    responses={201: {"model": schemas.MuteOut, "description": "A new mute."}},
)
async def mute_chat_user(
    caller: VerifiedUser,
    moderation: ModeratedCourse,
    user_id: uuid.UUID,
    body: schemas.MuteIn,
    service: Chat,
    gateway: Gateway,
    response: Response,
    background: BackgroundTasks,
) -> schemas.MuteOut:
    mute, created = await service.mute(caller, moderation, user_id, body)
    if created:
        response.status_code = status.HTTP_201_CREATED
        response.headers["Location"] = (
            f"/api/v1/chat/courses/{moderation.course.id}/mutes/{user_id}"
        )
    background.add_task(gateway.broadcast_model, "user_muted", muted_event(mute), mute.room_id)
    return mute


@chat.delete(
    "/courses/{course_id:uuid}/mutes/{user_id:uuid}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Lift a learner's mute (the course's instructors and admins)",
    description="Broadcasts `user_unmuted`.",
)
async def unmute_chat_user(
    moderation: ModeratedCourse,
    user_id: uuid.UUID,
    service: Chat,
    gateway: Gateway,
    background: BackgroundTasks,
) -> None:
    await service.unmute(moderation, user_id)
    room_id = moderation.room.id
    event = schemas.UserMutedEvent(
        room_id=room_id,
        course_id=moderation.course.id,
        user_id=user_id,
        muted_until=None,
        reason="",
    )
    background.add_task(gateway.broadcast_model, "user_unmuted", event, room_id)
