"""A learner's conversations with the tutor: starting one about a course (and maybe a
lesson), finding one's own, listing, renaming, deleting; and how conversations and
messages look in responses."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.kit.errors import Invalid, NotFound
from lyceum.kit.events import emit
from lyceum.kit.pagination import PageParams
from lyceum.models.courses import Course
from lyceum.models.identity import User
from lyceum.models.tutor import Conversation, Message
from lyceum.tutor import schemas
from lyceum.tutor.repository import TutoredRow, TutorRepository
from lyceum.tutor.service.settings import TutorSettingsService

NEW_TITLE = "New conversation"


def message_out(message: Message) -> schemas.MessageOut:
    return schemas.MessageOut(
        id=message.id,
        role=message.role,
        content=message.content,
        citations=[schemas.Citation.model_validate(item) for item in message.citations or []],
        tool_calls=[schemas.ToolCallOut.model_validate(item) for item in message.tool_calls or []],
        status=message.status,
        provider=message.provider,
        model=message.model,
        usage=schemas.Usage(
            tokens_in=message.tokens_in,
            tokens_out=message.tokens_out,
            latency_ms=message.latency_ms,
        ),
        created_at=message.created_at,
    )


def conversation_out(conversation: Conversation) -> schemas.ConversationOut:
    return schemas.ConversationOut(
        id=conversation.id,
        course_id=conversation.course_id,
        lesson_id=conversation.lesson_id,
        title=conversation.title,
        created_at=conversation.created_at,
        updated_at=conversation.updated_at,
    )


class ConversationService:
    def __init__(self, session: AsyncSession, tutor_settings: TutorSettingsService) -> None:
        self.tutor_settings = tutor_settings
        self.repo = TutorRepository(session)

    async def start(
        self, caller: User, course: Course, data: schemas.ConversationCreate
    ) -> Conversation:
        """A conversation of `caller`'s about `course`, which they are a member of."""
        if data.lesson_id is not None:
            lesson = await self.repo.lesson(data.lesson_id)
            if lesson is None or lesson.course_id != course.id:
                raise Invalid("No such lesson in this course.", field="body.lesson_id")
        await self.tutor_settings.enabled(course)
        conversation = Conversation(
            user_id=caller.id,
            course_id=course.id,
            lesson_id=data.lesson_id,
            title=data.title or NEW_TITLE,
            summary="",
            summarised_messages=0,
        )
        self.repo.add(conversation)
        return await self.repo.saved(conversation)

    async def owned(self, caller: User, conversation_id: uuid.UUID) -> Conversation:
        """Only its owner sees a conversation; to anyone else it does not exist."""
        conversation = await self.repo.conversation(conversation_id)
        if conversation is None or conversation.user_id != caller.id:
            raise NotFound("No such conversation.")
        return conversation

    async def tutored(self, caller: User, conversation_id: uuid.UUID) -> TutoredRow:
        """`owned`, with the conversation's course, the caller's roles in it and their
        progress, in one round trip (a question's first): the course's access rule is
        then `courses`' (`member_access_of`)."""
        found = await self.repo.tutored(conversation_id, caller.id)
        if found is None:
            raise NotFound("No such conversation.")
        return found

    async def of(
        self, caller: User, paging: PageParams, course_id: uuid.UUID | None
    ) -> tuple[list[Conversation], int]:
        """The caller's conversations (about one course, or all), most recent first."""
        return await self.repo.conversations_of(caller.id, course_id, paging.offset, paging.size)

    async def export(self, caller: User) -> list[dict[str, Any]]:
        """Every conversation of the caller's with its turns, oldest first (their data
        export): what `GET /tutor/conversations/{id}/messages` shows them."""
        conversations, offset = [], 0
        while True:
            page, total = await self.repo.conversations_of(caller.id, None, offset, 500)
            conversations.extend(page)
            offset += len(page)
            if not page or offset >= total:
                break
        return [
            {
                **conversation_out(conversation).model_dump(mode="json"),
                "messages": [
                    message_out(message).model_dump(mode="json")
                    for message in await self.repo.messages(conversation.id)
                ],
            }
            for conversation in reversed(conversations)
        ]

    async def messages(self, conversation: Conversation) -> list[Message]:
        return await self.repo.messages(conversation.id)

    async def rename(self, conversation: Conversation, title: str) -> Conversation:
        conversation.title = title
        return await self.repo.saved(conversation)

    async def delete(self, conversation: Conversation) -> None:
        # Before the messages go: reactions (analytics' copy of the questions) find them.
        await emit(
            self.repo.session,
            "tutor.conversation_deleted",
            conversation_id=str(conversation.id),
            user_id=str(conversation.user_id),
        )
        await self.repo.delete_conversation(conversation.id)
