"""Accounts and sign-in for tests, through the real API and the real hashing."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import httpx
import pyotp
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection

from lyceum.models.identity import Role, User
from tests.support.clock import FrozenClock

PASSWORD = "correct horse battery staple"


@dataclass
class Account:
    id: uuid.UUID
    email: str
    password: str
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}@example.com"


async def register(
    client: httpx.AsyncClient, email: str | None = None, password: str = PASSWORD
) -> dict[str, object]:
    response = await client.post(
        "/api/v1/auth/register",
        json={"email": email or unique_email(), "password": password, "full_name": "Ada Lovelace"},
    )
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> dict[str, str]:
    response = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    body: dict[str, str] = response.json()
    return body


async def account(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    *,
    role: Role = Role.student,
    verified: bool = True,
    prefix: str = "user",
) -> Account:
    email = unique_email(prefix)
    user = await register(client, email)
    user_id = uuid.UUID(str(user["id"]))
    values: dict[str, object] = {"role": role}
    if verified:
        values["email_verified_at"] = User.created_at
    await connection.execute(update(User).where(User.id == user_id).values(**values))
    tokens = await login(client, email)
    return Account(user_id, email, PASSWORD, tokens["access_token"], tokens["refresh_token"])


async def enable_mfa(client: httpx.AsyncClient, who: Account, clock: FrozenClock) -> pyotp.TOTP:
    """Set up and enable TOTP MFA on `who`'s account (the code of the clock's present step
    is used up by it); the authenticator to make further codes with."""
    secret = (await client.post("/api/v1/auth/mfa/setup", headers=who.headers)).json()["secret"]
    totp = pyotp.TOTP(secret)
    enabled = await client.post(
        "/api/v1/auth/mfa/enable",
        json={"code": totp.at(clock.now()), "password": who.password},
        headers=who.headers,
    )
    assert enabled.status_code == 200, enabled.text
    return totp
