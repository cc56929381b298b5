"""Tutor routes: conversations, asking (JSON or Server-Sent Events), course tutor
settings, and usage."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Query, Request, Response, status
from fastapi.responses import StreamingResponse

from lyceum.courses.permissions import EditableCourse
from lyceum.identity.permissions import VerifiedUser
from lyceum.kit.db import Session, commit
from lyceum.kit.errors import PROBLEM_BASE, PROBLEM_CONTENT_TYPE
from lyceum.kit.pagination import Page, Paging
from lyceum.kit.routing import Router
from lyceum.kit.validation import IsoDate
from lyceum.tutor import schemas
from lyceum.tutor.permissions import (
    Answers,
    Conversations,
    NewConversation,
    OwnedConversation,
    Turns,
    TutoredConversation,
    TutorSettingsDep,
    Usage,
    UsageOf,
)
from lyceum.tutor.service import (
    CitationEvent,
    DeltaEvent,
    DoneEvent,
    ErrorEvent,
    ToolEvent,
    TurnEvent,
    conversation_out,
    message_out,
)

tutor = Router(prefix="/tutor", tags=["tutor"])


@tutor.post(
    "/conversations",
    status_code=status.HTTP_201_CREATED,
    summary="Start a conversation with the tutor about a course",
    description="For the course's enrolled learners, its instructors and admins. 409 when "
    "the course's tutor is switched off.",
)
async def start_conversation(
    opening: NewConversation, caller: VerifiedUser, conversations: Conversations, response: Response
) -> schemas.ConversationOut:
    conversation = await conversations.start(caller, opening.course, opening.data)
    response.headers["Location"] = f"/api/v1/tutor/conversations/{conversation.id}"
    return conversation_out(conversation)


@tutor.get("/conversations", summary="Your conversations, most recent first")
async def list_conversations(
    caller: VerifiedUser,
    conversations: Conversations,
    paging: Paging,
    course_id: uuid.UUID | None = None,
) -> Page[schemas.ConversationOut]:
    rows, total = await conversations.of(caller, paging, course_id)
    return Page.of([conversation_out(row) for row in rows], total, paging)


@tutor.get("/conversations/{conversation_id}", summary="A conversation with its messages")
async def get_conversation(
    conversation: OwnedConversation, conversations: Conversations
) -> schemas.ConversationDetail:
    messages = await conversations.messages(conversation)
    return schemas.ConversationDetail(
        **conversation_out(conversation).model_dump(),
        messages=[message_out(message) for message in messages],
    )


@tutor.patch("/conversations/{conversation_id}", summary="Rename a conversation")
async def rename_conversation(
    conversation: OwnedConversation, body: schemas.ConversationRename, conversations: Conversations
) -> schemas.ConversationOut:
    return conversation_out(await conversations.rename(conversation, body.title))


@tutor.delete(
    "/conversations/{conversation_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a conversation and its messages",
)
async def delete_conversation(
    conversation: OwnedConversation, conversations: Conversations
) -> None:
    await conversations.delete(conversation)


def _sse(event: TurnEvent) -> bytes:
    data: dict[str, Any]
    if isinstance(event, DeltaEvent):
        name, data = "delta", {"text": event.text}
    elif isinstance(event, CitationEvent):
        name, data = "citation", event.citation.model_dump(mode="json")
    elif isinstance(event, ToolEvent):
        name, data = "tool", event.call.model_dump(mode="json")
    elif isinstance(event, ErrorEvent):
        name, data = "error", {"message_id": str(event.message_id), "detail": event.detail}
    else:
        name = "done"
        data = {
            "message_id": str(event.message.id),
            "status": event.message.status.value,
            "usage": event.message.usage.model_dump(mode="json"),
        }
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


@tutor.post(
    "/conversations/{conversation_id}/messages",
    status_code=status.HTTP_201_CREATED,
    summary="Ask the tutor (JSON, or streamed as Server-Sent Events)",
    description="With `Accept: text/event-stream` the answer streams: `delta` events "
    "(`{text}`), `citation` events (the source a `[n]` refers to), `tool` events, an "
    "`error` event if the provider fails, and a final `done` event with the stored "
    "message id, status and usage. Otherwise the whole stored message is returned; if "
    "the AI provider fails, 502 with a problem document naming the stored (failed) "
    "answer's `message_id` (the question stays in the conversation; ask again). "
    "Rate limited per user (TUTOR_RATE_LIMIT, or the course's own limit): every answer "
    "carries X-RateLimit-Limit, -Remaining and -Reset; over the limit, 429 with "
    "Retry-After.",
    responses={
        201: {
            # application/json first: the stored answer, typed; generators pick the first.
            "model": schemas.MessageOut,
            "content": {
                "text/event-stream": {
                    "schema": {
                        "type": "string",
                        "description": "Server-Sent Events: `delta`, `citation`, `tool`, "
                        "`error` and a final `done`.",
                    }
                }
            },
            "description": "The stored answer, or (with `Accept: text/event-stream`) the "
            "answer as it is produced.",
            "headers": {
                "Location": {
                    "description": "The conversation, which holds the question and the answer.",
                    "schema": {"type": "string", "format": "uri-reference"},
                }
            },
        },
        502: {
            "model": schemas.ProviderFailedProblem,
            "content": {PROBLEM_CONTENT_TYPE: {}},
            "description": "JSON requests only: the AI provider failed while answering.",
        },
    },
)
async def ask(
    tutored: TutoredConversation,
    body: schemas.AskIn,
    request: Request,
    caller: VerifiedUser,
    turns: Turns,
    answers: Answers,
    session: Session,
) -> Response:
    conversation = tutored.conversation
    turn, headers = await turns.prepare(
        caller, tutored.course, conversation, body.content, state=tutored.state
    )
    headers = {**headers, "Location": f"/api/v1/tutor/conversations/{conversation.id}"}
    # An early commit, on purpose: the question is stored whatever happens to its
    # answer, which is produced (and stored in transactions of its own, see
    # `tutor.service.answers`) after this.
    await commit(session)
    if "text/event-stream" in request.headers.get("accept", ""):

        async def stream() -> AsyncIterator[bytes]:
            async for event in answers.answer(turn):
                yield _sse(event)

        return StreamingResponse(
            stream(),
            status_code=status.HTTP_201_CREATED,
            media_type="text/event-stream",
            headers={**headers, "Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    final: schemas.MessageOut | None = None
    failure: ErrorEvent | None = None
    async for event in answers.answer(turn):
        if isinstance(event, DoneEvent):
            final = event.message
        elif isinstance(event, ErrorEvent):
            failure = event
    assert final is not None
    if failure is not None:
        problem = schemas.ProviderFailedProblem(
            type=PROBLEM_BASE + "tutor-provider-failed",
            title="The AI provider failed",
            status=status.HTTP_502_BAD_GATEWAY,
            detail=f"{failure.detail} The failed answer is stored as message {failure.message_id}.",
            instance=request.url.path,
            message_id=failure.message_id,
            conversation_id=conversation.id,
        )
        return Response(
            problem.model_dump_json(exclude_none=True),
            status_code=status.HTTP_502_BAD_GATEWAY,
            media_type=PROBLEM_CONTENT_TYPE,
            headers=headers,
        )
    return Response(
        final.model_dump_json(),
        status_code=status.HTTP_201_CREATED,
        media_type="application/json",
        headers=headers,
    )


@tutor.get(
    "/courses/{course_id}/settings",
    summary="The course's tutor settings (its instructors and admins)",
)
async def get_settings(
    course: EditableCourse, tutor_settings: TutorSettingsDep
) -> schemas.TutorSettingsOut:
    return await tutor_settings.out(course.id)


@tutor.patch(
    "/courses/{course_id}/settings",
    summary="Change the course's tutor settings (its instructors and admins)",
)
async def update_settings(
    course: EditableCourse, body: schemas.TutorSettingsIn, tutor_settings: TutorSettingsDep
) -> schemas.TutorSettingsOut:
    return await tutor_settings.update(course, body)


@tutor.get(
    "/usage",
    summary="Tutor usage by course, user and day (instructors: their courses; admins: all)",
)
async def usage(
    scope: UsageOf,
    service: Usage,
    since: Annotated[IsoDate | None, Query(description="First day, UTC (YYYY-MM-DD).")] = None,
) -> schemas.UsageReport:
    return await service.report(scope, since)
