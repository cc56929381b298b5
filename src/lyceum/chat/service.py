"""Chat rules: who may be in which room, what a message may say, how often one may
send, read state, and moderation (deleting messages, muting learners)."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.chat import schemas
from lyceum.chat.repository import ChatRepository, RoomRow
from lyceum.config import Settings
from lyceum.courses.service import CourseService
from lyceum.kit.errors import Conflict, Forbidden, Invalid, NotFound, RateLimited, Unauthorized
from lyceum.kit.pagination import Page, PageParams
from lyceum.kit.ratelimit import RateLimiter
from lyceum.models.chat import ChatMessage, ChatMute, ChatRoom, RoomKind
from lyceum.models.courses import Course
from lyceum.models.identity import Role, User

NO_ROOM = "No such chat room."


@dataclass(frozen=True)
class RoomAccess:
    room: ChatRoom
    # The course's instructors and admins, in a course room.
    can_moderate: bool


@dataclass(frozen=True)
class Moderation:
    """A course whose chat the caller moderates (its instructors and admins), and its room."""

    course: Course
    room: ChatRoom


@dataclass(frozen=True)
class Sender:
    id: uuid.UUID
    full_name: str


@dataclass(frozen=True)
class SendTarget:
    room_id: uuid.UUID
    # Set for a course room: the course whose mutes apply.
    course_id: uuid.UUID | None


@dataclass(frozen=True)
class PendingMessage:
    """A message that passed every check, on its way to the database."""

    id: uuid.UUID
    room_id: uuid.UUID
    sender: Sender
    client_id: str
    text: str
    # The course whose mutes apply (a course room); None for a direct room.
    mute_course_id: uuid.UUID | None

    def out(self, created_at: dt.datetime) -> schemas.ChatMessageOut:
        return schemas.ChatMessageOut(
            id=self.id,
            room_id=self.room_id,
            sender=schemas.Person(id=self.sender.id, full_name=self.sender.full_name),
            client_id=self.client_id,
            text=self.text,
            created_at=created_at,
        )


class MessagePolicy:
    """What a message may say and how often one may send: checked before anything is
    stored, without touching the database."""

    def __init__(self, settings: Settings, limiter: RateLimiter) -> None:
        self.settings = settings
        self.limiter = limiter

    def checked_text(self, text: str) -> str:
        cleaned = text.strip()
        if not cleaned:
            raise Invalid("A message needs some text.", field="text")
        limit = self.settings.chat_message_max_chars
        if len(cleaned) > limit:
            raise Invalid(
                f"A message may hold at most {limit} characters; this one has {len(cleaned)}.",
                field="text",
                slug="message-too-long",
            )
        pattern = blocked_pattern(tuple(self.settings.chat_blocked_words))
        if pattern is not None and (found := pattern.search(cleaned.casefold())):
            raise Invalid(
                f"The message contains a blocked word ({found.group(0)!r}).",
                field="text",
                slug="blocked-words",
            )
        return cleaned

    async def admit(
        self, sender: Sender, target: SendTarget, client_id: str, text: str
    ) -> PendingMessage:
        cleaned = self.checked_text(text)
        rule = self.settings.chat_rate_limit
        decision = await self.limiter.hit(rule, "chat-send", str(sender.id))
        if not decision.allowed:
            raise RateLimited(
                f"Sending is limited to {rule}; retry in {decision.retry_after} s.",
                retry_after=decision.retry_after,
            )
        return PendingMessage(
            id=uuid.uuid4(),
            room_id=target.room_id,
            sender=sender,
            client_id=client_id,
            text=cleaned,
            mute_course_id=target.course_id,
        )


@lru_cache(maxsize=8)
def blocked_pattern(words: tuple[str, ...]) -> re.Pattern[str] | None:
    """Whole words (or phrases), matched against the case-folded text."""
    if not words:
        return None
    alternatives = "|".join(re.escape(word) for word in sorted(words, key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)")


def message_out(message: ChatMessage, sender_name: str) -> schemas.ChatMessageOut:
    return schemas.ChatMessageOut(
        id=message.id,
        room_id=message.room_id,
        sender=schemas.Person(id=message.sender_id, full_name=sender_name),
        client_id=message.client_id,
        text=message.text,
        created_at=message.created_at,
    )


async def messages_written(session: AsyncSession, author: User) -> list[dict[str, object]]:
    """The chat messages `author` wrote (not those deleted), for their data export: the
    text and where and when, not the other members' replies."""
    return [
        {
            "id": str(message.id),
            "room_id": str(room.id),
            "room_kind": room.kind.value,
            "course_id": str(room.course_id) if room.course_id else None,
            "text": message.text,
            "created_at": message.created_at.isoformat(),
        }
        for message, room in await ChatRepository(session).messages_by_sender(author.id)
    ]


class ChatService:
    def __init__(
        self,
        session: AsyncSession,
        *,
        courses: CourseService,
        settings: Settings,
        now: dt.datetime,
    ) -> None:
        self.session = session
        self.repo = ChatRepository(session)
        self.courses = courses
        self.settings = settings
        self.now = now

    async def active_user(self, user_id: uuid.UUID) -> User:
        user = await self.repo.user(user_id)
        if user is None or not user.is_active:
            raise Unauthorized("This account is no longer active.", slug="invalid-token")
        return user

    # Rooms ------------------------------------------------------------------------------

    async def room_access(self, caller: User, room_id: uuid.UUID) -> RoomAccess:
        """The room if the caller belongs in it; 404 otherwise, so room ids reveal
        nothing to outsiders."""
        room = await self.repo.room(room_id)
        if room is None:
            raise NotFound(NO_ROOM)
        if room.kind is RoomKind.course:
            assert room.course_id is not None
            try:
                _, can_edit = await self.courses.member_access(room.course_id, caller)
            except (NotFound, Forbidden):
                raise NotFound(NO_ROOM) from None
            return RoomAccess(room, can_edit)
        if await self.repo.is_member(room.id, caller.id):
            return RoomAccess(room, False)
        raise NotFound(NO_ROOM)

    async def course_room_access(self, caller: User, course_id: uuid.UUID) -> RoomAccess:
        """The course's room (created on first use) for its members: 404 for a course
        the caller cannot see, 403 `not-enrolled` for a public one they are not in."""
        _, can_edit = await self.courses.member_access(course_id, caller)
        return RoomAccess(await self.repo.course_room(course_id), can_edit)

    async def join(
        self, caller: User, *, room_id: uuid.UUID | None, course_id: uuid.UUID | None
    ) -> RoomAccess:
        if course_id is not None:
            access = await self.course_room_access(caller, course_id)
        else:
            assert room_id is not None
            access = await self.room_access(caller, room_id)
        # Membership carries the read marker, and lists the room for admins who join.
        await self.repo.add_member(access.room.id, caller.id)
        return access

    async def room_out(self, access: RoomAccess, caller: User) -> schemas.RoomOut:
        row = await self.repo.room_row(access.room, caller.id)
        return (await self._rooms_out([row], caller))[0]

    async def _rooms_out(self, rows: list[RoomRow], caller: User) -> list[schemas.RoomOut]:
        direct = [row.room.id for row in rows if row.room.kind is RoomKind.direct]
        peers = await self.repo.peers(direct, caller.id)
        items = []
        for row in rows:
            peer_user = peers.get(row.room.id)
            peer = (
                schemas.Person(id=peer_user.id, full_name=peer_user.full_name)
                if peer_user is not None
                else None
            )
            title = row.course_title if row.room.kind is RoomKind.course else None
            items.append(
                schemas.RoomOut(
                    id=row.room.id,
                    kind=row.room.kind,
                    course_id=row.room.course_id,
                    title=title or (peer.full_name if peer else ""),
                    peer=peer,
                    unread_count=row.unread_count,
                    last_message_at=row.last_message_at,
                    created_at=row.room.created_at,
                )
            )
        return items

    async def rooms(self, caller: User, params: PageParams) -> Page[schemas.RoomOut]:
        await self.repo.ensure_course_rooms(caller.id)
        rows, total = await self.repo.rooms_for(
            caller.id, is_admin=caller.role is Role.admin, offset=params.offset, limit=params.size
        )
        return Page.of(await self._rooms_out(rows, caller), total, params)

    async def open_direct(self, caller: User, other_id: uuid.UUID) -> tuple[RoomAccess, bool]:
        if other_id == caller.id:
            raise Invalid("A direct room needs another person.", field="user_id")
        other = await self.repo.user(other_id)
        if (
            other is None
            or not other.is_active
            or not await self.repo.share_a_course(caller.id, other.id)
        ):
            raise NotFound("No such person among those you share a course with.")
        room, created = await self.repo.open_direct_room(caller.id, other.id)
        return RoomAccess(room, False), created

    # Messages ---------------------------------------------------------------------------

    async def unstored(self, pending: PendingMessage) -> schemas.ChatMessageOut:
        """Why the writer stored nothing: a retry (the stored message comes back) or a
        mute (refused). Anything else is a conflict to retry."""
        existing = await self.repo.message_by_client_id(pending.sender.id, pending.client_id)
        if existing is not None:
            if existing.room_id != pending.room_id or existing.text != pending.text:
                raise Conflict(
                    "This client_id was already used for another message.",
                    field="client_id",
                    slug="client-id-reused",
                )
            return message_out(existing, pending.sender.full_name)
        if pending.mute_course_id is not None:
            mute = await self.repo.active_mute(pending.mute_course_id, pending.sender.id, self.now)
            if mute is not None:
                raise Forbidden(
                    f"You are muted in this course until {mute.muted_until.isoformat()}.",
                    slug="muted",
                )
        raise Conflict("The message could not be stored; send it again.")

    async def history(
        self, access: RoomAccess, *, before: uuid.UUID | None, limit: int
    ) -> schemas.MessagePage:
        before_seq = None
        if before is not None:
            cursor = await self.repo.message(before)
            if cursor is None or cursor.room_id != access.room.id:
                raise Invalid("`before` is not a message of this room.", field="query.before")
            before_seq = cursor.seq
        rows = await self.repo.history(access.room.id, before_seq=before_seq, limit=limit + 1)
        page = rows[:limit]
        return schemas.MessagePage(
            items=[message_out(message, name) for message, name in page],
            next=page[-1][0].id if len(rows) > limit else None,
        )

    async def mark_read(
        self, user_id: uuid.UUID, room_id: uuid.UUID, message_id: uuid.UUID
    ) -> tuple[uuid.UUID, int]:
        """Move the caller's read marker to `message_id`: (marker, unread count)."""
        message = await self.repo.message(message_id)
        if message is None or message.room_id != room_id:
            raise NotFound("No such message in this room.")
        await self.repo.mark_read(room_id, user_id, message)
        return message.id, await self.repo.unread_count(room_id, user_id)

    # Moderation -------------------------------------------------------------------------

    async def deletable_message(self, caller: User, message_id: uuid.UUID) -> ChatMessage:
        """The course's instructors and admins may delete any message of a course room;
        everyone may delete their own (in a room they are in: 404 otherwise)."""
        message = await self.repo.message(message_id)
        if message is None or message.deleted_at is not None:
            raise NotFound("No such message.")
        try:
            access = await self.room_access(caller, message.room_id)
        except NotFound:
            raise NotFound("No such message.") from None
        if not access.can_moderate and message.sender_id != caller.id:
            raise Forbidden("Only the course's instructors and admins may delete others' messages.")
        return message

    async def delete_message(
        self, caller: User, message: ChatMessage
    ) -> schemas.MessageDeletedEvent:
        await self.repo.soft_delete(message, deleted_by=caller.id, now=self.now)
        return schemas.MessageDeletedEvent(
            room_id=message.room_id, message_id=message.id, deleted_by=caller.id
        )

    async def moderated_course(self, caller: User, course_id: uuid.UUID) -> Moderation:
        """The course and its room, for the course's instructors and admins (403 for its
        learners, 404 for a course the caller cannot see)."""
        course, can_edit = await self.courses.member_access(course_id, caller)
        if not can_edit:
            raise Forbidden("Only the course's instructors and admins may moderate its chat.")
        return Moderation(course, await self.repo.course_room(course_id))

    def _mute_out(self, mute: ChatMute, room: ChatRoom) -> schemas.MuteOut:
        return schemas.MuteOut(
            course_id=mute.course_id,
            room_id=room.id,
            user_id=mute.user_id,
            muted_until=mute.muted_until,
            reason=mute.reason,
        )

    async def mute(
        self, caller: User, moderation: Moderation, user_id: uuid.UUID, body: schemas.MuteIn
    ) -> tuple[schemas.MuteOut, bool]:
        """Mute one of the course's learners for `minutes` (replacing any mute in
        force): (the mute, whether none was in force)."""
        course, room = moderation.course, moderation.room
        course_id = course.id
        target = await self.repo.user(user_id)
        if target is None or not await self.courses.is_learner(course_id, user_id):
            raise NotFound("No such learner in this course.")
        if await self.courses.can_edit(course, target):
            raise Forbidden("The course's instructors and admins cannot be muted.")
        previous = await self.repo.active_mute(course_id, user_id, self.now)
        mute = await self.repo.upsert_mute(
            course_id=course_id,
            user_id=user_id,
            until=self.now + dt.timedelta(minutes=body.minutes),
            muted_by=caller.id,
            reason=body.reason.strip(),
        )
        return self._mute_out(mute, room), previous is None

    async def mute_in_room(
        self, caller: User, room_id: uuid.UUID, user_id: uuid.UUID, body: schemas.MuteIn
    ) -> tuple[schemas.MuteOut, bool]:
        access = await self.room_access(caller, room_id)
        if access.room.course_id is None:
            raise Invalid("Mutes apply to course rooms.", field="room_id")
        moderation = await self.moderated_course(caller, access.room.course_id)
        return await self.mute(caller, moderation, user_id, body)

    async def unmute(self, moderation: Moderation, user_id: uuid.UUID) -> None:
        course_id = moderation.course.id
        if await self.repo.active_mute(course_id, user_id, self.now) is None:
            raise NotFound("This person is not muted in this course.")
        await self.repo.delete_mute(course_id, user_id)

    async def mutes(self, moderation: Moderation) -> list[schemas.MuteOut]:
        active = await self.repo.active_mutes(moderation.course.id, self.now)
        return [self._mute_out(mute, moderation.room) for mute in active]
