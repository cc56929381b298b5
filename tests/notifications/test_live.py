"""A new notification reaches its user's open sockets at once (after the commit), and
nobody else's; a rolled-back one reaches nobody."""

from __future__ import annotations

import asyncio

import pytest

from lyceum.kit.db import unit_of_work
from lyceum.kit.runtime import Runtime
from lyceum.models.notifications import Category
from lyceum.notifications.service import notify
from tests.chat.conftest import Connect, chat_server, connect, live  # noqa: F401 (fixtures)
from tests.chat.helpers import Live


class Boom(Exception):
    pass


async def tell(runtime: Runtime, user_id: object, title: str, *, fail: bool = False) -> None:
    async with runtime.database.sessionmaker() as session, unit_of_work(session):
        await notify(
            session,
            user_ids=[user_id],  # type: ignore[list-item]
            category=Category.grades,
            kind="test",
            title=title,
            body="8 of 10",
            url="/api/v1/courses",
            template="grade_released",
            context={},
        )
        if fail:
            raise Boom


async def test_a_new_notification_is_pushed_to_the_users_personal_room(
    live: Live,  # noqa: F811
    connect: Connect,  # noqa: F811
    runtime: Runtime,
) -> None:
    learner = await live.member(name="Ada Learner")
    other = await live.member(name="Bob Learner")
    mine = await connect(learner.token)
    second_device = await connect(learner.token)
    theirs = await connect(other.token)

    with pytest.raises(Boom):
        await tell(runtime, learner.id, "rolled back", fail=True)
    await tell(runtime, learner.id, "New grade")

    for client in (mine, second_device):
        event = await asyncio.wait_for(client.received["notification"].get(), 5)
        assert event["title"] == "New grade"  # the rolled-back one never came
        assert event["category"] == "grades" and event["read_at"] is None
    await asyncio.sleep(0.2)
    assert theirs.received["notification"].empty()
    listed = (await live.http.get("/api/v1/me/notifications", headers=learner.headers)).json()
    assert [item["id"] for item in listed["items"]] == [event["id"]]
