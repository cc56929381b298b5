"""`notify`: preferences, locked security mail, quiet hours, dedupe, and the channel jobs
written in batches (one statement, not a round trip per recipient)."""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import uuid
import zoneinfo
from collections.abc import Iterator
from typing import Any

import psycopg._queries as _psycopg_queries
import pytest
from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.kit.db import flushed_driver_connection
from lyceum.models.channels import PushDevice, PushSubscription, UserPhone
from lyceum.models.identity import User
from lyceum.models.notifications import Category, Channel, NotificationPreference, QuietHours
from lyceum.notifications import repository
from lyceum.notifications.repository import _cached_fan_out_statement, _Shape
from lyceum.notifications.service import CHANNEL_JOBS, default_enabled, is_locked, notify
from tests.support.metrics import sample


async def people(
    session: AsyncSession, count: int, *, reachable: bool = True, **fields: Any
) -> list[User]:
    """Users; `reachable` ones have a mobile device for push and a verified phone."""
    users = [
        User(
            id=uuid.uuid4(),
            email=f"n-{uuid.uuid4().hex[:12]}@example.com",
            full_name=f"Learner {number}",
            **fields,
        )
        for number in range(count)
    ]
    session.add_all(users)
    await session.flush()
    if reachable:
        now = dt.datetime.now(dt.UTC)
        for user in users:
            session.add(PushDevice(user_id=user.id, token=uuid.uuid4().hex, platform="android"))
            number = f"+1555{uuid.uuid4().int % 10**7:07d}"
            session.add(UserPhone(user_id=user.id, number=number, verified_at=now))
        await session.flush()
    return users


async def jobs_for(session: AsyncSession, template: str) -> list[dict[str, Any]]:
    rows = await session.execute(
        text(
            "SELECT queue_name, task_name, args, scheduled_at FROM procrastinate_jobs "
            "WHERE args->>'template' = :template ORDER BY id"
        ),
        {"template": template},
    )
    return [dict(row._mapping) for row in rows]


def ids_on(jobs: list[dict[str, Any]], channel: Channel) -> list[str]:
    return [
        notification_id
        for job in jobs
        if job["args"]["channel"] == channel.value
        for notification_id in job["args"]["notification_ids"]
    ]


async def send(session: AsyncSession, users: list[User] | Any, **overrides: Any) -> int:
    arguments: dict[str, Any] = {
        "user_ids": [user.id for user in users] if isinstance(users, list) else users,
        "category": Category.announcements,
        "kind": "test",
        "title": "Hello",
        "body": "Body",
        "url": "/api/v1/courses",
        "template": f"t{uuid.uuid4().hex[:10]}",
        "context": {"title": "Hello"},
    }
    arguments.update(overrides)
    return await notify(session, **arguments)


async def notification_ids(session: AsyncSession, users: list[User]) -> dict[uuid.UUID, str]:
    rows = await session.execute(
        text("SELECT user_id, id::text FROM notifications WHERE user_id = ANY(:ids)"),
        {"ids": [user.id for user in users]},
    )
    return {row[0]: row[1] for row in rows}


async def test_rows_and_batched_jobs_in_one_go(session: AsyncSession) -> None:
    users = await people(session, 7)
    template = "batched"
    written = await send(session, users, template=template, batch_size=3)
    assert written == 7
    jobs = await jobs_for(session, template)
    mail = [job for job in jobs if job["args"]["channel"] == "email"]
    push = [job for job in jobs if job["args"]["channel"] == "push"]
    # 7 recipients in batches of 3: 3 mail jobs and 3 push jobs (push is on by default
    # for announcements), SMS off by default.
    assert sorted(len(job["args"]["notification_ids"]) for job in mail) == [1, 3, 3]
    assert len(push) == 3 and not ids_on(jobs, Channel.sms)
    assert {job["queue_name"] for job in mail} == {"mail"}
    assert {job["task_name"] for job in push} == {"lyceum.notifications.deliver"}
    assert mail[0]["args"]["mail_context"] == {"title": "Hello"}
    assert all(job["scheduled_at"] is None for job in jobs)


async def test_push_and_sms_jobs_only_for_users_with_somewhere_to_send_them(
    session: AsyncSession,
) -> None:
    """Push wanted by default, SMS turned on by everyone here: a job only for those
    with a push subscription or device, or a verified phone. Mail and the in-app row
    for everyone."""
    bare, browser = await people(session, 2, reachable=False)
    (phone_only,) = await people(session, 1, reachable=False)
    (everything,) = await people(session, 1)
    session.add(
        PushSubscription(
            user_id=browser.id,
            endpoint=f"https://push.example/{uuid.uuid4()}",
            p256dh="k",
            auth="a",
        )
    )
    session.add(
        UserPhone(user_id=phone_only.id, number="+15550001111", verified_at=dt.datetime.now(dt.UTC))
    )
    session.add(UserPhone(user_id=bare.id, number="+15550002222"))  # not verified
    users = [bare, browser, phone_only, everything]
    session.add_all(
        NotificationPreference(
            user_id=user.id, category=Category.grades, channel=Channel.sms, enabled=True
        )
        for user in users
    )
    await session.flush()
    template = f"t{uuid.uuid4().hex[:10]}"
    assert await send(session, users, category=Category.grades, template=template) == 4
    ids = await notification_ids(session, users)
    jobs = await jobs_for(session, template)
    assert sorted(ids_on(jobs, Channel.email)) == sorted(ids.values())
    assert sorted(ids_on(jobs, Channel.push)) == sorted([ids[browser.id], ids[everything.id]])
    assert sorted(ids_on(jobs, Channel.sms)) == sorted([ids[phone_only.id], ids[everything.id]])


async def test_the_notifications_written_are_counted_by_category(session: AsyncSession) -> None:
    before = sample("lyceum_notifications_total", category="announcements")
    users = await people(session, 3)
    await send(session, users, dedupe_key="counted")
    await send(session, users, dedupe_key="counted")  # a repeat writes nothing
    assert sample("lyceum_notifications_total", category="announcements") == before + 3


class _Undo(Exception):
    pass


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", ()):
        yield from _nodes(child)


async def test_a_recipients_preferences_are_read_alone(
    session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A graded quiz notifies one learner: the statement reads that learner's
    preferences through the primary key, not every user's preferences of the category
    (it used to aggregate them all for each notification, a cost growing with the
    number of users who ever set one). Checked on the executed plan: rows read from
    the preferences per loop, kept or filtered out, at most one per channel."""
    others = await people(session, 300)
    session.add_all(
        NotificationPreference(
            user_id=user.id, category=Category.grades, channel=channel, enabled=False
        )
        for user in others
        for channel in Channel
    )
    (learner,) = await people(session, 1)
    await session.flush()
    await session.execute(text("ANALYZE notification_preferences"))
    plans: list[Any] = []
    real = repository.driver_execute

    async def explained(s: AsyncSession, sql: str, params: dict[str, Any]) -> Any:
        if "INSERT INTO notifications" in sql:
            driver = await flushed_driver_connection(s)
            with contextlib.suppress(_Undo):
                async with driver.transaction():  # a savepoint, rolled back
                    cursor = await driver.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params)
                    row = await cursor.fetchone()
                    assert row is not None
                    plans.append(row[0][0]["Plan"])
                    raise _Undo
        return await real(s, sql, params)

    monkeypatch.setattr(repository, "driver_execute", explained)
    assert await send(session, [learner], category=Category.grades) == 1
    scans = [n for n in _nodes(plans[0]) if n.get("Relation Name") == "notification_preferences"]
    assert scans, plans
    for scan in scans:
        read = scan["Actual Rows"] + scan.get("Rows Removed by Filter", 0)
        assert read <= len(Channel), scan


async def test_recipients_by_select_and_inactive_accounts_skipped(session: AsyncSession) -> None:
    users = await people(session, 3)
    users[2].is_active = False
    await session.flush()
    chosen = select(User.id).where(User.id.in_([user.id for user in users]))
    assert await send(session, chosen) == 2


async def test_preferences_are_honoured_and_security_mail_is_locked(
    session: AsyncSession,
) -> None:
    users = await people(session, 3)
    quiet, no_app, sms = users
    session.add_all(
        [
            NotificationPreference(
                user_id=quiet.id, category=Category.grades, channel=Channel.email, enabled=False
            ),
            NotificationPreference(
                user_id=no_app.id, category=Category.grades, channel=Channel.in_app, enabled=False
            ),
            NotificationPreference(
                user_id=sms.id, category=Category.grades, channel=Channel.sms, enabled=True
            ),
            # Stored somehow, still not honoured: security mail always goes.
            NotificationPreference(
                user_id=quiet.id, category=Category.security, channel=Channel.email, enabled=False
            ),
        ]
    )
    await session.flush()
    await send(session, users, category=Category.grades, template="grades")
    ids = await notification_ids(session, users)
    jobs = await jobs_for(session, "grades")
    assert sorted(ids_on(jobs, Channel.email)) == sorted([ids[no_app.id], ids[sms.id]])
    assert ids_on(jobs, Channel.sms) == [ids[sms.id]]
    listed = dict(
        (
            await session.execute(
                text("SELECT user_id, listed FROM notifications WHERE user_id = ANY(:ids)"),
                {"ids": [user.id for user in users]},
            )
        ).all()
    )
    assert listed == {quiet.id: True, no_app.id: False, sms.id: True}

    await send(session, users, category=Category.security, template="security")
    security_jobs = await jobs_for(session, "security")
    assert len(ids_on(security_jobs, Channel.email)) == 3
    assert not ids_on(security_jobs, Channel.push)  # push is off by default for security


async def test_a_dedupe_key_makes_a_repeat_a_no_op(session: AsyncSession) -> None:
    users = await people(session, 2)
    assert await send(session, users[:1], dedupe_key="once") == 1
    assert await send(session, users, dedupe_key="once") == 1  # only the second user
    assert await send(session, users, dedupe_key="once") == 0


async def test_quiet_hours_hold_push_and_sms_until_they_end_locally(
    session: AsyncSession,
) -> None:
    zone = "Asia/Ho_Chi_Minh"
    now = dt.datetime(2026, 12, 4, 16, 30, tzinfo=dt.UTC)  # 23:30 in Ho Chi Minh City
    sleeping, awake = await people(session, 2, timezone=zone)
    session.add_all(
        [
            QuietHours(user_id=sleeping.id, starts=dt.time(22, 0), ends=dt.time(7, 0)),
            QuietHours(user_id=awake.id, starts=dt.time(9, 0), ends=dt.time(17, 0)),
            NotificationPreference(
                user_id=sleeping.id,
                category=Category.announcements,
                channel=Channel.sms,
                enabled=True,
            ),
        ]
    )
    await session.flush()
    await send(session, [sleeping, awake], template="quiet", now=now)
    ids = await notification_ids(session, [sleeping, awake])
    jobs = await jobs_for(session, "quiet")
    held = {
        (job["args"]["channel"], notification_id): job["scheduled_at"]
        for job in jobs
        for notification_id in job["args"]["notification_ids"]
    }
    seven_am = dt.datetime(2026, 12, 5, 7, 0, tzinfo=zoneinfo.ZoneInfo(zone))
    assert held[("push", ids[sleeping.id])] == seven_am
    assert held[("sms", ids[sleeping.id])] == seven_am
    assert held[("email", ids[sleeping.id])] is None  # mail is never held
    assert held[("push", ids[awake.id])] is None


async def test_retention_deletes_old_read_notifications_only(session: AsyncSession) -> None:
    from lyceum.models.notifications import Notification
    from lyceum.notifications.repository import NotificationRepository

    [user] = await people(session, 1)
    now = dt.datetime(2026, 12, 4, tzinfo=dt.UTC)
    old = now - dt.timedelta(days=100)
    rows = {
        "old read": Notification(read_at=old, created_at=old),
        "old unread": Notification(read_at=None, created_at=old),
        "new read": Notification(read_at=now, created_at=now),
    }
    for title, row in rows.items():
        row.id, row.user_id, row.title = uuid.uuid4(), user.id, title
        row.category, row.kind, row.body, row.data = Category.grades, "t", "b", {}
        session.add(row)
    await session.flush()
    deleted, _ = await NotificationRepository(session).delete_old(now - dt.timedelta(days=90))
    assert deleted == 1
    left = await session.scalars(select(Notification.title).where(Notification.user_id == user.id))
    assert sorted(left) == ["new read", "old unread"]


def test_the_fan_out_statement_stays_in_psycopgs_statement_cache() -> None:
    """psycopg parses the placeholders of a statement it does not cache again on every
    execution; every shape of the fan-out statement (one per category and options) fits
    the cache that `kit.db` raises for it: its length and its parameters."""
    for category, deduplicated, returning in itertools.product(
        Category, (False, True), (False, True)
    ):
        shape = _Shape(
            category=category,
            defaults=tuple(sorted((c.value, default_enabled(category, c)) for c in Channel)),
            locked=frozenset(c.value for c in Channel if is_locked(category, c)),
            jobs=CHANNEL_JOBS,
            deduplicated=deduplicated,
            returning=returning,
            batch_size=250,
        )
        dialect = PGDialect_psycopg()  # type: ignore[no-untyped-call]
        compiled = _cached_fan_out_statement(shape).compile(dialect=dialect)
        assert len(str(compiled)) <= _psycopg_queries.MAX_CACHED_STATEMENT_LENGTH, shape
        assert len(compiled.params) <= _psycopg_queries.MAX_CACHED_STATEMENT_PARAMS, shape
