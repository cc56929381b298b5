"""Essay scoring counts its model tokens, cost and provider failures under
`feature="scoring"`: the fake provider over HTTP, the real scoring job."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.assessments.tasks import score
from lyceum.config import Settings
from lyceum.kit.ai.models import model_name
from tests.assessments.helpers import Classroom, in_test_transaction
from tests.assessments.test_ai_scoring import (  # noqa: F401 (fixtures)
    answer,
    fake,
    judgement,
    provider_settings,
    room,
    submitted,
)
from tests.support.fake_llm import FakeLLM
from tests.support.metrics import sample


async def test_scoring_counts_tokens_cost_and_provider_errors(
    client: httpx.AsyncClient,
    room: Classroom,  # noqa: F811
    session: AsyncSession,
    fake: FakeLLM,  # noqa: F811
    provider_settings: Settings,  # noqa: F811
) -> None:
    labels = {
        "provider": provider_settings.ai_provider.value,
        "model": model_name(provider_settings),
        "feature": "scoring",
    }
    tokens_in = sample("lyceum_ai_tokens_total", **labels, direction="input")
    tokens_out = sample("lyceum_ai_tokens_total", **labels, direction="output")
    cost = sample("lyceum_ai_cost_usd_total", **labels)
    errors = {"provider": labels["provider"], "feature": "scoring", "kind": "server"}
    failed = sample("lyceum_ai_provider_errors_total", **errors)

    _, essay = await submitted(client, room)
    answer(fake, provider_settings, judgement())
    outcome = await score(
        uuid.UUID(essay["id"]),
        settings=provider_settings,
        last_try=False,
        sessions=in_test_transaction(session),
    )
    assert outcome == "scored"
    assert len(fake.requests) == 1
    assert sample("lyceum_ai_tokens_total", **labels, direction="input") > tokens_in
    assert sample("lyceum_ai_tokens_total", **labels, direction="output") > tokens_out
    assert sample("lyceum_ai_cost_usd_total", **labels) > cost

    _, second = await submitted(client, room)
    fake.fail(500, times=1)  # provider_settings allow no SDK retry
    with pytest.raises(Exception):  # noqa: B017, PT011 (the SDK's error type; the job retries)
        await score(
            uuid.UUID(second["id"]),
            settings=provider_settings,
            last_try=False,
            sessions=in_test_transaction(session),
        )
    assert sample("lyceum_ai_provider_errors_total", **errors) == failed + 1
