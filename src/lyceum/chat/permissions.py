"""Who may do what in chat: `Annotated` dependencies that routes put in their
signature, resolved from the path before the endpoint body runs. Every chat route is
for verified accounts (`VerifiedUser`: chat reaches other people).

- `MemberRoom`: a room the caller belongs in (a course room of a course they are a
  member of, or their direct room); 404 otherwise, so room ids reveal nothing.
- `CourseRoom`: the path's course's room, for its members (created on first use): 404
  for a course the caller cannot see, 403 `not-enrolled` for a public one they are not in.
- `ModeratedCourse`: a course whose chat the caller moderates (its instructors and
  admins), with its room; 403 for its learners.
- `DeletableMessage`: a message the caller may delete: their own, or any of a course
  room they moderate; 404 for a message of a room they are not in.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends

from lyceum.chat.service import ChatService, Moderation, RoomAccess
from lyceum.courses.permissions import Courses
from lyceum.identity.permissions import RuntimeDep, VerifiedUser
from lyceum.kit.clock import ClockDep
from lyceum.kit.db import Session
from lyceum.models.chat import ChatMessage


async def chat_service(
    session: Session, courses: Courses, runtime: RuntimeDep, clock: ClockDep
) -> ChatService:
    return ChatService(session, courses=courses, settings=runtime.settings, now=clock.now())


Chat = Annotated[ChatService, Depends(chat_service)]


async def member_room(room_id: uuid.UUID, caller: VerifiedUser, service: Chat) -> RoomAccess:
    return await service.room_access(caller, room_id)


MemberRoom = Annotated[RoomAccess, Depends(member_room)]


async def course_room(course_id: uuid.UUID, caller: VerifiedUser, service: Chat) -> RoomAccess:
    return await service.course_room_access(caller, course_id)


CourseRoom = Annotated[RoomAccess, Depends(course_room)]


async def moderated_course(course_id: uuid.UUID, caller: VerifiedUser, service: Chat) -> Moderation:
    return await service.moderated_course(caller, course_id)


ModeratedCourse = Annotated[Moderation, Depends(moderated_course)]


async def deletable_message(
    message_id: uuid.UUID, caller: VerifiedUser, service: Chat
) -> ChatMessage:
    return await service.deletable_message(caller, message_id)


DeletableMessage = Annotated[ChatMessage, Depends(deletable_message)]
