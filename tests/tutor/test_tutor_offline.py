"""The tutor with no provider configured (offline): answers from a demo course's own
material with citations, streamed or whole; conversations, limits, cache, settings,
usage and who may do what."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import numpy as np
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.config import Settings
from lyceum.demo.loader import demo_courses
from lyceum.kit.ai.embedding import Embedder, get_embedder
from lyceum.kit.runtime import Runtime
from lyceum.models.analytics import TutorQuestion
from lyceum.models.courses import Course
from lyceum.models.identity import Role, User
from lyceum.models.tutor import Conversation, Message
from lyceum.tutor.interfaces import NoGradedWork
from lyceum.tutor.service import AnswerService, TurnService, TutorSettingsService
from tests.conftest import client_for, make_app
from tests.content.helpers import Person, course_with_lesson, drain_jobs, enroll, person
from tests.support.clock import FrozenClock


@pytest.fixture
async def live(settings: Settings, runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    assert settings.ai_offline
    await runtime.rate_limiter.reset()
    app = make_app(settings, runtime, None)
    app.state.clock = FrozenClock()
    async with client_for(app) as http:
        yield http


async def demo_course(http: httpx.AsyncClient, teacher: Person, slug: str) -> dict[str, Any]:
    """One demo course, authored through the API and indexed by the job worker."""
    data = next(course for course in demo_courses() if course["slug"] == slug)
    created = await http.post(
        "/api/v1/courses",
        json={
            "title": data["title"],
            "language": data["language"],
            "description": data["description"],
        },
        headers=teacher.headers,
    )
    assert created.status_code == 201, created.text
    course = created.json()
    for module_data in data["modules"]:
        module = await http.post(
            f"/api/v1/courses/{course['id']}/modules",
            json={"title": module_data["title"]},
            headers=teacher.headers,
        )
        for lesson in module_data["lessons"]:
            response = await http.post(
                f"/api/v1/courses/{course['id']}/modules/{module.json()['id']}/lessons",
                json={"title": lesson["title"], "content": lesson["content"]},
                headers=teacher.headers,
            )
            assert response.status_code == 201, response.text
    published = await http.post(f"/api/v1/courses/{course['id']}/publish", headers=teacher.headers)
    assert published.status_code == 200
    await drain_jobs()
    return course


@pytest.fixture(scope="module")
async def cell_course(settings: Settings, runtime: Runtime) -> tuple[dict[str, Any], Person]:
    """Built once per module: authoring and indexing a whole demo course takes a while."""
    app = make_app(settings, runtime, None)
    async with client_for(app) as http:
        teacher = await person(http, runtime, Role.instructor)
        return await demo_course(http, teacher, "cell-biology"), teacher


async def conversation(http: httpx.AsyncClient, course_id: str, who: Person) -> str:
    response = await http.post(
        "/api/v1/tutor/conversations", json={"course_id": course_id}, headers=who.headers
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def ask_in(http: httpx.AsyncClient, chat: str, who: Person, question: str) -> None:
    """One question in conversation `chat`, answered."""
    response = await http.post(
        f"/api/v1/tutor/conversations/{chat}/messages",
        json={"content": question},
        headers=who.headers,
    )
    assert response.status_code == 201, response.text


async def turn_services(
    session: AsyncSession,
    runtime: Runtime,
    embedder: Callable[[], Embedder],
    who: Person,
    chat: str,
) -> tuple[TurnService, AnswerService, User, Course, Conversation]:
    """What the ask route's dependencies resolve for `who`'s conversation `chat`: the
    services, the caller, the course and the conversation."""
    user = await session.get(User, who.id)
    conversation = await session.get(Conversation, uuid.UUID(chat))
    assert user is not None and conversation is not None
    course = await session.get(Course, conversation.course_id)
    assert course is not None
    now = FrozenClock().now()
    tutor_settings = TutorSettingsService(
        session, settings=runtime.settings, limiter=runtime.rate_limiter, now=now
    )
    turns = TurnService(
        session,
        settings=runtime.settings,
        cache=runtime.cache,
        tutor_settings=tutor_settings,
        embedder=embedder,
        guard=NoGradedWork(),
        now=now,
    )
    answers = AnswerService(
        settings=runtime.settings,
        cache=runtime.cache,
        database=runtime.database,
        embedder=embedder,
    )
    return turns, answers, user, course, conversation


def parse_sse(body: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for block in body.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


async def test_offline_answers_quote_the_course_with_citations(
    live: httpx.AsyncClient, runtime: Runtime, cell_course: tuple[dict[str, Any], Person]
) -> None:
    course, _ = cell_course
    learner = await person(live, runtime)
    await enroll(live, course["id"], learner)
    chat = await conversation(live, course["id"], learner)
    asked_at = time.time()
    response = await live.post(
        f"/api/v1/tutor/conversations/{chat}/messages",
        json={"content": "What does the mitochondrion do for the cell?"},
        headers=learner.headers,
    )
    answered_at = time.time()
    assert response.status_code == 201, response.text
    answer = response.json()
    assert answer["status"] == "complete" and answer["provider"] == "offline"
    assert "[1]" in answer["content"] and "Offline tutor" in answer["content"]
    assert "ATP" in answer["content"] or "energy" in answer["content"]
    cited = answer["citations"]
    assert cited and cited[0]["number"] == 1 and cited[0]["kind"] == "lesson"
    assert any("itochondri" in item["title"] + item["quote"] for item in cited)
    assert int(response.headers["x-ratelimit-limit"]) == 20
    assert int(response.headers["x-ratelimit-remaining"]) == 19
    # The hour-long window frees this question's slot an hour after it was asked.
    reset = int(response.headers["x-ratelimit-reset"])
    assert asked_at + 3600 <= reset <= answered_at + 3601

    stored = (await live.get(f"/api/v1/tutor/conversations/{chat}", headers=learner.headers)).json()
    assert [m["role"] for m in stored["messages"]] == ["user", "assistant"]
    assert stored["messages"][1]["id"] == answer["id"]
    assert stored["title"].startswith("What does the mitochondrion")


async def test_streaming_sends_deltas_citations_and_done_in_order(
    live: httpx.AsyncClient, runtime: Runtime, cell_course: tuple[dict[str, Any], Person]
) -> None:
    course, teacher = cell_course
    chat = await conversation(live, course["id"], teacher)
    response = await live.post(
        f"/api/v1/tutor/conversations/{chat}/messages",
        json={"content": "How does osmosis move water?"},
        headers={**teacher.headers, "Accept": "text/event-stream"},
    )
    assert response.status_code == 201
    assert response.headers["content-type"].startswith("text/event-stream")
    events = parse_sse(response.text)
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "delta" and kinds[-1] == "done"
    assert "citation" in kinds
    text = "".join(data["text"] for kind, data in events if kind == "delta")
    done = events[-1][1]
    stored = (await live.get(f"/api/v1/tutor/conversations/{chat}", headers=teacher.headers)).json()
    assert stored["messages"][-1]["id"] == done["message_id"]
    assert stored["messages"][-1]["content"] == text
    assert done["status"] == "complete"


async def test_the_same_question_is_answered_from_the_cache_until_the_material_changes(
    live: httpx.AsyncClient, runtime: Runtime, cell_course: tuple[dict[str, Any], Person]
) -> None:
    course, teacher = cell_course
    question = {"content": "What is the function of ribosomes?"}
    first = await live.post(
        f"/api/v1/tutor/conversations/{await conversation(live, course['id'], teacher)}/messages",
        json=question,
        headers=teacher.headers,
    )
    second = await live.post(
        f"/api/v1/tutor/conversations/{await conversation(live, course['id'], teacher)}/messages",
        json={"content": "  what is the FUNCTION of ribosomes "},
        headers=teacher.headers,
    )
    assert first.json()["status"] == "complete" and second.json()["status"] == "cached"
    assert second.json()["content"] == first.json()["content"]
    assert second.json()["citations"] == first.json()["citations"]

    # Re-indexing the cited lesson gives its chunks new ids: the cache key changes.
    lesson_id = first.json()["citations"][0]["id"]
    edited = await live.patch(
        f"/api/v1/lessons/{lesson_id}",
        json={"content": "Ribosomes build proteins by reading messenger RNA."},
        headers=teacher.headers,
    )
    assert edited.status_code == 200
    await drain_jobs()
    third = await live.post(
        f"/api/v1/tutor/conversations/{await conversation(live, course['id'], teacher)}/messages",
        json=question,
        headers=teacher.headers,
    )
    assert third.json()["status"] == "complete"


async def test_catalog_questions_get_catalog_answers(
    live: httpx.AsyncClient, runtime: Runtime, cell_course: tuple[dict[str, Any], Person]
) -> None:
    course, teacher = cell_course
    chat = await conversation(live, course["id"], teacher)
    response = await live.post(
        f"/api/v1/tutor/conversations/{chat}/messages",
        json={"content": "Which course should I take next to learn about cells?"},
        headers=teacher.headers,
    )
    body = response.json()
    assert "catalog" in body["content"] and "/api/v1/courses/" in body["content"]


async def test_limits_bad_input_and_switched_off_tutor(
    live: httpx.AsyncClient, runtime: Runtime, cell_course: tuple[dict[str, Any], Person]
) -> None:
    course, teacher = cell_course
    learner = await person(live, runtime)
    await enroll(live, course["id"], learner)
    chat = await conversation(live, course["id"], learner)
    url = f"/api/v1/tutor/conversations/{chat}/messages"
    for content in ("", "   ", "x" * 4001):
        refused = await live.post(url, json={"content": content}, headers=learner.headers)
        assert refused.status_code == 422, content[:10]
    stranger = await person(live, runtime)
    assert (
        await live.post(url, json={"content": "hi"}, headers=stranger.headers)
    ).status_code == 404
    assert (
        await live.get(f"/api/v1/tutor/conversations/{chat}", headers=stranger.headers)
    ).status_code == 404
    not_enrolled = await live.post(
        "/api/v1/tutor/conversations", json={"course_id": course["id"]}, headers=stranger.headers
    )
    assert not_enrolled.status_code == 403

    settings_url = f"/api/v1/tutor/courses/{course['id']}/settings"
    assert (await live.get(settings_url, headers=learner.headers)).status_code == 403
    changed = await live.patch(
        settings_url, json={"hourly_message_limit": 2}, headers=teacher.headers
    )
    assert changed.status_code == 200 and changed.json()["hourly_message_limit"] == 2
    assert (
        await live.post(url, json={"content": "What is a cell?"}, headers=learner.headers)
    ).status_code == 201
    assert (
        await live.post(url, json={"content": "What is DNA?"}, headers=learner.headers)
    ).status_code == 201
    limited = await live.post(url, json={"content": "What is RNA?"}, headers=learner.headers)
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) > 0
    assert limited.headers["x-ratelimit-remaining"] == "0"
    # Retry-After and X-RateLimit-Reset name the same moment: the first question's slot.
    waited = int(limited.headers["x-ratelimit-reset"]) - time.time()
    assert abs(waited - int(limited.headers["retry-after"])) <= 2
    assert 3500 < waited <= 3601

    off = await live.patch(settings_url, json={"enabled": False}, headers=teacher.headers)
    assert off.json()["enabled"] is False
    refused = await live.post(url, json={"content": "Still there?"}, headers=learner.headers)
    assert refused.status_code == 409 and refused.json()["type"].endswith("tutor-disabled")
    restored = await live.patch(
        settings_url,
        json={"enabled": True, "hourly_message_limit": None},
        headers=teacher.headers,
    )
    assert restored.json()["enabled"] and restored.json()["hourly_message_limit"] is None


async def test_exactly_the_limit_passes_under_concurrency(
    live: httpx.AsyncClient, runtime: Runtime, cell_course: tuple[dict[str, Any], Person]
) -> None:
    course, _ = cell_course
    learner = await person(live, runtime)
    await enroll(live, course["id"], learner)
    chats = [await conversation(live, course["id"], learner) for _ in range(3)]

    async def ask(index: int) -> int:
        response = await live.post(
            f"/api/v1/tutor/conversations/{chats[index % 3]}/messages",
            json={"content": f"What is a membrane? ({index})"},
            headers=learner.headers,
        )
        return response.status_code

    statuses = await asyncio.gather(*(ask(index) for index in range(30)))
    assert statuses.count(201) == 20 and statuses.count(429) == 10


async def test_conversations_rename_list_delete_and_usage(
    live: httpx.AsyncClient, runtime: Runtime, cell_course: tuple[dict[str, Any], Person]
) -> None:
    course, teacher = cell_course
    learner = await person(live, runtime)
    await enroll(live, course["id"], learner)
    chat = await conversation(live, course["id"], learner)
    await live.post(
        f"/api/v1/tutor/conversations/{chat}/messages",
        json={"content": "Why are cells small?"},
        headers=learner.headers,
    )
    renamed = await live.patch(
        f"/api/v1/tutor/conversations/{chat}", json={"title": "Cell size"}, headers=learner.headers
    )
    assert renamed.json()["title"] == "Cell size"
    listed = (await live.get("/api/v1/tutor/conversations", headers=learner.headers)).json()
    assert [item["id"] for item in listed["items"]] == [chat]

    usage = await live.get(
        "/api/v1/tutor/usage", params={"course_id": course["id"]}, headers=teacher.headers
    )
    assert usage.status_code == 200
    rows = [row for row in usage.json()["items"] if row["user_id"] == str(learner.id)]
    assert rows and rows[0]["messages"] == 1
    assert (await live.get("/api/v1/tutor/usage", headers=learner.headers)).status_code == 403
    other = await person(live, runtime, Role.instructor)
    assert (
        await live.get(
            "/api/v1/tutor/usage", params={"course_id": course["id"]}, headers=other.headers
        )
    ).status_code == 403
    mine = (await live.get("/api/v1/tutor/usage", headers=other.headers)).json()
    assert mine["items"] == []

    assert (
        await live.delete(f"/api/v1/tutor/conversations/{chat}", headers=learner.headers)
    ).status_code == 204
    async with runtime.database.sessionmaker() as session:
        left = await session.execute(
            select(Message).where(Message.conversation_id == uuid.UUID(chat))
        )
        assert left.first() is None


async def test_who_may_do_what_with_the_tutor(live: httpx.AsyncClient, runtime: Runtime) -> None:
    teacher = await person(live, runtime, Role.instructor)
    course, _ = await course_with_lesson(
        live, teacher, content="# Cells\n\nEvery living thing is made of cells."
    )
    learner = await person(live, runtime)
    await enroll(live, course["id"], learner)
    callers: dict[str, Person | None] = {
        "anonymous": None,
        "enrolled": learner,
        "other learner": await person(live, runtime),
        "instructor": teacher,
        "other instructor": await person(live, runtime, Role.instructor),
        "admin": await person(live, runtime, Role.admin),
    }
    chat = await conversation(live, course["id"], learner)
    one = f"/api/v1/tutor/conversations/{chat}"
    settings_url = f"/api/v1/tutor/courses/{course['id']}/settings"
    members = {"enrolled", "instructor", "admin"}
    editors = {"instructor", "admin"}
    for name, who in callers.items():
        headers = who.headers if who else {}

        def expect(allowed: set[str], ok: int, denied: int, name: str = name) -> int:
            return 401 if name == "anonymous" else ok if name in allowed else denied

        started = await live.post(
            "/api/v1/tutor/conversations", json={"course_id": course["id"]}, headers=headers
        )
        got = {
            "start": started.status_code,
            "list": (await live.get("/api/v1/tutor/conversations", headers=headers)).status_code,
            "get": (await live.get(one, headers=headers)).status_code,
            "rename": (await live.patch(one, json={"title": "Mine"}, headers=headers)).status_code,
            "ask": (
                await live.post(f"{one}/messages", json={"content": "Cells?"}, headers=headers)
            ).status_code,
            "settings": (await live.get(settings_url, headers=headers)).status_code,
            "change settings": (
                await live.patch(settings_url, json={"mode": "direct"}, headers=headers)
            ).status_code,
            "usage": (
                await live.get(
                    "/api/v1/tutor/usage", params={"course_id": course["id"]}, headers=headers
                )
            ).status_code,
        }
        assert got == {
            "start": expect(members, 201, 403),
            "list": expect(set(callers), 200, 200),
            "get": expect({"enrolled"}, 200, 404),
            "rename": expect({"enrolled"}, 200, 404),
            "ask": expect({"enrolled"}, 201, 404),
            "settings": expect(editors, 200, 403),
            "change settings": expect(editors, 200, 403),
            "usage": expect(editors, 200, 403),
        }, name
        if name != "enrolled":
            assert (await live.delete(one, headers=headers)).status_code == expect(set(), 204, 404)
    assert (await live.delete(one, headers=learner.headers)).status_code == 204


async def test_a_client_leaving_mid_stream_still_gets_a_stored_partial_answer(
    live: httpx.AsyncClient, runtime: Runtime, cell_course: tuple[dict[str, Any], Person]
) -> None:
    """What Starlette does when the client disconnects: it stops iterating the stream
    and closes it. The answer so far is stored, marked interrupted."""
    from lyceum.kit.ai.embedding import get_embedder
    from lyceum.tutor.service import DeltaEvent

    course, teacher = cell_course
    chat = await conversation(live, course["id"], teacher)
    async with runtime.database.sessionmaker() as session:
        turns, answers, user, course_row, chat_row = await turn_services(
            session, runtime, get_embedder, teacher, chat
        )
        turn, _ = await turns.prepare(user, course_row, chat_row, "Explain the cell membrane.")
        await session.commit()
        stream = answers.answer(turn)
        first = await anext(stream)
        assert isinstance(first, DeltaEvent)
        await stream.aclose()

    stored = (await live.get(f"/api/v1/tutor/conversations/{chat}", headers=teacher.headers)).json()
    answer = stored["messages"][-1]
    assert answer["role"] == "assistant" and answer["status"] == "interrupted"
    assert answer["content"] == first.text


async def test_a_conversation_deleted_while_its_question_is_prepared_is_a_404(
    live: httpx.AsyncClient, runtime: Runtime, cell_course: tuple[dict[str, Any], Person]
) -> None:
    """Deleted in another tab between the ask's access check and the question's store:
    the question's foreign key refuses it, and the learner is told the conversation is
    gone (404), not a 500."""
    from lyceum.kit.ai.embedding import get_embedder
    from lyceum.kit.errors import NotFound

    course, teacher = cell_course
    chat = await conversation(live, course["id"], teacher)
    async with runtime.database.sessionmaker() as session:
        turns, _, user, course_row, chat_row = await turn_services(
            session, runtime, get_embedder, teacher, chat
        )
        await session.commit()  # the ask's own reads are done: the other tab deletes
        gone = await live.delete(f"/api/v1/tutor/conversations/{chat}", headers=teacher.headers)
        assert gone.status_code == 204, gone.text
        with pytest.raises(NotFound):
            await turns.prepare(user, course_row, chat_row, "Explain the cell membrane.")
        await session.rollback()


async def test_offline_answers_use_no_provider_tokens_and_cost_nothing(
    live: httpx.AsyncClient, runtime: Runtime, cell_course: tuple[dict[str, Any], Person]
) -> None:
    course, teacher = cell_course
    original = runtime.settings
    runtime.settings = original.model_copy(
        update={"ai_input_cost_per_million": 3.0, "ai_output_cost_per_million": 15.0}
    )
    try:
        learner = await person(live, runtime)
        await enroll(live, course["id"], learner)
        chat = await conversation(live, course["id"], learner)
        answer = (
            await live.post(
                f"/api/v1/tutor/conversations/{chat}/messages",
                json={"content": "What does the nucleus contain?"},
                headers=learner.headers,
            )
        ).json()
        assert answer["provider"] == "offline" and answer["content"]
        assert answer["usage"]["tokens_in"] == 0 and answer["usage"]["tokens_out"] == 0
        usage = await live.get(
            "/api/v1/tutor/usage", params={"course_id": course["id"]}, headers=teacher.headers
        )
        (row,) = [row for row in usage.json()["items"] if row["user_id"] == str(learner.id)]
        assert row["messages"] == 1
        assert row["tokens_in"] == row["tokens_out"] == 0 and row["estimated_cost_usd"] == 0
    finally:
        runtime.settings = original


async def test_older_turns_are_summarised_into_the_conversation_as_it_grows(
    live: httpx.AsyncClient, runtime: Runtime, cell_course: tuple[dict[str, Any], Person]
) -> None:
    """With a history budget smaller than one answer, each question summarises the
    turns that no longer fit into the conversation's summary, written with the
    question (the statement's shape with the summary's columns)."""
    course, _ = cell_course
    original = runtime.settings
    runtime.settings = original.model_copy(update={"tutor_history_tokens": 100})
    try:
        learner = await person(live, runtime)
        await enroll(live, course["id"], learner)
        chat = await conversation(live, course["id"], learner)
        questions = [
            "What does the mitochondrion do for the cell?",
            "What does the nucleus contain?",
            "What is the cell membrane made of?",
        ]
        for question in questions:
            await ask_in(live, chat, learner, question)
        async with runtime.database.sessionmaker() as session:
            stored = await session.get(Conversation, uuid.UUID(chat))
        assert stored is not None
        assert stored.title == questions[0]
        # Before the third question the first two exchanges no longer fit: four messages.
        assert stored.summarised_messages == 4
        assert stored.summary.startswith(f"Learner asked: {questions[0]}")
        assert f"Learner asked: {questions[1]}" in stored.summary
        assert "Tutor said: " in stored.summary
    finally:
        runtime.settings = original


async def test_an_unanswered_question_is_recorded_with_the_vector_retrieval_used(
    live: httpx.AsyncClient, runtime: Runtime, cell_course: tuple[dict[str, Any], Person]
) -> None:
    """The tutor report's record of a question the material did not answer carries the
    embedding the tutor computed for its retrieval, written with the question: no job
    embeds it again. An answered question is recorded without one (never grouped)."""
    course, _ = cell_course
    learner = await person(live, runtime)
    await enroll(live, course["id"], learner)
    chat = await conversation(live, course["id"], learner)
    asked = {
        "When is the final exam of this course?": False,
        "What does the mitochondrion do for the cell?": True,
    }
    for question in asked:
        await ask_in(live, chat, learner, question)
    async with runtime.database.sessionmaker() as session:
        rows = (
            await session.execute(select(TutorQuestion).where(TutorQuestion.user_id == learner.id))
        ).scalars()
        recorded = {row.question: row for row in rows}
        # This learner's questions only: other tests' jobs may share the database.
        queued = await session.scalar(
            select(func.count())
            .select_from(text("procrastinate_jobs"))
            .where(
                text("task_name = 'lyceum.analytics.embed_tutor_question'"),
                text("args->>'message_id' = ANY(:ids)").bindparams(
                    ids=[str(row.message_id) for row in recorded.values()]
                ),
            )
        )
    assert {question: row.answered for question, row in recorded.items()} == asked
    unanswered = recorded["When is the final exam of this course?"]
    assert unanswered.embedding is not None
    expected = get_embedder().encode_sync(["when is the final exam of this course"])[0]
    assert float(np.dot(np.asarray(unanswered.embedding), expected)) > 0.999
    assert recorded["What does the mitochondrion do for the cell?"].embedding is None
    assert queued == 0


async def test_the_latency_clock_starts_before_waiting_for_the_embedding_model(
    live: httpx.AsyncClient, runtime: Runtime, cell_course: tuple[dict[str, Any], Person]
) -> None:
    """Right after a start the first question waits for the model to load; the answer's
    latency_ms must count that wait: the clock starts before the model is asked for."""
    import time

    from lyceum.kit.ai.embedding import get_embedder
    from lyceum.tutor.service import DoneEvent

    asked_at: list[float] = []

    def model() -> Embedder:
        asked_at.append(time.perf_counter())
        return get_embedder()

    course, teacher = cell_course
    chat = await conversation(live, course["id"], teacher)
    async with runtime.database.sessionmaker() as session:
        turns, answers, user, course_row, chat_row = await turn_services(
            session, runtime, model, teacher, chat
        )
        turn, _ = await turns.prepare(user, course_row, chat_row, "What is a lysosome?")
        await session.commit()
        events = [event async for event in answers.answer(turn)]
    assert asked_at and turn.started <= asked_at[0]
    done = events[-1]
    assert isinstance(done, DoneEvent)
    assert done.message.usage.latency_ms is not None


async def test_while_the_material_is_being_indexed_the_tutor_says_so(
    live: httpx.AsyncClient, runtime: Runtime
) -> None:
    teacher = await person(live, runtime, Role.instructor)
    course, _ = await course_with_lesson(
        live,
        teacher,
        lesson_title="Cells",
        content="# Cells\n\nThe nucleus holds the cell's DNA, wrapped around histone proteins.",
    )
    learner = await person(live, runtime)
    await enroll(live, course["id"], learner)
    question = {"content": "What does the nucleus hold?"}
    early = await live.post(
        f"/api/v1/tutor/conversations/{await conversation(live, course['id'], learner)}/messages",
        json=question,
        headers=learner.headers,
    )
    text = early.json()["content"]
    assert "still being indexed (1 lesson to go)" in text
    assert "could not find" not in text and early.json()["citations"] == []

    await drain_jobs()
    # Not the answer cached while indexing: the material has changed since.
    later = await live.post(
        f"/api/v1/tutor/conversations/{await conversation(live, course['id'], learner)}/messages",
        json=question,
        headers=learner.headers,
    )
    assert later.json()["status"] == "complete"
    assert "Here is what the course material says" in later.json()["content"]
    assert "histone" in later.json()["content"]
