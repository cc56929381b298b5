"""Every webhook endpoint, called by each kind of caller: only admins get in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from lyceum.models.identity import Role
from tests.identity.helpers import Account, account

CALLERS = ["anonymous", "student", "instructor", "admin"]
API = "/api/v1/webhooks/endpoints"


@dataclass
class World:
    endpoint: str
    delivery: str
    people: dict[str, Account | None]


@pytest.fixture
async def world(client: httpx.AsyncClient, connection: AsyncConnection) -> World:
    admin = await account(client, connection, role=Role.admin, prefix="admin")
    created = await client.post(
        API,
        json={"url": "https://hooks.example.com/m", "event_types": ["user.registered"]},
        headers=admin.headers,
    )
    assert created.status_code == 201, created.text
    endpoint = created.json()["id"]
    test = await client.post(f"{API}/{endpoint}/test", headers=admin.headers)
    assert test.status_code == 202, test.text
    people: dict[str, Account | None] = {
        "anonymous": None,
        "student": await account(client, connection, prefix="student"),
        "instructor": await account(client, connection, role=Role.instructor, prefix="teacher"),
        "admin": admin,
    }
    return World(endpoint, test.json()["id"], people)


NEW = {"url": "https://hooks.example.com/n", "event_types": ["enrollment.created"]}

# (method, path template, body, expected status per caller in CALLERS order)
MATRIX: list[tuple[str, str, Any, list[int]]] = [
    ("GET", API, None, [401, 403, 403, 200]),
    ("POST", API, NEW, [401, 403, 403, 201]),
    ("GET", API + "/{endpoint}", None, [401, 403, 403, 200]),
    ("PATCH", API + "/{endpoint}", {"description": "x"}, [401, 403, 403, 200]),
    ("DELETE", API + "/{endpoint}", None, [401, 403, 403, 204]),
    ("POST", API + "/{endpoint}/secret", None, [401, 403, 403, 200]),
    ("GET", API + "/{endpoint}/deliveries", None, [401, 403, 403, 200]),
    ("POST", API + "/{endpoint}/deliveries/{delivery}/redeliver", None, [401, 403, 403, 202]),
    ("POST", API + "/{endpoint}/test", None, [401, 403, 403, 202]),
    ("GET", API + "/{made_up}", None, [401, 403, 403, 404]),
    ("POST", API + "/{endpoint}/deliveries/{made_up}/redeliver", None, [401, 403, 403, 404]),
]


@pytest.mark.parametrize(("method", "template", "body", "expected"), MATRIX)
async def test_authorization_matrix(
    client: httpx.AsyncClient,
    world: World,
    method: str,
    template: str,
    body: Any,
    expected: list[int],
) -> None:
    path = template.format(
        endpoint=world.endpoint,
        delivery=world.delivery,
        made_up="00000000-0000-4000-8000-000000000000",
    )
    answers = {}
    for who in CALLERS:
        caller = world.people[who]
        response = await client.request(
            method, path, json=body, headers=caller.headers if caller else {}
        )
        answers[who] = response.status_code
        if response.status_code >= 400:
            assert response.headers["content-type"] == "application/problem+json"
    assert answers == dict(zip(CALLERS, expected, strict=True))
