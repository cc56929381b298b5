"""Limits that hold without locking out honest people: failed sign-ins are counted (per
client IP and email, and per account from anywhere), successes are not; MFA guesses are
counted per account, whichever login they come with; registration and the mails a
client can trigger are limited per client IP (and per recipient)."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.conftest import client_for
from tests.identity.helpers import PASSWORD, account, enable_mfa, register, unique_email
from tests.support.clock import FrozenClock

LOGIN = "/api/v1/auth/login"
WRONG = "not the password!"


async def sign_in(http: httpx.AsyncClient, email: str, password: str = PASSWORD) -> int:
    response = await http.post(LOGIN, json={"email": email, "password": password})
    return response.status_code


async def test_an_office_behind_one_ip_signs_in_all_day(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    """Many correct sign-ins of the same people from one address are never limited."""
    staff = [await account(client, connection, prefix=f"staff{n}") for n in range(3)]
    statuses = [await sign_in(client, person.email) for _ in range(8) for person in staff]
    assert statuses == [200] * 24


async def test_a_successful_sign_in_clears_the_failures(client: httpx.AsyncClient) -> None:
    email = unique_email()
    await register(client, email)
    assert [await sign_in(client, email, WRONG) for _ in range(4)] == [401] * 4
    assert await sign_in(client, email) == 200
    # The count starts again: five more failures, then the limit.
    assert [await sign_in(client, email, WRONG) for _ in range(6)] == [401] * 5 + [429]
    assert await sign_in(client, email) == 429


async def test_failures_from_many_addresses_meet_the_per_account_cap(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """LOGIN_ACCOUNT_RATE_LIMIT (20 per hour): each address stays under its own limit,
    yet the account is guarded."""
    email = unique_email()
    await register(client, email)
    statuses = []
    for _ in range(21):
        async with client_for(app) as elsewhere:  # a new client address each time
            statuses.append(await sign_in(elsewhere, email, WRONG))
    assert statuses == [401] * 20 + [429]
    async with client_for(app) as elsewhere:
        refused = await elsewhere.post(LOGIN, json={"email": email, "password": PASSWORD})
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) > 0


async def test_password_guesses_with_a_token_share_the_accounts_sign_in_limit(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    """Changing the password and deleting the account ask for it again: a stolen access
    token could otherwise try passwords without limit. Their guesses count against the
    account's sign-in limit (LOGIN_ACCOUNT_RATE_LIMIT, 20 per hour), the form's too."""
    me = await account(client, connection)
    change = {"current_password": WRONG, "new_password": "another long passphrase"}
    statuses = [
        (
            await client.post("/api/v1/auth/password/change", json=change, headers=me.headers)
        ).status_code
        for _ in range(10)
    ] + [
        (
            await client.request(
                "DELETE", "/api/v1/users/me", json={"password": WRONG}, headers=me.headers
            )
        ).status_code
        for _ in range(10)
    ]
    assert statuses == [403] * 20
    refused = await client.request(
        "DELETE", "/api/v1/users/me", json={"password": PASSWORD}, headers=me.headers
    )
    assert refused.status_code == 429, refused.text
    assert int(refused.headers["retry-after"]) > 0
    assert await sign_in(client, me.email) == 429  # one limit for the account
    assert (await client.get("/api/v1/users/me", headers=me.headers)).status_code == 200


async def test_mfa_guesses_are_limited_per_account_not_per_login(
    client: httpx.AsyncClient, connection: AsyncConnection, clock: FrozenClock
) -> None:
    me = await account(client, connection)
    await enable_mfa(client, me, clock)

    async def guesses(count: int, start: int) -> list[int]:
        challenge = (
            await client.post(LOGIN, json={"email": me.email, "password": PASSWORD})
        ).json()
        statuses = []
        for guess in range(start, start + count):
            response = await client.post(
                "/api/v1/auth/mfa/verify",
                json={"mfa_token": challenge["mfa_token"], "code": f"{guess:06d}"},
            )
            statuses.append(response.status_code)
        return statuses

    # A fresh login (and mfa_token) each time brings no fresh guesses.
    assert await guesses(3, 0) == [401] * 3
    assert await guesses(3, 3) == [401, 401, 429]
    assert await guesses(1, 6) == [429]


async def test_registration_is_limited_per_client_address(app: FastAPI) -> None:
    """REGISTRATION_RATE_LIMIT: 20 per hour from one address; another address is not
    affected."""
    async with client_for(app) as one_address:
        statuses = []
        for _ in range(21):
            response = await one_address.post(
                "/api/v1/auth/register",
                json={"email": unique_email(), "password": PASSWORD, "full_name": "Bot"},
            )
            statuses.append(response.status_code)
    assert statuses == [201] * 20 + [429]
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) > 0
    async with client_for(app) as another:
        await register(another)


async def test_password_reset_mails_are_limited_per_address_and_per_client(
    app: FastAPI,
) -> None:
    """ACCOUNT_MAIL_RATE_LIMIT (3 per hour) per address, known or not, so a mailbox
    cannot be flooded from many machines; ACCOUNT_MAIL_IP_RATE_LIMIT (20 per hour) per
    client address, so one machine cannot flood many mailboxes."""
    victim = unique_email("victim")
    statuses = []
    for _ in range(4):
        async with client_for(app) as somewhere:
            response = await somewhere.post("/api/v1/auth/password/forgot", json={"email": victim})
            statuses.append(response.status_code)
    assert statuses == [202] * 3 + [429]

    async with client_for(app) as one_address:
        statuses = []
        for _ in range(21):
            response = await one_address.post(
                "/api/v1/auth/password/forgot", json={"email": unique_email()}
            )
            statuses.append(response.status_code)
    assert statuses == [202] * 20 + [429]


async def test_verification_resends_are_limited_per_account_and_per_client(
    app: FastAPI, client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    me = await account(client, connection, verified=False)
    resend = "/api/v1/auth/verify-email/resend"
    statuses = [(await client.post(resend, headers=me.headers)).status_code for _ in range(4)]
    assert statuses == [202] * 3 + [429]

    # One address asking for many accounts' mails meets the per-client limit, which
    # password-reset requests share.
    async with client_for(app) as one_address:
        for _ in range(18):
            await one_address.post("/api/v1/auth/password/forgot", json={"email": unique_email()})
        others = [await account(client, connection, verified=False) for _ in range(3)]
        statuses = [
            (await one_address.post(resend, headers=other.headers)).status_code for other in others
        ]
    assert statuses == [202, 202, 429]
