"""Two real `lyceum serve` processes on one database and one Redis: a room spans both
(messages, presence, moderation broadcasts), the send rate limit counts across them, and
a sign-out or an unenrollment through one reaches a socket on the other."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lyceum.models.identity import Role
from tests.chat.conftest import Connect
from tests.chat.helpers import ChatClient, Live, Member, mint
from tests.conftest import TEST_SECRET
from tests.support.servers import free_port, start_lyceum, stop, wait_until_healthy

pytestmark = [pytest.mark.redis, pytest.mark.slow]

REPLICA_RATE_LIMIT = "5/10 seconds"


@pytest.fixture
def replicas(
    redis_url: str, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[str]]:
    data_dir = tmp_path_factory.mktemp("replicas")
    env = {
        "ENVIRONMENT": "test",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": TEST_SECRET,
        "LYCEUM_DATA_DIR": str(data_dir),
        "LOG_LEVEL": "WARNING",
        "CHAT_RATE_LIMIT": REPLICA_RATE_LIMIT,
    }
    ports = [free_port(), free_port()]
    logs = [data_dir / f"replica-{index}.log" for index in range(2)]
    processes = [start_lyceum(env, port, log) for port, log in zip(ports, logs, strict=True)]
    try:
        for port, process, log in zip(ports, processes, logs, strict=True):
            try:
                wait_until_healthy(f"http://127.0.0.1:{port}", "/health/live", 90, process)
            except Exception:
                print(Path(log).read_text())
                raise
        yield [f"http://127.0.0.1:{port}" for port in ports]
    finally:
        for process in processes:
            stop(process)


def fresh_token(live: Live, who: Member, role: Role = Role.student) -> str:
    # The replicas run on the real clock, not the in-process server's frozen one.
    return mint(
        live.runtime.tokens, who.id, role, dt.datetime.now(dt.UTC), session_id=who.session_id
    )


# One test for both behaviours: a pair of replicas is the expensive part, and under
# xdist a module fixture would start a pair on every worker that runs a test here.
async def test_two_replicas_share_rooms_presence_and_the_rate_limit(
    live: Live, connect: Connect, replicas: list[str]
) -> None:
    await a_room_spans_both_replicas(live, connect, replicas)
    await the_send_rate_limit_counts_across_replicas(live, connect, replicas)
    await revocations_on_one_replica_reach_sockets_on_the_other(live, connect, replicas)


async def a_room_spans_both_replicas(live: Live, connect: Connect, replicas: list[str]) -> None:
    first, second = replicas
    course_id, teacher, (ada, bob) = await live.classroom()
    ada_client: ChatClient = await connect(fresh_token(live, ada), url=first)
    bob_client: ChatClient = await connect(fresh_token(live, bob), url=second)

    room_id = (await ada_client.join(course_id=course_id))["room"]["id"]
    await ada_client.next("presence")
    joined = await bob_client.join(course_id=course_id)
    assert joined["room"]["id"] == room_id
    # Presence lives in Redis: the second replica sees who the first one holds.
    assert {person["id"] for person in joined["online"]} == {str(ada.id), str(bob.id)}
    arrived = await ada_client.next("presence")
    assert (arrived["user_id"], arrived["status"]) == (str(bob.id), "online")

    sent = await ada_client.send(room_id, "hello from replica one")
    assert sent["ok"], sent
    assert await bob_client.next("message") == sent["message"]
    assert await ada_client.next("message") == sent["message"]  # her own, back
    reply = await bob_client.send(room_id, "hello from replica two")
    assert await ada_client.next("message") == reply["message"]
    await bob_client.call("typing", {"room_id": room_id})
    assert (await ada_client.next("typing"))["user"]["id"] == str(bob.id)

    # Moderation through the other replica's REST API reaches the first one's sockets.
    teacher_headers = {"Authorization": f"Bearer {fresh_token(live, teacher, Role.instructor)}"}
    async with httpx.AsyncClient(base_url=second) as http:
        deleted = await http.delete(
            f"/api/v1/chat/messages/{sent['message']['id']}", headers=teacher_headers
        )
    assert deleted.status_code == 204, deleted.text
    assert (await ada_client.next("message_deleted"))["message_id"] == sent["message"]["id"]

    await bob_client.close()
    left = await ada_client.next("presence")
    assert (left["user_id"], left["status"]) == (str(bob.id), "offline")
    assert [person["id"] for person in left["online"]] == [str(ada.id)]


async def the_send_rate_limit_counts_across_replicas(
    live: Live, connect: Connect, replicas: list[str]
) -> None:
    course_id, _, (ada,) = await live.classroom(learners=1)
    token = fresh_token(live, ada)
    tabs = [await connect(token, url=replicas[0]), await connect(token, url=replicas[1])]
    room_id = ""
    for tab in tabs:
        room_id = (await tab.join(course_id=course_id))["room"]["id"]
    answers = [await tabs[n % 2].send(room_id, f"burst {n}") for n in range(8)]
    accepted = [answer for answer in answers if answer["ok"]]
    assert len(accepted) == 5
    assert {answer["error"]["type"] for answer in answers if not answer["ok"]} == {"rate-limited"}


async def revocations_on_one_replica_reach_sockets_on_the_other(
    live: Live, connect: Connect, replicas: list[str]
) -> None:
    """Leaving a course and signing out through one replica's API act on a socket held
    by the other one, announced through Redis."""
    first, second = replicas
    course_id, _, (ada,) = await live.classroom(learners=1)
    token = fresh_token(live, ada)
    client: ChatClient = await connect(token, url=first)
    room_id = (await client.join(course_id=course_id))["room"]["id"]
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=second) as http:
        left = await http.delete(f"/api/v1/courses/{course_id}/enrollments/me", headers=headers)
        assert left.status_code == 204, left.text
        assert (await client.next("removed_from_room"))["room_id"] == room_id
        assert (await client.send(room_id, "still in?"))["error"]["type"] == "not-joined"

        signed_out = await http.post("/api/v1/auth/logout", headers=headers)
        assert signed_out.status_code == 204, signed_out.text
    assert (await client.next("signed_out"))["type"] == "session-ended"
    await client.disconnected()
