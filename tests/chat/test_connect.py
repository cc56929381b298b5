"""Signing in to the Socket.IO server: an access token in the `auth` payload; missing,
malformed, expired or revoked tokens, signed-out sessions and inactive accounts are
refused with a reason."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
import socketio
from sqlalchemy import update

from lyceum.identity.service import DENIED_JTI_PREFIX
from lyceum.kit.security import TokenCodec
from lyceum.models.identity import Role, User
from tests.chat.conftest import Connect
from tests.chat.helpers import ChatClient, Live, mint
from tests.identity.helpers import PASSWORD


async def refused(live: Live, token: str | None) -> dict[str, Any]:
    client = ChatClient()
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(live.url, token)
    assert not client.sio.connected
    reason: dict[str, Any] = client.refusal
    return reason


async def test_a_valid_token_connects_and_events_answer(live: Live, connect: Connect) -> None:
    learner = await live.member()
    client = await connect(learner.token)
    assert client.sio.connected
    answer = await client.call("no_such_event", {})
    assert answer == {
        "ok": False,
        "error": {
            "type": "unknown-event",
            "detail": "There is no chat event named 'no_such_event'.",
        },
    }


async def test_no_token_is_refused(live: Live) -> None:
    reason = await refused(live, None)
    assert reason["data"]["type"] == "unauthorized"
    assert "token" in reason["message"]


async def test_a_malformed_or_foreign_token_is_refused(live: Live) -> None:
    learner = await live.member()
    assert (await refused(live, "not-a-jwt"))["data"]["type"] == "invalid-token"
    forged = TokenCodec(
        "another-secret-key-0123456789abcdef", issuer="lyceum", audience="lyceum-api"
    )
    token = mint(forged, learner.id, Role.student, live.clock.now(), session_id=learner.session_id)
    assert (await refused(live, token))["data"]["type"] == "invalid-token"


async def test_an_expired_token_is_refused(live: Live) -> None:
    learner = await live.member()
    old = live.clock.now() - dt.timedelta(hours=2)
    token = mint(
        live.runtime.tokens,
        learner.id,
        Role.student,
        old,
        minutes=30,
        session_id=learner.session_id,
    )
    reason = await refused(live, token)
    assert reason["data"] == {
        "type": "invalid-token",
        "detail": "The access token is invalid or expired.",
    }


async def test_a_revoked_token_is_refused(live: Live) -> None:
    learner = await live.member()
    claims = live.runtime.tokens.decode_access(learner.token, now=live.clock.now())
    await live.runtime.cache.set(DENIED_JTI_PREFIX + claims.jti, b"1", ttl=3600)
    reason = await refused(live, learner.token)
    assert reason["data"]["detail"] == "The access token was revoked."


async def test_a_signed_out_session_is_refused(live: Live, connect: Connect) -> None:
    _, email = await live.registered()
    tokens = (
        await live.http.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    ).json()
    client = await connect(tokens["access_token"])
    await client.close()
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    sessions = (await live.http.get("/api/v1/auth/sessions", headers=headers)).json()
    signed_out = await live.http.delete(
        f"/api/v1/auth/sessions/{sessions['items'][0]['id']}", headers=headers
    )
    assert signed_out.status_code == 204, signed_out.text
    reason = await refused(live, tokens["access_token"])
    assert reason["data"]["type"] == "invalid-token"


async def test_an_inactive_account_is_refused(live: Live) -> None:
    learner = await live.member()
    async with live.runtime.database.engine.begin() as conn:
        await conn.execute(update(User).where(User.id == learner.id).values(is_active=False))
    assert (await refused(live, learner.token))["data"]["type"] == "invalid-token"


async def test_a_token_that_expires_while_connected_stops_events(
    live: Live, connect: Connect
) -> None:
    learner = await live.member()
    client = await connect(learner.token)
    assert (await client.call("presence", {"room_id": str(uuid.uuid4())}))["error"]["type"] == (
        "not-joined"
    )
    live.clock.advance(minutes=31)
    answer = await client.call("presence", {"room_id": str(uuid.uuid4())})
    assert answer["error"]["type"] == "token-expired"


async def test_a_token_revoked_while_connected_can_no_longer_send(
    live: Live, connect: Connect
) -> None:
    course_id, _, (ada,) = await live.classroom(learners=1)
    client = await connect(ada.token)
    room_id = (await client.join(course_id=course_id))["room"]["id"]
    claims = live.runtime.tokens.decode_access(ada.token, now=live.clock.now())
    # What signing out does to the token.
    await live.runtime.cache.set(DENIED_JTI_PREFIX + claims.jti, b"1", ttl=3600)
    refused = await client.send(room_id, "still me?")
    assert refused["error"] == {"type": "invalid-token", "detail": "The access token was revoked."}
