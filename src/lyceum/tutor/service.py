"""The tutor's rules: who may talk to it about which course, limits and budgets, the
answer cache, and one turn of a conversation from question to stored answer.

A turn has two halves. `prepare` runs inside the request's transaction: it checks,
stores the question, retrieves sources and builds the grounding, then commits with the
request. `answer` runs after that, while the response streams: it calls the model (or
the offline tutor), and stores the answer in a transaction of its own, also when the
client goes away mid-stream. A turn's latency is measured from the start of `prepare`,
so it includes any wait for the embedding model to load."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.config import Settings
from lyceum.content.repository import IndexingRepository
from lyceum.content.retrieval import Hit, retrieve, search_course_material
from lyceum.courses.repository import CourseRepository
from lyceum.courses.service import CourseService
from lyceum.kit.ai.embedding import Embedder, load_embedder
from lyceum.kit.ai.models import choose_model, model_name
from lyceum.kit.cache import Cache
from lyceum.kit.db import Database
from lyceum.kit.errors import Conflict, Forbidden, Invalid, NotFound, RateLimited
from lyceum.kit.pagination import PageParams
from lyceum.kit.prompts import element, quoted, quoted_inline
from lyceum.kit.ratelimit import RateLimiter
from lyceum.models.courses import Course
from lyceum.models.identity import User
from lyceum.models.tutor import (
    Conversation,
    Message,
    MessageRole,
    MessageStatus,
    TutorMode,
    TutorSettings,
)
from lyceum.tutor import llm, offline, schemas
from lyceum.tutor.grounding import (
    Grounding,
    SyllabusLesson,
    cited_numbers,
    exchanges,
    fit_history,
    instructions,
    sources_element,
    summarise,
    user_prompt,
)
from lyceum.tutor.repository import TutorRepository

logger = structlog.get_logger("lyceum.tutor")

SOURCES_PER_TURN = 5
CACHE_PREFIX = "tutor:answer:"
# The part of a lesson the get_lesson tool hands the model.
LESSON_CHARS = 6000


class GradedQuestionGuard(Protocol):
    """Decides whether a question is (part of) graded work, so the tutor hints instead
    of answering. The assessments domain provides the real one."""

    async def is_graded_question(self, learner: User, course: Course, text: str) -> bool: ...


class NoGradedWork:
    """Until a course has assessments, no question is graded work."""

    async def is_graded_question(self, learner: User, course: Course, text: str) -> bool:
        return False


# Events of a turn, in the order a client receives them ---------------------------------


@dataclass(frozen=True, slots=True)
class DeltaEvent:
    text: str


@dataclass(frozen=True, slots=True)
class CitationEvent:
    citation: schemas.Citation


@dataclass(frozen=True, slots=True)
class ToolEvent:
    call: schemas.ToolCallOut


@dataclass(frozen=True, slots=True)
class DoneEvent:
    message: schemas.MessageOut


@dataclass(frozen=True, slots=True)
class ErrorEvent:
    message_id: uuid.UUID
    detail: str


TurnEvent = DeltaEvent | CitationEvent | ToolEvent | DoneEvent | ErrorEvent


@dataclass
class PreparedTurn:
    conversation_id: uuid.UUID
    course_id: uuid.UUID
    user_id: uuid.UUID
    question: str
    grounding: Grounding
    cache_key: str | None
    cached: dict[str, Any] | None
    catalog_question: bool
    # When `prepare` began: the answer's latency counts the question's whole way.
    started: float


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


def citation_for(number: int, hit: Hit) -> schemas.Citation:
    return schemas.Citation(
        number=number,
        kind=hit.source.kind,
        id=hit.source.id,
        title=hit.source.title,
        page=hit.source.page,
        heading=hit.source.heading,
        quote=hit.text[:200],
    )


def normalise_question(text: str) -> str:
    return " ".join(text.lower().split()).strip(" ?!.")


def month_start(now: dt.datetime) -> dt.datetime:
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


class TutorService:
    def __init__(
        self,
        session: AsyncSession,
        courses: CourseService,
        *,
        settings: Settings,
        cache: Cache,
        limiter: RateLimiter,
        database: Database,
        embedder: Callable[[], Embedder],
        now: dt.datetime,
        guard: GradedQuestionGuard | None = None,
    ) -> None:
        self.session = session
        self.courses = courses
        self.settings = settings
        self.cache = cache
        self.limiter = limiter
        self.database = database
        self.embedder = embedder
        self.now = now
        self.guard: GradedQuestionGuard = guard or NoGradedWork()
        self.repo = TutorRepository(session)

    # Conversations --------------------------------------------------------------------

    async def start(self, caller: User, data: schemas.ConversationCreate) -> Conversation:
        course, _ = await self.courses.member_access(data.course_id, caller)
        if data.lesson_id is not None:
            lesson = await self.repo.lesson(data.lesson_id)
            if lesson is None or lesson.course_id != course.id:
                raise Invalid("No such lesson in this course.", field="body.lesson_id")
        await self._enabled_settings(course)
        conversation = Conversation(
            user_id=caller.id,
            course_id=course.id,
            lesson_id=data.lesson_id,
            title=data.title or "New conversation",
            summary="",
            summarised_messages=0,
        )
        self.repo.add(conversation)
        await self.session.flush()
        await self.session.refresh(conversation)
        return conversation

    async def own(self, caller: User, conversation_id: uuid.UUID) -> Conversation:
        """Only its owner sees a conversation; to anyone else it does not exist."""
        conversation = await self.repo.conversation(conversation_id)
        if conversation is None or conversation.user_id != caller.id:
            raise NotFound("No such conversation.")
        return conversation

    async def conversations(
        self, caller: User, paging: PageParams, course_id: uuid.UUID | None
    ) -> tuple[list[Conversation], int]:
        return await self.repo.conversations_of(caller.id, course_id, paging.offset, paging.size)

    async def messages(self, conversation: Conversation) -> list[Message]:
        return await self.repo.messages(conversation.id)

    async def rename(self, conversation: Conversation, title: str) -> Conversation:
        conversation.title = title
        await self.session.flush()
        await self.session.refresh(conversation)
        return conversation

    async def delete(self, conversation: Conversation) -> None:
        await self.repo.delete_conversation(conversation.id)

    # Settings and limits --------------------------------------------------------------

    async def settings_of(self, course_id: uuid.UUID) -> TutorSettings:
        row = await self.repo.settings(course_id)
        return row or TutorSettings(
            course_id=course_id,
            enabled=True,
            mode=TutorMode.socratic,
            instructions="",
            monthly_token_budget=None,
            hourly_message_limit=None,
        )

    async def _enabled_settings(self, course: Course) -> TutorSettings:
        settings = await self.settings_of(course.id)
        if not settings.enabled:
            raise Conflict(
                "The course's instructors have switched the tutor off for this course.",
                slug="tutor-disabled",
            )
        return settings

    async def tokens_this_month(self, course_id: uuid.UUID) -> int:
        return await self.repo.tokens_since(course_id, month_start(self.now))

    async def update_settings(
        self, course: Course, data: schemas.TutorSettingsIn
    ) -> schemas.TutorSettingsOut:
        row = await self.repo.settings(course.id, for_update=True)
        if row is None:
            row = await self.settings_of(course.id)
            self.repo.add(row)
        for name in data.model_fields_set:
            value = getattr(data, name)
            if value is None and name not in {"monthly_token_budget", "hourly_message_limit"}:
                continue
            setattr(row, name, value)
        await self.session.flush()
        return await self.settings_out(course.id)

    async def settings_out(self, course_id: uuid.UUID) -> schemas.TutorSettingsOut:
        row = await self.settings_of(course_id)
        return schemas.TutorSettingsOut(
            course_id=course_id,
            enabled=row.enabled,
            mode=row.mode,
            instructions=row.instructions,
            monthly_token_budget=row.monthly_token_budget,
            hourly_message_limit=row.hourly_message_limit,
            tokens_used_this_month=await self.tokens_this_month(course_id),
        )

    async def _check_limits(
        self, caller: User, course: Course, tutor: TutorSettings
    ) -> dict[str, str]:
        """The rate limit (per user, atomic across replicas) and the course's monthly
        token budget. Returns the X-RateLimit-* headers for the response."""
        rule = (
            f"{tutor.hourly_message_limit}/hour"
            if tutor.hourly_message_limit
            else self.settings.tutor_rate_limit
        )
        decision = await self.limiter.hit(rule, "tutor", str(caller.id))
        headers = decision.headers()
        if not decision.allowed:
            error = RateLimited(
                f"You have asked the tutor {decision.limit} questions in the last hour; "
                f"try again in {decision.retry_after} s.",
                retry_after=decision.retry_after,
            )
            error.headers = {**(error.headers or {}), **headers}
            raise error
        budget = tutor.monthly_token_budget
        if budget is not None and await self.tokens_this_month(course.id) >= budget:
            error = RateLimited(
                "The tutor has used this course's token budget for the month.",
                retry_after=int(
                    (month_start(self.now) + dt.timedelta(days=32)).replace(day=1).timestamp()
                    - self.now.timestamp()
                ),
            )
            error.slug = "token-budget-exhausted"
            raise error
        return headers

    # One turn -------------------------------------------------------------------------

    async def prepare(
        self, caller: User, conversation: Conversation, question: str
    ) -> tuple[PreparedTurn, dict[str, str]]:
        started = time.perf_counter()
        question = question.strip()
        if len(question) > self.settings.tutor_max_message_chars:
            raise Invalid(
                f"The question is longer than {self.settings.tutor_max_message_chars} characters.",
                field="body.content",
            )
        course, _ = await self.courses.member_access(conversation.course_id, caller)
        # Retrieval sees the normalised question, so the same question asked again
        # finds the same passages (and the cache can answer it). The model encodes it
        # while the checks and the grounding's queries below run; right after a start
        # this waits for the model to finish loading, and the latency shows it.
        query = normalise_question(question)
        embedder = await load_embedder(self.embedder)
        embedder.prefetch_query(query)
        tutor = await self._enabled_settings(course)
        headers = await self._check_limits(caller, course, tutor)

        previous = await self.messages(conversation)
        turns = exchanges(
            [
                (
                    message.role.value,
                    message.content,
                    message.status is not MessageStatus.failed,
                )
                for message in previous
            ]
        )
        older, recent = fit_history(turns, self.settings.tutor_history_tokens)
        if len(older) > conversation.summarised_messages:
            conversation.summary = summarise(
                older[conversation.summarised_messages :], conversation.summary
            )
            conversation.summarised_messages = len(older)

        grounding = await self._grounding(caller, course, conversation, tutor)
        found = await retrieve(self.session, embedder, course.id, query, SOURCES_PER_TURN)
        if found is not None:
            grounding.sources = found.hits
            grounding.relevant = found.relevant
        grounding.indexing = await IndexingRepository(self.session).progress(course.id)
        grounding.history = recent
        grounding.graded = await self.guard.is_graded_question(caller, course, question)

        self.repo.add(
            Message(
                conversation_id=conversation.id,
                course_id=course.id,
                user_id=caller.id,
                role=MessageRole.user,
                content=question,
                citations=[],
                tool_calls=[],
                tokens_in=0,
                tokens_out=0,
                status=MessageStatus.complete,
            )
        )
        if not previous and conversation.title == "New conversation":
            conversation.title = question[:80]
        conversation.updated_at = self.now
        await self.session.flush()

        cache_key = None
        cached = None
        # Only a first question is answered from the cache (a later one depends on the
        # conversation so far), and not while the material is still being indexed (the
        # answer would change as it is).
        if (
            self.settings.tutor_cache_ttl_seconds
            and not recent
            and not grounding.summary
            and not grounding.still_indexing
        ):
            cache_key = self._cache_key(question, grounding)
            raw = await self.cache.get(cache_key)
            cached = json.loads(raw) if raw else None
        prepared = PreparedTurn(
            conversation_id=conversation.id,
            course_id=course.id,
            user_id=caller.id,
            question=question,
            grounding=grounding,
            cache_key=cache_key,
            cached=cached,
            catalog_question=offline.is_catalog_question(question),
            started=started,
        )
        return prepared, headers

    def _cache_key(self, question: str, grounding: Grounding) -> str:
        """Everything the answer depends on: the provider and model, and the exact
        instructions and prompt it would be given, with the question normalised. So the
        same question about the same passages (chunk ids and texts change whenever the
        material is re-indexed), the same course, current lesson and tutor settings
        share an answer; and the prompt holds nothing of the learner's own, so neither
        does a cached answer (one that used the learner's data is not cached)."""
        provider = "offline" if self.settings.ai_offline else model_name(self.settings)
        material = ",".join(str(hit.chunk_id) for hit in grounding.sources)
        raw = "\x1f".join(
            [
                provider,
                material,
                instructions(grounding),
                user_prompt(grounding, normalise_question(question)),
            ]
        )
        return CACHE_PREFIX + hashlib.sha256(raw.encode()).hexdigest()

    async def _grounding(
        self,
        caller: User,
        course: Course,
        conversation: Conversation,
        tutor: TutorSettings,
    ) -> Grounding:
        """Everything the prompt carries but the retrieved sources and the history."""
        entries = await self.repo.syllabus(course.id)
        syllabus: dict[uuid.UUID, tuple[str, list[SyllabusLesson]]] = {}
        lesson_title = None
        lessons = 0
        for entry in entries:
            _, numbered = syllabus.setdefault(entry.module_id, (entry.module_title, []))
            if entry.lesson_id is not None and entry.lesson_title is not None:
                lessons += 1
                numbered.append(SyllabusLesson(lessons, entry.lesson_id, entry.lesson_title))
                if entry.lesson_id == conversation.lesson_id:
                    lesson_title = entry.lesson_title
        progress = None
        done = await self.repo.completed_lessons(course.id, caller.id)
        if done is not None and lessons:
            progress = 100 * done / lessons
        return Grounding(
            course_id=course.id,
            course_title=course.title,
            course_description=course.description,
            language=course.language,
            syllabus=list(syllabus.values()),
            lesson_title=lesson_title,
            lesson_id=conversation.lesson_id,
            progress_percent=progress,
            sources=[],
            summary=conversation.summary,
            mode=tutor.mode,
            extra_instructions=tutor.instructions,
        )

    async def answer(self, turn: PreparedTurn) -> AsyncIterator[TurnEvent]:
        """Produce and store the answer. If the consumer stops early (the client went
        away), what was produced is stored, marked `interrupted`."""
        state = _AnswerState(turn)
        stored = False
        try:
            async for event in self._produce(turn, state):
                yield event
            message = await self._store(turn, state)
            stored = True
            if state.status is MessageStatus.failed:
                yield ErrorEvent(message.id, state.error or "The tutor failed.")
            yield DoneEvent(message)
        finally:
            if not stored:
                state.status = MessageStatus.interrupted
                # Shielded: the task may be cancelled, the answer must still be kept.
                await asyncio.shield(self._store(turn, state))

    async def _produce(self, turn: PreparedTurn, state: _AnswerState) -> AsyncIterator[TurnEvent]:
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
        deps = llm.TutorDeps(tools=TutorToolbox(self, turn))
        try:
            choice = choose_model(self.settings)
            deps.model = choice.model
            async for event in llm.stream_answer(
                choice,
                instructions=instructions(turn.grounding),
                history=turn.grounding.history,
                prompt=user_prompt(turn.grounding, turn.question),
                deps=deps,
            ):
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
                    state.tokens_in, state.tokens_out = event.tokens_in, event.tokens_out
        except Exception as error:
            logger.warning("tutor_provider_failed", error=repr(error)[:500])
            state.status = MessageStatus.failed
            state.error = "The AI provider failed while answering; please try again."
        state.personal = deps.used_personal_data

    async def _offline_text(self, turn: PreparedTurn) -> str:
        if turn.catalog_question:
            async with self.database.sessionmaker() as session:
                suggestions = await catalog_matches(session, turn.question)
            return offline.catalog_answer(suggestions)
        embedder = await load_embedder(self.embedder)
        return await offline.study_answer(turn.grounding, turn.question, embedder)

    async def _store(self, turn: PreparedTurn, state: _AnswerState) -> schemas.MessageOut:
        latency = int((time.perf_counter() - turn.started) * 1000)
        async with self.database.sessionmaker() as session, session.begin():
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
                tokens_in=state.tokens_in,
                tokens_out=state.tokens_out,
                latency_ms=latency,
                status=state.status,
                error=state.error,
            )
            session.add(message)
            await session.flush()
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

    # Usage ----------------------------------------------------------------------------

    async def usage(
        self, caller: User, course_id: uuid.UUID | None, since: dt.date | None
    ) -> schemas.UsageReport:
        course_ids: list[uuid.UUID] | None = None
        if course_id is not None:
            course, can_edit = await self.courses.member_access(course_id, caller)
            if not can_edit:
                raise Forbidden("Only the course's instructors and admins see tutor usage.")
            course_ids = [course.id]
        elif caller.role.value != "admin":
            course_ids = list(await CourseRepository(self.session).course_ids_taught_by(caller.id))
        rows = await self.repo.usage(course_ids=course_ids, since=since)
        items = [
            schemas.UsageRow(
                course_id=row.course_id,
                user_id=row.user_id,
                day=row.day,
                messages=row.messages,
                tokens_in=int(row.tokens_in or 0),
                tokens_out=int(row.tokens_out or 0),
                estimated_cost_usd=round(self._cost(row.tokens_in, row.tokens_out), 6),
            )
            for row in rows
        ]
        return schemas.UsageReport(
            items=items,
            total_messages=sum(item.messages for item in items),
            total_tokens_in=sum(item.tokens_in for item in items),
            total_tokens_out=sum(item.tokens_out for item in items),
            total_estimated_cost_usd=round(sum(item.estimated_cost_usd for item in items), 6),
        )

    def _cost(self, tokens_in: int | None, tokens_out: int | None) -> float:
        return (
            (tokens_in or 0) * self.settings.ai_input_cost_per_million
            + (tokens_out or 0) * self.settings.ai_output_cost_per_million
        ) / 1_000_000


@dataclass
class _AnswerState:
    turn: PreparedTurn
    text: str = ""
    citations: list[schemas.Citation] = field(default_factory=list)
    tool_calls: list[schemas.ToolCallOut] = field(default_factory=list)
    provider: str | None = None
    model: str | None = None
    tokens_in: int = 0
    tokens_out: int = 0
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


async def catalog_matches(session: AsyncSession, question: str) -> list[offline.CourseSuggestion]:
    """Published courses whose search document shares words with the question, best
    first; the most popular ones when nothing matches."""
    return [
        offline.CourseSuggestion(row.title, row.subtitle, f"/api/v1/courses/{row.id}")
        for row in await TutorRepository(session).catalog_matches(question)
    ]


class TutorToolbox:
    """The tools' reach: this learner, this course, read-only, each call in its own
    short session (the request's session is closed while the answer streams). What they
    return goes back to the model, so it is framed like the prompt's data
    (`lyceum.kit.prompts`): course text and catalog entries as escaped elements."""

    def __init__(self, service: TutorService, turn: PreparedTurn) -> None:
        self.service = service
        self.turn = turn

    async def search_course_material(self, query: str) -> str:
        embedder = await load_embedder(self.service.embedder)
        async with self.service.database.sessionmaker() as session, session.begin():
            hits = await search_course_material(
                session, embedder, self.turn.course_id, query, SOURCES_PER_TURN
            )
        first = len(self.turn.grounding.sources) + 1
        self.turn.grounding.sources.extend(hits)
        return sources_element(hits, first=first)

    async def get_lesson(self, lesson: int) -> str:
        entry = self.turn.grounding.lesson_numbered(lesson)
        if entry is None:
            return quoted_inline("error", f"The syllabus has no lesson {lesson}.")
        async with self.service.database.sessionmaker() as session:
            found = await TutorRepository(session).lesson(entry.id)
        if found is None or found.course_id != self.turn.course_id:
            return quoted_inline("error", f"Lesson {lesson} no longer exists.")
        return quoted("lesson", found.content[:LESSON_CHARS], n=lesson, title=found.title)

    async def get_my_progress(self) -> str:
        percent = self.turn.grounding.progress_percent
        if percent is None:
            text = "The learner is not enrolled in this course (an instructor or admin)."
        else:
            text = f"The learner has completed {percent:.0f}% of this course's lessons."
        return quoted_inline("learner_progress", text)

    async def search_catalog(self, query: str) -> str:
        async with self.service.database.sessionmaker() as session:
            found = await catalog_matches(session, query)
        if not found:
            return quoted_inline("catalog", "no courses found")
        return element(
            "catalog",
            [quoted("course", item.subtitle, title=item.title, url=item.url) for item in found],
        )
