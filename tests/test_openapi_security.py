"""The security each operation publishes is the one it enforces: without a token, an
operation that declares the bearer token required answers 401, and one that declares it
optional (`[{}, bearer]`: the catalog's course pages, reviews, public files) serves the
anonymous caller; with a bad token, both answer 401."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx

from lyceum.app import create_app
from lyceum.config import Settings
from tests.identity.helpers import PASSWORD, register, unique_email

_METHODS = {"get", "put", "post", "delete", "patch"}
BEARER = {"OAuth2PasswordBearer": []}


def _secured_operations() -> list[tuple[str, str, dict[str, Any]]]:
    schema = create_app(Settings(database_url=None, log_level="WARNING")).openapi()
    return [
        (method, path, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in _METHODS and operation.get("security")
    ]


SECURED = _secured_operations()


def _url(path: str, operation: dict[str, Any]) -> str:
    """The path with every parameter filled: a fresh UUID names nothing that exists."""
    kinds = {
        parameter["name"]: parameter["schema"].get("format")
        for parameter in operation.get("parameters", [])
        if parameter["in"] == "path"
    }

    def value(match: re.Match[str]) -> str:
        return str(uuid.uuid4()) if kinds[match.group(1)] == "uuid" else "no-such-thing"

    return re.sub(r"\{([^}]+)\}", value, path)


async def test_published_security_is_enforced(client: httpx.AsyncClient) -> None:
    """One app for every operation (building one per operation takes minutes)."""
    wrong: list[str] = []
    for method, path, operation in SECURED:
        url = _url(path, operation)
        anonymous = await client.request(method, url)
        forged = await client.request(method, url, headers={"Authorization": "Bearer forged"})
        if operation["security"] == [BEARER]:
            misjudged = anonymous.status_code != 401
        else:
            assert operation["security"] == [{}, BEARER], path
            misjudged = anonymous.status_code == 401 or anonymous.status_code >= 500
        if misjudged or forged.status_code != 401:
            wrong.append(f"{method.upper()} {path}: {anonymous.status_code}, {forged.status_code}")
    assert wrong == []


def test_some_operations_serve_anonymous_callers() -> None:
    optional = [path for _, path, operation in SECURED if operation["security"][0] == {}]
    assert "/api/v1/courses/{course_id}" in optional
    assert len(optional) >= 5


async def test_the_published_token_url_takes_the_oauth2_password_form(
    client: httpx.AsyncClient,
) -> None:
    """What Swagger's Authorize does: post the form to the scheme's tokenUrl."""
    schema = (await client.get("/openapi.json")).json()
    flow = schema["components"]["securitySchemes"]["OAuth2PasswordBearer"]["flows"]["password"]
    email = unique_email()
    await register(client, email)
    form = {"grant_type": "password", "username": email, "password": PASSWORD, "scope": ""}
    signed_in = await client.post(flow["tokenUrl"], data=form)
    assert signed_in.status_code == 200, signed_in.text
    token = signed_in.json()["access_token"]
    me = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["email"] == email
    incomplete = await client.post(flow["tokenUrl"], data={"username": email})
    assert incomplete.status_code == 422
    assert [error["field"] for error in incomplete.json()["errors"]] == ["body.password"]
    # Tools set up with the login route before /auth/token existed keep working.
    legacy = await client.post("/api/v1/auth/login", data=form)
    assert legacy.status_code == 200, legacy.text
