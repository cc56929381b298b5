"""Every chat query: rooms and who may see them, messages, read state, mutes."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
import psycopg
from sqlalchemy import (
    ColumnElement,
    DateTime,
    Select,
    String,
    Table,
    Text,
    Uuid,
    and_,
    bindparam,
    cast,
    column,
    exists,
    false,
    func,
    literal,
    or_,
    select,
    true,
    union,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.dml import ReturningInsert
from sqlalchemy.sql.selectable import ScalarSelect

from lyceum.kit.db import driver_sql, run_on_cursor
from lyceum.models.chat import ChatMember, ChatMessage, ChatMute, ChatRoom, RoomKind
from lyceum.models.courses import (
    Course,
    CourseInstructor,
    CourseStatus,
    Enrollment,
    EnrollmentStatus,
)
from lyceum.models.identity import Role, User


@dataclass(frozen=True)
class RoomRow:
    room: ChatRoom
    course_title: str | None
    unread_count: int
    last_message_at: dt.datetime | None


@dataclass(frozen=True)
class StoredMessage:
    id: uuid.UUID
    seq: int
    created_at: dt.datetime


def member_course_ids(user_id: uuid.UUID) -> Select[tuple[uuid.UUID]]:
    """The courses a user belongs to: enrolled (published courses) or teaching."""
    learning = (
        select(Enrollment.course_id)
        .join(Course, Course.id == Enrollment.course_id)
        .where(
            Enrollment.user_id == user_id,
            Enrollment.status.in_([EnrollmentStatus.active, EnrollmentStatus.completed]),
            Course.status == CourseStatus.published,
        )
    )
    # Teaching counts while the account is still an instructor's (or an admin's).
    teaching = (
        select(CourseInstructor.course_id)
        .join(User, User.id == CourseInstructor.user_id)
        .where(
            CourseInstructor.user_id == user_id,
            User.role.in_([Role.instructor, Role.admin]),
        )
    )
    return select(union(learning, teaching).subquery().c.course_id)


def _still_open_query() -> Select[uuid.UUID, uuid.UUID]:
    """(user, room) pairs, given as two arrays, whose user may still be in the room,
    by the rule of `ChatService.room_access`: a course room is open to admins, to the
    course's instructors while their account is an instructor's, and to the enrolled
    learners of a published course; a direct room to its two members. Only active
    accounts."""
    wanted = (
        func.unnest(
            bindparam("users", type_=ARRAY(Uuid())), bindparam("rooms", type_=ARRAY(Uuid()))
        )
        .table_valued(column("user_id", Uuid()), column("room_id", Uuid()))
        .render_derived(name="wanted")
    )
    teaches = exists().where(
        CourseInstructor.course_id == ChatRoom.course_id, CourseInstructor.user_id == User.id
    )
    enrolled = exists().where(
        Enrollment.course_id == ChatRoom.course_id,
        Enrollment.user_id == User.id,
        Enrollment.status.in_([EnrollmentStatus.active, EnrollmentStatus.completed]),
    )
    course_member = or_(
        User.role == Role.admin,
        and_(User.role == Role.instructor, teaches),
        and_(Course.status == CourseStatus.published, enrolled),
    )
    direct_member = exists().where(ChatMember.room_id == ChatRoom.id, ChatMember.user_id == User.id)
    return (
        select(wanted.c.user_id, wanted.c.room_id)
        .join(ChatRoom, ChatRoom.id == wanted.c.room_id)
        .join(User, User.id == wanted.c.user_id)
        .outerjoin(Course, Course.id == ChatRoom.course_id)
        .where(
            User.is_active.is_(True),
            or_(
                and_(ChatRoom.kind == RoomKind.course, course_member),
                and_(ChatRoom.kind == RoomKind.direct, direct_member),
            ),
        )
    )


STILL_OPEN = _still_open_query()


# The statements a socket's `join_room` sends, built once: building a statement and its
# cache key cost more of the event loop's CPU than running it (a reconnecting class is
# thousands of joins at once).
_COURSE_ROOM = select(ChatRoom).where(ChatRoom.course_id == bindparam("course"))
_CREATE_COURSE_ROOM = (
    insert(ChatRoom)
    .values(id=bindparam("room"), kind=RoomKind.course, course_id=bindparam("course"))
    .on_conflict_do_nothing(index_elements=[ChatRoom.course_id])
)
_ADD_MEMBER = (
    insert(ChatMember)
    .values(room_id=bindparam("room"), user_id=bindparam("user"), last_read_seq=0)
    .on_conflict_do_nothing(index_elements=[ChatMember.room_id, ChatMember.user_id])
)


def _room_activity(
    room_id: ColumnElement[Any] | InstrumentedAttribute[Any], user_id: ColumnElement[Any]
) -> tuple[ScalarSelect[Any], ScalarSelect[Any]]:
    """A room's unread count for a user (messages past their read marker, not their
    own, not deleted) and the time of its last message, as scalar subqueries: of a
    listed room (`ChatRoom.id`) or of one given room (a bound parameter)."""
    last_read = (
        select(ChatMember.last_read_seq)
        .where(ChatMember.room_id == room_id, ChatMember.user_id == user_id)
        # Two levels down, inside the count: correlate with the listed room itself.
        .correlate(ChatRoom)
        .scalar_subquery()
    )
    unread = (
        select(func.count())
        .where(
            ChatMessage.room_id == room_id,
            ChatMessage.seq > func.coalesce(last_read, 0),
            ChatMessage.sender_id != user_id,
            ChatMessage.deleted_at.is_(None),
        )
        .scalar_subquery()
    )
    last_at = (
        select(ChatMessage.created_at)
        .where(ChatMessage.room_id == room_id, ChatMessage.deleted_at.is_(None))
        .order_by(ChatMessage.seq.desc())
        .limit(1)
        .scalar_subquery()
    )
    return unread, last_at


_ROOM = bindparam("room", type_=Uuid())
_USER = bindparam("user", type_=Uuid())
_UNREAD, _LAST_AT = _room_activity(_ROOM, _USER)
# `ChatRepository.room_row`: a room as `rooms_for` lists it, in one statement.
_ROOM_ROW = select(
    select(Course.title).where(Course.id == bindparam("course", type_=Uuid())).scalar_subquery(),
    _UNREAD,
    _LAST_AT,
)
_UNREAD_COUNT = select(_UNREAD)


def direct_key(first: uuid.UUID, second: uuid.UUID) -> str:
    low, high = sorted((str(first), str(second)))
    return f"{low}:{high}"


def _insert_messages() -> ReturningInsert[tuple[uuid.UUID, int, dt.datetime]]:
    """The send path's one statement, built once, for a whole batch (one JSON array of
    rows, so the SQL is the same whatever the batch size): each row unless its sender is
    muted in its course (no course, a direct room: never muted), and nothing for a
    client_id already sent. Core, not ORM: the hottest statement skips the ORM's insert
    machinery. The rows travel as one JSON document (orjson writes it in C) rather than
    six arrays, which psycopg adapts element by element in Python."""
    messages, mutes = ChatMessage.__table__, ChatMute.__table__
    assert isinstance(messages, Table) and isinstance(mutes, Table)
    rows = (
        func.jsonb_to_recordset(bindparam("rows", type_=JSONB()))
        .table_valued(
            column("id", Uuid()),
            column("room_id", Uuid()),
            column("sender_id", Uuid()),
            column("client_id", String()),
            column("text", Text()),
            column("mute_course_id", Uuid()),
        )
        .render_derived(name="batch", with_types=True)
    )
    muted = exists().where(
        mutes.c.course_id == rows.c.mute_course_id,
        mutes.c.user_id == rows.c.sender_id,
        mutes.c.muted_until > bindparam("now", type_=DateTime(timezone=True)),
    )
    return (
        insert(messages)
        .from_select(
            ["id", "room_id", "sender_id", "client_id", "text"],
            select(
                rows.c.id, rows.c.room_id, rows.c.sender_id, rows.c.client_id, rows.c.text
            ).where(~muted),
        )
        .on_conflict_do_nothing(index_elements=["sender_id", "client_id"])
        .returning(messages.c.id, messages.c.seq, messages.c.created_at)
    )


INSERT_MESSAGES = _insert_messages()
# The same statement as psycopg runs it: it holds no literal values, so it is compiled
# once. The message writer executes it on the driver connection directly: SQLAlchemy's
# per-call work (about 0.2 ms of CPU per batch, on the event loop that also delivers
# every message) bought nothing for one fixed statement with a plain result.
INSERT_MESSAGES_SQL = driver_sql(INSERT_MESSAGES)


@dataclass(frozen=True)
class NewMessage:
    id: uuid.UUID
    room_id: uuid.UUID
    sender_id: uuid.UUID
    client_id: str
    text: str
    mute_course_id: uuid.UUID | None


async def insert_messages(
    connection: psycopg.AsyncConnection[Any], batch: list[NewMessage], now: dt.datetime
) -> dict[uuid.UUID, StoredMessage]:
    """Store a batch in one statement; the result holds the rows stored (a muted
    sender's, or a client_id sent before, are not). One statement is atomic on its own:
    the message writer runs it on an autocommit connection, one round trip per batch
    (a prepared statement: the same SQL whatever the batch size)."""
    document = orjson.dumps(
        [
            {
                "id": row.id,
                "room_id": row.room_id,
                "sender_id": row.sender_id,
                "client_id": row.client_id,
                "text": row.text,
                "mute_course_id": row.mute_course_id,
            }
            for row in batch
        ]
    )
    params = {"rows": document.decode(), "now": now}
    async with psycopg.AsyncRawCursor(connection) as cursor:
        await run_on_cursor(cursor, INSERT_MESSAGES_SQL, params)
        stored = await cursor.fetchall()
    return {id_: StoredMessage(id_, seq, created_at) for id_, seq, created_at in stored}


class ChatRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def messages_by_sender(self, user_id: uuid.UUID) -> list[tuple[ChatMessage, ChatRoom]]:
        """Every message one user wrote and nobody deleted, with its room, oldest first
        (their data export)."""
        rows = await self.session.execute(
            select(ChatMessage, ChatRoom)
            .join(ChatRoom, ChatRoom.id == ChatMessage.room_id)
            .where(ChatMessage.sender_id == user_id, ChatMessage.deleted_at.is_(None))
            .order_by(ChatMessage.created_at, ChatMessage.seq)
        )
        return [(message, room) for message, room in rows]

    async def user(self, user_id: uuid.UUID) -> User | None:
        return await self.session.get(User, user_id)

    # Rooms ------------------------------------------------------------------------------

    async def room(self, room_id: uuid.UUID) -> ChatRoom | None:
        return await self.session.get(ChatRoom, room_id)

    async def course_room(self, course_id: uuid.UUID) -> ChatRoom:
        """The course's room, created on first use (concurrent first uses agree). Read
        first: every join of a course room asks, and only the first finds none."""
        found = (await self.session.execute(_COURSE_ROOM, {"course": course_id})).scalar()
        if found is not None:
            return found
        await self.session.execute(_CREATE_COURSE_ROOM, {"room": uuid.uuid4(), "course": course_id})
        return (await self.session.execute(_COURSE_ROOM, {"course": course_id})).scalar_one()

    async def ensure_course_rooms(self, user_id: uuid.UUID) -> None:
        """A room for every course the user belongs to, so listing shows them all."""
        courses = member_course_ids(user_id).subquery()
        await self.session.execute(
            insert(ChatRoom)
            .from_select(
                ["id", "kind", "course_id"],
                select(
                    func.gen_random_uuid(),
                    cast(literal(RoomKind.course.value), ChatRoom.kind.type),
                    courses.c.course_id,
                ),
            )
            .on_conflict_do_nothing(index_elements=[ChatRoom.course_id])
        )

    async def open_direct_room(self, first: uuid.UUID, second: uuid.UUID) -> tuple[ChatRoom, bool]:
        """The pair's direct room and whether this call created it."""
        key = direct_key(first, second)
        created_id = (
            await self.session.execute(
                insert(ChatRoom)
                .values(id=uuid.uuid4(), kind=RoomKind.direct, direct_key=key)
                .on_conflict_do_nothing(index_elements=[ChatRoom.direct_key])
                .returning(ChatRoom.id)
            )
        ).scalar_one_or_none()
        room = (
            await self.session.execute(select(ChatRoom).where(ChatRoom.direct_key == key))
        ).scalar_one()
        for user_id in (first, second):
            await self.add_member(room.id, user_id)
        return room, created_id is not None

    async def share_a_course(self, first: uuid.UUID, second: uuid.UUID) -> bool:
        mine = member_course_ids(first)
        theirs = member_course_ids(second)
        query = select(exists(mine.intersect(theirs).subquery().select()))
        return bool((await self.session.execute(query)).scalar_one())

    def _visible(self, user_id: uuid.UUID, is_admin: bool) -> ColumnElement[bool]:
        """Course rooms of the user's courses; direct rooms they are in; for admins,
        also the course rooms they have joined."""
        mine = select(ChatMember.room_id).where(ChatMember.user_id == user_id)
        return or_(
            and_(
                ChatRoom.kind == RoomKind.course, ChatRoom.course_id.in_(member_course_ids(user_id))
            ),
            and_(
                ChatRoom.id.in_(mine),
                or_(ChatRoom.kind == RoomKind.direct, true() if is_admin else false()),
            ),
        )

    async def rooms_for(
        self, user_id: uuid.UUID, *, is_admin: bool, offset: int, limit: int
    ) -> tuple[list[RoomRow], int]:
        visible = self._visible(user_id, is_admin)
        unread, last_at = _room_activity(ChatRoom.id, literal(user_id, Uuid()))
        total = (
            await self.session.execute(select(func.count()).select_from(ChatRoom).where(visible))
        ).scalar_one()
        rows = await self.session.execute(
            select(ChatRoom, Course.title, unread, last_at)
            .outerjoin(Course, Course.id == ChatRoom.course_id)
            .where(visible)
            .order_by(last_at.desc().nulls_last(), ChatRoom.created_at.desc(), ChatRoom.id)
            .offset(offset)
            .limit(limit)
        )
        return [RoomRow(room, title, count, at) for room, title, count, at in rows.all()], total

    async def room_row(self, room: ChatRoom, user_id: uuid.UUID) -> RoomRow:
        """One room as the caller lists it (its course's title, the caller's unread
        count, its last message's time), in one statement: a socket's `join_room` asks
        for it every time."""
        title, unread, last_at = (
            await self.session.execute(
                _ROOM_ROW, {"room": room.id, "user": user_id, "course": room.course_id}
            )
        ).one()
        return RoomRow(room, title, int(unread), last_at)

    async def peers(self, room_ids: list[uuid.UUID], user_id: uuid.UUID) -> dict[uuid.UUID, User]:
        """The other person of each direct room."""
        if not room_ids:
            return {}
        rows = await self.session.execute(
            select(ChatMember.room_id, User)
            .join(User, User.id == ChatMember.user_id)
            .where(ChatMember.room_id.in_(room_ids), ChatMember.user_id != user_id)
        )
        return dict(rows.all())

    async def unread_count(self, room_id: uuid.UUID, user_id: uuid.UUID) -> int:
        found = await self.session.execute(_UNREAD_COUNT, {"room": room_id, "user": user_id})
        return int(found.scalar_one())

    # Members ----------------------------------------------------------------------------

    async def still_open(
        self, pairs: list[tuple[uuid.UUID, uuid.UUID]]
    ) -> set[tuple[uuid.UUID, uuid.UUID]]:
        """Of (user, room) pairs, those whose user may still be in the room: one query
        for every socket of a process (see `_still_open_query`)."""
        if not pairs:
            return set()
        rows = await self.session.execute(
            STILL_OPEN,
            {"users": [user for user, _ in pairs], "rooms": [room for _, room in pairs]},
        )
        return {(user, room) for user, room in rows}

    async def is_member(self, room_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        query = select(ChatMember.user_id).where(
            ChatMember.room_id == room_id, ChatMember.user_id == user_id
        )
        return (await self.session.execute(query)).first() is not None

    async def add_member(self, room_id: uuid.UUID, user_id: uuid.UUID) -> None:
        await self.session.execute(_ADD_MEMBER, {"room": room_id, "user": user_id})

    async def mark_read(self, room_id: uuid.UUID, user_id: uuid.UUID, message: ChatMessage) -> None:
        """Move the read marker forward to `message` (never back)."""
        await self.add_member(room_id, user_id)
        await self.session.execute(
            update(ChatMember)
            .where(
                ChatMember.room_id == room_id,
                ChatMember.user_id == user_id,
                ChatMember.last_read_seq < message.seq,
            )
            .values(last_read_seq=message.seq, last_read_message_id=message.id)
        )

    # Messages ---------------------------------------------------------------------------

    async def message_by_client_id(
        self, sender_id: uuid.UUID, client_id: str
    ) -> ChatMessage | None:
        query = select(ChatMessage).where(
            ChatMessage.sender_id == sender_id, ChatMessage.client_id == client_id
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def message(self, message_id: uuid.UUID) -> ChatMessage | None:
        return await self.session.get(ChatMessage, message_id)

    async def history(
        self, room_id: uuid.UUID, *, before_seq: int | None, limit: int
    ) -> list[tuple[ChatMessage, str]]:
        """Live messages of the room with their senders' names, newest first."""
        query = (
            select(ChatMessage, User.full_name)
            .join(User, User.id == ChatMessage.sender_id)
            .where(ChatMessage.room_id == room_id, ChatMessage.deleted_at.is_(None))
            .order_by(ChatMessage.seq.desc())
            .limit(limit)
        )
        if before_seq is not None:
            query = query.where(ChatMessage.seq < before_seq)
        rows = await self.session.execute(query)
        return [(message, name) for message, name in rows.all()]

    async def soft_delete(
        self, message: ChatMessage, *, deleted_by: uuid.UUID, now: dt.datetime
    ) -> None:
        message.deleted_at = now
        message.deleted_by_id = deleted_by
        await self.session.flush()

    async def user_names(self, user_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
        if not user_ids:
            return {}
        rows = await self.session.execute(
            select(User.id, User.full_name).where(User.id.in_(user_ids))
        )
        return dict(rows.all())

    # Mutes ------------------------------------------------------------------------------

    async def active_mute(
        self, course_id: uuid.UUID, user_id: uuid.UUID, now: dt.datetime
    ) -> ChatMute | None:
        query = select(ChatMute).where(
            ChatMute.course_id == course_id, ChatMute.user_id == user_id, ChatMute.muted_until > now
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def active_mutes(self, course_id: uuid.UUID, now: dt.datetime) -> list[ChatMute]:
        query = (
            select(ChatMute)
            .where(ChatMute.course_id == course_id, ChatMute.muted_until > now)
            .order_by(ChatMute.muted_until.desc(), ChatMute.user_id)
        )
        return list((await self.session.execute(query)).scalars())

    async def upsert_mute(
        self,
        *,
        course_id: uuid.UUID,
        user_id: uuid.UUID,
        until: dt.datetime,
        muted_by: uuid.UUID,
        reason: str,
    ) -> ChatMute:
        values = {"muted_until": until, "muted_by_id": muted_by, "reason": reason}
        await self.session.execute(
            insert(ChatMute)
            .values(course_id=course_id, user_id=user_id, **values)
            .on_conflict_do_update(
                index_elements=[ChatMute.course_id, ChatMute.user_id],
                set_={**values, "updated_at": func.now()},
            )
        )
        query = (
            select(ChatMute)
            .where(ChatMute.course_id == course_id, ChatMute.user_id == user_id)
            .execution_options(populate_existing=True)
        )
        return (await self.session.execute(query)).scalar_one()

    async def delete_mute(self, course_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        mute = await self.session.get(ChatMute, (course_id, user_id))
        if mute is None:
            return False
        await self.session.delete(mute)
        await self.session.flush()
        return True
