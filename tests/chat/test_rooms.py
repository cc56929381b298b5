"""Who may be in which room: a course's room for its enrolled learners, instructors and
admins; direct rooms for two people who share a course. Refusals name the reason and
leave the connection usable."""

from __future__ import annotations

import uuid

from lyceum.models.identity import Role
from tests.chat.conftest import Connect
from tests.chat.helpers import Live


async def test_members_join_their_course_room_by_course_or_room_id(
    live: Live, connect: Connect
) -> None:
    course_id, teacher, (ada, bob) = await live.classroom()
    admin = await live.member(Role.admin, "Root Admin")
    ada_client = await connect(ada.token)
    joined = await ada_client.join(course_id=course_id)
    room = joined["room"]
    assert room["kind"] == "course" and room["course_id"] == course_id
    assert room["title"].startswith("Course ") and room["peer"] is None
    assert joined["online"] == [{"id": str(ada.id), "full_name": ada.full_name}]
    for who in (bob, teacher, admin):
        client = await connect(who.token)
        again = await client.join(room_id=room["id"])
        assert again["room"]["id"] == room["id"]
    # The same room by the REST route, for the course's members.
    response = await live.http.get(f"/api/v1/chat/courses/{course_id}/room", headers=bob.headers)
    assert response.status_code == 200 and response.json()["id"] == room["id"]


async def test_outsiders_are_refused_and_their_connection_stays_usable(
    live: Live, connect: Connect
) -> None:
    course_id, teacher, (ada,) = await live.classroom(learners=1)
    draft_id = await live.course(teacher, publish=False)
    room_id = (await (await connect(ada.token)).join(course_id=course_id))["room"]["id"]
    stranger = await live.member(name="Eve Stranger")
    client = await connect(stranger.token)

    by_course = await client.call("join_room", {"course_id": course_id})
    assert by_course["ok"] is False
    assert by_course["error"]["type"] == "not-enrolled"
    by_room = await client.call("join_room", {"room_id": room_id})
    assert by_room["error"] == {"type": "not-found", "detail": "No such chat room."}
    draft = await client.call("join_room", {"course_id": draft_id})
    assert draft["error"]["type"] == "not-found"
    unknown = await client.call("join_room", {"room_id": str(uuid.uuid4())})
    assert unknown["error"]["type"] == "not-found"
    sent = await client.send(room_id, "let me in")
    assert sent["error"]["type"] == "not-joined"
    # Still connected and answering.
    assert client.sio.connected
    assert (await client.call("presence", {"room_id": room_id}))["error"]["type"] == "not-joined"
    history = await live.http.get(
        f"/api/v1/chat/rooms/{room_id}/messages", headers=stranger.headers
    )
    assert history.status_code == 404
    assert history.headers["content-type"] == "application/problem+json"


async def test_a_cancelled_enrollment_loses_the_room(live: Live, connect: Connect) -> None:
    course_id, _, (ada,) = await live.classroom(learners=1)
    room = (await (await connect(ada.token)).join(course_id=course_id))["room"]
    cancelled = await live.http.delete(
        f"/api/v1/courses/{course_id}/enrollments/me", headers=ada.headers
    )
    assert cancelled.status_code in {200, 204}, cancelled.text
    rejoin = await (await connect(ada.token)).call("join_room", {"room_id": room["id"]})
    assert rejoin["error"]["type"] == "not-found"
    listed = (await live.http.get("/api/v1/chat/rooms", headers=ada.headers)).json()
    assert listed["total"] == 0


async def test_direct_rooms_open_once_between_people_who_share_a_course(
    live: Live, connect: Connect
) -> None:
    _, teacher, (ada, bob) = await live.classroom()
    stranger = await live.member(name="Eve Stranger")

    opened = await live.http.post(
        "/api/v1/chat/rooms/direct", json={"user_id": str(bob.id)}, headers=ada.headers
    )
    assert opened.status_code == 201, opened.text
    room = opened.json()
    assert opened.headers["location"] == f"/api/v1/chat/rooms/{room['id']}"
    assert room["kind"] == "direct" and room["course_id"] is None
    assert room["peer"] == {"id": str(bob.id), "full_name": bob.full_name}
    assert room["title"] == bob.full_name
    # Either side asking again gets the same room.
    again = await live.http.post(
        "/api/v1/chat/rooms/direct", json={"user_id": str(ada.id)}, headers=bob.headers
    )
    assert again.status_code == 200 and again.json()["id"] == room["id"]
    assert again.json()["peer"]["id"] == str(ada.id)

    with_teacher = await live.http.post(
        "/api/v1/chat/rooms/direct", json={"user_id": str(teacher.id)}, headers=ada.headers
    )
    assert with_teacher.status_code == 201
    no_shared_course = await live.http.post(
        "/api/v1/chat/rooms/direct", json={"user_id": str(stranger.id)}, headers=ada.headers
    )
    assert no_shared_course.status_code == 404
    myself = await live.http.post(
        "/api/v1/chat/rooms/direct", json={"user_id": str(ada.id)}, headers=ada.headers
    )
    assert myself.status_code == 422
    assert myself.json()["errors"][0]["field"] == "user_id"

    ada_client, bob_client = await connect(ada.token), await connect(bob.token)
    await ada_client.join(room_id=room["id"])
    await bob_client.join(room_id=room["id"])
    sent = await ada_client.send(room["id"], "psst")
    assert sent["ok"], sent
    assert (await bob_client.next("message"))["text"] == "psst"
    # The teacher shares the course, but not this conversation.
    teacher_client = await connect(teacher.token)
    peek = await teacher_client.call("join_room", {"room_id": room["id"]})
    assert peek["error"]["type"] == "not-found"


async def test_listing_shows_course_and_direct_rooms_with_unread_counts(
    live: Live, connect: Connect
) -> None:
    course_id, teacher, (ada, bob) = await live.classroom()
    other_course = await live.course(teacher)
    await live.enroll(other_course, ada)
    direct = (
        await live.http.post(
            "/api/v1/chat/rooms/direct", json={"user_id": str(bob.id)}, headers=ada.headers
        )
    ).json()

    # Course rooms exist before anyone opens them.
    listed = (await live.http.get("/api/v1/chat/rooms", headers=ada.headers)).json()
    assert listed["total"] == 3 and listed["page"] == 1
    assert {item["kind"] for item in listed["items"]} == {"course", "direct"}
    assert all(item["unread_count"] == 0 for item in listed["items"])

    bob_client = await connect(bob.token)
    course_room = (await bob_client.join(course_id=course_id))["room"]
    await bob_client.join(room_id=direct["id"])
    sent = [await bob_client.send(course_room["id"], f"hello {n}") for n in range(3)]
    await bob_client.send(direct["id"], "just you")

    listed = (await live.http.get("/api/v1/chat/rooms", headers=ada.headers)).json()
    unread = {item["id"]: item["unread_count"] for item in listed["items"]}
    assert unread[course_room["id"]] == 3 and unread[direct["id"]] == 1
    # Most recently active first.
    assert listed["items"][0]["id"] == direct["id"]
    assert listed["items"][0]["last_message_at"] is not None
    # Bob's own messages are not unread for him.
    bob_listed = (await live.http.get("/api/v1/chat/rooms", headers=bob.headers)).json()
    assert all(item["unread_count"] == 0 for item in bob_listed["items"])

    ada_client = await connect(ada.token)
    await ada_client.join(room_id=course_room["id"])
    marker = await ada_client.call(
        "read", {"room_id": course_room["id"], "message_id": sent[1]["message"]["id"]}
    )
    assert marker == {
        "ok": True,
        "room_id": course_room["id"],
        "last_read_message_id": sent[1]["message"]["id"],
        "unread_count": 1,
    }
    receipt = await bob_client.next("read")
    assert receipt["user_id"] == str(ada.id)
    # A marker never moves back.
    await ada_client.call(
        "read", {"room_id": course_room["id"], "message_id": sent[0]["message"]["id"]}
    )
    room = (
        await live.http.get(f"/api/v1/chat/rooms/{course_room['id']}", headers=ada.headers)
    ).json()
    assert room["unread_count"] == 1
    foreign = await ada_client.call(
        "read", {"room_id": course_room["id"], "message_id": str(uuid.uuid4())}
    )
    assert foreign["error"]["type"] == "not-found"

    paged = (await live.http.get("/api/v1/chat/rooms?size=2", headers=ada.headers)).json()
    assert paged["total"] == 3 and len(paged["items"]) == 2 and paged["pages"] == 2


async def test_leaving_a_room_stops_its_messages(live: Live, connect: Connect) -> None:
    course_id, _, (ada, bob) = await live.classroom()
    ada_client, bob_client = await connect(ada.token), await connect(bob.token)
    room_id = (await ada_client.join(course_id=course_id))["room"]["id"]
    await bob_client.join(room_id=room_id)
    left = await bob_client.call("leave_room", {"room_id": room_id})
    assert left == {"ok": True, "room_id": room_id}
    await ada_client.send(room_id, "anyone?")
    await bob_client.none("message")
    assert (await bob_client.call("leave_room", {"room_id": room_id}))["error"]["type"] == (
        "not-joined"
    )
    assert (await bob_client.send(room_id, "back"))["error"]["type"] == "not-joined"
