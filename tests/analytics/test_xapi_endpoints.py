"""`GET /analytics/xapi/statements`: pages that neither skip nor repeat a statement
(also while events keep arriving), the `since`/`until`/`course` filters, and who reads
whose statements (learners their own, instructors their courses', admins all)."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import Numeric, Text, cast, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from lyceum.analytics.partition_repository import ensure_partitions
from lyceum.analytics.xapi_repository import (
    StatementFilter,
    StatementScope,
    horizon,
    statement_events,
)
from lyceum.kit.runtime import Runtime
from lyceum.models.analytics import AnalyticsEvent
from lyceum.models.identity import Role
from tests.analytics.test_authorization_matrix import XAPI_CALLERS, XAPI_ROWS
from tests.courses.test_courses import published
from tests.identity.helpers import Account, account
from tests.support.fake_lrs import check_statement

API = "/api/v1"
FEED = API + "/analytics/xapi/statements"
START = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1)
# A transaction long finished: rows written inside a test's own (never committed)
# transaction carry it, so the feed, which lists only rows of finished transactions,
# treats them as it treats any committed row (the horizon itself is tested below with
# rows really committed by other connections).
FINISHED_TX = "3"
HORIZON_WAIT_SECONDS = 60.0


def event_values(
    user_id: uuid.UUID,
    course_id: uuid.UUID | None,
    *,
    second: int,
    verb: str = "viewed",
    object_type: str = "course",
    **extra: Any,
) -> dict[str, Any]:
    """An `analytics_events` row received `second` seconds after START."""
    received = START + dt.timedelta(seconds=second)
    return {
        "event_id": uuid.uuid4(),
        "user_id": user_id,
        "course_id": course_id,
        "lesson_id": None,
        "source": "client",
        "verb": verb,
        "object_type": object_type,
        "object_id": course_id,
        "occurred_at": received - dt.timedelta(seconds=1),
        "received_at": received,
        **extra,
    }


async def insert_events(
    db: AsyncConnection | AsyncSession,
    rows: Sequence[dict[str, Any]],
    *,
    finished: bool = True,
    partitions: bool = True,
) -> list[uuid.UUID]:
    """Write the rows (their months' partitions made first, unless `partitions` is
    False: making them takes a lock held to the end of the transaction); `finished`
    stamps them with a finished transaction (see FINISHED_TX)."""
    if partitions:
        months = [row["occurred_at"] for row in rows]
        await ensure_partitions(db, min(months).date(), max(months).date())
    values = [{**row, "tx": FINISHED_TX} if finished else row for row in rows]
    await db.execute(insert(AnalyticsEvent), values)
    return [row["event_id"] for row in rows]


@dataclass
class World:
    teacher: Account
    co_teacher: Account
    other_teacher: Account
    learner: Account
    classmate: Account
    outsider: Account
    admin: Account
    course: str
    other_course: str
    events: dict[str, list[str]]  # who -> their statement ids, in stored order


@pytest.fixture
async def world(client: httpx.AsyncClient, connection: AsyncConnection) -> World:
    teacher = await account(client, connection, role=Role.instructor, prefix="teacher")
    co_teacher = await account(client, connection, role=Role.instructor, prefix="co")
    other_teacher = await account(client, connection, role=Role.instructor, prefix="oi")
    learner = await account(client, connection, prefix="learner")
    classmate = await account(client, connection, prefix="classmate")
    outsider = await account(client, connection, prefix="outsider")
    admin = await account(client, connection, role=Role.admin, prefix="admin")
    course, _ = await published(client, teacher)
    other_course, _ = await published(client, other_teacher)
    added = await client.post(
        f"{API}/courses/{course['id']}/instructors",
        json={"user_id": str(co_teacher.id)},
        headers=teacher.headers,
    )
    assert added.status_code == 204, added.text
    course_id, other_id = uuid.UUID(course["id"]), uuid.UUID(other_course["id"])
    plan = [
        (learner, course_id),
        (classmate, course_id),
        (learner, course_id),
        (outsider, other_id),
        (learner, other_id),
        (classmate, course_id),
        (outsider, other_id),
        (learner, course_id),
    ]
    rows = [event_values(who.id, where, second=index) for index, (who, where) in enumerate(plan)]
    ids = await insert_events(connection, rows)
    events: dict[str, list[str]] = {"all": [str(i) for i in ids]}
    for name, who in (("learner", learner), ("classmate", classmate), ("outsider", outsider)):
        events[name] = [str(i) for i, (w, _) in zip(ids, plan, strict=True) if w is who]
    events["course"] = [str(i) for i, (_, c) in zip(ids, plan, strict=True) if c == course_id]
    events["other_course"] = [str(i) for i, (_, c) in zip(ids, plan, strict=True) if c == other_id]
    return World(
        teacher,
        co_teacher,
        other_teacher,
        learner,
        classmate,
        outsider,
        admin,
        course["id"],
        other_course["id"],
        events,
    )


async def read_all(
    client: httpx.AsyncClient, who: Account, **params: Any
) -> tuple[list[dict[str, Any]], int]:
    """Every statement the feed gives `who`, following `more`; and the pages read."""
    statements: list[dict[str, Any]] = []
    response = await client.get(FEED, params=params, headers=who.headers)
    pages = 1
    while True:
        assert response.status_code == 200, response.text
        assert response.headers["x-experience-api-version"] == "1.0.3"
        body = response.json()
        assert set(body) == {"statements", "more"}
        statements += body["statements"]
        if not body["more"]:
            return statements, pages
        assert body["more"].startswith(FEED + "?cursor=")
        response = await client.get(body["more"], headers=who.headers)
        pages += 1


def _mine(statements: list[dict[str, Any]], world: World) -> list[str]:
    """The ids among `statements` of this test's events (the database may hold others')."""
    ours = set(world.events["all"])
    return [s["id"] for s in statements if s["id"] in ours]


async def test_pages_list_every_statement_once_in_stored_order(
    client: httpx.AsyncClient, world: World
) -> None:
    one_page, pages = await read_all(client, world.admin, course=world.course, limit=500)
    assert pages == 1
    for limit in (1, 2, 3):
        paged, pages = await read_all(client, world.admin, course=world.course, limit=limit)
        assert [s["id"] for s in paged] == [s["id"] for s in one_page]
        assert pages == -(-len(one_page) // limit)
    assert [s["id"] for s in one_page] == world.events["course"]
    for body in one_page:
        check_statement(body)
        assert body["actor"]["account"]["homePage"] == "http://lyceum.test"
    stored = [s["stored"] for s in one_page]
    assert stored == sorted(stored)


async def test_since_and_until_bound_the_stored_time(
    client: httpx.AsyncClient, world: World
) -> None:
    after = (START + dt.timedelta(seconds=2)).isoformat()
    until = (START + dt.timedelta(seconds=5)).isoformat()
    found, _ = await read_all(client, world.admin, since=after, until=until, limit=2)
    # since is exclusive, until inclusive (xAPI Communication 2.1.3)
    assert _mine(found, world) == world.events["all"][3:6]
    found, _ = await read_all(client, world.admin, since=after, course=world.other_course)
    assert _mine(found, world) == [
        i for i in world.events["other_course"] if world.events["all"].index(i) > 2
    ]
    bad = await client.get(FEED, params={"since": "yesterday"}, headers=world.admin.headers)
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "query.since"


async def test_learners_read_only_their_own_statements(
    client: httpx.AsyncClient, world: World
) -> None:
    found, _ = await read_all(client, world.learner, limit=2)
    assert [s["id"] for s in found] == world.events["learner"]
    assert {s["actor"]["account"]["name"] for s in found} == {str(world.learner.id)}
    in_course, _ = await read_all(client, world.learner, course=world.course)
    assert [s["id"] for s in in_course] == [
        i for i in world.events["learner"] if i in world.events["course"]
    ]
    # Another course's id, or one that does not exist, shows them nothing of anyone else's.
    elsewhere, _ = await read_all(client, world.classmate, course=world.other_course)
    assert elsewhere == []
    nowhere, _ = await read_all(client, world.classmate, course=str(uuid.uuid4()))
    assert nowhere == []


async def test_instructors_read_the_courses_they_teach(
    client: httpx.AsyncClient, world: World
) -> None:
    for teacher in (world.teacher, world.co_teacher):
        taught, _ = await read_all(client, teacher, limit=3)
        assert [s["id"] for s in taught] == world.events["course"]
        one, _ = await read_all(client, teacher, course=world.course)
        assert [s["id"] for s in one] == world.events["course"]
    refused = await client.get(
        FEED, params={"course": world.other_course}, headers=world.teacher.headers
    )
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    unknown = await client.get(
        FEED, params={"course": str(uuid.uuid4())}, headers=world.teacher.headers
    )
    assert unknown.status_code == 404
    other, _ = await read_all(client, world.other_teacher)
    assert _mine(other, world) == world.events["other_course"]


async def test_admins_read_everything(client: httpx.AsyncClient, world: World) -> None:
    found, _ = await read_all(client, world.admin, limit=4)
    assert _mine(found, world) == world.events["all"]
    one, _ = await read_all(client, world.admin, course=world.other_course)
    assert [s["id"] for s in one] == world.events["other_course"]


def _cursor(more: str) -> dict[str, Any]:
    token = more.split("cursor=", 1)[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    return decoded


def _forged(fields: dict[str, Any]) -> str:
    raw = json.dumps(fields).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


async def test_a_cursor_is_checked_and_grants_nothing(
    client: httpx.AsyncClient, world: World
) -> None:
    first = await client.get(
        FEED, params={"course": world.course, "limit": 1}, headers=world.learner.headers
    )
    more = first.json()["more"]
    # Pointed at another course, a learner's cursor still lists only their own.
    forged = {**_cursor(more), "c": world.other_course}
    answer = await client.get(
        FEED, params={"cursor": _forged(forged)}, headers=world.learner.headers
    )
    assert answer.status_code == 200
    assert {s["actor"]["account"]["name"] for s in answer.json()["statements"]} <= {
        str(world.learner.id)
    }
    # An instructor's cursor pointed at a course they do not teach is refused.
    taught = await client.get(
        FEED, params={"course": world.course, "limit": 1}, headers=world.teacher.headers
    )
    forged = {**_cursor(taught.json()["more"]), "c": world.other_course}
    refused = await client.get(
        FEED, params={"cursor": _forged(forged)}, headers=world.teacher.headers
    )
    assert refused.status_code == 403
    for bad in (
        "not-base64!",
        "abc",
        _forged({"h": -1}),
        _forged({"h": 1, "r": "x", "i": 1, "n": 1}),
    ):
        answer = await client.get(FEED, params={"cursor": bad}, headers=world.admin.headers)
        assert answer.status_code == 422, bad
        assert answer.json()["errors"][0]["field"] == "query.cursor"
    too_big = await client.get(FEED, params={"limit": 501}, headers=world.admin.headers)
    assert too_big.status_code == 422


async def test_the_xapi_authorization_rows(
    client: httpx.AsyncClient, connection: AsyncConnection, world: World
) -> None:
    """XAPI_ROWS of the shared analytics matrix, against this module's world."""
    people = {
        "anonymous": None,
        "enrolled": world.learner,
        "other_learner": world.outsider,
        "instructor": world.teacher,
        "other_instructor": world.other_teacher,
        "admin": world.admin,
    }
    ids = {"course": world.course, "other_course": world.other_course, "made_up": uuid.uuid4()}
    mismatches = []
    for method, template, body, expected in XAPI_ROWS:
        path = template.format(**ids)
        for who, status in zip(XAPI_CALLERS, expected, strict=True):
            caller = people[who]
            row = await connection.begin_nested()
            try:
                response = await client.request(
                    method, path, json=body, headers=caller.headers if caller else {}
                )
            finally:
                await row.rollback()
            if response.status_code != status:
                mismatches.append(f"{template} as {who}: {response.status_code}, not {status}")
    assert mismatches == []


# The horizon: rows of transactions still running wait for the next query ------------


async def horizon_past(session: AsyncSession, event_ids: Sequence[uuid.UUID]) -> int:
    """The horizon once the transactions of `event_ids` are all below it. Transaction
    ids are the cluster's: a transaction open in another test database (another xdist
    worker's test) that began before those rows holds the horizon back until it ends."""
    newest = await session.scalar(
        select(func.max(cast(cast(AnalyticsEvent.tx, Text), Numeric))).where(
            AnalyticsEvent.event_id.in_(event_ids)
        )
    )
    assert newest is not None
    deadline = time.monotonic() + HORIZON_WAIT_SECONDS
    while (edge := await horizon(session)) <= int(newest):
        assert time.monotonic() < deadline, "an open transaction holds the horizon back"
        await session.rollback()  # a new snapshot
        await asyncio.sleep(0.05)
    return edge


@pytest.fixture
async def committed(runtime: Runtime) -> AsyncIterator[list[uuid.UUID]]:
    """Event ids written by this test in committed transactions, deleted afterwards."""
    written: list[uuid.UUID] = []
    yield written
    async with runtime.database.engine.begin() as db:
        await db.execute(delete(AnalyticsEvent).where(AnalyticsEvent.event_id.in_(written)))


async def test_an_event_committed_during_paging_waits_for_the_next_query(
    runtime: Runtime, committed: list[uuid.UUID]
) -> None:
    """A transaction that started before others but commits after them (its row stamped
    earlier) is the case that breaks paging by time alone."""
    user = uuid.uuid4()
    scope = StatementScope(user_id=user)
    engine = runtime.database.engine
    rows = [event_values(user, None, second=s) for s in range(6)]
    async with engine.begin() as db:
        await ensure_partitions(db, rows[0]["occurred_at"].date(), rows[-1]["occurred_at"].date())
        committed += await insert_events(db, rows[1:4], finished=False, partitions=False)
    async with engine.connect() as late:
        slow = await late.begin()
        committed[:0] = await insert_events(late, rows[:1], finished=False, partitions=False)
        async with engine.begin() as db:
            committed += await insert_events(db, rows[4:], finished=False, partitions=False)
        async with AsyncSession(engine) as reader:
            edge = await horizon_past(reader, committed[1:4])
            first = await statement_events(
                reader, scope, StatementFilter(edge, None, None, None, limit=2)
            )
        await slow.commit()
    listed = [row.event.event_id for row in first[:2]]
    after = (first[1].event.received_at, first[1].event.id)
    async with AsyncSession(engine) as reader:
        rest = await statement_events(
            reader, scope, StatementFilter(edge, None, None, after, limit=100)
        )
        listed += [row.event.event_id for row in rest]
        # This query's rows (those of transactions finished when it began) once each,
        # in stored order, though the late row and a later one committed meanwhile.
        assert listed == committed[1:4]
        again = await statement_events(
            reader, scope, StatementFilter(await horizon(reader), None, None, None, limit=100)
        )
    assert [row.event.event_id for row in again] == committed
