"""Who may use the tutor on what: `Annotated` dependencies that the tutor's routes put in
their signature, resolved before the endpoint body runs, and the tutor's services for a
request.

- `OwnedConversation`: the path's `conversation_id`, if the caller owns it (404 for
  everyone else, as if it did not exist).
- `TutoredConversation`: an owned conversation whose course the caller is (still) a
  member of (`courses` decides: enrolled learners, its instructors and admins).
- `NewConversation`: the body of a new conversation, about a course the caller is a
  member of.
- `UsageOf`: the courses whose tutor usage the caller sees (a `UsageScope`).
Course settings take `courses.permissions.EditableCourse`."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends

from lyceum.courses.permissions import Courses
from lyceum.identity.permissions import CurrentUser, RuntimeDep, VerifiedUser
from lyceum.kit.ai.embedding import get_embedder
from lyceum.kit.clock import ClockDep
from lyceum.kit.db import Session
from lyceum.kit.errors import Forbidden
from lyceum.models.courses import Course
from lyceum.models.identity import Role
from lyceum.models.tutor import Conversation
from lyceum.tutor import schemas
from lyceum.tutor.interfaces import GradedWork
from lyceum.tutor.service import (
    AnswerService,
    ConversationService,
    ConversationState,
    TurnService,
    TutorSettingsService,
    UsageScope,
    UsageService,
)

# Services -------------------------------------------------------------------------------


async def tutor_settings_service(
    session: Session, runtime: RuntimeDep, clock: ClockDep
) -> TutorSettingsService:
    return TutorSettingsService(
        session,
        settings=runtime.settings,
        limiter=runtime.rate_limiter,
        now=clock.now(),
        cache=runtime.cache,
    )


TutorSettingsDep = Annotated[TutorSettingsService, Depends(tutor_settings_service)]


async def conversation_service(
    session: Session, tutor_settings: TutorSettingsDep
) -> ConversationService:
    return ConversationService(session, tutor_settings)


Conversations = Annotated[ConversationService, Depends(conversation_service)]


async def turn_service(
    session: Session,
    runtime: RuntimeDep,
    clock: ClockDep,
    tutor_settings: TutorSettingsDep,
    guard: GradedWork,
) -> TurnService:
    return TurnService(
        session,
        settings=runtime.settings,
        cache=runtime.cache,
        tutor_settings=tutor_settings,
        embedder=get_embedder,
        guard=guard,
        now=clock.now(),
    )


Turns = Annotated[TurnService, Depends(turn_service)]


async def answer_service(runtime: RuntimeDep) -> AnswerService:
    return AnswerService(
        settings=runtime.settings,
        cache=runtime.cache,
        database=runtime.database,
        embedder=get_embedder,
    )


Answers = Annotated[AnswerService, Depends(answer_service)]


async def usage_service(session: Session, runtime: RuntimeDep) -> UsageService:
    return UsageService(session, settings=runtime.settings)


Usage = Annotated[UsageService, Depends(usage_service)]


# Access ---------------------------------------------------------------------------------


async def owned_conversation(
    conversation_id: uuid.UUID, caller: VerifiedUser, conversations: Conversations
) -> Conversation:
    return await conversations.owned(caller, conversation_id)


OwnedConversation = Annotated[Conversation, Depends(owned_conversation)]


@dataclass(frozen=True)
class Tutored:
    """A conversation the caller owns, and its course, which they are a member of, with
    what a question reads of them (`ConversationState`), read in the same round trip."""

    conversation: Conversation
    course: Course
    state: ConversationState


async def tutored_conversation(
    conversation_id: uuid.UUID,
    caller: VerifiedUser,
    conversations: Conversations,
    courses: Courses,
) -> Tutored:
    # One round trip: the conversation (404 unless the caller's), its course and the
    # caller's roles in it, which `courses` rules on as `member_access` would, and what
    # the question reads of them (progress, the messages so far).
    found = await conversations.tutored(caller, conversation_id)
    course, _ = courses.member_access_of(
        found.course, teaches=found.teaches, enrolled=found.enrolled, caller=caller
    )
    return Tutored(
        found.conversation, course, ConversationState(found.completed_lessons, found.history)
    )


TutoredConversation = Annotated[Tutored, Depends(tutored_conversation)]


@dataclass(frozen=True)
class Opening:
    """A new conversation's request, about a course the caller is a member of."""

    course: Course
    data: schemas.ConversationCreate


async def new_conversation(
    body: schemas.ConversationCreate, caller: VerifiedUser, courses: Courses
) -> Opening:
    # The course is named in the body, so this dependency reads it (the route does not
    # declare the body again: FastAPI would validate it, and report its errors, twice).
    course, _ = await courses.member_access(body.course_id, caller)
    return Opening(course, body)


NewConversation = Annotated[Opening, Depends(new_conversation)]


async def usage_scope(
    caller: CurrentUser, courses: Courses, course_id: uuid.UUID | None = None
) -> UsageScope:
    """Instructors see their courses' usage, admins every course's; with `course_id`,
    that course's, for its instructors and admins. Learners see none (403)."""
    if caller.role is Role.student:
        raise Forbidden("Tutor usage is for instructors and admins.")
    if course_id is not None:
        course, can_edit = await courses.member_access(course_id, caller)
        if not can_edit:
            raise Forbidden("Only the course's instructors and admins see tutor usage.")
        return UsageScope(course_ids=[course.id])
    if caller.role is Role.admin:
        return UsageScope()
    return UsageScope(taught_by=caller.id)


UsageOf = Annotated[UsageScope, Depends(usage_scope)]
