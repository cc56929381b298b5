"""How many statements the tutor's hot requests send to PostgreSQL: starting a
conversation and asking a question (through the fake provider, streamed), counted at
the driver (every psycopg cursor execute: SQLAlchemy's, `kit.db.driver_execute`'s and
the job queue's alike). A bound, not a timing: a change that adds round trips to the
question's preparation fails here."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import psycopg
import pytest

from lyceum.kit.runtime import Runtime
from tests.conftest import client_on_fake_provider
from tests.support.fake_llm import FakeLLM, fake_llm_server
from tests.tutor.test_tutor_offline import parse_sse
from tests.tutor.test_tutor_providers import MITOCHONDRIA, ask, course_about, course_taught

# Starting a conversation (the course's tutor settings cached by a first one): the caller
# and their login session, the course and the caller's roles in it, the conversation's
# INSERT (returning its times), COMMIT.
START_STATEMENTS = 4
# Asking, up to the answer's stream (the preparation): the caller; the conversation
# with its course, the caller's roles and progress and the messages so far (the tutor
# settings and syllabus cached); COMMIT; the retrieval (its set-up with the indexing
# progress, the question's words, the full-text and the vector rankings, the
# passages), the guard's graded work, the question with the conversation's UPDATE,
# its analytics (fact, question row, embedding job); COMMIT. (Before: 19 and 2.)
PREPARE_STATEMENTS = 14


@contextmanager
def statements() -> Iterator[list[str]]:
    """Every statement any psycopg cursor of this process executes meanwhile, and every
    COMMIT (a transaction's BEGIN goes with its first statement)."""
    sent: list[str] = []
    original = psycopg.AsyncCursor.execute
    original_commit = psycopg.AsyncConnection.commit

    async def execute(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        # Driver statements go as bytes (PostgreSQL's numbered placeholders).
        text = query.decode() if isinstance(query, bytes) else query
        sent.append(text if isinstance(text, str) else repr(text))
        return await original(self, query, *args, **kwargs)

    async def commit(self: Any) -> None:
        sent.append("COMMIT")
        await original_commit(self)

    psycopg.AsyncCursor.execute = execute  # type: ignore[method-assign]
    psycopg.AsyncConnection.commit = commit  # type: ignore[method-assign]
    try:
        yield sent
    finally:
        psycopg.AsyncCursor.execute = original  # type: ignore[method-assign]
        psycopg.AsyncConnection.commit = original_commit  # type: ignore[method-assign]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeLLM]:
    with fake_llm_server() as server:
        yield server


@pytest.fixture
async def live(fake: FakeLLM, runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    async with client_on_fake_provider(runtime, fake) as http:
        yield http


def shown(sent: list[str]) -> str:
    return "\n".join(f"{number:2} {' '.join(sql.split())[:160]}" for number, sql in enumerate(sent))


async def test_a_question_sends_a_bounded_number_of_statements(
    live: httpx.AsyncClient, runtime: Runtime, fake: FakeLLM
) -> None:
    course, learner, _ = await course_about(live, runtime, MITOCHONDRIA)
    fake.reply("Mitochondria turn glucose into ATP [1].")
    first = await live.post(
        "/api/v1/tutor/conversations", json={"course_id": course["id"]}, headers=learner.headers
    )
    assert first.status_code == 201, first.text
    with statements() as started:
        chat = await live.post(
            "/api/v1/tutor/conversations", json={"course_id": course["id"]}, headers=learner.headers
        )
    assert chat.status_code == 201, chat.text
    assert chat.json()["created_at"] and chat.json()["updated_at"]
    print("start:\n" + shown(started))
    with statements() as asked:
        response = await live.post(
            f"/api/v1/tutor/conversations/{chat.json()['id']}/messages",
            json={"content": "What do mitochondria do?"},
            headers={**learner.headers, "Accept": "text/event-stream"},
        )
    assert response.status_code == 201, response.text
    events = parse_sse(response.text)
    assert events[-1][0] == "done" and any(kind == "citation" for kind, _ in events)
    print("ask:\n" + shown(asked))
    # The preparation ends with the request's early COMMIT; the answer's own
    # transaction follows.
    commits = [number for number, sql in enumerate(asked) if sql.strip().upper() == "COMMIT"]
    assert len(started) <= START_STATEMENTS, shown(started)
    assert len(commits) >= 2 and commits[1] + 1 <= PREPARE_STATEMENTS, shown(asked)


def syllabus_of(request: dict[str, Any]) -> str:
    """The prompt's <syllabus> element (the sources name lessons by their titles too)."""
    prompt = json.dumps(request)
    start = prompt.index("<syllabus")
    return prompt[start : prompt.index("</syllabus>", start)]


async def test_a_renamed_lesson_reaches_the_next_question(
    live: httpx.AsyncClient, runtime: Runtime, fake: FakeLLM
) -> None:
    """The syllabus a turn reads is cached under the course's version: a change to the
    course (a renamed lesson) is in the very next question's prompt."""
    course, teacher, learner, lesson_id = await course_taught(live, runtime, MITOCHONDRIA)
    fake.reply("Power plants [1].")
    await ask(live, learner, course["id"], "What do mitochondria do?")
    assert "The powerhouse" in syllabus_of(fake.requests[-1].json)
    renamed = await live.patch(
        f"/api/v1/lessons/{lesson_id}", json={"title": "Cellular power"}, headers=teacher.headers
    )
    assert renamed.status_code == 200, renamed.text
    fake.reply("Power plants [1].")
    await ask(live, learner, course["id"], "What do mitochondria make?")
    syllabus = syllabus_of(fake.requests[-1].json)
    assert "Cellular power" in syllabus and "The powerhouse" not in syllabus
