"""Registering endpoints: URL and event-type checks (problem+json), SSRF refusals with
private networks not allowed, and who may manage webhooks (admins only)."""

from __future__ import annotations

from typing import get_args

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncConnection

from lyceum.events.catalogue import EVENTS
from lyceum.models.identity import Role
from lyceum.webhooks.schemas import EventType
from tests.identity.helpers import account
from tests.webhooks.helpers import API


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://127.0.0.1/hook", "loopback"),
        ("https://10.1.2.3/hook", "private"),
        ("https://192.168.0.10:8443/hook", "private"),
        ("https://169.254.169.254/latest/meta-data", "metadata"),
        ("https://[fd00:ec2::254]/hook", "metadata"),
        ("https://[::1]/hook", "loopback"),
        ("https://localhost:9000/hook", "loopback"),
    ],
)
async def test_urls_on_refused_addresses_are_422(
    client: httpx.AsyncClient, connection: AsyncConnection, url: str, why: str
) -> None:
    admin = await account(client, connection, role=Role.admin)
    response = await client.post(
        API, json={"url": url, "event_types": ["enrollment.created"]}, headers=admin.headers
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["errors"][0]["field"] == "body.url"
    if "[" not in url:  # IPv6 literals are refused by the URL's shape already
        assert why in problem["detail"]


async def test_plain_http_and_unknown_event_types_are_422(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await account(client, connection, role=Role.admin)
    insecure = await client.post(
        API,
        json={"url": "http://hooks.example.com/x", "event_types": ["enrollment.created"]},
        headers=admin.headers,
    )
    assert insecure.status_code == 422 and "https" in insecure.json()["detail"]
    unknown = await client.post(
        API,
        json={"url": "https://hooks.example.com/x", "event_types": ["course.enrolled"]},
        headers=admin.headers,
    )
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"].startswith("body.event_types")
    empty = await client.post(
        API, json={"url": "https://hooks.example.com/x", "event_types": []}, headers=admin.headers
    )
    assert empty.status_code == 422


async def test_a_public_https_url_is_registered_and_listed(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await account(client, connection, role=Role.admin)
    created = await client.post(
        API,
        json={
            "url": "https://hooks.example.com/lyceum",
            "event_types": ["certificate.issued", "certificate.issued", "course.completed"],
            "description": "School CRM",
        },
        headers=admin.headers,
    )
    assert created.status_code == 201, created.text
    assert created.headers["location"] == f"{API}/{created.json()['id']}"
    assert created.json()["event_types"] == ["certificate.issued", "course.completed"]
    listed = (await client.get(API, headers=admin.headers)).json()
    assert created.json()["id"] in [item["id"] for item in listed["items"]]
    assert all("secret" not in item for item in listed["items"])
    changed = await client.patch(
        created.headers["location"], json={"description": "CRM"}, headers=admin.headers
    )
    assert changed.json()["description"] == "CRM"
    gone = await client.delete(created.headers["location"], headers=admin.headers)
    assert gone.status_code == 204
    assert (await client.get(created.headers["location"], headers=admin.headers)).status_code == 404


@pytest.mark.parametrize("role", [Role.student, Role.instructor])
async def test_only_admins_manage_webhooks(
    client: httpx.AsyncClient, connection: AsyncConnection, role: Role
) -> None:
    admin = await account(client, connection, role=Role.admin)
    created = await client.post(
        API,
        json={"url": "https://hooks.example.com/a", "event_types": ["user.registered"]},
        headers=admin.headers,
    )
    endpoint = created.headers["location"]
    caller = await account(client, connection, role=role)
    attempts = [
        ("GET", API, None),
        ("POST", API, {"url": "https://hooks.example.com/b", "event_types": ["user.registered"]}),
        ("GET", endpoint, None),
        ("PATCH", endpoint, {"is_active": False}),
        ("DELETE", endpoint, None),
        ("POST", f"{endpoint}/secret", None),
        ("POST", f"{endpoint}/test", None),
        ("GET", f"{endpoint}/deliveries", None),
    ]
    for method, url, body in attempts:
        response = await client.request(method, url, json=body, headers=caller.headers)
        assert response.status_code == 403, (method, url, response.text)
        anonymous = await client.request(method, url, json=body)
        assert anonymous.status_code == 401, (method, url)


def test_the_event_types_endpoints_take_are_the_catalogue() -> None:
    assert set(get_args(EventType)) == set(EVENTS)


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com:99999/x",
        "ftp://hooks.example.com/x",
        "https://[zz]/x",
        "https://hooks.example.com:0/x",
        "http://[Ce83]:5/x",
    ],
)
async def test_malformed_urls_are_422(
    client: httpx.AsyncClient, connection: AsyncConnection, url: str
) -> None:
    admin = await account(client, connection, role=Role.admin)
    response = await client.post(
        API, json={"url": url, "event_types": ["user.registered"]}, headers=admin.headers
    )
    assert response.status_code == 422, response.text


async def test_the_openapi_document_publishes_every_public_event(app: FastAPI) -> None:
    document = app.openapi()
    hooks = document["webhooks"]
    for name in (
        "user.registered",
        "user.email_verified",
        "enrollment.created",
        "lesson.completed",
        "course.completed",
        "certificate.issued",
        "quiz.attempt.graded",
        "submission.graded",
        "announcement.published",
        "webhook.test",
    ):
        operation = hooks[name]["post"]
        ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        envelope = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
        assert envelope["properties"]["type"]["const"] == name
        assert set(envelope["required"]) == {"id", "type", "version", "occurred_at", "data"}
        headers = {p["name"] for p in operation["parameters"]}
        assert headers == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    graded = document["components"]["schemas"]["QuizAttemptGraded"]
    assert graded["properties"]["passed"]["type"] == "boolean"
    assert graded["additionalProperties"] is False
