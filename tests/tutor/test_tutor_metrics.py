"""The tutor's Prometheus metrics move with real answers: the fake provider over HTTP
(answered, tokens, cost, first token, provider errors) and the offline tutor (offline,
then cached)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from lyceum.kit.ai.models import model_name
from lyceum.kit.runtime import Runtime
from lyceum.models.identity import Role
from tests.conftest import client_for, make_app
from tests.content.helpers import course_with_lesson, drain_jobs, person
from tests.support.clock import FrozenClock
from tests.support.fake_llm import FakeLLM
from tests.support.metrics import sample
from tests.tutor.test_tutor_offline import parse_sse
from tests.tutor.test_tutor_providers import (  # noqa: F401 (fixtures)
    MITOCHONDRIA,
    ask,
    course_about,
    fake,
    live,
)


def _first_token_count(provider: str) -> float:
    return sample("lyceum_tutor_first_token_seconds_count", provider=provider)


async def test_a_provider_answer_counts_its_tokens_cost_and_first_token(
    live: httpx.AsyncClient,  # noqa: F811
    runtime: Runtime,
    fake: FakeLLM,  # noqa: F811
) -> None:
    settings = runtime.settings
    provider, model = settings.ai_provider.value, model_name(settings)
    tokens = {
        direction: sample(
            "lyceum_ai_tokens_total",
            provider=provider,
            model=model,
            feature="tutor",
            direction=direction,
        )
        for direction in ("input", "output")
    }
    answered = sample(
        "lyceum_tutor_answers_total", provider=provider, model=model, outcome="answered"
    )
    cost = sample("lyceum_ai_cost_usd_total", provider=provider, model=model, feature="tutor")
    first = _first_token_count(provider)

    course, learner, _ = await course_about(live, runtime, MITOCHONDRIA)
    fake.reply("Mitochondria turn glucose into ATP [1].")
    events = await ask(live, learner, course["id"], "What do mitochondria do?")
    usage = events[-1][1]["usage"]

    assert (
        sample("lyceum_tutor_answers_total", provider=provider, model=model, outcome="answered")
        == answered + 1
    )
    for direction, key in (("input", "tokens_in"), ("output", "tokens_out")):
        moved = (
            sample(
                "lyceum_ai_tokens_total",
                provider=provider,
                model=model,
                feature="tutor",
                direction=direction,
            )
            - tokens[direction]
        )
        assert moved == usage[key] > 0
    expected = (
        usage["tokens_in"] * settings.ai_input_cost_per_million
        + usage["tokens_out"] * settings.ai_output_cost_per_million
    ) / 1_000_000
    moved_cost = (
        sample("lyceum_ai_cost_usd_total", provider=provider, model=model, feature="tutor") - cost
    )
    assert moved_cost == pytest.approx(expected, abs=1e-6) and moved_cost > 0
    assert _first_token_count(provider) == first + 1


async def test_a_failing_provider_counts_an_error_answer_and_a_server_error(
    live: httpx.AsyncClient,  # noqa: F811
    runtime: Runtime,
    fake: FakeLLM,  # noqa: F811
) -> None:
    provider, model = runtime.settings.ai_provider.value, model_name(runtime.settings)
    errors = sample(
        "lyceum_ai_provider_errors_total", provider=provider, feature="tutor", kind="server"
    )
    failed = sample("lyceum_tutor_answers_total", provider=provider, model=model, outcome="error")
    course, learner, _ = await course_about(live, runtime, MITOCHONDRIA)
    fake.fail(500, times=3)  # the first try and both retries
    events = await ask(live, learner, course["id"], "What do mitochondria do?")
    assert events[-1][1]["status"] == "failed"
    assert (
        sample("lyceum_ai_provider_errors_total", provider=provider, feature="tutor", kind="server")
        == errors + 1
    )
    assert (
        sample("lyceum_tutor_answers_total", provider=provider, model=model, outcome="error")
        == failed + 1
    )


async def test_the_offline_tutor_counts_offline_then_cached_answers(
    settings: Any, runtime: Runtime
) -> None:
    assert settings.ai_offline
    await runtime.rate_limiter.reset()
    app = make_app(settings, runtime, None)
    app.state.clock = FrozenClock()
    labels = {"provider": "offline", "model": "course-material"}
    offline = sample("lyceum_tutor_answers_total", **labels, outcome="offline")
    cached = sample("lyceum_tutor_answers_total", **labels, outcome="cached")
    first = _first_token_count("offline")
    async with client_for(app) as http:
        teacher = await person(http, runtime, Role.instructor)
        course, _ = await course_with_lesson(http, teacher, content=MITOCHONDRIA)
        await drain_jobs()
        for _ in range(2):
            chat = await http.post(
                "/api/v1/tutor/conversations",
                json={"course_id": course["id"]},
                headers=teacher.headers,
            )
            response = await http.post(
                f"/api/v1/tutor/conversations/{chat.json()['id']}/messages",
                json={"content": "What do mitochondria make?"},
                headers={**teacher.headers, "Accept": "text/event-stream"},
            )
            assert response.status_code == 201, response.text
            assert parse_sse(response.text)[-1][0] == "done"
    assert sample("lyceum_tutor_answers_total", **labels, outcome="offline") == offline + 1
    assert sample("lyceum_tutor_answers_total", **labels, outcome="cached") == cached + 1
    # The cached answer says nothing of a provider's latency: one observation, not two.
    assert _first_token_count("offline") == first + 1
