"""The second half of a turn, after the request's transaction has committed: the answer
to a `PreparedTurn`, streamed as events and stored.

It comes from the cache, the offline tutor, or the model (`tutor.llm`, with the tools
of `service.tools`), and is stored once it is complete, failed, or interrupted (the
client went away mid-stream: what was produced is kept).

Transactions: the request's session is gone by then (a streamed response starts after
the request's dependency has committed and closed it). Every database use of this half
(storing the answer, the tools' reads, the offline tutor's catalog lookup) goes through
`AnswerService.transaction`: a short session and transaction of its own
(`kit.db.new_transaction`), committed when its block returns."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, aclosing
from dataclasses import dataclass, field

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.config import Settings
from lyceum.content.service import Hit
from lyceum.kit import tracing
from lyceum.kit.ai.embedding import Embedder, load_embedder
from lyceum.kit.ai.models import choose_model, model_name
from lyceum.kit.ai.usage import TokenUsage, record_provider_error, record_usage
from lyceum.kit.cache import Cache
from lyceum.kit.db import Database, new_transaction
from lyceum.kit.metrics import TUTOR_ANSWERS, TUTOR_FIRST_TOKEN
from lyceum.models.tutor import Message, MessageRole, MessageStatus
from lyceum.tutor import llm, offline, schemas
from lyceum.tutor.grounding import cited_numbers, instructions, user_prompt
from lyceum.tutor.repository import TutorRepository
from lyceum.tutor.service.conversations import message_out
from lyceum.tutor.service.tools import TutorToolbox, catalog_matches
from lyceum.tutor.service.turns import (
    CitationEvent,
    DeltaEvent,
    DoneEvent,
    ErrorEvent,
    PreparedTurn,
    ToolEvent,
    TurnEvent,
    citation_for,
)

logger = structlog.get_logger("lyceum.tutor")


@dataclass
class _AnswerState:
    turn: PreparedTurn
    text: str = ""
    citations: list[schemas.Citation] = field(default_factory=list)
    tool_calls: list[schemas.ToolCallOut] = field(default_factory=list)
    provider: str | None = None
    model: str | None = None
    usage: TokenUsage = field(default_factory=TokenUsage)
    status: MessageStatus = MessageStatus.complete
    error: str | None = None
    personal: bool = False

    def new_citations(self, sources: list[Hit]) -> list[CitationEvent]:
        events = []
        known = {citation.number for citation in self.citations}
        for number in cited_numbers(self.text, len(sources)):
            if number not in known:
                citation = citation_for(number, sources[number - 1])
                self.citations.append(citation)
                events.append(CitationEvent(citation))
        return events


def _record_answer(settings: Settings, state: _AnswerState) -> None:
    """`lyceum_tutor_answers_total` by outcome, and the tokens and cost of a provider's
    answer (an interrupted answer is not counted: the learner went away)."""
    if state.status is MessageStatus.cached:
        outcome = "cached"
    elif state.status is MessageStatus.failed:
        outcome = "error"
    elif state.status is MessageStatus.complete:
        outcome = "offline" if state.provider == "offline" else "answered"
    else:
        return
    provider, model = state.provider or "unknown", state.model or "unknown"
    TUTOR_ANSWERS.labels(provider, model, outcome).inc()
    if outcome == "answered" or outcome == "error":
        record_usage(settings, provider=provider, model=model, feature="tutor", usage=state.usage)


def _pieces(text_out: str, size: int = 80) -> list[str]:
    """The offline answer streamed in word-aligned pieces, like a model's deltas."""
    pieces, current = [], ""
    for word in text_out.split(" "):
        current = f"{current} {word}" if current else word
        if len(current) >= size:
            pieces.append(current + " ")
            current = ""
    if current:
        pieces.append(current)
    return pieces


class AnswerService:
    def __init__(
        self,
        *,
        settings: Settings,
        cache: Cache,
        database: Database,
        embedder: Callable[[], Embedder],
    ) -> None:
        self.settings = settings
        self.cache = cache
        self.database = database
        self.embedder = embedder

    def transaction(self) -> AbstractAsyncContextManager[AsyncSession]:
        """A short transaction of the answer's own (see the module docstring)."""
        return new_transaction(self.database)

    async def answer(self, turn: PreparedTurn) -> AsyncIterator[TurnEvent]:
        """Produce and store the answer. If the consumer stops early (the client went
        away), what was produced is stored, marked `interrupted`."""
        state = _AnswerState(turn)
        stored = False
        first_token = turn.cached is None  # a cached answer says nothing of the provider
        mode = (
            "cached"
            if turn.cached is not None
            else "offline"
            if self.settings.ai_offline
            else "model"
        )
        try:
            with tracing.span("tutor.answer", {"lyceum.tutor.mode": mode}) as span:
                produced = self._produce(turn, state)
                # Closed before the answer is stored, also when the learner goes away:
                # what it read of the provider (text, tokens) is in `state` by then.
                async with aclosing(produced):
                    async for event in produced:
                        if first_token and isinstance(event, DeltaEvent):
                            first_token = False
                            elapsed = time.perf_counter() - turn.started
                            TUTOR_FIRST_TOKEN.labels(state.provider or "unknown").observe(elapsed)
                        yield event
                if span is not None:
                    span.set_attribute("lyceum.tutor.status", state.status.value)
            message = await self._store(turn, state)
            stored = True
            _record_answer(self.settings, state)
            if state.status is MessageStatus.failed:
                yield ErrorEvent(message.id, state.error or "The tutor failed.")
            yield DoneEvent(message)
        finally:
            if not stored:
                state.status = MessageStatus.interrupted
                # Shielded: the task may be cancelled, the answer must still be kept.
                await asyncio.shield(self._store(turn, state))

    async def _produce(
        self, turn: PreparedTurn, state: _AnswerState
    ) -> AsyncGenerator[TurnEvent, None]:
        sources = turn.grounding.sources
        if turn.cached is not None:
            state.status = MessageStatus.cached
            state.provider, state.model = turn.cached.get("provider"), turn.cached.get("model")
            yield DeltaEvent(turn.cached["content"])
            state.text = turn.cached["content"]
            for number in cited_numbers(state.text, len(sources)):
                citation = citation_for(number, sources[number - 1])
                state.citations.append(citation)
                yield CitationEvent(citation)
            return

        if self.settings.ai_offline:
            # No provider: no tokens, and nothing to pay (the usage report prices tokens).
            state.provider, state.model = "offline", "course-material"
            text_out = await self._offline_text(turn)
            for piece in _pieces(text_out):
                state.text += piece
                yield DeltaEvent(piece)
                for citation_event in state.new_citations(sources):
                    yield citation_event
            return

        state.provider, state.model = self.settings.ai_provider.value, model_name(self.settings)
        toolbox = TutorToolbox(turn, embedder=self.embedder, transaction=self.transaction)
        deps = llm.TutorDeps(tools=toolbox)
        try:
            choice = choose_model(self.settings)
            deps.model = choice.model
            events = llm.stream_answer(
                choice,
                instructions=instructions(turn.grounding),
                history=turn.grounding.history,
                prompt=user_prompt(turn.grounding, turn.question),
                deps=deps,
            )
            # Closed here if the consumer stops early (the learner went away): the
            # provider's response and its span end now, not when the generator is
            # collected.
            async with aclosing(events):
                async for event in events:
                    if isinstance(event, llm.TextDelta):
                        state.text += event.text
                        yield DeltaEvent(event.text)
                        for citation_event in state.new_citations(sources):
                            yield citation_event
                    elif isinstance(event, llm.ToolUse):
                        call = schemas.ToolCallOut(
                            name=event.name, args=event.args, result=event.result
                        )
                        state.tool_calls.append(call)
                        yield ToolEvent(call)
                    else:
                        state.usage = event.usage
        except Exception as error:
            logger.warning("tutor_provider_failed", error=repr(error)[:500])
            record_provider_error(state.provider or "unknown", "tutor", error)
            state.status = MessageStatus.failed
            state.error = "The AI provider failed while answering; please try again."
        finally:
            # Every token the provider reported is spent, also those of an answer that
            # failed or was cut off after a tool round trip.
            state.usage = deps.usage
        state.personal = deps.used_personal_data

    async def _offline_text(self, turn: PreparedTurn) -> str:
        if turn.catalog_question:
            async with self.transaction() as session:
                suggestions = await catalog_matches(session, turn.question)
            return offline.catalog_answer(suggestions)
        embedder = await load_embedder(self.embedder)
        return await offline.study_answer(turn.grounding, turn.question, embedder)

    async def _store(self, turn: PreparedTurn, state: _AnswerState) -> schemas.MessageOut:
        latency = int((time.perf_counter() - turn.started) * 1000)
        async with self.transaction() as session:
            message = Message(
                conversation_id=turn.conversation_id,
                course_id=turn.course_id,
                user_id=turn.user_id,
                role=MessageRole.assistant,
                content=state.text,
                citations=[citation.model_dump(mode="json") for citation in state.citations],
                tool_calls=[call.model_dump(mode="json") for call in state.tool_calls],
                provider=state.provider,
                model=state.model,
                tokens_in=state.usage.tokens_in,
                tokens_out=state.usage.tokens_out,
                latency_ms=latency,
                status=state.status,
                error=state.error,
            )
            repo = TutorRepository(session)
            repo.add(message)
            await repo.flush()
            out = message_out(message)
        if (
            turn.cache_key
            and state.status is MessageStatus.complete
            and not state.personal
            and state.text
        ):
            payload = {"content": state.text, "provider": state.provider, "model": state.model}
            await self.cache.set(
                turn.cache_key,
                json.dumps(payload).encode(),
                self.settings.tutor_cache_ttl_seconds,
            )
        return out
