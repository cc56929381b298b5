from __future__ import annotations

from typing import Any

import httpx

from tests.content.helpers import Person

API = "/api/v1/webhooks/endpoints"


async def register_endpoint(
    http: httpx.AsyncClient, admin: Person, url: str, *event_types: str
) -> dict[str, Any]:
    response = await http.post(
        API,
        json={"url": url, "event_types": list(event_types) or ["enrollment.created"]},
        headers=admin.headers,
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def deliveries(http: httpx.AsyncClient, admin: Person, endpoint_id: str) -> list[Any]:
    response = await http.get(f"{API}/{endpoint_id}/deliveries", headers=admin.headers)
    assert response.status_code == 200, response.text
    items: list[Any] = response.json()["items"]
    return items
