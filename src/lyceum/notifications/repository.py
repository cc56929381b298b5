"""Every query of the notifications domain.

The fan-out (`fan_out`) is one statement: the recipients with their preferences and
quiet hours resolved by joins, the notification rows written from them, and the
channel jobs written straight into procrastinate's job table, one job per batch of
recipients, channel and release time. An announcement to 10,000 learners is one round
trip, whatever the number of recipients.
"""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from psycopg.types.json import Jsonb
from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Date,
    DateTime,
    Interval,
    Select,
    String,
    Time,
    Uuid,
    and_,
    bindparam,
    case,
    cast,
    column,
    delete,
    exists,
    false,
    func,
    literal,
    null,
    or_,
    select,
    table,
    true,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.kit.db import (
    COURSE_TITLES,
    DriverStatement,
    driver_execute,
    driver_sql,
    driver_statement,
    transaction_memo,
)
from lyceum.models.channels import PushDevice, PushSubscription, UserPhone
from lyceum.models.courses import Course, Enrollment, EnrollmentStatus
from lyceum.models.identity import User
from lyceum.models.notifications import (
    Announcement,
    Category,
    Channel,
    DeliveryStatus,
    Notification,
    NotificationDelivery,
    NotificationPreference,
    QuietHours,
)

# procrastinate's job table, written directly for the batched channel jobs (its insert
# trigger notifies the workers as for any deferred job).
_jobs = table(
    "procrastinate_jobs",
    column("id"),
    column("queue_name"),
    column("task_name"),
    column("priority"),
    column("args"),
    column("scheduled_at"),
)


@dataclass(frozen=True)
class ChannelJob:
    """Where the jobs of one channel go."""

    channel: Channel
    queue: str
    task_name: str
    priority: int


@dataclass(frozen=True)
class FanOut:
    category: Category
    kind: str
    title: str
    body: str
    url: str | None
    data: dict[str, Any]
    dedupe_key: str | None
    template: str
    context: dict[str, Any]
    # The default of each channel for this category, and whether it can be turned off.
    defaults: dict[Channel, bool]
    locked: frozenset[Channel]
    jobs: Sequence[ChannelJob]
    batch_size: int
    now: dt.datetime


@dataclass(frozen=True)
class Written:
    notification_id: uuid.UUID
    user_id: uuid.UUID
    listed: bool
    created_at: dt.datetime


def _has_push_destination() -> ColumnElement[bool]:
    return or_(
        exists().where(PushSubscription.user_id == User.id),
        exists().where(PushDevice.user_id == User.id),
    )


def _has_verified_phone() -> ColumnElement[bool]:
    return exists().where(UserPhone.user_id == User.id, UserPhone.verified_at.is_not(None))


# A channel with somewhere to go only for some users: a recipient without a push
# subscription or device gets no push job, one without a verified phone no SMS job. Such
# a job used to run anyway and record "nothing to send to"; most learners register
# neither, so it was a job, a row and a wake-up of the workers per notification for
# nothing. What counts is what the user has when the notification is written.
_REACHABLE: dict[Channel, Callable[[], ColumnElement[bool]]] = {
    Channel.push: _has_push_destination,
    Channel.sms: _has_verified_phone,
}


def _held_until(now: ColumnElement[Any]) -> ColumnElement[dt.datetime | None]:
    """When quiet hours end, if the user is in them now (None otherwise): the local
    time in the user's zone against their window, the end as an instant."""
    local = func.timezone(User.timezone, now)
    local_time = cast(local, Time())
    inside = or_(
        and_(
            QuietHours.starts < QuietHours.ends,
            local_time >= QuietHours.starts,
            local_time < QuietHours.ends,
        ),
        and_(
            QuietHours.starts > QuietHours.ends,
            or_(local_time >= QuietHours.starts, local_time < QuietHours.ends),
        ),
    )
    # Past the end already today (a window over midnight, evening side): it ends
    # tomorrow.
    ends_local = (
        cast(local, Date())
        + QuietHours.ends
        + case(
            (QuietHours.ends <= local_time, literal(dt.timedelta(days=1), Interval())),
            else_=literal(dt.timedelta(0), Interval()),
        )
    )
    # Nested, so the zone arithmetic runs only for users who have quiet hours at all.
    return case(
        (QuietHours.user_id.is_(None), null()),
        else_=case((inside, func.timezone(User.timezone, ends_local)), else_=null()),
    )


_COURSE_TITLE_SQL = driver_sql(
    select(Course.title).where(Course.id == bindparam("course_id", type_=Uuid()))
)


class NotificationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # Fan-out ----------------------------------------------------------------------------

    async def fan_out(
        self, user_ids: Sequence[uuid.UUID] | Select[Any], spec: FanOut, *, returning: bool
    ) -> tuple[int, list[Written]]:
        """Write the notifications and queue their channel jobs in one statement.
        Returns the number of notifications written and, with `returning`, the rows
        (for the live push).

        Building the statement costs more CPU than running it for one recipient (a
        graded quiz notifies its learner): for a list of user ids it is built and
        compiled once per shape (category, channels, jobs, deduplicated or not) with its
        values as bound parameters, and sent as a prepared statement on the driver
        connection (`kit.db.driver_execute`), SQLAlchemy's per-call work being more
        than a third of the cost of sending it. Its constants (the category, channels,
        queues, tasks, priorities, batch size) are written into the SQL: as parameters
        they were 39 of its 49, and psycopg's dumping of them ~1/4 of the statement's
        CPU in Lyceum."""
        shape = _Shape(
            category=spec.category,
            defaults=tuple(sorted((c.value, on) for c, on in spec.defaults.items())),
            locked=frozenset(c.value for c in spec.locked),
            jobs=tuple(spec.jobs),
            deduplicated=spec.dedupe_key is not None,
            returning=returning,
            batch_size=spec.batch_size,
        )
        if not isinstance(user_ids, Select):
            prepared = _driver_fan_out_statement(shape)
            found = await driver_execute(
                self.session, prepared.sql, {**prepared.constants, **_bound_values(spec, user_ids)}
            )
            rows: Sequence[Any] = found.rows
        else:
            statement = _fan_out_statement(
                shape, User.id.in_(user_ids.scalar_subquery()), _literal_values(spec)
            )
            rows = (await self.session.execute(statement)).all()
        if returning:
            written = [Written(r[0], r[1], r[2], r[3]) for r in rows]
            return len(written), written
        return int(rows[0][0]), []

    # The notification centre -------------------------------------------------------------

    async def page_of(
        self, user_id: uuid.UUID, *, unread: bool, offset: int, limit: int
    ) -> tuple[list[Notification], int, int]:
        mine = (Notification.user_id == user_id, Notification.listed)
        filters = [*mine, Notification.read_at.is_(None)] if unread else list(mine)
        rows = (
            await self.session.scalars(
                select(Notification)
                .where(*filters)
                .order_by(Notification.created_at.desc(), Notification.id.desc())
                .offset(offset)
                .limit(limit)
            )
        ).all()
        total = await self.session.scalar(
            select(func.count()).where(*filters).select_from(Notification)
        )
        unread_count = await self.session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(*mine, Notification.read_at.is_(None))
        )
        return list(rows), int(total or 0), int(unread_count or 0)

    async def mine(self, user_id: uuid.UUID, notification_id: uuid.UUID) -> Notification | None:
        return await self.session.scalar(
            select(Notification).where(
                Notification.id == notification_id,
                Notification.user_id == user_id,
                Notification.listed,
            )
        )

    async def mark_all_read(self, user_id: uuid.UUID, now: dt.datetime) -> int:
        result = await self.session.execute(
            update(Notification)
            .where(Notification.user_id == user_id, Notification.read_at.is_(None))
            .values(read_at=now)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def delete(self, notification: Notification) -> None:
        await self.session.delete(notification)
        await self.session.flush()

    # Preferences ------------------------------------------------------------------------

    async def preferences_of(self, user_id: uuid.UUID) -> dict[tuple[Category, Channel], bool]:
        rows = await self.session.scalars(
            select(NotificationPreference).where(NotificationPreference.user_id == user_id)
        )
        return {(row.category, row.channel): row.enabled for row in rows}

    async def set_preferences(
        self, user_id: uuid.UUID, choices: dict[tuple[Category, Channel], bool]
    ) -> None:
        if not choices:
            return
        statement = insert(NotificationPreference).values(
            [
                {"user_id": user_id, "category": category, "channel": channel, "enabled": enabled}
                for (category, channel), enabled in choices.items()
            ]
        )
        await self.session.execute(
            statement.on_conflict_do_update(
                index_elements=["user_id", "category", "channel"],
                set_={"enabled": statement.excluded.enabled},
            )
        )

    async def quiet_hours_of(self, user_id: uuid.UUID) -> QuietHours | None:
        return await self.session.get(QuietHours, user_id)

    async def set_quiet_hours(
        self, user_id: uuid.UUID, hours: tuple[dt.time, dt.time] | None
    ) -> None:
        if hours is None:
            await self.session.execute(delete(QuietHours).where(QuietHours.user_id == user_id))
            return
        statement = insert(QuietHours).values(user_id=user_id, starts=hours[0], ends=hours[1])
        await self.session.execute(
            statement.on_conflict_do_update(
                index_elements=["user_id"],
                set_={"starts": statement.excluded.starts, "ends": statement.excluded.ends},
            )
        )

    async def user(self, user_id: uuid.UUID) -> User | None:
        return await self.session.get(User, user_id)

    # Deliveries -------------------------------------------------------------------------

    async def recipients_of(
        self, notification_ids: Sequence[uuid.UUID]
    ) -> list[tuple[Notification, User]]:
        rows = await self.session.execute(
            select(Notification, User)
            .join(User, User.id == Notification.user_id)
            .where(Notification.id.in_(notification_ids))
            .order_by(Notification.created_at, Notification.id)
        )
        return [(n, u) for n, u in rows]

    async def claim(
        self, key: str, *, notification_id: uuid.UUID, user_id: uuid.UUID, channel: Channel
    ) -> NotificationDelivery:
        """The delivery of `key`, created if new, locked until the transaction ends: a
        second run of the same send waits here, then finds it done."""
        await self.session.execute(
            insert(NotificationDelivery)
            .values(
                id=uuid.uuid4(),
                key=key,
                notification_id=notification_id,
                user_id=user_id,
                channel=channel,
                status=DeliveryStatus.queued,
                attempts=0,
            )
            .on_conflict_do_nothing(index_elements=["key"])
        )
        return (
            await self.session.scalars(
                select(NotificationDelivery)
                .where(NotificationDelivery.key == key)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
        ).one()

    async def deliveries(
        self,
        *,
        user_id: uuid.UUID | None,
        channel: Channel | None,
        status: DeliveryStatus | None,
        notification_id: uuid.UUID | None,
        offset: int,
        limit: int,
    ) -> tuple[list[NotificationDelivery], int]:
        filters: list[ColumnElement[bool]] = []
        if user_id is not None:
            filters.append(NotificationDelivery.user_id == user_id)
        if channel is not None:
            filters.append(NotificationDelivery.channel == channel)
        if status is not None:
            filters.append(NotificationDelivery.status == status)
        if notification_id is not None:
            filters.append(NotificationDelivery.notification_id == notification_id)
        rows = await self.session.scalars(
            select(NotificationDelivery)
            .where(*filters)
            .order_by(NotificationDelivery.created_at.desc(), NotificationDelivery.id)
            .offset(offset)
            .limit(limit)
        )
        total = await self.session.scalar(
            select(func.count()).select_from(NotificationDelivery).where(*filters)
        )
        return list(rows), int(total or 0)

    async def delete_old(self, before: dt.datetime) -> tuple[int, int]:
        """Read notifications and finished deliveries older than `before`."""
        deliveries = await self.session.execute(
            delete(NotificationDelivery).where(
                NotificationDelivery.created_at < before,
                NotificationDelivery.status != DeliveryStatus.queued,
            )
        )
        notifications = await self.session.execute(
            delete(Notification).where(
                Notification.created_at < before,
                or_(Notification.read_at.is_not(None), ~Notification.listed),
            )
        )
        return (
            int(getattr(notifications, "rowcount", 0) or 0),
            int(getattr(deliveries, "rowcount", 0) or 0),
        )

    # Announcements ----------------------------------------------------------------------

    async def add_announcement(self, announcement: Announcement) -> Announcement:
        self.session.add(announcement)
        await self.session.flush()
        return announcement

    async def announcement_for_update(self, announcement_id: uuid.UUID) -> Announcement | None:
        return await self.session.scalar(
            select(Announcement).where(Announcement.id == announcement_id).with_for_update()
        )

    async def announcements(
        self, course_id: uuid.UUID, *, include_scheduled: bool, offset: int, limit: int
    ) -> tuple[list[Announcement], int]:
        filters = [Announcement.course_id == course_id]
        if not include_scheduled:
            filters.append(Announcement.published_at.is_not(None))
        rows = await self.session.scalars(
            select(Announcement)
            .where(*filters)
            .order_by(Announcement.publish_at.desc(), Announcement.id)
            .offset(offset)
            .limit(limit)
        )
        total = await self.session.scalar(
            select(func.count()).select_from(Announcement).where(*filters)
        )
        return list(rows), int(total or 0)

    async def course_title(self, course_id: uuid.UUID) -> str | None:
        """Asked by every notification about a course (a graded quiz attempt's): the
        title this transaction already read (`kit.db.transaction_memo`, kind
        `COURSE_TITLES`), or a prepared statement on the driver connection."""
        known = transaction_memo(self.session, COURSE_TITLES).get(course_id)
        if known is not None:
            return str(known)
        found = await driver_execute(self.session, _COURSE_TITLE_SQL, {"course_id": course_id})
        return str(found.rows[0][0]) if found.rows else None


def enrolled_learners(course_id: uuid.UUID) -> Select[Any]:
    """The ids of a course's active learners, as a SELECT for `notify`."""
    return select(Enrollment.user_id).where(
        Enrollment.course_id == course_id, Enrollment.status == EnrollmentStatus.active
    )


@dataclass(frozen=True)
class _Shape:
    """What the fan-out statement's structure depends on (not its values)."""

    category: Category
    defaults: tuple[tuple[str, bool], ...]
    locked: frozenset[str]
    jobs: tuple[ChannelJob, ...]
    deduplicated: bool
    returning: bool
    batch_size: int


@dataclass(frozen=True)
class _Values:
    """The values of a fan-out statement, as SQL expressions."""

    kind: ColumnElement[Any]
    title: ColumnElement[Any]
    body: ColumnElement[Any]
    url: ColumnElement[Any]
    data: ColumnElement[Any]
    dedupe_key: ColumnElement[Any]
    template: ColumnElement[Any]
    context: ColumnElement[Any]
    now: ColumnElement[Any]


_TEXT_VALUES = ("kind", "title", "body", "url", "dedupe_key", "template")
_JSON_VALUES = ("data", "context")


def _literal_values(spec: FanOut) -> _Values:
    return _Values(
        **{name: literal(getattr(spec, name), String()) for name in _TEXT_VALUES},
        **{name: literal(getattr(spec, name), JSONB()) for name in _JSON_VALUES},
        now=literal(spec.now, DateTime(timezone=True)),
    )


def _bound_values(spec: FanOut, user_ids: Sequence[uuid.UUID]) -> dict[str, Any]:
    """The driver's parameters of the cached statement (JSON wrapped as SQLAlchemy's
    JSONB type wraps it)."""
    params: dict[str, Any] = {f"fan_{name}": getattr(spec, name) for name in _TEXT_VALUES}
    params.update({f"fan_{name}": Jsonb(getattr(spec, name)) for name in _JSON_VALUES})
    params["fan_now"] = spec.now
    params["fan_user_ids"] = list(user_ids)
    return params


@functools.lru_cache(maxsize=64)
def _cached_fan_out_statement(spec: _Shape) -> Select[Any]:
    """The fan-out statement of a shape for a list of user ids, its values bound."""
    values = _Values(
        **{name: bindparam(f"fan_{name}", type_=String()) for name in _TEXT_VALUES},
        **{name: bindparam(f"fan_{name}", type_=JSONB()) for name in _JSON_VALUES},
        now=bindparam("fan_now", type_=DateTime(timezone=True)),
    )
    ids = bindparam("fan_user_ids", type_=ARRAY(Uuid()))
    return _fan_out_statement(spec, User.id == func.any(ids), values)


@functools.lru_cache(maxsize=64)
def _driver_fan_out_statement(spec: _Shape) -> DriverStatement:
    """`_cached_fan_out_statement` as the driver runs it, its constants converted."""
    return driver_statement(_cached_fan_out_statement(spec), inline_constants=True)


def _fan_out_statement(
    spec: _Shape, recipients_clause: ColumnElement[bool], v: _Values
) -> Select[Any]:
    """The fan-out statement of `NotificationRepository.fan_out` for `spec`'s shape,
    with its values `v` (literals, or bound parameters of a reusable statement)."""
    p = NotificationPreference
    chosen = (
        select(
            *(
                func.bool_or(p.enabled).filter(p.channel == channel).label(channel.value)
                for channel in Channel
            ),
        )
        .where(p.user_id == User.id, p.category == spec.category)
        # Per recipient, through the preferences' primary key: a subquery grouping
        # every user's preferences of the category was aggregated whole for each
        # notification, one learner's graded quiz paying for every user who ever set
        # a preference. One row per recipient (nulls when none are set).
        .lateral("chosen")
    )

    def wants(channel: Channel) -> ColumnElement[bool]:
        if channel.value in spec.locked:
            chosen_or_locked: ColumnElement[bool] = true()
        else:
            default = true() if dict(spec.defaults)[channel.value] else false()
            chosen_or_locked = func.coalesce(chosen.c[channel.value], default)
        reachable = _REACHABLE.get(channel)
        return chosen_or_locked if reachable is None else and_(chosen_or_locked, reachable())

    recipients = (
        select(
            User.id.label("user_id"),
            func.gen_random_uuid().label("notification_id"),
            *(wants(channel).label(channel.value) for channel in Channel),
            _held_until(v.now).label("held_until"),
            # Batches are cut by this position: no sort per channel.
            func.row_number().over().label("position"),
        )
        .select_from(User)
        .outerjoin(chosen, true())
        .outerjoin(QuietHours, QuietHours.user_id == User.id)
        .where(recipients_clause, User.is_active, User.deleted_at.is_(None))
        .cte("recipients")
    )
    n = Notification
    rows = insert(n).from_select(
        [
            "id",
            "user_id",
            "category",
            "kind",
            "title",
            "body",
            "url",
            "data",
            "dedupe_key",
            "listed",
            "created_at",
        ],
        select(
            recipients.c.notification_id,
            recipients.c.user_id,
            literal(spec.category, n.category.type),
            v.kind,
            v.title,
            v.body,
            v.url,
            v.data,
            v.dedupe_key,
            recipients.c[Channel.in_app.value],
            v.now,
        ),
    )
    if spec.deduplicated:
        # Only then can a row conflict; without a key the plain insert skips the
        # speculative-insertion work of ON CONFLICT for every row.
        rows = rows.on_conflict_do_nothing(
            index_elements=["user_id", "dedupe_key"],
            index_where=n.dedupe_key.is_not(None),
        )
    inserted = rows.returning(n.id, n.user_id, n.listed, n.created_at).cte("inserted")
    targets = select(
        recipients.c.notification_id.label("id"),
        *(recipients.c[job.channel.value] for job in spec.jobs),
        recipients.c.held_until,
        recipients.c.position,
    )
    if spec.deduplicated:
        # Only the rows the insert wrote (not the repeats it skipped) get sends.
        targets = targets.where(
            recipients.c.notification_id.in_(select(inserted.c.id).scalar_subquery())
        )
    targets_cte = targets.cte("targets")
    parts = []
    for job in spec.jobs:
        # Mail is never held: quiet hours are for what buzzes a phone.
        held = null() if job.channel is Channel.email else targets_cte.c.held_until
        parts.append(
            select(
                literal(job.channel.value, String()).label("channel"),
                cast(held, DateTime(timezone=True)).label("held_until"),
                targets_cte.c.id.label("notification_id"),
                ((targets_cte.c.position - 1) // spec.batch_size).label("batch"),
            ).where(targets_cte.c[job.channel.value])
        )
    if parts:
        sends = union_all(*parts).subquery("sends")
        by_channel = {job.channel.value: job for job in spec.jobs}
        queue = case(
            *((sends.c.channel == name, literal(job.queue)) for name, job in by_channel.items())
        )
        task = case(
            *((sends.c.channel == name, literal(job.task_name)) for name, job in by_channel.items())
        )
        priority = case(
            *((sends.c.channel == name, literal(job.priority)) for name, job in by_channel.items())
        )
        args = func.jsonb_build_object(
            "notification_ids",
            func.jsonb_agg(cast(sends.c.notification_id, String())),
            "channel",
            sends.c.channel,
            "template",
            v.template,
            "mail_context",
            v.context,
        )
        jobs = (
            insert(_jobs)
            .from_select(
                ["queue_name", "task_name", "priority", "args", "scheduled_at"],
                select(queue, task, priority, args, sends.c.held_until).group_by(
                    sends.c.channel, sends.c.held_until, sends.c.batch
                ),
            )
            .returning(_jobs.c.id)
            .cte("jobs")
        )
        # A data-modifying CTE runs whether or not it is read; reading its count
        # keeps it in the statement SQLAlchemy compiles.
        queued: ColumnElement[Any] = select(func.count()).select_from(jobs).scalar_subquery()
    else:
        queued = literal(0)
    if spec.returning:
        return select(
            inserted.c.id,
            inserted.c.user_id,
            inserted.c.listed,
            inserted.c.created_at,
            queued.label("queued"),
        )
    if not spec.deduplicated:
        # Every recipient gets a row: count them, and keep the insert in the
        # statement without materializing what it returns.
        return select(
            select(func.count()).select_from(recipients).scalar_subquery(), queued
        ).add_cte(rows.cte("inserted"))
    return select(select(func.count()).select_from(inserted).scalar_subquery(), queued)
