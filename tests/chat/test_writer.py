"""The message writer's group commit: what queues up together is stored in one INSERT,
each row on its own terms (stored, a retry, muted, or refused alone)."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import psycopg
import pytest
from sqlalchemy import func, select

from lyceum.chat.service import PendingMessage, Sender
from lyceum.chat.writer import MessageWriter
from lyceum.kit.errors import NotFound
from lyceum.models.chat import ChatMessage, ChatMute, ChatRoom, RoomKind
from tests.chat.helpers import Live


def pending(
    room_id: uuid.UUID, sender: Sender, client_id: str, course_id: uuid.UUID | None
) -> PendingMessage:
    return PendingMessage(
        id=uuid.uuid4(),
        room_id=room_id,
        sender=sender,
        client_id=client_id,
        text=f"text of {client_id}",
        mute_course_id=course_id,
    )


async def test_one_batch_stores_each_row_on_its_own_terms(live: Live) -> None:
    course_id, teacher, (ada, bob) = await live.classroom()
    course = uuid.UUID(course_id)
    async with live.runtime.database.sessionmaker() as session:
        room = ChatRoom(kind=RoomKind.course, course_id=course)
        session.add(room)
        session.add(
            ChatMute(
                course_id=course,
                user_id=bob.id,
                muted_until=live.clock.now() + dt.timedelta(minutes=5),
                muted_by_id=teacher.id,
                reason="",
            )
        )
        await session.commit()
    writer = MessageWriter(lambda: live.runtime.database, live.clock.now)
    ada_sender, bob_sender = Sender(ada.id, ada.full_name), Sender(bob.id, bob.full_name)
    batch = [
        pending(room.id, ada_sender, "one", course),
        pending(room.id, ada_sender, "two", course),
        pending(room.id, ada_sender, "two", course),  # the same client_id again
        pending(room.id, bob_sender, "muted", course),
        pending(uuid.uuid4(), ada_sender, "nowhere", None),  # no such room
    ]
    try:
        # Queued before the writer runs: they share one INSERT, then the bad row makes
        # the writer store them one by one.
        results = await asyncio.gather(
            *(writer.write(message) for message in batch), return_exceptions=True
        )
    finally:
        await writer.close()
    one, two, two_again, muted, nowhere = results
    assert not isinstance(one, BaseException) and one is not None and one.id == batch[0].id
    assert not isinstance(two, BaseException) and two is not None
    assert two_again is None and muted is None
    assert isinstance(nowhere, NotFound)
    async with live.runtime.database.sessionmaker() as session:
        count = await session.scalar(
            select(func.count()).select_from(ChatMessage).where(ChatMessage.room_id == room.id)
        )
    assert count == 2


async def test_a_clean_batch_is_one_insert(live: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    course_id, _, (ada,) = await live.classroom(learners=1)
    async with live.runtime.database.sessionmaker() as session:
        room = ChatRoom(kind=RoomKind.course, course_id=uuid.UUID(course_id))
        session.add(room)
        await session.commit()
    writer = MessageWriter(lambda: live.runtime.database, live.clock.now)
    sizes: list[int] = []
    insert = writer._insert

    async def counting(batch: list[PendingMessage]) -> object:
        sizes.append(len(batch))
        return await insert(batch)

    monkeypatch.setattr(writer, "_insert", counting)
    sender = Sender(ada.id, ada.full_name)
    try:
        first = await writer.write(pending(room.id, sender, "alone", None))
        many = await asyncio.gather(
            *(writer.write(pending(room.id, sender, f"m{n}", None)) for n in range(20))
        )
    finally:
        await writer.close()
    assert first is not None and all(stored is not None for stored in many)
    assert sizes == [1, 20]
    assert len({stored.seq for stored in many if stored}) == 20


async def test_a_lost_connection_fails_one_batch_then_the_writer_reconnects(live: Live) -> None:
    course_id, _, (ada,) = await live.classroom(learners=1)
    async with live.runtime.database.sessionmaker() as session:
        room = ChatRoom(kind=RoomKind.course, course_id=uuid.UUID(course_id))
        session.add(room)
        await session.commit()
    writer = MessageWriter(lambda: live.runtime.database, live.clock.now)
    sender = Sender(ada.id, ada.full_name)
    try:
        assert await writer.write(pending(room.id, sender, "before", None)) is not None
        assert writer._driver is not None
        backend = writer._driver.info.backend_pid
        async with live.runtime.database.sessionmaker() as session:
            await session.execute(select(func.pg_terminate_backend(backend)))
        with pytest.raises(psycopg.OperationalError):
            await writer.write(pending(room.id, sender, "lost", None))
        after = await writer.write(pending(room.id, sender, "after", None))
    finally:
        await writer.close()
    assert after is not None
    assert writer._driver is None


async def test_any_text_is_stored_as_sent(live: Live) -> None:
    course_id, _, (ada,) = await live.classroom(learners=1)
    async with live.runtime.database.sessionmaker() as session:
        room = ChatRoom(kind=RoomKind.course, course_id=uuid.UUID(course_id))
        session.add(room)
        await session.commit()
    writer = MessageWriter(lambda: live.runtime.database, live.clock.now)
    sender = Sender(ada.id, ada.full_name)
    texts = [
        'quotes " and \\\\ backslashes \\\\"',
        "{braces}, [brackets]",
        "line\nbreak\ttab",
        "日本語 ✓ 😀",
    ]
    batch = [
        PendingMessage(
            id=uuid.uuid4(),
            room_id=room.id,
            sender=sender,
            client_id=f'odd "id" \\\\ {n}',
            text=text,
            mute_course_id=None,
        )
        for n, text in enumerate(texts)
    ]
    try:
        stored = await asyncio.gather(*(writer.write(message) for message in batch))
    finally:
        await writer.close()
    assert all(row is not None for row in stored)
    async with live.runtime.database.sessionmaker() as session:
        rows = (
            await session.execute(
                select(ChatMessage.id, ChatMessage.client_id, ChatMessage.text).where(
                    ChatMessage.room_id == room.id
                )
            )
        ).all()
    assert {(row.id, row.client_id, row.text) for row in rows} == {
        (message.id, message.client_id, message.text) for message in batch
    }
