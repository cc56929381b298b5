"""Health, readiness, metrics, request ids, security headers, OpenAPI and docs."""

from __future__ import annotations

import httpx
import pytest

from lyceum.config import Environment, Settings
from lyceum.kit.errors import Problem
from lyceum.kit.runtime import Runtime
from tests.conftest import client_for, make_app


async def test_live(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_checks_database_and_migrations(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["migrations"]["ok"] is True
    assert "redis" not in body["checks"]


async def test_ready_is_503_when_redis_is_configured_but_unreachable(
    settings: Settings, runtime: Runtime
) -> None:
    from lyceum.kit.cache import RedisCache

    broken = settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    patched = Runtime(
        settings=broken,
        database_url=runtime.database_url,
        database=runtime.database,
        cache=RedisCache("redis://127.0.0.1:1/0"),
        rate_limiter=runtime.rate_limiter,
    )
    async with client_for(make_app(broken, patched, None)) as http:
        response = await http.get("/health/ready")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    # A problem document like every other error: its `status` is the HTTP status.
    assert body["status"] == 503 and body["type"].endswith("/not-ready")
    assert Problem.model_validate(body).detail.endswith("redis")
    assert body["checks"]["redis"]["ok"] is False
    assert body["checks"]["database"]["ok"] is True
    await patched.cache.close()


async def test_ready_reports_redis_when_configured(
    settings: Settings, runtime: Runtime, redis_url: str
) -> None:
    from lyceum.kit.cache import RedisCache

    with_redis = settings.model_copy(update={"redis_url": redis_url})
    patched = Runtime(
        settings=with_redis,
        database_url=runtime.database_url,
        database=runtime.database,
        cache=RedisCache(redis_url),
        rate_limiter=runtime.rate_limiter,
    )
    async with client_for(make_app(with_redis, patched, None)) as http:
        response = await http.get("/health/ready")
    assert response.status_code == 200
    assert response.json()["checks"]["redis"]["ok"] is True
    await patched.cache.close()


async def test_request_id_is_generated_and_echoed(client: httpx.AsyncClient) -> None:
    generated = await client.get("/health/live")
    assert len(generated.headers["x-request-id"]) == 32
    echoed = await client.get("/health/live", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"
    unsafe = await client.get("/health/live", headers={"X-Request-ID": "bad id\twith spaces"})
    assert unsafe.headers["x-request-id"] != "bad id\twith spaces"


async def test_security_headers(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/live")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "strict-origin-when-cross-origin"
    assert "strict-transport-security" not in response.headers


async def test_hsts_in_production(settings: Settings, runtime: Runtime) -> None:
    production = settings.model_copy(update={"environment": Environment.production})
    async with client_for(make_app(production, runtime, None)) as http:
        response = await http.get("/health/live")
    assert response.headers["strict-transport-security"].startswith("max-age=")


async def test_cors_allows_only_configured_origins(settings: Settings, runtime: Runtime) -> None:
    with_cors = settings.model_copy(update={"cors_origins": ["https://app.example.com"]})
    async with client_for(make_app(with_cors, runtime, None)) as http:
        allowed = await http.options(
            "/health/live",
            headers={
                "Origin": "https://app.example.com",
                "Access-Control-Request-Method": "GET",
            },
        )
        denied = await http.get("/health/live", headers={"Origin": "https://evil.example"})
    assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
    assert "access-control-allow-origin" not in denied.headers


async def test_the_web_apps_pages_answer_no_other_origin(
    settings: Settings, runtime: Runtime
) -> None:
    """The pages ride on a session cookie: a listed origin's scripts must not read them
    (the API, which takes bearer tokens only, still answers it)."""
    with_cors = settings.model_copy(update={"cors_origins": ["https://app.example.com"]})
    origin = {"Origin": "https://app.example.com"}
    async with client_for(make_app(with_cors, runtime, None)) as http:
        api = await http.get("/api/v1/courses", headers=origin)
        for path in ("/", "/catalog", "/login", "/live/token"):
            page = await http.get(path, headers=origin)
            assert "access-control-allow-origin" not in page.headers, path
            assert "access-control-allow-credentials" not in page.headers, path
            preflight = await http.options(
                path, headers={**origin, "Access-Control-Request-Method": "GET"}
            )
            assert "access-control-allow-origin" not in preflight.headers, path
    assert api.headers["access-control-allow-origin"] == "https://app.example.com"


async def test_metrics_by_route_template_with_pool_and_jobs(client: httpx.AsyncClient) -> None:
    await client.get("/health/live")
    await client.get("/api/v1/nothing-here/42")
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'lyceum_http_requests_total{method="GET",route="/health/live",status="200"}' in text
    assert 'route="unmatched",status="404"' in text
    assert "/nothing-here/42" not in text
    assert "lyceum_http_request_duration_seconds_bucket" in text
    assert 'lyceum_db_pool_connections{state="checked_out"}' in text
    assert 'lyceum_jobs{queue="mail",status="todo"}' in text
    assert 'lyceum_job_oldest_waiting_seconds{queue="mail"}' in text


async def test_openapi_31_with_docs(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    assert schema["openapi"].startswith("3.1")
    assert "/health/ready" in schema["paths"]
    assert (await client.get("/docs")).status_code == 200
    assert (await client.get("/redoc")).status_code == 200


@pytest.mark.parametrize("path", ["/health/live", "/health/ready", "/metrics"])
async def test_probes_answer_without_auth(client: httpx.AsyncClient, path: str) -> None:
    assert (await client.get(path)).status_code == 200
