"""What connecting and joining a room cost the database, counted: after a deploy every
socket of every class reconnects and joins again at once. A connect reads the account
and its login session in one statement outside a transaction (no BEGIN and COMMIT); a
join of a course room that exists reads the account, the course with the caller's roles
and the room, adds the membership, and reads the room's row (its course's title, the
caller's unread count, its last message) in one statement."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from fastapi.routing import APIRoute

from tests.chat.conftest import Connect
from tests.chat.helpers import Live


@contextmanager
def statements(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, bool]]]:
    """Every statement psycopg sends, with whether its connection was in autocommit
    (outside a transaction). The chat's periodic access check (`unnest`) is left out:
    it runs on its own schedule, not for the event under test."""
    sent: list[tuple[str, bool]] = []
    execute = psycopg.AsyncCursor.execute

    async def record(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        text = query.decode() if isinstance(query, bytes) else str(query)
        if "unnest" not in text:
            sent.append((" ".join(text.split()), self.connection.autocommit))
        return await execute(self, query, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(psycopg.AsyncCursor, "execute", record)
        yield sent


async def test_a_connect_reads_the_account_in_one_statement_outside_a_transaction(
    live: Live, connect: Connect, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, _, (ada,) = await live.classroom(learners=1)
    with statements(monkeypatch) as sent:
        client = await connect(ada.token)
    assert client.sio.connected
    assert len(sent) == 1, sent
    (query, autocommit), *_ = sent
    assert query.startswith("SELECT") and "users" in query
    assert autocommit, "the connect's read ran inside a transaction"


async def test_a_socket_handshake_is_not_matched_against_the_api_routes(
    live: Live, connect: Connect, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Socket.IO mount comes first: a handshake does not walk the API's routes."""
    _, _, (ada,) = await live.classroom(learners=1)
    tried: list[str] = []
    matches = APIRoute.matches

    def counted(self: APIRoute, scope: Any) -> Any:
        if scope["type"] == "websocket":
            tried.append(self.path)
        return matches(self, scope)

    monkeypatch.setattr(APIRoute, "matches", counted)
    client = await connect(ada.token)
    assert client.sio.connected
    assert tried == []


async def test_joining_an_existing_course_room_reads_its_row_in_one_statement(
    live: Live, connect: Connect, monkeypatch: pytest.MonkeyPatch
) -> None:
    course_id, _, (ada, bob) = await live.classroom()
    bob_client = await connect(bob.token)
    room = (await bob_client.join(course_id=course_id))["room"]
    for n in range(3):
        await bob_client.send(room["id"], f"hello {n}")
    ada_client = await connect(ada.token)

    with statements(monkeypatch) as sent:
        joined = await ada_client.join(course_id=course_id)

    queries = [query for query, _ in sent]
    assert not any(query.startswith("INSERT INTO chat_rooms") for query in queries), queries
    assert sum(query.startswith("INSERT INTO chat_members") for query in queries) == 1
    on_messages = [query for query in queries if "chat_messages" in query]
    assert len(on_messages) == 1, on_messages
    # The account, the course with the caller's roles, the room, the membership, the row.
    assert len(queries) == 5, queries
    # The one statement answers what the listing answers for the same room.
    listed = (await live.http.get("/api/v1/chat/rooms", headers=ada.headers)).json()
    (row,) = [item for item in listed["items"] if item["id"] == room["id"]]
    assert joined["room"] == row
    assert row["unread_count"] == 3 and row["last_message_at"] is not None
    assert row["title"] == room["title"]


async def test_the_first_join_creates_the_course_room_once(
    live: Live, connect: Connect, monkeypatch: pytest.MonkeyPatch
) -> None:
    course_id, _, (ada,) = await live.classroom(learners=1)
    client = await connect(ada.token)
    with statements(monkeypatch) as sent:
        first = await client.join(course_id=course_id)
        again = await client.join(course_id=course_id)
    assert first["room"]["id"] == again["room"]["id"]
    created = [query for query, _ in sent if query.startswith("INSERT INTO chat_rooms")]
    assert len(created) <= 1, created
    assert first["room"]["unread_count"] == 0 and first["room"]["last_message_at"] is None
