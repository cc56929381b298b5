"""Registration, login, rotating refresh tokens, logout, sessions, and every way a
token can be wrong."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import uuid

import httpx
import jwt
import pytest
from pwdlib.hashers.bcrypt import BcryptHasher
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from lyceum.config import Settings
from lyceum.kit.ratelimit import RateLimiter
from lyceum.kit.runtime import Runtime
from lyceum.models.identity import LoginSession, User
from tests.conftest import TEST_SECRET, client_for, make_app
from tests.identity.helpers import (
    PASSWORD,
    Account,
    account,
    login,
    register,
    unique_email,
)
from tests.support.clock import FrozenClock

PROBLEM = "application/problem+json"


def assert_401(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == PROBLEM


# Registration -------------------------------------------------------------------------


async def test_register_returns_the_user_without_the_hash(client: httpx.AsyncClient) -> None:
    email = unique_email()
    response = await client.post(
        "/api/v1/auth/register",
        json={"email": email, "password": PASSWORD, "full_name": "  Ada Lovelace "},
    )
    assert response.status_code == 201
    body = response.json()
    assert response.headers["location"] == f"/api/v1/users/{body['id']}"
    assert body["email"] == email
    assert body["full_name"] == "Ada Lovelace"
    assert body["role"] == "student"
    assert body["email_verified"] is False
    assert "password" not in response.text and "hash" not in response.text


async def test_emails_are_unique_case_insensitively(client: httpx.AsyncClient) -> None:
    email = unique_email()
    await register(client, email)
    response = await client.post(
        "/api/v1/auth/register",
        json={"email": email.upper(), "password": PASSWORD, "full_name": "Twin"},
    )
    assert response.status_code == 409
    assert response.json()["errors"][0]["field"] == "body.email"


@pytest.mark.parametrize(
    ("password", "reason"),
    [("short", "at least 8"), ("password123", "common"), ("qwertyuiop", "common")],
)
async def test_weak_passwords_are_refused_naming_the_field(
    client: httpx.AsyncClient, password: str, reason: str
) -> None:
    response = await client.post(
        "/api/v1/auth/register",
        json={"email": unique_email(), "password": password, "full_name": "Weak"},
    )
    assert response.status_code == 422
    body = response.json()
    [error] = body["errors"]
    assert error["field"] == "body.password"
    assert reason in error["message"]


async def test_long_passphrases_and_no_composition_rules(client: httpx.AsyncClient) -> None:
    await register(client, password="a" * 7 + " lowercase only words")
    await register(client, password="x" * 64)


@pytest.mark.parametrize(
    "body",
    [
        {"email": "not-an-email", "password": PASSWORD, "full_name": "A"},
        {"email": "a@example.com", "password": PASSWORD},
        {"email": "a@example.com", "password": PASSWORD, "full_name": "   "},
        {"email": "a@example.com", "password": PASSWORD, "full_name": "A", "role": "admin"},
    ],
)
async def test_malformed_registrations_are_422(
    client: httpx.AsyncClient, body: dict[str, str]
) -> None:
    response = await client.post("/api/v1/auth/register", json=body)
    assert response.status_code == 422
    assert response.json()["errors"]


# Login --------------------------------------------------------------------------------


async def test_login_returns_a_pair_with_the_documented_claims(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    email = unique_email()
    user = await register(client, email)
    tokens = await login(client, email)
    assert tokens["token_type"] == "bearer"
    assert tokens["expires_in"] == 30 * 60
    claims = jwt.decode(
        tokens["access_token"],
        TEST_SECRET,
        algorithms=["HS256"],
        audience=settings.jwt_audience,
        issuer=settings.jwt_issuer,
    )
    assert claims["sub"] == user["id"]
    assert claims["role"] == "student"
    assert claims["typ"] == "access"
    assert claims["exp"] - claims["iat"] == 30 * 60
    assert {"jti", "iss", "aud", "sid"} <= claims.keys()


async def test_login_accepts_the_oauth2_password_form(client: httpx.AsyncClient) -> None:
    email = unique_email()
    await register(client, email)
    response = await client.post(
        "/api/v1/auth/login", data={"username": email, "password": PASSWORD}
    )
    assert response.status_code == 200
    me = await client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {response.json()['access_token']}"}
    )
    assert me.json()["email"] == email


@pytest.mark.parametrize("case", ["wrong-password", "unknown-email"])
async def test_bad_credentials_are_one_401(client: httpx.AsyncClient, case: str) -> None:
    email = unique_email()
    await register(client, email)
    if case == "unknown-email":
        email = unique_email()
    response = await client.post(
        "/api/v1/auth/login", json={"email": email, "password": "not the password"}
    )
    assert_401(response)
    assert response.json()["detail"] == "Incorrect email or password."


async def test_malformed_login_bodies_are_4xx(client: httpx.AsyncClient) -> None:
    assert (await client.post("/api/v1/auth/login", json={"email": "x"})).status_code == 422
    response = await client.post(
        "/api/v1/auth/login", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code in {400, 422}
    form = await client.post("/api/v1/auth/login", data={"username": "x@example.com"})
    assert form.status_code == 422


async def test_imported_bcrypt_hash_is_verified_and_upgraded(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    email = unique_email()
    user = await register(client, email)
    bcrypt_hash = BcryptHasher().hash(PASSWORD)
    await connection.execute(
        update(User).where(User.id == uuid.UUID(str(user["id"]))).values(password_hash=bcrypt_hash)
    )
    await login(client, email)
    stored = (
        await connection.execute(select(User.password_hash).where(User.email == email))
    ).scalar_one()
    assert stored is not None and stored.startswith("$argon2id$")


# Refresh rotation ---------------------------------------------------------------------


async def test_refresh_rotates_and_reuse_revokes_the_family(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    me = await account(client, connection)
    first = await client.post("/api/v1/auth/refresh", json={"refresh_token": me.refresh_token})
    assert first.status_code == 200
    second_pair = first.json()
    assert second_pair["refresh_token"] != me.refresh_token

    third = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": second_pair["refresh_token"]}
    )
    assert third.status_code == 200
    newest = third.json()

    # The first token comes back: a thief or a replay. The whole family dies.
    replay = await client.post("/api/v1/auth/refresh", json={"refresh_token": me.refresh_token})
    assert_401(replay)
    assert replay.json()["type"].endswith("/refresh-token-reused")
    revoked = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": newest["refresh_token"]}
    )
    assert_401(revoked)
    assert_401(
        await client.get(
            "/api/v1/users/me", headers={"Authorization": f"Bearer {newest['access_token']}"}
        )
    )
    reason = (
        await connection.execute(
            select(LoginSession.revoked_reason).where(LoginSession.user_id == me.id)
        )
    ).scalar_one()
    assert reason == "refresh-token-reuse"


async def test_other_logins_survive_a_reuse_in_one_family(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    me = await account(client, connection)
    other_device = await login(client, me.email)
    await client.post("/api/v1/auth/refresh", json={"refresh_token": me.refresh_token})
    await client.post("/api/v1/auth/refresh", json={"refresh_token": me.refresh_token})
    still = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": other_device["refresh_token"]}
    )
    assert still.status_code == 200


async def test_refresh_token_expires(
    client: httpx.AsyncClient, connection: AsyncConnection, clock: FrozenClock
) -> None:
    me = await account(client, connection)
    clock.advance(days=7, seconds=1)
    assert_401(await client.post("/api/v1/auth/refresh", json={"refresh_token": me.refresh_token}))


# Logout and sessions ------------------------------------------------------------------


async def test_logout_revokes_the_access_token_and_the_family(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    me = await account(client, connection)
    assert (await client.post("/api/v1/auth/logout", headers=me.headers)).status_code == 204
    assert_401(await client.get("/api/v1/users/me", headers=me.headers))
    assert_401(await client.post("/api/v1/auth/refresh", json={"refresh_token": me.refresh_token}))


async def test_sessions_list_and_revoke(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    me = await account(client, connection)
    phone = await client.post(
        "/api/v1/auth/login",
        json={"email": me.email, "password": PASSWORD},
        headers={"User-Agent": "LyceumPhone/1.0"},
    )
    listing = await client.get("/api/v1/auth/sessions", headers=me.headers)
    assert listing.status_code == 200
    sessions = listing.json()["items"]
    assert listing.json()["total"] == 2
    assert sum(item["current"] for item in sessions) == 1
    other = next(item for item in sessions if not item["current"])
    assert other["device"] == "LyceumPhone/1.0"
    assert other["ip_address"]

    deleted = await client.delete(f"/api/v1/auth/sessions/{other['id']}", headers=me.headers)
    assert deleted.status_code == 204
    assert_401(
        await client.post(
            "/api/v1/auth/refresh", json={"refresh_token": phone.json()["refresh_token"]}
        )
    )
    assert (await client.get("/api/v1/auth/sessions", headers=me.headers)).json()["total"] == 1


async def test_nobody_revokes_another_users_session(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    alice = await account(client, connection, prefix="alice")
    bob = await account(client, connection, prefix="bob")
    bob_session = (await client.get("/api/v1/auth/sessions", headers=bob.headers)).json()["items"][
        0
    ]["id"]
    response = await client.delete(f"/api/v1/auth/sessions/{bob_session}", headers=alice.headers)
    assert response.status_code == 404
    assert (await client.get("/api/v1/users/me", headers=bob.headers)).status_code == 200


# Every way a token can be wrong -------------------------------------------------------


def _forge(claims: dict[str, object], *, key: str = TEST_SECRET, alg: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=alg)


def _unsigned(claims: dict[str, object]) -> str:
    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


@pytest.mark.parametrize(
    "attack",
    [
        "other-key",
        "alg-none",
        "refresh-as-access",
        "wrong-aud",
        "wrong-iss",
        "tampered",
        "expired",
        "wrong-typ",
        "garbage",
    ],
)
async def test_bad_access_tokens_are_401(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    settings: Settings,
    attack: str,
) -> None:
    me = await account(client, connection)
    now = int(dt.datetime.now(dt.UTC).timestamp())
    good = {
        "sub": str(me.id),
        "role": "admin",
        "typ": "access",
        "jti": uuid.uuid4().hex,
        "iat": now,
        "exp": now + 600,
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
    }
    token = {
        "other-key": lambda: _forge(good, key="another-secret-key-another-secret-key!!"),
        "alg-none": lambda: _unsigned(good),
        "refresh-as-access": lambda: me.refresh_token,
        "wrong-aud": lambda: _forge({**good, "aud": "someone-else"}),
        "wrong-iss": lambda: _forge({**good, "iss": "evil"}),
        "tampered": lambda: _tamper(me.access_token),
        "expired": lambda: _forge({**good, "iat": now - 4000, "exp": now - 2000}),
        "wrong-typ": lambda: _forge({**good, "typ": "refresh"}),
        "garbage": lambda: "not.a.token",
    }[attack]()
    response = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    assert_401(response)
    assert response.headers["www-authenticate"] == "Bearer"


async def test_an_access_token_needs_a_login_session_of_its_own_subject(
    client: httpx.AsyncClient, connection: AsyncConnection, settings: Settings
) -> None:
    """`sid` is required, and must name a live session of the token's `sub`: a token
    correctly signed for one account cannot ride on another account's session, and one
    without a session cannot outlive a sign-out."""
    me = await account(client, connection, prefix="me")
    other = await account(client, connection, prefix="other")

    async def session_of(who: Account) -> str:
        listed = await client.get("/api/v1/auth/sessions", headers=who.headers)
        return str(listed.json()["items"][0]["id"])

    now = int(dt.datetime.now(dt.UTC).timestamp())
    claims: dict[str, object] = {
        "sub": str(me.id),
        "role": "student",
        "typ": "access",
        "jti": uuid.uuid4().hex,
        "iat": now,
        "exp": now + 600,
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
    }

    async def status_with(**changes: object) -> int:
        token = _forge({**claims, **changes})
        headers = {"Authorization": f"Bearer {token}"}
        return (await client.get("/api/v1/users/me", headers=headers)).status_code

    assert await status_with(sid=await session_of(me)) == 200  # the control
    assert await status_with() == 401  # no sid at all
    assert await status_with(sid=None) == 401
    assert await status_with(sid="not-a-uuid") == 401
    assert await status_with(sid=str(uuid.uuid4())) == 401  # no such session
    assert await status_with(sid=await session_of(other)) == 401  # someone else's


def _tamper(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["role"] = "admin"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


async def test_access_token_used_as_refresh_token_is_401(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    me = await account(client, connection)
    assert_401(await client.post("/api/v1/auth/refresh", json={"refresh_token": me.access_token}))


async def test_access_token_expires_after_30_minutes(
    client: httpx.AsyncClient, connection: AsyncConnection, clock: FrozenClock
) -> None:
    me = await account(client, connection)
    clock.advance(minutes=29)
    assert (await client.get("/api/v1/users/me", headers=me.headers)).status_code == 200
    clock.advance(minutes=2)
    assert_401(await client.get("/api/v1/users/me", headers=me.headers))


async def test_failed_logins_write_nothing(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    email = unique_email()
    await register(client, email)
    before = (await connection.execute(select(LoginSession.id))).all()
    await client.post("/api/v1/auth/login", json={"email": email, "password": "wrong password!"})
    assert (await connection.execute(select(LoginSession.id))).all() == before


# Brute force --------------------------------------------------------------------------


async def test_sixth_login_attempt_in_15_minutes_is_429(client: httpx.AsyncClient) -> None:
    email = unique_email()
    await register(client, email)
    statuses = []
    for _ in range(6):
        response = await client.post(
            "/api/v1/auth/login", json={"email": email, "password": "wrong password!"}
        )
        statuses.append(response.status_code)
    assert statuses == [401] * 5 + [429]
    assert int(response.headers["retry-after"]) > 0
    # Even the right password waits now.
    right = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert right.status_code == 429


async def test_login_limit_holds_under_20_concurrent_attempts_on_real_redis(
    settings: Settings, runtime: Runtime, redis_url: str
) -> None:
    with_redis = Runtime(
        settings=settings,
        database_url=runtime.database_url,
        database=runtime.database,
        cache=runtime.cache,
        rate_limiter=RateLimiter(redis_url),
    )
    # Concurrent requests need their own connections: this app commits for real.
    async with client_for(make_app(settings, with_redis, None)) as http:
        email = unique_email()
        await register(http, email)
        responses = await asyncio.gather(
            *(
                http.post(
                    "/api/v1/auth/login", json={"email": email, "password": "wrong password!"}
                )
                for _ in range(20)
            )
        )
    statuses = sorted(response.status_code for response in responses)
    assert statuses.count(401) == 5
    assert statuses.count(429) == 15
