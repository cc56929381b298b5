"""The platform's own learning events, recorded without any app: each domain event below
becomes one `analytics_events` row (one INSERT), written by a reaction in the emitting
transaction, so the fact and its event commit or roll back together.

| domain event | verb | object |
|---|---|---|
| `enrollment.created` | enrolled | the course |
| `lesson.completed` | completed | the lesson |
| `course.completed` | completed | the course |
| `quiz.attempt.graded` | passed / failed (result: score, max_score, success) | the quiz |
| `submission.graded` (an essay's grade released) | scored (result: score, max_score) | the assignment |
| `tutor.question_asked` | asked (result: answered; never the question: tutor conversations are private) | the lesson, else the course |

A graded quiz attempt's fact is written by the event row's own INSERT
(`kit.events.write_with_event`, `repository.graded_quiz_fact`): the same row, computed
from the event's payload in SQL, without a statement of its own (500 learners submitting
at once send 500 statements fewer). Chat activity is copied by a job instead
(`tasks.copy_chat_activity`): the chat's send path stays as fast as it is.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.analytics import repository
from lyceum.analytics.vocabulary import ObjectType, Verb
from lyceum.kit.events import Companion, react, write_with_event

logger = structlog.get_logger("lyceum.analytics")

TUTOR_QUESTION_ASKED = "tutor.question_asked"
"""Internal event (tutor.service.turns): message_id, user_id, course_id, lesson_id (or
None), answered (whether the course material had relevant passages), question."""


def _id(value: str | None) -> uuid.UUID | None:
    return None if value is None else uuid.UUID(value)


async def enrolled(session: AsyncSession, **payload: Any) -> None:
    await repository.insert_server_event(
        session,
        user_id=uuid.UUID(payload["user_id"]),
        verb=Verb.enrolled,
        object_type=ObjectType.course,
        object_id=uuid.UUID(payload["course_id"]),
        course_id=uuid.UUID(payload["course_id"]),
    )


async def lesson_completed(session: AsyncSession, **payload: Any) -> None:
    await repository.insert_server_event(
        session,
        user_id=uuid.UUID(payload["user_id"]),
        verb=Verb.completed,
        object_type=ObjectType.lesson,
        object_id=uuid.UUID(payload["lesson_id"]),
        course_id=uuid.UUID(payload["course_id"]),
        lesson_id=uuid.UUID(payload["lesson_id"]),
    )


async def course_completed(session: AsyncSession, **payload: Any) -> None:
    await repository.insert_server_event(
        session,
        user_id=uuid.UUID(payload["user_id"]),
        verb=Verb.completed,
        object_type=ObjectType.course,
        object_id=uuid.UUID(payload["course_id"]),
        course_id=uuid.UUID(payload["course_id"]),
        result={"completion": True},
    )


def _missing_partition(object_type: str) -> Callable[[int, Mapping[str, Any]], None]:
    """What a fact written with its event does when no partition took it: logged, as
    `repository.insert_server_event` logs it."""

    def written(count: int, data: Mapping[str, Any]) -> None:
        if not count:
            logger.warning("analytics_partition_missing", object_type=object_type)

    return written


async def essay_scored(session: AsyncSession, **payload: Any) -> None:
    await repository.insert_server_event(
        session,
        user_id=uuid.UUID(payload["user_id"]),
        verb=Verb.scored,
        object_type=ObjectType.assignment,
        object_id=uuid.UUID(payload["assignment_id"]),
        course_id=uuid.UUID(payload["course_id"]),
        result={
            "score": float(payload["score"]),
            "max_score": float(payload["max_score"]),
            "completion": True,
        },
        context={"submission_id": payload["submission_id"]},
    )


async def question_asked(session: AsyncSession, **payload: Any) -> None:
    lesson_id = _id(payload.get("lesson_id"))
    course_id = uuid.UUID(payload["course_id"])
    await repository.insert_server_event(
        session,
        user_id=uuid.UUID(payload["user_id"]),
        verb=Verb.asked,
        object_type=ObjectType.lesson if lesson_id else ObjectType.course,
        object_id=lesson_id or course_id,
        course_id=course_id,
        lesson_id=lesson_id,
        result={"answered": bool(payload["answered"])},
        context={"message_id": payload["message_id"]},
    )


react("enrollment.created", enrolled)
react("lesson.completed", lesson_completed)
react("course.completed", course_completed)
write_with_event(
    "quiz.attempt.graded",
    "analytics_fact",
    Companion(repository.graded_quiz_fact, written=_missing_partition("quiz")),
)
react("submission.graded", essay_scored)
react(TUTOR_QUESTION_ASKED, question_asked)
