"""Rows written by a public event's own INSERT (`kit.events.write_with_event`): one
statement for the event and its companions, each told how many rows it wrote."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, cast

import pytest
from pydantic import BaseModel
from sqlalchemy import (
    BindParameter,
    Insert,
    Table,
    Text,
    Uuid,
    bindparam,
    insert,
    literal_column,
    select,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.kit import events
from lyceum.models.analytics import AnalyticsEventKey
from lyceum.models.identity import Role, User
from tests.assessments.helpers import statements


class Claimed(BaseModel):
    user_id: str
    key: str


def _claim(payload: BindParameter[Any]) -> Insert:
    """A key claimed for the event's user (any table would do)."""
    keys = cast(Table, AnalyticsEventKey.__table__)

    def member(name: str) -> Any:
        return payload.op("->>", return_type=Text())(literal_column(f"'{name}'"))

    return insert(keys).from_select(
        [keys.c.user_id, keys.c.client_event_id],
        select(sql_cast(member("user_id"), Uuid()), member("key")),
    )


def _public_claimed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Catalogue `test.claimed` (a `Claimed` payload) for the test's duration."""
    monkeypatch.setitem(
        events._catalogue,
        "test.claimed",
        events.CatalogueEntry("test.claimed", "1", Claimed, "A test event."),
    )


async def _new_user(session: AsyncSession, full_name: str) -> User:
    user = User(
        email=f"{uuid.uuid4().hex}@example.com",
        password_hash="x",
        full_name=full_name,
        role=Role.student,
    )
    session.add(user)
    await session.flush()
    return user


async def _claimed_key(session: AsyncSession, user: User) -> str | None:
    return await session.scalar(
        select(AnalyticsEventKey.client_event_id).where(AnalyticsEventKey.user_id == user.id)
    )


def _sent_outside_savepoints(sent: list[str]) -> list[str]:
    """What was sent, the tests' own savepoints left out."""
    return [s for s in sent if not s.startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))]


async def test_a_companion_row_is_written_by_the_event_statement(
    session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = await _new_user(session, "Companion")
    told: list[tuple[int, Mapping[str, Any]]] = []
    _public_claimed(monkeypatch)
    monkeypatch.setitem(
        events._companions,
        "test.claimed",
        {"claim": events.Companion(_claim, written=lambda n, data: told.append((n, data)))},
    )
    with statements(monkeypatch) as sent:
        await events.emit(session, "test.claimed", user_id=str(user.id), key="the key")
    sent = _sent_outside_savepoints(sent)
    assert len(sent) == 1 and "INSERT INTO events" in sent[0], sent
    assert told == [(1, {"user_id": str(user.id), "key": "the key"})]
    assert await _claimed_key(session, user) == "the key"


async def test_an_event_with_companions_must_be_public(
    session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An internal event has no row to write them with: emitting it is a programming
    error, not a fact silently lost."""
    monkeypatch.setitem(events._companions, "test.internal", {"claim": events.Companion(_claim)})
    with pytest.raises(RuntimeError, match="not a public event"):
        await events.emit(session, "test.internal", user_id=str(uuid.uuid4()), key="k")


# The emitter's own write, sent with the event (`kit.events.Alongside`): built once, as
# the statement's SQL is compiled once per statement object.
_users = cast(Table, User.__table__)
_RENAME = (
    update(_users)
    .where(_users.c.id == bindparam("along_user", type_=Uuid()))
    .values(full_name=bindparam("along_name"))
)


async def test_an_alongside_write_goes_in_the_event_statement(
    session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One statement writes the event row, its companions and the emitter's own write;
    what reacts to the event sees the write done."""
    user = await _new_user(session, "Before")
    seen: list[str | None] = []

    async def reaction(session: AsyncSession, **payload: Any) -> None:
        seen.append(await session.scalar(select(_users.c.full_name).where(_users.c.id == user.id)))

    _public_claimed(monkeypatch)
    monkeypatch.setitem(events._companions, "test.claimed", {"claim": events.Companion(_claim)})
    monkeypatch.setitem(events._reactions, "test.claimed", [reaction])
    with statements(monkeypatch) as sent:
        await events.emit(
            session,
            "test.claimed",
            alongside=events.Alongside(_RENAME, {"along_user": user.id, "along_name": "After"}),
            user_id=str(user.id),
            key="the key",
        )
    # The event's statement, then the reaction's read.
    event, read = _sent_outside_savepoints(sent)
    assert "INSERT INTO events" in event and read.startswith("SELECT"), sent
    assert "UPDATE users" in event and "INSERT INTO analytics_event_keys" in event
    assert seen == ["After"]
    assert await _claimed_key(session, user) == "the key"


async def test_an_alongside_write_needs_a_public_event_and_its_own_parameter_names(
    session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    write = events.Alongside(_RENAME, {"along_user": uuid.uuid4(), "along_name": "x"})
    with pytest.raises(RuntimeError, match="not a public event"):
        await events.emit(session, "test.internal", alongside=write, user_id="u", key="k")
    _public_claimed(monkeypatch)
    clashing = events.Alongside(_RENAME, {"event_id": uuid.uuid4(), "along_name": "x"})
    with pytest.raises(RuntimeError, match="reuses the event's parameters"):
        await events.emit(
            session, "test.claimed", alongside=clashing, user_id=str(uuid.uuid4()), key="k"
        )
