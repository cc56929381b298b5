"""The tutor and graded work: a question from the learner's open quiz attempt (or an
assignment they have not submitted) gets hints, not the answer; with a provider the
system prompt switches to hint mode, offline the answer names where to read without
quoting the passage that holds the answer. Once the attempt is submitted, the same
question is answered normally."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from lyceum.assessments.guard import contains, normalise
from lyceum.kit.runtime import Runtime
from lyceum.models.identity import Role
from tests.assessments.helpers import API, assignment_body
from tests.conftest import client_for, client_on_fake_provider, make_app
from tests.content.helpers import Person, course_with_lesson, drain_jobs, enroll, person
from tests.support.clock import FrozenClock
from tests.support.fake_llm import FakeLLM, fake_llm_server

MATERIAL = (
    "# Energy\n\nMitochondria are the power plants of the cell: they turn glucose and "
    "oxygen into ATP, the molecule that carries energy to every part of the cell.\n\n"
    "# Building proteins\n\nRibosomes read messenger RNA and join amino acids into "
    "proteins, one codon at a time."
)
ANSWER_SENTENCE = "Mitochondria are the power plants of the cell"
GRADED = "Which organelle turns glucose and oxygen into ATP for the cell?"
PARAPHRASE = "what organelle in a cell makes ATP from glucose and oxygen?"  # cosine 0.95
UNRELATED = "How do ribosomes build proteins?"


def test_containment_needs_enough_words() -> None:
    assert normalise("  Which ORGANELLE, turns... ATP?") == "which organelle turns atp"
    graded = normalise(GRADED)
    assert contains(normalise(f"Help me with this: {GRADED} Thanks!"), graded)
    assert contains(normalise("organelle turns glucose and oxygen"), graded)
    assert not contains(normalise("the cell"), graded)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeLLM]:
    with fake_llm_server() as server:
        yield server


async def live_app(runtime: Runtime) -> httpx.AsyncClient:
    await runtime.rate_limiter.reset()
    app = make_app(runtime.settings, runtime, None)
    app.state.clock = FrozenClock()
    return client_for(app)


@pytest.fixture
async def offline(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    assert runtime.settings.ai_offline
    async with await live_app(runtime) as http:
        yield http


@pytest.fixture
async def claude(runtime: Runtime, fake: FakeLLM) -> AsyncIterator[httpx.AsyncClient]:
    async with client_on_fake_provider(runtime, fake, tutor_cache_ttl_seconds=0) as http:
        yield http


async def quiz_in_progress(
    http: httpx.AsyncClient, runtime: Runtime
) -> tuple[dict[str, Any], Person, str, str]:
    """A course about cells with a published quiz, and a learner in the middle of it."""
    teacher = await person(http, runtime, Role.instructor)
    course, _ = await course_with_lesson(
        http, teacher, lesson_title="The powerhouse", content=MATERIAL
    )
    await drain_jobs()  # index the lesson for the tutor's retrieval
    question = await http.post(
        f"{API}/courses/{course['id']}/questions",
        json={
            "kind": "short_answer",
            "prompt": GRADED,
            "match": "case_insensitive",
            "accepted": ["mitochondria", "mitochondrion"],
        },
        headers=teacher.headers,
    )
    assert question.status_code == 201, question.text
    quiz = await http.post(
        f"{API}/courses/{course['id']}/quizzes",
        json={
            "title": "Cells",
            "published": True,
            "sections": [{"question_id": question.json()["id"]}],
        },
        headers=teacher.headers,
    )
    assert quiz.status_code == 201, quiz.text
    learner = await person(http, runtime)
    await enroll(http, course["id"], learner)
    attempt = await http.post(
        f"{API}/quizzes/{quiz.json()['id']}/attempts", headers=learner.headers
    )
    assert attempt.status_code == 201, attempt.text
    return course, learner, attempt.json()["id"], question.json()["id"]


async def ask(http: httpx.AsyncClient, who: Person, course_id: str, text: str) -> dict[str, Any]:
    chat = await http.post(
        f"{API}/tutor/conversations", json={"course_id": course_id}, headers=who.headers
    )
    assert chat.status_code == 201, chat.text
    answer = await http.post(
        f"{API}/tutor/conversations/{chat.json()['id']}/messages",
        json={"content": text},
        headers=who.headers,
    )
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def test_with_a_provider_a_question_from_an_open_attempt_gets_hints(
    claude: httpx.AsyncClient, runtime: Runtime, fake: FakeLLM
) -> None:
    course, learner, attempt_id, question_id = await quiz_in_progress(claude, runtime)
    for text in (GRADED, PARAPHRASE, UNRELATED):
        fake.reply("Think about where cells release energy.")
        await ask(claude, learner, course["id"], text)
    pasted, paraphrased, unrelated = fake.requests
    assert "This question is part of graded work" in pasted.system
    assert "This question is part of graded work" in paraphrased.system
    assert "graded work" not in unrelated.system

    submitted = await claude.post(
        f"{API}/attempts/{attempt_id}/submit",
        json={"answers": [{"question_id": question_id, "text": "mitochondria"}]},
        headers=learner.headers,
    )
    assert submitted.status_code == 200, submitted.text
    fake.reply("Mitochondria [1].")
    await ask(claude, learner, course["id"], GRADED)
    assert "graded work" not in fake.requests[-1].system


async def test_offline_a_graded_question_is_not_answered_from_the_passage(
    offline: httpx.AsyncClient, runtime: Runtime
) -> None:
    course, learner, attempt_id, question_id = await quiz_in_progress(offline, runtime)
    hinted = await ask(offline, learner, course["id"], GRADED)
    assert "graded work" in hinted["content"]
    assert (
        ANSWER_SENTENCE not in hinted["content"]
        and "glucose and oxygen into ATP" not in (hinted["content"])
    )
    assert hinted["citations"] == []  # a citation would carry a quote of the passage
    assert "The powerhouse" in hinted["content"]  # ... but it says where to read

    await offline.post(
        f"{API}/attempts/{attempt_id}/submit",
        json={"answers": [{"question_id": question_id, "text": "mitochondria"}]},
        headers=learner.headers,
    )
    answered = await ask(offline, learner, course["id"], GRADED)
    assert ANSWER_SENTENCE in answered["content"] and answered["citations"]


async def test_an_unsubmitted_assignment_prompt_counts_as_graded_work(
    claude: httpx.AsyncClient, runtime: Runtime, fake: FakeLLM
) -> None:
    teacher = await person(claude, runtime, Role.instructor)
    course, _ = await course_with_lesson(claude, teacher, content=MATERIAL)
    made = await claude.post(
        f"{API}/courses/{course['id']}/assignments",
        json=assignment_body(),
        headers=teacher.headers,
    )
    assert made.status_code == 201, made.text
    learner = await person(claude, runtime)
    await enroll(claude, course["id"], learner)
    fake.reply("What does a leaf need?")
    await ask(
        claude,
        learner,
        course["id"],
        "Can you explain how green plants make their own food from light?",
    )
    assert "This question is part of graded work" in fake.requests[-1].system
