"""What kind of provider failure an exception is, and the tokens and cost counted."""

from __future__ import annotations

import httpx
import pytest
from pydantic_ai.exceptions import ModelHTTPError

from lyceum.config import Settings
from lyceum.kit.ai.usage import TokenUsage, error_kind, record_provider_error, record_usage
from tests.support.metrics import sample


def _wrapped(inner: BaseException) -> RuntimeError:
    try:
        try:
            raise inner
        except BaseException as error:
            raise RuntimeError("the agent failed") from error
    except RuntimeError as outer:
        return outer


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (ModelHTTPError(429, "m"), "rate_limited"),
        (ModelHTTPError(503, "m"), "server"),
        (ModelHTTPError(400, "m"), "other"),
        (TimeoutError(), "timeout"),
        (httpx.ReadTimeout("slow"), "timeout"),
        (_wrapped(ModelHTTPError(500, "m")), "server"),
        (ValueError("no"), "other"),
    ],
)
def test_error_kind(error: BaseException, kind: str) -> None:
    assert error_kind(error) == kind


def test_usage_and_errors_are_counted(settings: Settings) -> None:
    labels = {"provider": "probe", "model": "probe-1", "feature": "scoring"}
    before_in = sample("lyceum_ai_tokens_total", **labels, direction="input")
    before_out = sample("lyceum_ai_tokens_total", **labels, direction="output")
    before_cost = sample("lyceum_ai_cost_usd_total", **labels)
    record_usage(
        settings, provider="probe", model="probe-1", feature="scoring", usage=TokenUsage(1000, 200)
    )
    assert sample("lyceum_ai_tokens_total", **labels, direction="input") == before_in + 1000
    assert sample("lyceum_ai_tokens_total", **labels, direction="output") == before_out + 200
    expected = (
        1000 * settings.ai_input_cost_per_million + 200 * settings.ai_output_cost_per_million
    ) / 1_000_000
    assert sample("lyceum_ai_cost_usd_total", **labels) - before_cost == pytest.approx(expected)

    errors = {"provider": "probe", "feature": "scoring", "kind": "rate_limited"}
    before = sample("lyceum_ai_provider_errors_total", **errors)
    record_provider_error("probe", "scoring", ModelHTTPError(429, "probe-1"))
    assert sample("lyceum_ai_provider_errors_total", **errors) == before + 1
