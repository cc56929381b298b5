"""What the tutor report needs from the tutor: every question asked is recorded in
`analytics_tutor_questions` in the transaction that stores it (a reaction to the
internal event `tutor.question_asked`), with its embedding by the platform's embedder
(all-MiniLM-L6-v2 from its wheel, never downloaded), so the report can group the
unanswered ones by meaning. The tutor embeds every question for its retrieval anyway
and sends that vector with the event (`question_vector`); a question that comes
without one (an emitter that has none) is embedded afterwards by a job."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.analytics.report_repository import AnalyticsReportRepository
from lyceum.kit.ai.embedding import Embedder, Vector, get_embedder
from lyceum.kit.events import react
from lyceum.kit.jobs import JobContext, Queue, defer, resources, task, transaction

logger = structlog.get_logger("lyceum.analytics")

QUESTION_ASKED = "tutor.question_asked"
CONVERSATION_DELETED = "tutor.conversation_deleted"
ACCOUNT_DELETED = "user.account_deleted"


def _id(value: uuid.UUID | str) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(value)


async def record_question(
    session: AsyncSession,
    *,
    message_id: uuid.UUID | str,
    user_id: uuid.UUID | str,
    course_id: uuid.UUID | str,
    lesson_id: uuid.UUID | str | None,
    answered: bool,
    question: str,
    question_vector: Vector | None = None,
) -> None:
    """The reaction: one row per tutor message, asked at the transaction's time, with
    its embedding if it is unanswered (only those are grouped): the `question_vector`
    that came with the event, else a job's, queued here."""
    embedding = None
    if not answered and question_vector is not None:
        embedding = question_vector.tolist()
    await AnalyticsReportRepository(session).add_tutor_question(
        message_id=_id(message_id),
        user_id=_id(user_id),
        course_id=_id(course_id),
        lesson_id=None if lesson_id is None else _id(lesson_id),
        answered=bool(answered),
        question=question,
        embedding=embedding,
    )
    if not answered and embedding is None:
        await defer(session, embed_tutor_question, message_id=str(message_id))


async def embed_questions(
    session: AsyncSession, embedder: Embedder, message_ids: Sequence[uuid.UUID]
) -> int:
    """Embed the named unanswered questions that have no embedding yet (answered ones
    are never grouped: no model time is spent on them); returns how many. A second run
    finds nothing left to do."""
    repository = AnalyticsReportRepository(session)
    rows = await repository.questions_to_embed(message_ids)
    if not rows:
        return 0
    vectors = await embedder.encode([row.question for row in rows])
    for row, vector in zip(rows, vectors, strict=True):
        await repository.set_embedding(row.message_id, vector.tolist())
    return len(rows)


@task(name="lyceum.analytics.embed_tutor_question", queue=Queue.indexing, pass_context=True)
async def embed_tutor_question(context: JobContext, /, message_id: str, **_: object) -> int:
    """The job: reloads the row by its message id and stores its embedding. (Jobs
    queued by earlier versions carry the whole event's payload; only the id is read.)"""
    runtime = resources(context)
    embedder = await asyncio.to_thread(get_embedder)
    async with transaction(runtime) as session:
        done = await embed_questions(session, embedder, [uuid.UUID(str(message_id))])
    logger.info("tutor_question_embedded", message_id=str(message_id), embedded=done)
    return done


async def forget_conversation(
    session: AsyncSession, *, conversation_id: uuid.UUID | str, **_: object
) -> None:
    """The reaction to a deleted tutor conversation: its questions go too (tutor
    conversations are private; the emitter runs it before the messages are deleted)."""
    await AnalyticsReportRepository(session).forget_conversation_questions(_id(conversation_id))


async def forget_learner(session: AsyncSession, *, user_id: uuid.UUID | str, **_: object) -> None:
    """The reaction to a deleted account: every tutor question of the learner goes."""
    await AnalyticsReportRepository(session).forget_learner_questions(_id(user_id))


react(QUESTION_ASKED, record_question)
react(CONVERSATION_DELETED, forget_conversation)
react(ACCOUNT_DELETED, forget_learner)
