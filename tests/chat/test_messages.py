"""Sending, idempotent retries, malformed payloads, history paging, typing and presence."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from sqlalchemy import delete, func, select

from lyceum.models.chat import ChatMessage
from lyceum.models.courses import Course
from tests.chat.conftest import Connect
from tests.chat.helpers import ChatClient, Live, Member


async def stored_count(live: Live, room_id: str) -> int:
    async with live.runtime.database.sessionmaker() as session:
        query = select(func.count()).where(ChatMessage.room_id == uuid.UUID(room_id))
        return int((await session.execute(query)).scalar_one())


async def room_of(
    live: Live, connect: Connect, learners: int = 2
) -> tuple[str, Member, list[tuple[Member, ChatClient]]]:
    course_id, teacher, people = await live.classroom(learners)
    clients = [(person, await connect(person.token)) for person in people]
    room_id = ""
    for _, client in clients:
        room_id = (await client.join(course_id=course_id))["room"]["id"]
    return room_id, teacher, clients


async def test_a_message_reaches_everyone_in_the_room_and_is_stored(
    live: Live, connect: Connect
) -> None:
    room_id, _, [(ada, ada_client), (bob, bob_client)] = await room_of(live, connect)
    answer = await ada_client.send(room_id, "  Hello, class!  ", client_id="ada-1")
    assert answer["ok"] is True and answer["duplicate"] is False
    message = answer["message"]
    assert message["text"] == "Hello, class!"
    assert message["sender"] == {"id": str(ada.id), "full_name": ada.full_name}
    assert message["client_id"] == "ada-1" and message["room_id"] == room_id
    # Both of them hear it, the sender too (her other tabs need it).
    assert await bob_client.next("message") == message
    assert await ada_client.next("message") == message
    history = await live.http.get(f"/api/v1/chat/rooms/{room_id}/messages", headers=bob.headers)
    assert history.json() == {"items": [message], "next": None}


async def test_a_retry_with_the_same_client_id_is_not_stored_or_sent_twice(
    live: Live, connect: Connect
) -> None:
    room_id, _, [(_, ada_client), (_, bob_client)] = await room_of(live, connect)
    first = await ada_client.send(room_id, "only once", client_id="retry-me")
    second = await ada_client.send(room_id, "only once", client_id="retry-me")
    assert second["ok"] is True and second["duplicate"] is True
    assert second["message"] == first["message"]
    await bob_client.next("message")
    await bob_client.none("message")
    assert await stored_count(live, room_id) == 1
    reused = await ada_client.send(room_id, "something else", client_id="retry-me")
    assert reused["error"]["type"] == "client-id-reused"
    assert reused["error"]["errors"][0]["field"] == "client_id"
    assert await stored_count(live, room_id) == 1


async def test_concurrent_retries_store_one_message(live: Live, connect: Connect) -> None:
    room_id, _, [(_, ada_client), _] = await room_of(live, connect)
    payload = {"room_id": room_id, "client_id": "burst", "text": "same"}
    answers = await asyncio.gather(*(ada_client.call("message", payload) for _ in range(5)))
    assert all(answer["ok"] for answer in answers)
    assert sorted(answer["duplicate"] for answer in answers) == [False, True, True, True, True]
    assert len({answer["message"]["id"] for answer in answers}) == 1
    assert await stored_count(live, room_id) == 1


MALFORMED: list[tuple[Any, str]] = [
    ("just a string", "payload"),
    (42, "payload"),
    (["room_id"], "payload"),
    ({"client_id": "x", "text": "hi"}, "room_id"),
    ({"room_id": "not-a-uuid", "client_id": "x", "text": "hi"}, "room_id"),
    ({"room_id": "{room}", "client_id": 7, "text": "hi"}, "client_id"),
    ({"room_id": "{room}", "client_id": "x", "text": ["hi"]}, "text"),
    ({"room_id": "{room}", "client_id": "x"}, "text"),
    ({"room_id": "{room}", "client_id": "", "text": "hi"}, "client_id"),
    ({"room_id": "{room}", "client_id": "x" * 65, "text": "hi"}, "client_id"),
    ({"room_id": "{room}", "client_id": "x", "text": "hi", "extra": True}, "extra"),
    ({"room_id": "{room}", "client_id": "x", "text": "nul\x00here"}, "text"),
    ({"room_id": "{room}", "client_id": "x", "text": "lone \ud800 surrogate"}, "text"),
    ({"room_id": "{room}", "client_id": "x\udfff", "text": "hi"}, "client_id"),
]


async def test_malformed_payloads_are_refused_naming_the_field(
    live: Live, connect: Connect
) -> None:
    room_id, _, [(_, ada_client)] = await room_of(live, connect, learners=1)
    for payload, field in MALFORMED:
        if isinstance(payload, dict) and payload.get("room_id") == "{room}":
            payload = {**payload, "room_id": room_id}
        answer = await ada_client.call("message", payload)
        assert answer["ok"] is False, payload
        assert answer["error"]["type"] == "validation-error", answer
        fields = [problem["field"] for problem in answer["error"]["errors"]]
        assert field in fields, (payload, fields)
    no_payload = await ada_client.call("message")
    assert no_payload["error"]["type"] == "validation-error"
    two_payloads = await ada_client.call("message", {"room_id": room_id}, {"text": "x"})
    assert two_payloads["error"]["type"] == "validation-error"
    join_both = await ada_client.call("join_room", {"room_id": room_id, "course_id": room_id})
    assert join_both["error"]["type"] == "validation-error"
    assert await stored_count(live, room_id) == 0
    # The connection is still good for real work.
    assert (await ada_client.send(room_id, "still here"))["ok"] is True


async def test_history_pages_newest_first_with_a_cursor(live: Live, connect: Connect) -> None:
    room_id, _, [(ada, ada_client), _] = await room_of(live, connect)
    sent = [(await ada_client.send(room_id, f"message {n}"))["message"] for n in range(7)]
    url = f"/api/v1/chat/rooms/{room_id}/messages"

    first = (await live.http.get(url, params={"limit": 3}, headers=ada.headers)).json()
    assert [item["text"] for item in first["items"]] == ["message 6", "message 5", "message 4"]
    assert first["next"] == sent[4]["id"]
    second = (
        await live.http.get(url, params={"limit": 3, "before": first["next"]}, headers=ada.headers)
    ).json()
    assert [item["text"] for item in second["items"]] == ["message 3", "message 2", "message 1"]
    last = (
        await live.http.get(url, params={"limit": 3, "before": second["next"]}, headers=ada.headers)
    ).json()
    assert [item["text"] for item in last["items"]] == ["message 0"]
    assert last["next"] is None

    foreign = await live.http.get(url, params={"before": str(uuid.uuid4())}, headers=ada.headers)
    assert foreign.status_code == 422
    assert foreign.json()["errors"][0]["field"] == "query.before"
    for bad in ({"limit": 0}, {"limit": 101}, {"before": "nope"}):
        response = await live.http.get(url, params=bad, headers=ada.headers)
        assert response.status_code == 422, bad


async def test_typing_reaches_the_others_only(live: Live, connect: Connect) -> None:
    room_id, _, [(ada, ada_client), (_, bob_client)] = await room_of(live, connect)
    assert await ada_client.call("typing", {"room_id": room_id}) == {"ok": True, "broadcast": True}
    event = await bob_client.next("typing")
    assert event == {
        "room_id": room_id,
        "user": {"id": str(ada.id), "full_name": ada.full_name},
        "typing": True,
    }
    # Saying the same again at once is not worth a broadcast to the whole room.
    repeat = await ada_client.call("typing", {"room_id": room_id, "typing": True})
    assert repeat == {"ok": True, "broadcast": False}
    await ada_client.call("typing", {"room_id": room_id, "typing": False})
    assert (await bob_client.next("typing"))["typing"] is False
    await bob_client.none("typing")
    await ada_client.none("typing")
    bad = await ada_client.call("typing", {"room_id": room_id, "typing": "yes"})
    assert bad["error"]["type"] == "validation-error"


async def test_presence_follows_joins_leaves_and_disconnects(live: Live, connect: Connect) -> None:
    course_id, _, (ada, bob) = await live.classroom()
    ada_client = await connect(ada.token)
    room_id = (await ada_client.join(course_id=course_id))["room"]["id"]
    assert (await ada_client.next("presence"))["online"] == [
        {"id": str(ada.id), "full_name": ada.full_name}
    ]

    bob_client = await connect(bob.token)
    joined = await bob_client.join(room_id=room_id)
    assert {person["id"] for person in joined["online"]} == {str(ada.id), str(bob.id)}
    event = await ada_client.next("presence")
    assert event["user_id"] == str(bob.id) and event["status"] == "online"
    assert len(event["online"]) == 2

    # A second tab of Bob's changes nothing others can see.
    bob_tab = await connect(bob.token)
    await bob_tab.join(room_id=room_id)
    await ada_client.none("presence")
    await bob_tab.close()
    await ada_client.none("presence")
    asked = await ada_client.call("presence", {"room_id": room_id})
    assert len(asked["online"]) == 2

    await bob_client.call("leave_room", {"room_id": room_id})
    event = await ada_client.next("presence")
    assert (event["user_id"], event["status"]) == (str(bob.id), "offline")
    assert [person["id"] for person in event["online"]] == [str(ada.id)]

    await bob_client.join(room_id=room_id)
    assert (await ada_client.next("presence"))["status"] == "online"
    await bob_client.close()
    event = await ada_client.next("presence")
    assert (event["user_id"], event["status"]) == (str(bob.id), "offline")
    rest = await live.http.get(f"/api/v1/chat/rooms/{room_id}/presence", headers=ada.headers)
    assert rest.json() == {
        "room_id": room_id,
        "online": [{"id": str(ada.id), "full_name": ada.full_name}],
    }


async def test_a_room_deleted_meanwhile_refuses_its_messages_and_spares_others(
    live: Live, connect: Connect
) -> None:
    gone_course, _, (ada,) = await live.classroom(learners=1)
    kept_course, _, (bob,) = await live.classroom(learners=1)
    ada_client, bob_client = await connect(ada.token), await connect(bob.token)
    gone_room = (await ada_client.join(course_id=gone_course))["room"]["id"]
    kept_room = (await bob_client.join(course_id=kept_course))["room"]["id"]
    async with live.runtime.database.engine.begin() as conn:
        await conn.execute(delete(Course).where(Course.id == uuid.UUID(gone_course)))
    # Sent together, they may share one INSERT: the bad row must not sink the good one.
    refused, stored = await asyncio.gather(
        ada_client.send(gone_room, "hello?"), bob_client.send(kept_room, "hello!")
    )
    assert refused["error"] == {"type": "not-found", "detail": "No such chat room."}
    assert stored["ok"] is True
    assert await stored_count(live, kept_room) == 1
