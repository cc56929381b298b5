"""Who may read the infrastructure endpoints: `Annotated` dependencies for their
signatures (the health probes are open to all)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from lyceum.config import Settings
from lyceum.kit.errors import NotFound, Unauthorized
from lyceum.kit.security import constant_time_equal


async def metrics_scraper(request: Request) -> None:
    """/metrics shows routes, traffic and pool sizes: not for the public. With
    METRICS_TOKEN set, a scraper sends it as a bearer token; without one, the endpoint
    is open in development and test and absent (404) in production."""
    settings: Settings = request.app.state.settings
    if settings.metrics_token is None:
        if settings.is_production:
            raise NotFound("Metrics are not exposed: set METRICS_TOKEN to scrape them.")
        return
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    expected = settings.metrics_token.get_secret_value()
    if scheme.lower() != "bearer" or not constant_time_equal(credentials.strip(), expected):
        raise Unauthorized("Send the METRICS_TOKEN as a bearer token.", slug="invalid-token")


MetricsScraper = Annotated[None, Depends(metrics_scraper)]
