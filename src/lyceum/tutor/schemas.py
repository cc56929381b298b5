"""Request and response bodies of the AI tutor."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field, StrictBool

from lyceum.kit.errors import Problem
from lyceum.kit.validation import NO_NUL, VISIBLE_TEXT, VisibleTitle, integral_float
from lyceum.kit.validation import RequestModel as Strict
from lyceum.models.tutor import MessageRole, MessageStatus, TutorMode


class ConversationCreate(Strict):
    course_id: uuid.UUID
    lesson_id: uuid.UUID | None = Field(
        default=None, description="The lesson the learner is on, if any (must be in the course)."
    )
    title: VisibleTitle | None = Field(
        default=None, description="Defaults to the first question, shortened."
    )


class ConversationRename(Strict):
    title: VisibleTitle


class AskIn(Strict):
    content: Annotated[
        str,
        Field(
            min_length=1,
            max_length=100_000,
            pattern=VISIBLE_TEXT,
            description="The question. The server's limit (TUTOR_MAX_MESSAGE_CHARS, 4000 by "
            "default) is checked too.",
        ),
    ]


class Citation(BaseModel):
    number: int = Field(description="The [n] the answer uses.")
    kind: Literal["file", "lesson"]
    id: uuid.UUID = Field(description="The lesson's or the file's id.")
    title: str
    page: int | None = None
    heading: str | None = None
    quote: str = Field(description="The start of the cited passage.")


class ToolCallOut(BaseModel):
    name: str
    args: dict[str, Any]
    result: str | None = None


class Usage(BaseModel):
    tokens_in: int
    tokens_out: int
    latency_ms: int | None


class MessageOut(BaseModel):
    id: uuid.UUID
    role: MessageRole
    content: str
    citations: list[Citation]
    tool_calls: list[ToolCallOut]
    status: MessageStatus = Field(
        description="complete, cached (answered from the cache), failed, or interrupted "
        "(the client left mid-stream; the text is what had been produced)."
    )
    provider: str | None
    model: str | None
    usage: Usage
    created_at: dt.datetime


class ProviderFailedProblem(Problem):
    """The AI provider failed while answering a JSON request. The question and the
    failed answer are both stored in the conversation; the answer's id is here."""

    message_id: uuid.UUID = Field(description="The stored answer, with status `failed`.")
    conversation_id: uuid.UUID


class ConversationOut(BaseModel):
    id: uuid.UUID
    course_id: uuid.UUID
    lesson_id: uuid.UUID | None
    title: str
    created_at: dt.datetime
    updated_at: dt.datetime


class ConversationDetail(ConversationOut):
    messages: list[MessageOut]


# Constraints before the lenient validator, so that the schema publishes minimum/maximum.
TokenBudget = Annotated[
    int, Field(ge=1000, le=10_000_000_000, strict=True), BeforeValidator(integral_float)
]
HourlyLimit = Annotated[int, Field(ge=1, le=10_000, strict=True), BeforeValidator(integral_float)]


class TutorSettingsIn(Strict):
    """Only the fields sent change; `null` clears the budget and the limit."""

    enabled: StrictBool | None = None
    mode: TutorMode | None = None
    instructions: Annotated[str, Field(max_length=4000, pattern=NO_NUL)] | None = None
    monthly_token_budget: TokenBudget | None = None
    hourly_message_limit: HourlyLimit | None = None


class TutorSettingsOut(BaseModel):
    course_id: uuid.UUID
    enabled: bool
    mode: TutorMode = Field(
        description="socratic: hints and questions rather than answers to graded work; "
        "direct: plain explanations."
    )
    instructions: str
    monthly_token_budget: int | None
    hourly_message_limit: int | None
    tokens_used_this_month: int


class UsageRow(BaseModel):
    course_id: uuid.UUID
    user_id: uuid.UUID
    day: dt.date
    messages: int
    tokens_in: int
    tokens_out: int
    estimated_cost_usd: float


class UsageReport(BaseModel):
    items: list[UsageRow]
    total_messages: int
    total_tokens_in: int
    total_tokens_out: int
    total_estimated_cost_usd: float
