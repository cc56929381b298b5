"""Webhook delivery metrics follow real deliveries to a real receiver; the disabled
endpoints gauge is read from the database when /metrics is scraped."""

from __future__ import annotations

import httpx

from lyceum.config import Settings
from lyceum.kit.runtime import Runtime
from lyceum.models.identity import Role
from tests.conftest import client_for, make_app
from tests.content.helpers import person
from tests.support.jobs import run_jobs
from tests.support.metrics import sample
from tests.webhooks.helpers import API, register_endpoint
from tests.webhooks.receiver import Receiver


async def _scraped_disabled(settings: Settings, runtime: Runtime) -> float:
    # A fresh app: the scrape-time gauges of one app are re-read at most every 5 s.
    async with client_for(make_app(settings, runtime, None)) as http:
        scraped = await http.get("/metrics")
    assert scraped.status_code == 200
    [line] = [
        line
        for line in scraped.text.splitlines()
        if line.startswith("lyceum_webhook_endpoints_disabled ")
    ]
    assert "lyceum_jobs{" in scraped.text and "lyceum_job_oldest_waiting_seconds{" in scraped.text
    return float(line.split()[1])


async def test_deliveries_are_counted_and_timed_and_disabled_endpoints_scraped(
    live: httpx.AsyncClient,
    settings: Settings,
    runtime: Runtime,
    allowed: Runtime,
    hook: Receiver,
) -> None:
    delivered = sample("lyceum_webhook_deliveries_total", outcome="delivered")
    failed = sample("lyceum_webhook_deliveries_total", outcome="failed")
    timed = sample("lyceum_webhook_delivery_seconds_count")
    disabled = await _scraped_disabled(settings, runtime)

    admin = await person(live, runtime, Role.admin)
    endpoint = await register_endpoint(live, admin, hook.url)
    await live.post(f"{API}/{endpoint['id']}/test", headers=admin.headers)
    await run_jobs(["webhooks"], runtime=allowed)
    assert len(hook.requests) == 1
    assert sample("lyceum_webhook_deliveries_total", outcome="delivered") == delivered + 1
    assert sample("lyceum_webhook_delivery_seconds_count") == timed + 1

    hook.status = 410  # Gone: the endpoint is disabled at once
    await live.post(f"{API}/{endpoint['id']}/test", headers=admin.headers)
    await run_jobs(["webhooks"], runtime=allowed)
    assert sample("lyceum_webhook_deliveries_total", outcome="failed") == failed + 1
    assert sample("lyceum_webhook_delivery_seconds_count") == timed + 2
    assert await _scraped_disabled(settings, runtime) == disabled + 1

    # Switched back on by an admin: no longer counted.
    await live.patch(f"{API}/{endpoint['id']}", json={"is_active": True}, headers=admin.headers)
    assert await _scraped_disabled(settings, runtime) == disabled
