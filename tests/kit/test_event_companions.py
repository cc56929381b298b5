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


async def test_a_companion_row_is_written_by_the_event_statement(
    session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = User(
        email=f"{uuid.uuid4().hex}@example.com",
        password_hash="x",
        full_name="Companion",
        role=Role.student,
    )
    session.add(user)
    await session.flush()
    told: list[tuple[int, Mapping[str, Any]]] = []
    monkeypatch.setitem(
        events._catalogue,
        "test.claimed",
        events.CatalogueEntry("test.claimed", "1", Claimed, "A test event."),
    )
    monkeypatch.setitem(
        events._companions,
        "test.claimed",
        {"claim": events.Companion(_claim, written=lambda n, data: told.append((n, data)))},
    )
    with statements(monkeypatch) as sent:
        await events.emit(session, "test.claimed", user_id=str(user.id), key="the key")
    sent = [s for s in sent if not s.startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))]
    assert len(sent) == 1 and "INSERT INTO events" in sent[0], sent
    assert told == [(1, {"user_id": str(user.id), "key": "the key"})]
    found = await session.scalar(
        select(AnalyticsEventKey.client_event_id).where(AnalyticsEventKey.user_id == user.id)
    )
    assert found == "the key"


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
    user = User(
        email=f"{uuid.uuid4().hex}@example.com",
        password_hash="x",
        full_name="Before",
        role=Role.student,
    )
    session.add(user)
    await session.flush()
    seen: list[str | None] = []

    async def reaction(session: AsyncSession, **payload: Any) -> None:
        seen.append(await session.scalar(select(_users.c.full_name).where(_users.c.id == user.id)))

    monkeypatch.setitem(
        events._catalogue,
        "test.claimed",
        events.CatalogueEntry("test.claimed", "1", Claimed, "A test event."),
    )
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
    sent = [s for s in sent if not s.startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))]
    written = [s for s in sent if "INSERT INTO events" in s]
    assert len(written) == 1 and "UPDATE users" in written[0], sent
    assert "INSERT INTO analytics_event_keys" in written[0]
    assert seen == ["After"]
    claimed = await session.scalar(
        select(AnalyticsEventKey.client_event_id).where(AnalyticsEventKey.user_id == user.id)
    )
    assert claimed == "the key"


async def test_an_alongside_write_needs_a_public_event_and_its_own_parameter_names(
    session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    write = events.Alongside(_RENAME, {"along_user": uuid.uuid4(), "along_name": "x"})
    with pytest.raises(RuntimeError, match="not a public event"):
        await events.emit(session, "test.internal", alongside=write, user_id="u", key="k")
    monkeypatch.setitem(
        events._catalogue,
        "test.claimed",
        events.CatalogueEntry("test.claimed", "1", Claimed, "A test event."),
    )
    clashing = events.Alongside(_RENAME, {"event_id": uuid.uuid4(), "along_name": "x"})
    with pytest.raises(RuntimeError, match="reuses the event's parameters"):
        await events.emit(
            session, "test.claimed", alongside=clashing, user_id=str(uuid.uuid4()), key="k"
        )
