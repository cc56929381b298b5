"""The HTTP metrics of `RequestContextMiddleware`: a client cannot add label values (or
entries to the middleware's cache of series) with methods of its own making."""

from __future__ import annotations

import secrets

import httpx

from lyceum.kit import middleware
from lyceum.kit.metrics import REGISTRY


def requests_counted(method: str, route: str, status: str) -> float:
    value = REGISTRY.get_sample_value(
        "lyceum_http_requests_total", {"method": method, "route": route, "status": status}
    )
    return value or 0.0


def method_labels() -> set[str]:
    return {
        sample.labels["method"]
        for family in REGISTRY.collect()
        if family.name == "lyceum_http_requests"
        for sample in family.samples
    }


async def test_a_method_outside_the_standard_ones_is_counted_as_other(
    client: httpx.AsyncClient,
) -> None:
    invented = [f"X{secrets.token_hex(4).upper()}" for _ in range(3)]
    counted_before = requests_counted("OTHER", "unmatched", "404")
    cached_before = len(middleware._SERIES)
    for method in invented:
        response = await client.request(method, f"/nowhere-{secrets.token_hex(4)}")
        assert response.status_code == 404

    assert requests_counted("OTHER", "unmatched", "404") == counted_before + 3
    assert not set(invented) & method_labels()
    # At most the one OTHER series was added, not one per method.
    assert len(middleware._SERIES) <= cached_before + 1


async def test_standard_methods_keep_their_own_label(client: httpx.AsyncClient) -> None:
    before = requests_counted("DELETE", "unmatched", "404")
    response = await client.delete(f"/nowhere-{secrets.token_hex(4)}")
    assert response.status_code == 404
    assert requests_counted("DELETE", "unmatched", "404") == before + 1
