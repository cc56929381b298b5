"""Access that ends reaches open sockets within moments, not when the token expires:
a signed-out session (logout, a revoked device, a password change, a replayed refresh
token) and a deactivated account end their sockets (`signed_out`, then the server hangs
up); a learner who leaves a course leaves its room (`removed_from_room`). What no
announcement reached is caught by the gateway's periodic re-check."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import socketio
from sqlalchemy import func, select, update

from lyceum.chat.gateway import ChatGateway
from lyceum.kit.security import hash_password
from lyceum.models.chat import ChatMessage
from lyceum.models.courses import Enrollment, EnrollmentStatus
from lyceum.models.identity import LoginSession, Role, User
from tests.chat.conftest import ChatServer, Connect
from tests.chat.helpers import ChatClient, Live
from tests.identity.helpers import PASSWORD, login


async def messages_in(live: Live, room_id: str) -> int:
    async with live.runtime.database.sessionmaker() as session:
        count = await session.scalar(
            select(func.count()).select_from(ChatMessage).where(ChatMessage.room_id == room_id)
        )
    return int(count or 0)


async def signed_out(client: ChatClient, kind: str = "session-ended") -> None:
    event = await client.next("signed_out")
    assert event["type"] == kind, event
    await client.disconnected()


async def test_logout_ends_that_sessions_socket_and_no_other(live: Live, connect: Connect) -> None:
    course_id, _, (ada, bob) = await live.classroom()
    ada_phone = await live.another_login(ada)
    ada_laptop_client = await connect(ada.token)
    ada_phone_client = await connect(ada_phone.token)
    bob_client = await connect(bob.token)
    room_id = (await bob_client.join(course_id=course_id))["room"]["id"]
    await ada_laptop_client.join(course_id=course_id)
    await ada_phone_client.join(course_id=course_id)
    bob_client.drain("presence")

    logout = await live.http.post("/api/v1/auth/logout", headers=ada.headers)
    assert logout.status_code == 204, logout.text

    await signed_out(ada_laptop_client)
    # Her phone is another login: it stays, and so does her presence in the room.
    assert ada_phone_client.sio.connected
    sent = await ada_phone_client.send(room_id, "still here on my phone")
    assert sent["ok"], sent
    assert (await bob_client.next("message"))["text"] == "still here on my phone"
    assert [p["id"] for p in (await bob_client.call("presence", {"room_id": room_id}))["online"]]

    # Signing out the phone's session from the laptop's list (revoking a device).
    other = await live.http.delete(
        f"/api/v1/auth/sessions/{ada_phone.session_id}", headers=ada_phone.headers
    )
    assert other.status_code == 204, other.text
    await signed_out(ada_phone_client)
    offline = await bob_client.next("presence")
    assert (offline["user_id"], offline["status"]) == (str(ada.id), "offline")
    assert await messages_in(live, room_id) == 1


async def test_a_password_change_signs_out_every_other_socket(live: Live, connect: Connect) -> None:
    _, email = await live.registered()
    here = await login(live.http, email)
    there = await login(live.http, email)
    here_client = await connect(here["access_token"])
    there_client = await connect(there["access_token"])
    changed = await live.http.post(
        "/api/v1/auth/password/change",
        json={"current_password": PASSWORD, "new_password": "an entirely new passphrase"},
        headers={"Authorization": f"Bearer {here['access_token']}"},
    )
    assert changed.status_code == 204, changed.text
    await signed_out(there_client)
    assert here_client.sio.connected  # the session that changed it stays
    assert (await here_client.call("presence", {"room_id": str(uuid.uuid4())}))["error"][
        "type"
    ] == "not-joined"


async def test_a_replayed_refresh_token_ends_the_familys_socket(
    live: Live, connect: Connect
) -> None:
    _, email = await live.registered()
    tokens = await login(live.http, email)
    client = await connect(tokens["access_token"])
    first = await live.http.post(
        "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert first.status_code == 200, first.text
    replay = await live.http.post(
        "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert replay.status_code == 401, replay.text
    await signed_out(client)


@pytest.mark.parametrize("how", ["deactivated", "deleted"])
async def test_a_closed_account_loses_every_socket(live: Live, connect: Connect, how: str) -> None:
    course_id, _, (ada, bob) = await live.classroom()
    admin = await live.member(Role.admin, "Root Admin")
    tabs = [await connect(ada.token), await connect((await live.another_login(ada)).token)]
    bob_client = await connect(bob.token)
    room_id = (await bob_client.join(course_id=course_id))["room"]["id"]
    await tabs[0].join(course_id=course_id)
    if how == "deactivated":
        response = await live.http.patch(
            f"/api/v1/users/{ada.id}", json={"is_active": False}, headers=admin.headers
        )
        assert response.status_code == 200, response.text
    else:
        # Deleting asks for the password again: give the test's account one.
        async with live.runtime.database.engine.begin() as conn:
            await conn.execute(
                update(User)
                .where(User.id == ada.id)
                .values(password_hash=await hash_password(PASSWORD))
            )
        response = await live.http.request(
            "DELETE", "/api/v1/users/me", json={"password": PASSWORD}, headers=ada.headers
        )
        assert response.status_code == 204, response.text
    for tab in tabs:
        await signed_out(tab, "account-inactive")
    online = [p["id"] for p in (await bob_client.call("presence", {"room_id": room_id}))["online"]]
    assert online == [str(bob.id)]


async def test_leaving_a_course_leaves_its_room_on_open_sockets(
    live: Live, connect: Connect
) -> None:
    course_id, _, (ada, bob) = await live.classroom()
    ada_client = await connect(ada.token)
    bob_client = await connect(bob.token)
    room_id = (await ada_client.join(course_id=course_id))["room"]["id"]
    await bob_client.join(course_id=course_id)
    ada_client.drain("presence")
    bob_client.drain("presence")

    left = await live.http.delete(
        f"/api/v1/courses/{course_id}/enrollments/me", headers=ada.headers
    )
    assert left.status_code == 204, left.text
    removed = await ada_client.next("removed_from_room")
    assert removed["room_id"] == room_id and removed["type"] == "not-a-member"
    offline = await bob_client.next("presence")
    assert (offline["user_id"], offline["status"]) == (str(ada.id), "offline")

    refused = await ada_client.send(room_id, "am I still in?")
    assert refused["error"]["type"] == "not-joined"
    rejoin = await ada_client.call("join_room", {"course_id": course_id})
    assert rejoin["error"]["type"] == "not-enrolled"
    # She no longer hears the room; the connection itself is still hers.
    await bob_client.send(room_id, "only Bob here")
    await ada_client.none("message")
    assert ada_client.sio.connected
    assert await messages_in(live, room_id) == 1


async def test_the_periodic_check_catches_what_no_announcement_said(
    live: Live, connect: Connect, chat_server: ChatServer
) -> None:
    """A session revoked and an enrollment cancelled behind the API's back (another
    tool, a replica whose announcement was lost): the next re-check acts on both."""
    gateway: ChatGateway = chat_server.app.state.chat
    course_id, _, (ada, bob) = await live.classroom()
    ada_client = await connect(ada.token)
    bob_client = await connect(bob.token)
    room_id = (await bob_client.join(course_id=course_id))["room"]["id"]
    await ada_client.join(course_id=course_id)
    async with live.runtime.database.engine.begin() as conn:
        await conn.execute(
            update(LoginSession)
            .where(LoginSession.id == ada.session_id)
            .values(revoked_at=func.now(), revoked_reason="test")
        )
        await conn.execute(
            update(Enrollment)
            .where(Enrollment.user_id == bob.id)
            .values(status=EnrollmentStatus.cancelled)
        )
    await gateway.recheck_access()
    await signed_out(ada_client)
    removed = await bob_client.next("removed_from_room")
    assert removed["room_id"] == room_id
    assert bob_client.sio.connected


async def test_an_unverified_account_cannot_connect(live: Live) -> None:
    learner = await live.member()
    async with live.runtime.database.engine.begin() as conn:
        await conn.execute(update(User).where(User.id == learner.id).values(email_verified_at=None))
    client = ChatClient()
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(live.url, learner.token)
    refusal: dict[str, Any] = client.refusal
    assert refusal["data"]["type"] == "email-not-verified"
