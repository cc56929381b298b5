"""The first half of a turn, in the request's session: from a learner's question to a
`PreparedTurn` that `service.answers` answers.

Two short transactions, with no pooled connection held between them while the question
is embedded (CPU-bound, shared by every request of the process): the reads and checks,
committed early; then the retrieval and the stored question.

`TurnService.prepare` checks the question and the course's limits, retrieves sources,
builds the grounding (syllabus, lesson, history, whether the question is graded work),
stores the question and looks the answer up in the cache. The endpoint then commits the
request's transaction early (`kit.db.commit`): the question is stored whatever happens
to its answer. A turn's latency is measured from the start of `prepare`, so it includes
any wait for the embedding model to load."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.config import Settings
from lyceum.content.service import Hit, indexing_progress, retrieve
from lyceum.kit.ai.embedding import Embedder, load_embedder, loaded_embedder
from lyceum.kit.ai.models import model_name
from lyceum.kit.cache import Cache
from lyceum.kit.db import commit
from lyceum.kit.errors import Invalid, NotFound
from lyceum.kit.events import emit
from lyceum.models.courses import Course
from lyceum.models.identity import Role, User
from lyceum.models.tutor import Conversation, MessageRole, MessageStatus
from lyceum.tutor import offline, schemas
from lyceum.tutor.grounding import (
    Grounding,
    SyllabusLesson,
    exchanges,
    fit_history,
    instructions,
    summarise,
    user_prompt,
)
from lyceum.tutor.interfaces import GradedQuestionGuard
from lyceum.tutor.repository import TutorRepository
from lyceum.tutor.service.conversations import NEW_TITLE
from lyceum.tutor.service.settings import CourseTutorFacts, TutorSettingsService

SOURCES_PER_TURN = 5
# Emitted when a learner's question is stored: message_id, user_id, course_id, lesson_id
# (or None), answered (the material had relevant passages) and the question.
QUESTION_ASKED = "tutor.question_asked"
CACHE_PREFIX = "tutor:answer:"


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
    """Everything the answer needs, detached from the request's session (which is
    closed while the answer streams)."""

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


@dataclass(frozen=True, slots=True)
class ConversationState:
    """What a question reads of its learner and conversation, when the caller has read
    it already (`tutor.permissions.Tutored`, in the round trip of the conversation):
    the lessons of the course they have completed (None: not enrolled) and the
    conversation's messages so far, in order, as (role, content, status)."""

    completed_lessons: int | None
    history: list[tuple[MessageRole, str, MessageStatus]]


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


class TurnService:
    def __init__(
        self,
        session: AsyncSession,
        *,
        settings: Settings,
        cache: Cache,
        tutor_settings: TutorSettingsService,
        embedder: Callable[[], Embedder],
        guard: GradedQuestionGuard,
        now: dt.datetime,
    ) -> None:
        self.session = session
        self.settings = settings
        self.cache = cache
        self.tutor_settings = tutor_settings
        self.embedder = embedder
        self.guard = guard
        self.now = now
        self.repo = TutorRepository(session)

    async def prepare(
        self,
        caller: User,
        course: Course,
        conversation: Conversation,
        question: str,
        *,
        state: ConversationState | None = None,
    ) -> tuple[PreparedTurn, dict[str, str]]:
        """A question of `caller`'s, who owns `conversation` and is a member of its
        `course`, whose `state` the caller has read (None: read here). Returns the turn
        and the rate-limit headers of the response."""
        started = time.perf_counter()
        question = question.strip()
        if len(question) > self.settings.tutor_max_message_chars:
            raise Invalid(
                f"The question is longer than {self.settings.tutor_max_message_chars} characters.",
                field="body.content",
            )
        # Retrieval sees the normalised question, so the same question asked again
        # finds the same passages (and the cache can answer it).
        query = normalise_question(question)
        # The model starts on the question now, in its thread, while the reads below
        # wait on the database; `encode_query` further down shares the same work.
        ready = loaded_embedder(self.embedder)
        if ready is not None:
            ready.prefetch_query(query)
        facts = await self.tutor_settings.enabled_facts(course)
        tutor = facts.settings
        headers = await self.tutor_settings.check_limits(caller, course, tutor)
        if state is None:
            state = ConversationState(
                await self.repo.completed_lessons(course.id, caller.id),
                [
                    (message.role, message.content, message.status)
                    for message in await self.repo.messages(conversation.id)
                ],
            )
        previous = state.history
        grounding = await self._grounding(course, conversation, facts, state)
        # An early commit, on purpose: it ends the transaction of the reads so far (the
        # caller, the checks, the history, the progress), which hands the pooled
        # connection back while the question is embedded. The embedding model is
        # CPU-bound and shared: under a burst of questions a turn waits seconds for it,
        # and a connection held meanwhile starves every other request of the pool.
        # The retrieval, the stored question and its event below run in a second short
        # transaction (the session begins it on its next statement), which the endpoint
        # commits before the answer streams.
        await commit(self.session)
        embedder = await load_embedder(self.embedder)
        # Embedded (in the model's thread) with no connection held; `retrieve` asks for
        # the same query and gets the vector from the embedder's cache.
        vector = await embedder.encode_query(query)

        turns = exchanges(
            [
                (role.value, content, status is not MessageStatus.failed)
                for role, content, status in previous
            ]
        )
        older, recent = fit_history(turns, self.settings.tutor_history_tokens)
        # The conversation's changes are written with the question, in one statement.
        changes: dict[str, Any] = {"updated_at": self.now}
        if len(older) > conversation.summarised_messages:
            changes["summary"] = summarise(
                older[conversation.summarised_messages :], conversation.summary
            )
            changes["summarised_messages"] = len(older)
            grounding.summary = changes["summary"]

        found = await retrieve(
            self.session, embedder, course.id, query, SOURCES_PER_TURN, with_progress=True
        )
        if found is not None:
            grounding.sources = found.hits
            grounding.relevant = found.relevant
        grounding.indexing = (
            found.indexing
            if found is not None and found.indexing is not None
            else await indexing_progress(self.session, course.id)
        )
        grounding.history = recent
        grounding.graded = await self.guard.is_graded_question(caller, course, question)

        if not previous and conversation.title == NEW_TITLE:
            changes["title"] = question[:80]
        asked_id = await self.repo.store_question(
            conversation, course_id=course.id, user_id=caller.id, content=question, changes=changes
        )
        if asked_id is None:
            raise NotFound("No such conversation.")
        # Analytics records a learner's question and whether the material answered it,
        # with the question itself (an internal event: its reactions run in this
        # transaction). Staff trying the tutor out are not learners asking: their
        # questions would skew the tutor insights.
        if caller.role is Role.student:
            await emit(
                self.session,
                QUESTION_ASKED,
                message_id=str(asked_id),
                user_id=str(caller.id),
                course_id=str(course.id),
                lesson_id=str(conversation.lesson_id) if conversation.lesson_id else None,
                answered=found is not None and found.relevant,
                question=question,
                # The question's vector, already computed for retrieval: the tutor
                # report groups unanswered questions by it, and embedding the question
                # again in a job would cost a job and the model's time per question.
                question_vector=vector,
            )

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
        course: Course,
        conversation: Conversation,
        facts: CourseTutorFacts,
        state: ConversationState,
    ) -> Grounding:
        """Everything the prompt carries but the retrieved sources and the history."""
        tutor = facts.settings
        entries = facts.syllabus
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
        percent = None
        done = state.completed_lessons
        if done is not None and lessons:
            percent = 100 * done / lessons
        return Grounding(
            course_id=course.id,
            course_title=course.title,
            course_description=course.description,
            language=course.language,
            syllabus=list(syllabus.values()),
            lesson_title=lesson_title,
            lesson_id=conversation.lesson_id,
            progress_percent=percent,
            sources=[],
            summary=conversation.summary,
            mode=tutor.mode,
            extra_instructions=tutor.instructions,
        )
