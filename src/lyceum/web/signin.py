"""Starting and ending a browser session from the API's own sign-in answers."""

from __future__ import annotations

import datetime as dt
from typing import Any

from starlette.responses import Response

from lyceum.kit.security import InvalidTokenError
from lyceum.web.api import ApiProblem
from lyceum.web.context import Page, internal_tokens, is_local_path
from lyceum.web.session import encode_session, set_session_cookie


def safe_next(target: str | None, default: str = "/learn") -> str:
    """Where to go after signing in: a path on this site only (never `//host`, a URL,
    a backslash or a control character a browser would drop to make `//host`)."""
    return target if target and is_local_path(target) else default


def start_session(page: Page, pair: dict[str, Any], next_path: str | None) -> Response:
    """The answer to a successful sign-in: the session cookie for the login session the
    API's token pair belongs to, and a redirect to `next_path`."""
    try:
        claims = page.runtime.tokens.decode_access(str(pair["access_token"]), now=page.now)
    except (InvalidTokenError, KeyError) as error:
        raise RuntimeError("the API answered a sign-in without a valid access token") from error
    lifetime = dt.timedelta(seconds=int(pair.get("refresh_expires_in") or 0))
    value = encode_session(
        page.runtime.tokens,
        user_id=claims.user_id,
        role=claims.role,
        session_id=claims.session_id,
        now=page.now,
        lifetime=lifetime,
    )
    response = page.redirect(safe_next(next_path))
    set_session_cookie(
        response,
        value,
        max_age=int(lifetime.total_seconds()),
        secure=page.secure_cookies,
    )
    return response


def end_session(page: Page) -> None:
    """Forget this browser's session (the caller revokes it through the API first)."""
    if page.claims is not None:
        internal_tokens().forget(page.claims.session_id)
    page.clear_session = True


async def end_previous_session(page: Page) -> None:
    """Signing in again in a browser that is signed in: the login session its cookie
    named is signed out first, so no orphan stays open in the account's sessions."""
    if page.claims is None or page.user is None:
        return
    try:
        await page.api.post("auth/logout")
    except ApiProblem as problem:
        if problem.status != 401:
            raise
    internal_tokens().forget(page.claims.session_id)
