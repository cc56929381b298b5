"""Moderation: blocked words, the send rate limit, the size limit, deleting messages and
muting learners (over REST and Socket.IO), each refusal named and nothing stored."""

from __future__ import annotations

import pytest

from lyceum.config import Settings
from lyceum.models.identity import Role
from tests.chat.conftest import Connect
from tests.chat.helpers import ChatClient, Live, Member
from tests.chat.test_messages import room_of, stored_count


async def test_blocked_words_are_refused_whole_word_and_any_case(
    live: Live, connect: Connect, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "chat_blocked_words", ["darn", "heck no"])
    room_id, _, [(_, ada_client), (_, bob_client)] = await room_of(live, connect)
    for text in ("Well, DARN it", "Heck no!", "darn"):
        answer = await ada_client.send(room_id, text)
        assert answer["ok"] is False, text
        assert answer["error"]["type"] == "blocked-words"
        assert answer["error"]["errors"][0]["field"] == "text"
    # Words that merely contain a blocked one are fine.
    assert (await ada_client.send(room_id, "darning socks"))["ok"] is True
    assert (await bob_client.next("message"))["text"] == "darning socks"
    await bob_client.none("message")
    assert await stored_count(live, room_id) == 1


async def test_sends_beyond_the_rate_limit_are_refused(live: Live, connect: Connect) -> None:
    room_id, _, [(_, ada_client), (_, bob_client)] = await room_of(live, connect)
    answers = [await ada_client.send(room_id, f"flood {n}") for n in range(13)]
    assert [answer["ok"] for answer in answers] == [True] * 10 + [False] * 3
    refusal = answers[-1]["error"]
    assert refusal["type"] == "rate-limited"
    assert 1 <= refusal["retry_after"] <= 10
    assert "10/10 seconds" in refusal["detail"]
    assert await stored_count(live, room_id) == 10
    assert len([await bob_client.next("message") for _ in range(10)]) == 10
    await bob_client.none("message")
    # Others are not affected.
    assert (await bob_client.send(room_id, "my turn"))["ok"] is True


async def test_the_size_limit_holds_and_the_connection_survives(
    live: Live, connect: Connect, settings: Settings
) -> None:
    room_id, _, [(_, ada_client)] = await room_of(live, connect, learners=1)
    limit = settings.chat_message_max_chars
    too_long = await ada_client.send(room_id, "x" * (limit + 1))
    assert too_long["error"]["type"] == "message-too-long"
    assert str(limit) in too_long["error"]["detail"]
    blank = await ada_client.send(room_id, " \n\t ")
    assert blank["error"]["type"] == "validation-error"
    assert (await ada_client.send(room_id, "y" * limit))["ok"] is True
    # Far beyond the limit (but under the frame cap): still an answer, not a hang-up.
    huge = await ada_client.send(room_id, "z" * (limit * 4))
    assert huge["error"]["type"] == "message-too-long"
    assert ada_client.sio.connected
    assert await stored_count(live, room_id) == 1


async def joined(live: Live, connect: Connect, who: Member, room_id: str) -> ChatClient:
    client = await connect(who.token)
    await client.join(room_id=room_id)
    return client


async def test_instructors_delete_messages_and_everyone_hears_of_it(
    live: Live, connect: Connect
) -> None:
    room_id, teacher, [(ada, ada_client), (bob, bob_client)] = await room_of(live, connect)
    first = (await ada_client.send(room_id, "a rude remark"))["message"]
    second = (await ada_client.send(room_id, "a fine remark"))["message"]
    await bob_client.next("message")
    await bob_client.next("message")

    by_learner = await live.http.delete(f"/api/v1/chat/messages/{first['id']}", headers=bob.headers)
    assert by_learner.status_code == 403
    assert (await bob_client.call("delete_message", {"message_id": first["id"]}))["error"][
        "type"
    ] == "forbidden"

    deleted = await live.http.delete(
        f"/api/v1/chat/messages/{first['id']}", headers=teacher.headers
    )
    assert deleted.status_code == 204
    assert await bob_client.next("message_deleted") == {
        "room_id": room_id,
        "message_id": first["id"],
        "deleted_by": str(teacher.id),
    }
    history = (
        await live.http.get(f"/api/v1/chat/rooms/{room_id}/messages", headers=bob.headers)
    ).json()
    assert [item["id"] for item in history["items"]] == [second["id"]]
    again = await live.http.delete(f"/api/v1/chat/messages/{first['id']}", headers=teacher.headers)
    assert again.status_code == 404

    # Authors may take back their own, over the socket too.
    own = await ada_client.call("delete_message", {"message_id": second["id"]})
    assert own == {
        "ok": True,
        "room_id": room_id,
        "message_id": second["id"],
        "deleted_by": str(ada.id),
    }
    assert (await bob_client.next("message_deleted"))["message_id"] == second["id"]


async def test_muted_learners_cannot_send_until_the_mute_ends(live: Live, connect: Connect) -> None:
    room_id, teacher, [(ada, ada_client), (bob, bob_client)] = await room_of(live, connect)
    course_id = (await live.http.get(f"/api/v1/chat/rooms/{room_id}", headers=ada.headers)).json()[
        "course_id"
    ]
    mutes = f"/api/v1/chat/courses/{course_id}/mutes"

    muted = await live.http.put(
        f"{mutes}/{ada.id}", json={"minutes": 10, "reason": "cool off"}, headers=teacher.headers
    )
    assert muted.status_code == 201, muted.text
    assert muted.headers["location"] == f"{mutes}/{ada.id}"
    event = await bob_client.next("user_muted")
    assert event["user_id"] == str(ada.id) and event["reason"] == "cool off"
    assert event["muted_until"] == muted.json()["muted_until"]

    refused = await ada_client.send(room_id, "but I wanted to say")
    assert refused["error"]["type"] == "muted"
    assert "until" in refused["error"]["detail"]
    await bob_client.none("message")
    assert await stored_count(live, room_id) == 0
    listed = (await live.http.get(mutes, headers=teacher.headers)).json()
    assert [item["user_id"] for item in listed["items"]] == [str(ada.id)]

    # Muting again replaces the mute: 200.
    longer = await live.http.put(f"{mutes}/{ada.id}", json={"minutes": 20}, headers=teacher.headers)
    assert longer.status_code == 200

    live.clock.advance(minutes=21)
    assert (await ada_client.send(room_id, "I'm back"))["ok"] is True
    assert (await live.http.get(mutes, headers=teacher.headers)).json()["total"] == 0

    # Ada heard of both of her mutes.
    assert len(ada_client.drain("user_muted")) == 2
    # Over the socket, by the instructor; then lifted over REST.
    teacher_client = await joined(live, connect, teacher, room_id)
    by_socket = await teacher_client.call(
        "mute_user", {"room_id": room_id, "user_id": str(bob.id), "minutes": 5}
    )
    assert by_socket["ok"] is True and by_socket["mute"]["user_id"] == str(bob.id)
    assert (await ada_client.next("user_muted"))["user_id"] == str(bob.id)
    assert (await bob_client.send(room_id, "hm"))["error"]["type"] == "muted"
    lifted = await live.http.delete(f"{mutes}/{bob.id}", headers=teacher.headers)
    assert lifted.status_code == 204
    unmuted = await ada_client.next("user_unmuted")
    assert unmuted["user_id"] == str(bob.id) and unmuted["muted_until"] is None
    assert (await bob_client.send(room_id, "thanks"))["ok"] is True
    assert (await live.http.delete(f"{mutes}/{bob.id}", headers=teacher.headers)).status_code == 404


async def test_only_moderators_mute_and_only_learners_are_muted(
    live: Live, connect: Connect
) -> None:
    room_id, teacher, [(ada, ada_client), (bob, _)] = await room_of(live, connect)
    course_id = (await live.http.get(f"/api/v1/chat/rooms/{room_id}", headers=ada.headers)).json()[
        "course_id"
    ]
    by_learner = await ada_client.call(
        "mute_user", {"room_id": room_id, "user_id": str(bob.id), "minutes": 5}
    )
    assert by_learner["error"]["type"] == "forbidden"
    admin = await live.member(Role.admin, "Root Admin")
    mutes = f"/api/v1/chat/courses/{course_id}/mutes"
    teacher_muted = await live.http.put(
        f"{mutes}/{teacher.id}", json={"minutes": 5}, headers=admin.headers
    )
    assert teacher_muted.status_code == 404  # not a learner of the course
    stranger = await live.member(name="Eve Stranger")
    not_enrolled = await live.http.put(
        f"{mutes}/{stranger.id}", json={"minutes": 5}, headers=admin.headers
    )
    assert not_enrolled.status_code == 404
    for bad in ({"minutes": 0}, {"minutes": 60 * 24 * 31}, {"minutes": "5"}, {}):
        response = await live.http.put(f"{mutes}/{bob.id}", json=bad, headers=teacher.headers)
        assert response.status_code == 422, bad
    bad_socket = await ada_client.call("mute_user", {"room_id": room_id, "minutes": 5})
    assert bad_socket["error"]["type"] == "validation-error"
