"""The periodic cleanups delete exactly what is past its retention and nothing else, in
the test's transaction (rows) and on local and S3 storage (orphaned uploads); two runs
at once do the work once."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import httpx
import pytest
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from lyceum.kit.db import unit_of_work
from lyceum.kit.jobs import job_app, transaction
from lyceum.kit.runtime import Runtime
from lyceum.kit.storage import S3Storage, Storage
from lyceum.models.channels import ChannelSend
from lyceum.models.identity import (
    LoginSession,
    OneTimeToken,
    RefreshToken,
    Role,
    TokenPurpose,
    User,
)
from lyceum.models.mail import MailDelivery
from lyceum.system import cleanup, tasks
from tests.chat.helpers import member_in, new_user
from tests.support.clock import FrozenClock
from tests.support.s3 import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, create_bucket, s3_server

NOW = dt.datetime.now(dt.UTC)


def ago(**delta: float) -> dt.datetime:
    return NOW - dt.timedelta(**delta)


def sessions_on(connection: AsyncConnection) -> cleanup.Sessions:
    """Sessions inside the test's transaction: each commits a savepoint."""

    @asynccontextmanager
    async def session() -> AsyncIterator[AsyncSession]:
        async with (
            AsyncSession(bind=connection, join_transaction_mode="create_savepoint") as db,
            unit_of_work(db),
        ):
            yield db

    return session


async def ids_left(session: AsyncSession, model: type, ids: list[uuid.UUID]) -> set[uuid.UUID]:
    rows = await session.execute(select(model.id).where(model.id.in_(ids)))  # type: ignore[attr-defined]
    return set(rows.scalars())


def test_every_cleanup_is_an_hourly_periodic_job_with_a_queueing_lock() -> None:
    periodic = {
        task.task.name: task.cron for task in job_app.periodic_registry.periodic_tasks.values()
    }
    for job in (
        tasks.cleanup_finished_jobs,
        tasks.cleanup_login_sessions,
        tasks.cleanup_one_time_tokens,
        tasks.cleanup_mail_log,
        tasks.cleanup_orphan_uploads,
    ):
        assert job.queue == "maintenance"
        assert job.queueing_lock == job.name.replace("lyceum.", "")
        assert periodic[job.name].endswith(" * * * *")  # hourly


async def test_ended_logins_and_expired_refresh_tokens_go_after_their_retention(
    session: AsyncSession, connection: AsyncConnection, runtime: Runtime
) -> None:
    user = new_user(Role.student, "Lena")
    session.add(user)
    await session.flush()

    def login(expires: dt.datetime, revoked: dt.datetime | None = None) -> LoginSession:
        return LoginSession(
            id=uuid.uuid4(),
            user_id=user.id,
            created_at=ago(days=60),
            last_used_at=ago(days=40),
            expires_at=expires,
            revoked_at=revoked,
        )

    expired_long_ago = login(ago(days=31))
    revoked_long_ago = login(NOW + dt.timedelta(days=1), revoked=ago(days=31))
    expired_lately = login(ago(days=29))
    revoked_lately = login(NOW + dt.timedelta(days=1), revoked=ago(days=1))
    live = login(NOW + dt.timedelta(days=7))
    logins = [expired_long_ago, revoked_long_ago, expired_lately, revoked_lately, live]
    session.add_all(logins)
    await session.flush()

    def token(login: LoginSession, expires: dt.datetime) -> RefreshToken:
        return RefreshToken(
            id=uuid.uuid4(),
            session_id=login.id,
            token_hash=uuid.uuid4().hex,
            created_at=ago(days=60),
            expires_at=expires,
        )

    in_old_login = token(expired_long_ago, ago(days=31))
    expired_in_live = token(live, ago(days=31))
    lately_in_live = token(live, ago(days=29))
    current = token(live, NOW + dt.timedelta(days=7))
    refresh = [in_old_login, expired_in_live, lately_in_live, current]
    session.add_all(refresh)
    await session.commit()

    deleted = await cleanup.login_sessions(sessions_on(connection), runtime.settings, NOW)

    assert deleted is not None and deleted >= 3
    left = await ids_left(session, LoginSession, [login.id for login in logins])
    assert left == {expired_lately.id, revoked_lately.id, live.id}
    left_tokens = await ids_left(session, RefreshToken, [item.id for item in refresh])
    assert left_tokens == {lately_in_live.id, current.id}


async def test_used_and_expired_one_time_tokens_go_after_their_retention(
    session: AsyncSession, connection: AsyncConnection, runtime: Runtime
) -> None:
    user = new_user(Role.student, "Otto")
    session.add(user)
    await session.flush()

    def one_time(
        purpose: TokenPurpose, expires: dt.datetime, used: dt.datetime | None = None
    ) -> OneTimeToken:
        return OneTimeToken(
            id=uuid.uuid4(),
            user_id=user.id,
            purpose=purpose,
            token_hash=uuid.uuid4().hex,
            created_at=ago(days=30),
            expires_at=expires,
            used_at=used,
        )

    used_long_ago = one_time(TokenPurpose.verify_email, NOW, used=ago(days=8))
    expired_long_ago = one_time(TokenPurpose.reset_password, ago(days=8))
    used_lately = one_time(TokenPurpose.verify_email, NOW, used=ago(days=6))
    expired_lately = one_time(TokenPurpose.reset_password, ago(days=1))
    waiting = one_time(TokenPurpose.reset_password, NOW + dt.timedelta(hours=1))
    rows = [used_long_ago, expired_long_ago, used_lately, expired_lately, waiting]
    session.add_all(rows)
    await session.commit()

    deleted = await cleanup.one_time_tokens(sessions_on(connection), runtime.settings, NOW)

    assert deleted is not None and deleted >= 2
    left = await ids_left(session, OneTimeToken, [row.id for row in rows])
    assert left == {used_lately.id, expired_lately.id, waiting.id}


def mail(key: str, created: dt.datetime) -> MailDelivery:
    return MailDelivery(
        key=key,
        template="welcome",
        recipient="ada@example.com",
        message_id=f"<{key}@lyceum>",
        created_at=created,
        sent_at=created,
    )


async def test_the_mail_log_goes_after_its_retention(
    session: AsyncSession, connection: AsyncConnection, runtime: Runtime
) -> None:
    mark = uuid.uuid4().hex
    session.add_all([mail(f"old:{mark}", ago(days=91)), mail(f"recent:{mark}", ago(days=89))])
    await session.commit()

    deleted = await cleanup.mail_log(sessions_on(connection), runtime.settings, NOW)

    assert deleted is not None and deleted >= 1
    left = await session.execute(select(MailDelivery.key).where(MailDelivery.key.like(f"%:{mark}")))
    assert set(left.scalars()) == {f"recent:{mark}"}


async def test_the_sms_and_push_send_records_go_with_the_mail_log(
    session: AsyncSession, connection: AsyncConnection, runtime: Runtime
) -> None:
    mark = uuid.uuid4().hex
    session.add_all(
        [
            ChannelSend(
                idempotency_key=f"{age}:{mark}",
                channel="sms",
                user_id=uuid.uuid4(),
                provider_id="SM1",
                created_at=ago(days=days),
            )
            for age, days in (("old", 91), ("recent", 89))
        ]
    )
    await session.commit()

    deleted = await cleanup.mail_log(sessions_on(connection), runtime.settings, NOW)

    assert deleted is not None and deleted >= 1
    left = await session.execute(
        select(ChannelSend.idempotency_key).where(ChannelSend.idempotency_key.like(f"%:{mark}"))
    )
    assert set(left.scalars()) == {f"recent:{mark}"}


async def add_job(connection: AsyncConnection, status: str, events: dict[str, float]) -> int:
    """A job whose events happened `days` ago (by event type)."""
    job_id: int = (
        await connection.execute(
            text(
                "INSERT INTO procrastinate_jobs (queue_name, task_name, status) VALUES "
                "('tests-cleanup', 'tests.cleanup', CAST(:status AS procrastinate_job_status)) "
                "RETURNING id"
            ),
            {"status": status},
        )
    ).scalar_one()
    await connection.execute(
        text("DELETE FROM procrastinate_events WHERE job_id = :id"), {"id": job_id}
    )
    for kind, days in events.items():
        await connection.execute(
            text(
                "INSERT INTO procrastinate_events (job_id, type, at) VALUES "
                "(:id, CAST(:kind AS procrastinate_job_event_type), :at)"
            ),
            {"id": job_id, "kind": kind, "at": ago(days=days)},
        )
    return job_id


async def test_finished_jobs_go_after_their_retention_with_their_failures(
    connection: AsyncConnection, runtime: Runtime
) -> None:
    old_success = await add_job(connection, "succeeded", {"deferred": 20, "succeeded": 15})
    old_failure = await add_job(connection, "failed", {"deferred": 20, "failed": 15})
    old_cancel = await add_job(connection, "cancelled", {"deferred": 20, "cancelled": 15})
    recent_success = await add_job(connection, "succeeded", {"deferred": 20, "succeeded": 13})
    old_waiting = await add_job(connection, "todo", {"deferred": 20})
    await connection.execute(
        text(
            "INSERT INTO job_failures (job_id, attempt, task_name, queue_name, error) "
            "VALUES (:id, 1, 'tests.cleanup', 'tests-cleanup', 'RuntimeError: x')"
        ),
        {"id": old_failure},
    )
    deleted = await cleanup.finished_jobs(sessions_on(connection), runtime.settings, NOW)

    assert deleted is not None and deleted >= 3
    ids = [old_success, old_failure, old_cancel, recent_success, old_waiting]
    left = await connection.execute(
        text("SELECT id FROM procrastinate_jobs WHERE id = ANY(:ids)"), {"ids": ids}
    )
    assert set(left.scalars()) == {recent_success, old_waiting}
    failures = await connection.execute(
        text("SELECT count(*) FROM job_failures WHERE job_id = :id"), {"id": old_failure}
    )
    assert failures.scalar_one() == 0


# Orphaned uploads ------------------------------------------------------------------------


async def test_orphaned_uploads_on_local_storage(
    client: httpx.AsyncClient, connection: AsyncConnection, runtime: Runtime, clock: FrozenClock
) -> None:
    storage = runtime.storage
    teacher = await member_in(connection, runtime.tokens, clock.now(), Role.instructor, "Tea")
    course = await client.post("/api/v1/courses", json={"title": "Cells"}, headers=teacher.headers)
    assert course.status_code == 201, course.text
    course_id = course.json()["id"]
    uploaded = await client.post(
        f"/api/v1/courses/{course_id}/files",
        files={"file": ("notes.txt", io.BytesIO(b"Cells divide."), "text/plain")},
        headers=teacher.headers,
    )
    assert uploaded.status_code == 201, uploaded.text
    file_key = (
        await connection.execute(
            text("SELECT storage_key FROM course_files WHERE id = :id"),
            {"id": uploaded.json()["id"]},
        )
    ).scalar_one()
    avatar_key = f"avatars/{teacher.id}/{uuid.uuid4().hex}.png"
    await storage.put(avatar_key, b"png", "image/png")
    await connection.execute(
        update(User).where(User.id == teacher.id).values(avatar_key=avatar_key)
    )
    orphan_avatar = f"avatars/{teacher.id}/{uuid.uuid4().hex}.png"
    orphan_file = f"courses/{course_id}/files/{uuid.uuid4().hex}.pdf"
    for key in (orphan_avatar, orphan_file):
        await storage.put(key, b"left behind", "application/octet-stream")
    sessions = sessions_on(connection)
    grace = dt.timedelta(hours=runtime.settings.orphan_upload_grace_hours)

    # Within the grace period nothing goes: a row may be on its way.
    young = await cleanup.orphan_uploads(sessions, storage, runtime.settings, NOW)
    assert young is not None
    assert await storage.exists(orphan_avatar) and await storage.exists(orphan_file)

    await cleanup.orphan_uploads(sessions, storage, runtime.settings, NOW + grace * 2)

    assert not await storage.exists(orphan_avatar)
    assert not await storage.exists(orphan_file)
    assert await storage.exists(avatar_key)
    assert await storage.exists(file_key)


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with s3_server() as endpoint:
        yield endpoint


async def test_orphaned_uploads_on_s3(
    s3_endpoint: str, session: AsyncSession, connection: AsyncConnection, runtime: Runtime
) -> None:
    storage: Storage = S3Storage(
        create_bucket(s3_endpoint),
        region=REGION,
        endpoint_url=s3_endpoint,
        access_key_id=ACCESS_KEY_ID,
        secret_access_key=SECRET_ACCESS_KEY,
    )
    user = new_user(Role.student, "Sam")
    kept = f"avatars/{user.id}/{uuid.uuid4().hex}.png"
    user.avatar_key = kept
    session.add(user)
    await session.commit()
    orphans = [
        f"avatars/{user.id}/{uuid.uuid4().hex}.png",
        f"courses/{uuid.uuid4()}/files/{uuid.uuid4().hex}-thumb.webp",
        f"covers/{uuid.uuid4()}/{uuid.uuid4().hex}.webp",
    ]
    certificate = f"certificates/LYC-{uuid.uuid4().hex[:4]}.pdf"  # not an upload
    for key in (kept, *orphans, certificate):
        await storage.put(key, b"x", "application/octet-stream")
    sessions = sessions_on(connection)
    later = NOW + dt.timedelta(hours=runtime.settings.orphan_upload_grace_hours + 1)
    try:
        assert await cleanup.orphan_uploads(sessions, storage, runtime.settings, NOW) == 0
        assert await cleanup.orphan_uploads(sessions, storage, runtime.settings, later) == 3
        assert [await storage.exists(key) for key in orphans] == [False, False, False]
        assert await storage.exists(kept)
        assert await storage.exists(certificate)
    finally:
        await storage.close()


# Two runs at once -------------------------------------------------------------------------


def runtime_sessions(runtime: Runtime) -> cleanup.Sessions:
    def session() -> AbstractAsyncContextManager[AsyncSession]:
        return transaction(runtime)

    return session


@pytest.fixture
async def old_mail(runtime: Runtime) -> AsyncIterator[str]:
    """2,500 old mail log rows, committed (more than two batches)."""
    mark = uuid.uuid4().hex
    async with runtime.database.sessionmaker() as db, db.begin():
        db.add_all(mail(f"{n}:{mark}", ago(days=100)) for n in range(2500))
    yield mark
    async with runtime.database.engine.begin() as conn:
        await conn.execute(
            text("DELETE FROM mail_deliveries WHERE key LIKE :mark"), {"mark": f"%:{mark}"}
        )


async def count_mail(runtime: Runtime, mark: str) -> int:
    async with runtime.database.engine.connect() as conn:
        found = await conn.execute(
            text("SELECT count(*) FROM mail_deliveries WHERE key LIKE :mark"),
            {"mark": f"%:{mark}"},
        )
        return int(found.scalar_one())


async def test_two_runs_at_once_do_the_work_once(old_mail: str, runtime: Runtime) -> None:
    sessions = runtime_sessions(runtime)
    first, second = await asyncio.gather(
        cleanup.mail_log(sessions, runtime.settings, NOW),
        cleanup.mail_log(sessions, runtime.settings, NOW),
    )
    # One run deleted them all; the other found the cleanup taken (None) or, if it
    # started after the first ended, nothing left (0).
    done = sorted((first or 0, second or 0))
    assert done == [0, 2500]
    assert await count_mail(runtime, old_mail) == 0


async def test_a_run_while_another_holds_the_cleanup_does_nothing(
    old_mail: str, runtime: Runtime
) -> None:
    sessions = runtime_sessions(runtime)
    async with cleanup.exclusive(sessions, "mail_log") as mine:
        assert mine
        assert await cleanup.mail_log(sessions, runtime.settings, NOW) is None
        assert await count_mail(runtime, old_mail) == 2500
    assert await cleanup.mail_log(sessions, runtime.settings, NOW) == 2500
