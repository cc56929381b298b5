"""The offline tutor says when the course material does not answer a question, instead of
quoting whatever passage ranked first: the issue's examples end to end, and the
relevance decision on a representative subset of the labelled questions of
bench/relevance_questions.toml (every third one) in an English and a Vietnamese demo
course. bench/retrieval_relevance.py reports the whole set."""

from __future__ import annotations

import tomllib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from lyceum.config import Settings
from lyceum.content.retrieval import retrieve
from lyceum.kit.ai.embedding import load_embedder
from lyceum.kit.runtime import Runtime
from lyceum.models.identity import Role
from lyceum.tutor.service import normalise_question
from tests.conftest import client_for, make_app
from tests.content.helpers import Person, enroll, person
from tests.support.clock import FrozenClock
from tests.support.servers import REPO_ROOT
from tests.tutor.test_tutor_offline import conversation, demo_course

LABELLED = tomllib.loads((REPO_ROOT / "bench" / "relevance_questions.toml").read_text("utf-8"))


def subset(slug: str) -> list[tuple[str, bool]]:
    """Every third on-topic and every third off-topic question of a course."""
    course = next(item for item in LABELLED["course"] if item["slug"] == slug)
    everywhere = LABELLED["off_topic_everywhere"]
    off_topic = course["off_topic"] + everywhere["en"] + everywhere["vi"]
    return [(question, True) for question in course["on_topic"][::3]] + [
        (question, False) for question in off_topic[::3]
    ]


@pytest.fixture(scope="module")
async def courses(settings: Settings, runtime: Runtime) -> dict[str, dict[str, Any]]:
    """Two demo courses, authored through the API and indexed by the job worker."""
    app = make_app(settings, runtime, None)
    async with client_for(app) as http:
        teacher = await person(http, runtime, Role.instructor)
        return {
            slug: await demo_course(http, teacher, slug)
            for slug in ("cell-biology", "dia-ly-viet-nam")
        }


@pytest.fixture
async def live(settings: Settings, runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    assert settings.ai_offline
    await runtime.rate_limiter.reset()
    app = make_app(settings, runtime, None)
    app.state.clock = FrozenClock()
    async with client_for(app) as http:
        yield http


@pytest.mark.parametrize(
    ("slug", "on_topic_floor", "off_topic_floor"),
    # bench/retrieval_relevance.py over the whole set: English material 1.00 on-topic,
    # 0.98 off-topic; Vietnamese 0.97 and 0.86 (off-topic questions in Vietnamese there
    # share many words with the material).
    [("cell-biology", 1.0, 0.95), ("dia-ly-viet-nam", 0.85, 0.75)],
)
async def test_a_subset_of_the_labelled_questions_is_judged_correctly_both_ways(
    runtime: Runtime,
    courses: dict[str, dict[str, Any]],
    slug: str,
    on_topic_floor: float,
    off_topic_floor: float,
) -> None:
    embedder = await load_embedder()
    judged: dict[bool, list[bool]] = {True: [], False: []}
    wrong = []
    for question, on_topic in subset(slug):
        async with runtime.database.sessionmaker() as session, session.begin():
            found = await retrieve(
                session, embedder, uuid.UUID(courses[slug]["id"]), normalise_question(question)
            )
        assert found is not None and found.hits, question
        judged[on_topic].append(found.relevant == on_topic)
        if found.relevant != on_topic:
            wrong.append(question)
    assert len(judged[True]) >= 7 and len(judged[False]) >= 7
    assert sum(judged[True]) / len(judged[True]) >= on_topic_floor, wrong
    assert sum(judged[False]) / len(judged[False]) >= off_topic_floor, wrong


async def ask(http: httpx.AsyncClient, course_id: str, who: Person, text: str) -> dict[str, Any]:
    chat = await conversation(http, course_id, who)
    response = await http.post(
        f"/api/v1/tutor/conversations/{chat}/messages", json={"content": text}, headers=who.headers
    )
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


@pytest.mark.parametrize(
    "question",
    [
        "Who won the 2018 FIFA World Cup?",
        "What is the capital of Australia?",
        "Đội nào vô địch World Cup 2018?",
        "Thủ đô của Úc là gì?",
    ],
)
async def test_an_off_topic_question_gets_no_passage_presented_as_its_answer(
    live: httpx.AsyncClient,
    runtime: Runtime,
    courses: dict[str, dict[str, Any]],
    question: str,
) -> None:
    course = courses["cell-biology"]
    learner = await person(live, runtime)
    await enroll(live, course["id"], learner)
    answer = await ask(live, course["id"], learner, question)
    text = answer["content"]
    assert answer["status"] == "complete" and answer["provider"] == "offline"
    assert "could not find an answer to this in the course material" in text
    assert "Here is what the course material says" not in text
    assert answer["citations"] == [] and "[1]" not in text
    # Where the course comes closest: lesson titles, no quoted passage.
    closest = text.split("The closest parts of the course are:")[1]
    assert closest.strip().startswith("- lesson “") and ">" not in closest


async def test_an_on_topic_question_is_still_answered_from_the_material(
    live: httpx.AsyncClient, runtime: Runtime, courses: dict[str, dict[str, Any]]
) -> None:
    course = courses["dia-ly-viet-nam"]
    learner = await person(live, runtime)
    await enroll(live, course["id"], learner)
    answer = await ask(live, course["id"], learner, "Việt Nam giáp với những nước nào?")
    assert "Here is what the course material says" in answer["content"]
    assert answer["citations"] and "[1]" in answer["content"]
