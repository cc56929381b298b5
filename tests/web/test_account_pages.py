"""Account pages without a browser (the in-process client, signed in through the web
form): deleting an account with MFA asks for the password and a code; a form past a
limit says when to try again."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.identity.helpers import PASSWORD, account, enable_mfa
from tests.support.clock import FrozenClock
from tests.web.test_learn_pages import _sign_in


async def test_deleting_an_account_with_mfa_asks_for_the_code_on_the_form(
    client: httpx.AsyncClient, connection: AsyncConnection, clock: FrozenClock
) -> None:
    me = await account(client, connection, prefix="delete-mfa")
    csrf = await _sign_in(client, me)
    form = await client.get("/account/delete")
    assert form.status_code == 200
    assert 'name="code"' not in form.text  # no MFA yet: the password alone
    totp = await enable_mfa(client, me, clock)
    clock.advance(seconds=30)  # each TOTP step is usable once

    form = await client.get("/account/delete")
    assert 'name="password"' in form.text and 'name="code"' in form.text
    refused = await client.post(
        "/account/delete", data={"password": PASSWORD, "code": "", "csrf_token": csrf}
    )
    assert refused.status_code == 403, refused.text
    assert 'role="alert"' in refused.text
    assert (await client.get("/api/v1/users/me", headers=me.headers)).status_code == 200

    deleted = await client.post(
        "/account/delete",
        data={"password": PASSWORD, "code": totp.at(clock.now()), "csrf_token": csrf},
    )
    assert deleted.status_code == 303, deleted.text
    assert deleted.headers["location"] == "/?deleted=1"
    assert (await client.get("/api/v1/users/me", headers=me.headers)).status_code == 401


async def test_a_form_that_meets_a_limit_says_when_to_try_again(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    """The password checks of the account pages count against the account's sign-in
    limit (20 an hour): past it, the form answers 429 with the API's Retry-After, on
    every form that asks for the password."""
    me = await account(client, connection, prefix="form-limit")
    csrf = await _sign_in(client, me)
    wrong = {"current_password": "not my password", "new_password": "another long passphrase"}
    for _ in range(20):
        refused = await client.post("/account/password", data={**wrong, "csrf_token": csrf})
        assert refused.status_code == 403, refused.text
        assert "retry-after" not in refused.headers
    for form, data in (
        ("/account/password", {**wrong, "current_password": PASSWORD}),
        ("/account/delete", {"password": PASSWORD, "code": ""}),
    ):
        limited = await client.post(form, data={**data, "csrf_token": csrf})
        assert limited.status_code == 429, (form, limited.text)
        assert int(limited.headers["retry-after"]) > 0, form
        assert 'role="alert"' in limited.text, form
    assert (await client.get("/api/v1/users/me", headers=me.headers)).status_code == 200
