"""/metrics is not public: with METRICS_TOKEN set a scraper must send it as a bearer
token; without one it is open in development and test, and absent in production."""

from __future__ import annotations

import secrets

import httpx
from pydantic import SecretStr

from lyceum.config import Environment, Settings
from lyceum.kit.runtime import Runtime
from tests.conftest import client_for, make_app


async def scrape(settings: Settings, runtime: Runtime, **headers: str) -> httpx.Response:
    async with client_for(make_app(settings, runtime, None)) as http:
        return await http.get("/metrics", headers=headers)


async def test_a_configured_token_is_required(settings: Settings, runtime: Runtime) -> None:
    token = secrets.token_urlsafe(32)
    guarded = settings.model_copy(update={"metrics_token": SecretStr(token)})
    missing = await scrape(guarded, runtime)
    assert missing.status_code == 401
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.headers["www-authenticate"] == "Bearer"
    assert "lyceum_http_requests_total" not in missing.text
    wrong = await scrape(guarded, runtime, Authorization=f"Bearer {token[:-1]}x")
    assert wrong.status_code == 401
    basic = await scrape(guarded, runtime, Authorization=f"Basic {token}")
    assert basic.status_code == 401
    right = await scrape(guarded, runtime, Authorization=f"Bearer {token}")
    assert right.status_code == 200
    assert "lyceum_http_requests_total" in right.text


async def test_production_without_a_token_does_not_expose_metrics(
    settings: Settings, runtime: Runtime
) -> None:
    production = settings.model_copy(update={"environment": Environment.production})
    response = await scrape(production, runtime)
    assert response.status_code == 404
    assert "METRICS_TOKEN" in response.json()["detail"]
    assert "lyceum_" not in response.text
    # Liveness stays public: orchestrators probe it without credentials.
    async with client_for(make_app(production, runtime, None)) as http:
        assert (await http.get("/health/live")).status_code == 200


async def test_development_without_a_token_is_open(settings: Settings, runtime: Runtime) -> None:
    assert settings.metrics_token is None
    assert (await scrape(settings, runtime)).status_code == 200
