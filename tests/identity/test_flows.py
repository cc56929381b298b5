"""Email verification, password reset and change, MFA, with the mails they send."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pyotp
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from lyceum.config import Settings
from lyceum.kit.runtime import Runtime
from tests.conftest import client_for, make_app
from tests.identity.flows_helpers import body_of, mails_to, token_in
from tests.identity.helpers import PASSWORD, account, enable_mfa, login, register, unique_email
from tests.support.clock import FrozenClock
from tests.support.jobs import run_jobs as drain

NEW_PASSWORD = "a completely new passphrase"


@pytest.fixture
async def live(
    settings: Settings, runtime: Runtime
) -> AsyncIterator[tuple[httpx.AsyncClient, FrozenClock]]:
    """Requests that commit for real, so that the jobs they enqueue can run."""
    app = make_app(settings, runtime, None)
    app.state.clock = FrozenClock()
    async with client_for(app) as http:
        yield http, app.state.clock


async def run_jobs() -> None:
    await drain()


async def test_registration_mails_welcome_and_a_working_verification_link(
    live: tuple[httpx.AsyncClient, FrozenClock], settings: Settings
) -> None:
    http, _ = live
    address = unique_email("verify")
    await register(http, address)
    await run_jobs()
    mails = mails_to(settings, address)
    subjects = sorted(str(m["Subject"]) for m in mails)
    assert subjects == [
        "Confirm your email address for Lyceum",
        "Welcome to Lyceum, Ada Lovelace",
    ]
    verify_mail = next(m for m in mails if "Confirm" in str(m["Subject"]))
    token = token_in(verify_mail, "/verify-email")

    page = await http.get(f"/verify-email?token={token}")
    assert page.status_code == 200
    # The web app's page: a form that posts the token (no inline script), under a CSP.
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert 'action="/verify-email"' in page.text
    assert f'name="token" value="{token}"' in page.text
    assert "<script>" not in page.text

    verified = await http.post("/api/v1/auth/verify-email", json={"token": token})
    assert verified.status_code == 200
    assert verified.json()["email_verified"] is True
    again = await http.post("/api/v1/auth/verify-email", json={"token": token})
    assert again.status_code == 401


async def test_verification_token_expires_after_24_hours(
    live: tuple[httpx.AsyncClient, FrozenClock], settings: Settings
) -> None:
    http, clock = live
    address = unique_email("expire")
    await register(http, address)
    await run_jobs()
    token = token_in(
        next(m for m in mails_to(settings, address) if "Confirm" in str(m["Subject"])),
        "/verify-email",
    )
    clock.advance(hours=24, seconds=5)
    assert (await http.post("/api/v1/auth/verify-email", json={"token": token})).status_code == 401


async def test_resend_replaces_the_previous_link(
    live: tuple[httpx.AsyncClient, FrozenClock], settings: Settings
) -> None:
    http, _ = live
    address = unique_email("resend")
    await register(http, address)
    await run_jobs()
    tokens = await login(http, address)
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    resent = await http.post("/api/v1/auth/verify-email/resend", headers=headers)
    assert resent.status_code == 202
    await run_jobs()
    verify_mails = [m for m in mails_to(settings, address) if "Confirm" in str(m["Subject"])]
    assert len(verify_mails) == 2
    first, second = (token_in(m, "/verify-email") for m in verify_mails)
    assert (await http.post("/api/v1/auth/verify-email", json={"token": first})).status_code == 401
    assert (await http.post("/api/v1/auth/verify-email", json={"token": second})).status_code == 200
    done = await http.post("/api/v1/auth/verify-email/resend", headers=headers)
    assert done.status_code == 409


async def test_forgot_password_answers_the_same_for_unknown_accounts(
    live: tuple[httpx.AsyncClient, FrozenClock], settings: Settings, runtime: Runtime
) -> None:
    http, _ = live
    known = unique_email("known")
    await register(http, known)
    unknown = unique_email("nobody")
    answers = [
        await http.post("/api/v1/auth/password/forgot", json={"email": address})
        for address in (known, unknown)
    ]
    assert [a.status_code for a in answers] == [202, 202]
    assert answers[0].json() == answers[1].json()
    # The request does the same work either way: one job row, whose lookup happens later.
    async with runtime.database.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT args->>'email' FROM procrastinate_jobs "
                "WHERE task_name = 'lyceum.identity.send_password_reset_mail' "
                "AND args->>'email' IN (:a, :b)"
            ),
            {"a": known, "b": unknown},
        )
        assert sorted(r[0] for r in rows) == sorted([known, unknown])
    await run_jobs()
    assert mails_to(settings, unknown) == []
    [reset_mail] = [m for m in mails_to(settings, known) if "Reset" in str(m["Subject"])]
    assert "30 minutes" in body_of(reset_mail, "plain")


async def test_reset_password_is_single_use_and_signs_out_everywhere(
    live: tuple[httpx.AsyncClient, FrozenClock], settings: Settings
) -> None:
    http, _ = live
    address = unique_email("reset")
    await register(http, address)
    old_tokens = await login(http, address)
    await http.post("/api/v1/auth/password/forgot", json={"email": address})
    await run_jobs()
    [reset_mail] = [m for m in mails_to(settings, address) if "Reset" in str(m["Subject"])]
    token = token_in(reset_mail, "/reset-password")
    reset_page = await http.get(f"/reset-password?token={token}")
    assert reset_page.status_code == 200
    assert "script-src 'self'" in reset_page.headers["content-security-policy"]
    assert f'name="token" value="{token}"' in reset_page.text

    weak = await http.post(
        "/api/v1/auth/password/reset", json={"token": token, "new_password": "password1"}
    )
    assert weak.status_code == 422
    reset = await http.post(
        "/api/v1/auth/password/reset", json={"token": token, "new_password": NEW_PASSWORD}
    )
    assert reset.status_code == 204
    again = await http.post(
        "/api/v1/auth/password/reset", json={"token": token, "new_password": NEW_PASSWORD + "!"}
    )
    assert again.status_code == 401
    stale = await http.post(
        "/api/v1/auth/refresh", json={"refresh_token": old_tokens["refresh_token"]}
    )
    assert stale.status_code == 401
    assert (
        await http.post("/api/v1/auth/login", json={"email": address, "password": PASSWORD})
    ).status_code == 401
    await login(http, address, NEW_PASSWORD)


async def test_reset_token_expires_after_30_minutes(
    live: tuple[httpx.AsyncClient, FrozenClock], settings: Settings
) -> None:
    http, clock = live
    address = unique_email("slow")
    await register(http, address)
    await http.post("/api/v1/auth/password/forgot", json={"email": address})
    await run_jobs()
    [reset_mail] = [m for m in mails_to(settings, address) if "Reset" in str(m["Subject"])]
    clock.advance(minutes=31)
    response = await http.post(
        "/api/v1/auth/password/reset",
        json={"token": token_in(reset_mail, "/reset-password"), "new_password": NEW_PASSWORD},
    )
    assert response.status_code == 401


async def test_change_password_keeps_this_session_and_ends_the_others(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    me = await account(client, connection)
    laptop = await login(client, me.email)
    wrong = await client.post(
        "/api/v1/auth/password/change",
        json={"current_password": "not my password", "new_password": NEW_PASSWORD},
        headers=me.headers,
    )
    assert wrong.status_code == 403
    assert wrong.json()["errors"][0]["field"] == "body.current_password"
    changed = await client.post(
        "/api/v1/auth/password/change",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=me.headers,
    )
    assert changed.status_code == 204
    assert (await client.get("/api/v1/users/me", headers=me.headers)).status_code == 200
    other = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": laptop["refresh_token"]}
    )
    assert other.status_code == 401
    await login(client, me.email, NEW_PASSWORD)


# MFA ----------------------------------------------------------------------------------


async def test_mfa_with_totp_codes_and_single_use_recovery_codes(
    client: httpx.AsyncClient, connection: AsyncConnection, clock: FrozenClock
) -> None:
    me = await account(client, connection)
    setup = await client.post("/api/v1/auth/mfa/setup", headers=me.headers)
    assert setup.status_code == 200
    secret = setup.json()["secret"]
    assert setup.json()["otpauth_uri"].startswith("otpauth://totp/Lyceum:")
    assert setup.json()["qr_png_base64"].startswith("iVBORw0KGgo")  # PNG magic, base64
    totp = pyotp.TOTP(secret)

    bad = await client.post(
        "/api/v1/auth/mfa/enable", json={"code": "000000", "password": PASSWORD}, headers=me.headers
    )
    assert bad.status_code == 403
    assert bad.json()["errors"][0]["field"] == "body.code"
    # The password is asked again: an access token alone does not turn MFA on (someone
    # else's authenticator would lock the owner out).
    for body, field in (
        ({"code": totp.at(clock.now())}, "body.password"),
        ({"code": totp.at(clock.now()), "password": "not the password"}, "body.password"),
    ):
        refused = await client.post("/api/v1/auth/mfa/enable", json=body, headers=me.headers)
        assert refused.status_code in (403, 422), refused.text
        assert refused.json()["errors"][0]["field"] == field
    assert (await client.get("/api/v1/users/me", headers=me.headers)).json()["mfa_enabled"] is False
    enabled = await client.post(
        "/api/v1/auth/mfa/enable",
        json={"code": totp.at(clock.now()), "password": PASSWORD},
        headers=me.headers,
    )
    assert enabled.status_code == 200
    codes = enabled.json()["recovery_codes"]
    assert len(codes) == 10 and len(set(codes)) == 10

    # Password alone is no longer enough.
    challenge = (
        await client.post("/api/v1/auth/login", json={"email": me.email, "password": PASSWORD})
    ).json()
    assert challenge["mfa_required"] is True
    assert "access_token" not in challenge

    # The code that enabled MFA cannot be replayed; the next one works.
    replay = await client.post(
        "/api/v1/auth/mfa/verify",
        json={"mfa_token": challenge["mfa_token"], "code": totp.at(clock.now())},
    )
    assert replay.status_code == 401
    clock.advance(seconds=30)
    verified = await client.post(
        "/api/v1/auth/mfa/verify",
        json={"mfa_token": challenge["mfa_token"], "code": totp.at(clock.now())},
    )
    assert verified.status_code == 200
    assert verified.json()["access_token"]
    used_token = await client.post(
        "/api/v1/auth/mfa/verify",
        json={"mfa_token": challenge["mfa_token"], "code": codes[0]},
    )
    assert used_token.status_code == 401  # the MFA token is single use

    # A recovery code works once.
    for expected in (200, 401):
        fresh = (
            await client.post("/api/v1/auth/login", json={"email": me.email, "password": PASSWORD})
        ).json()
        recovered = await client.post(
            "/api/v1/auth/mfa/verify",
            json={"mfa_token": fresh["mfa_token"], "code": codes[1].upper()},
        )
        assert recovered.status_code == expected

    # Turning MFA off needs the password and a code.
    headers = {"Authorization": f"Bearer {verified.json()['access_token']}"}
    refused = await client.post(
        "/api/v1/auth/mfa/disable",
        json={"password": "wrong one!", "code": codes[2]},
        headers=headers,
    )
    assert refused.status_code == 403, refused.text
    disabled = await client.post(
        "/api/v1/auth/mfa/disable", json={"password": PASSWORD, "code": codes[2]}, headers=headers
    )
    assert disabled.status_code == 204
    assert "access_token" in await login(client, me.email)


async def test_mfa_token_expires_after_5_minutes(
    client: httpx.AsyncClient, connection: AsyncConnection, clock: FrozenClock
) -> None:
    me = await account(client, connection)
    totp = await enable_mfa(client, me, clock)
    challenge = (
        await client.post("/api/v1/auth/login", json={"email": me.email, "password": PASSWORD})
    ).json()
    clock.advance(minutes=5, seconds=1)
    late = await client.post(
        "/api/v1/auth/mfa/verify",
        json={"mfa_token": challenge["mfa_token"], "code": totp.at(clock.now())},
    )
    assert late.status_code == 401


async def test_mfa_codes_cannot_be_brute_forced(
    client: httpx.AsyncClient, connection: AsyncConnection, clock: FrozenClock
) -> None:
    me = await account(client, connection)
    await enable_mfa(client, me, clock)
    challenge = (
        await client.post("/api/v1/auth/login", json={"email": me.email, "password": PASSWORD})
    ).json()
    statuses = [
        (
            await client.post(
                "/api/v1/auth/mfa/verify",
                json={"mfa_token": challenge["mfa_token"], "code": f"{guess:06d}"},
            )
        ).status_code
        for guess in range(6)
    ]
    assert statuses == [401] * 5 + [429]


async def test_account_mails_speak_the_learners_language(
    live: tuple[httpx.AsyncClient, FrozenClock], settings: Settings
) -> None:
    http, _ = live
    address = unique_email("vi")
    await register(http, address)
    tokens = await login(http, address)
    changed = await http.patch(
        "/api/v1/users/me",
        json={"locale": "vi-VN"},
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
    )
    assert changed.status_code == 200, changed.text
    await http.post("/api/v1/auth/password/forgot", json={"email": address})
    await run_jobs()
    subjects = [str(m["Subject"]) for m in mails_to(settings, address)]
    assert "Đặt lại mật khẩu Lyceum của bạn" in subjects
    [reset_mail] = [m for m in mails_to(settings, address) if "Đặt lại" in str(m["Subject"])]
    assert token_in(reset_mail, "/reset-password")
