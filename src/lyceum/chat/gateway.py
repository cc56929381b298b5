"""The chat's Socket.IO side: authentication on connect, the client events, presence,
and the broadcasts (also used by the REST moderation routes).

Every client event carries one JSON object and, when the client asks for an ack, gets
`{"ok": true, ...}` or `{"ok": false, "error": {"type", "detail", ...}}` back. A refused
event changes nothing and leaves the connection usable. Nothing is broadcast before it
is committed: each event that changes the database runs in its own transaction, except
messages, which the process's `MessageWriter` stores in batches (see its docstring).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import structlog
from fastapi import FastAPI
from pydantic import BaseModel, ValidationError
from starlette.datastructures import State
from starlette.routing import Mount

from lyceum.chat import schemas
from lyceum.chat.presence import PresenceEntry, PresenceStore, create_presence, distinct_users
from lyceum.chat.service import ChatService, MessagePolicy, Sender, SendTarget
from lyceum.chat.transport import ConnectionRefused, SocketServer
from lyceum.chat.writer import MessageWriter
from lyceum.config import Settings
from lyceum.courses.service import CourseService
from lyceum.identity.permissions import EMAIL_NOT_VERIFIED, authenticate_socket
from lyceum.identity.service import DENIED_JTI_PREFIX, open_sessions
from lyceum.kit import live
from lyceum.kit.clock import Clock, SystemClock
from lyceum.kit.errors import DomainError, FieldProblem, Forbidden, RateLimited, Unauthorized
from lyceum.kit.jobs import transaction
from lyceum.kit.metrics import CHAT_DELIVERY, CHAT_MESSAGES, CHAT_SOCKETS
from lyceum.kit.revocations import Ended, Revocation
from lyceum.kit.runtime import Runtime
from lyceum.kit.shutdown import Drain
from lyceum.models.chat import RoomKind

logger = structlog.get_logger("lyceum.chat")

SOCKET_PATH = "/socket.io"
# Events handled at once by this process; the rest wait their turn. Each may hold a
# database connection and a Redis connection of every pool (redis-py refuses, rather
# than queues, beyond 100 per pool), so a burst must not fan out unbounded.
MAX_CONCURRENT_EVENTS = 64
# How stale the "token not revoked" finding may be before a write event checks again.
REVOCATION_CHECK_SECONDS = 5.0
# Why a connection was ended (`signed_out` event): (type, detail).
SESSION_ENDED = ("session-ended", "This session was signed out: sign in again to reconnect.")
ACCOUNT_CLOSED = ("account-inactive", "This account was deactivated or deleted.")
# The same `typing` state again within this many seconds is not broadcast again.
TYPING_REPEAT_SECONDS = 2.0
# How long a shutdown waits for the message writer to store what it holds.
FLUSH_SECONDS = 5.0

# Bound once: `.labels()` takes a lock and builds a key, too much for every message.
_DELIVERED = CHAT_MESSAGES.labels("delivered")
_REJECTED = CHAT_MESSAGES.labels("rejected")

Payload = TypeVar("Payload", bound=BaseModel)
Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def room_key(room_id: uuid.UUID) -> str:
    return f"room:{room_id}"


def ok(**fields: Any) -> dict[str, Any]:
    return {"ok": True, **fields}


def failure(kind: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {"ok": False, "error": {"type": kind, "detail": detail, **extra}}


def _error_ack(error: DomainError) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if error.field is not None:
        extra["errors"] = [
            FieldProblem(field=error.field, message=error.detail, type=error.slug).model_dump()
        ]
    if isinstance(error, RateLimited):
        extra["retry_after"] = error.retry_after
    return failure(error.slug, error.detail, **extra)


def _validation_ack(error: ValidationError) -> dict[str, Any]:
    problems = [
        FieldProblem(
            field=".".join(str(part) for part in item["loc"]) or "payload",
            message=item["msg"],
            type=item["type"],
        )
        for item in error.errors(include_url=False, include_input=False)
    ]
    names = ", ".join(problem.field for problem in problems)
    return failure(
        "validation-error",
        f"Invalid payload: {names}.",
        errors=[problem.model_dump() for problem in problems],
    )


@dataclass
class JoinedRoom:
    room_id: uuid.UUID
    kind: RoomKind
    course_id: uuid.UUID | None


@dataclass
class Connection:
    """One authenticated socket in this process."""

    sid: str
    user_id: uuid.UUID
    full_name: str
    jti: str
    expires_at: dt.datetime
    # The login session its token belongs to: signing it out ends the connection.
    session_id: uuid.UUID
    rooms: dict[uuid.UUID, JoinedRoom] = field(default_factory=dict)
    # The last `typing` state sent per room, and when (time.monotonic()).
    typing: dict[uuid.UUID, tuple[float, bool]] = field(default_factory=dict)
    # When the token was last found not revoked (time.monotonic()).
    revocation_checked_at: float = float("-inf")

    @property
    def presence(self) -> PresenceEntry:
        return PresenceEntry(self.sid, self.user_id, self.full_name)


class ChatGateway:
    """Built in `create_app`; `attach` mounts it at /socket.io on the same app."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.sockets = SocketServer(settings)
        self.presence: PresenceStore = create_presence(
            settings.redis_url, settings.chat_presence_ttl_seconds
        )
        self.connections: dict[str, Connection] = {}
        # The sids of each user's connections in this process.
        self._by_user: dict[uuid.UUID, set[str]] = {}
        self._stop_listening: Callable[[], None] | None = None
        self._stop_pushing: Callable[[], None] | None = None
        self._access_checker: asyncio.Task[None] | None = None
        self._state: State | None = None
        self._clock: Clock | None = None
        self._policy: MessagePolicy | None = None
        self.writer = MessageWriter(lambda: self.runtime.database, lambda: self.clock.now())
        self._refresher: asyncio.Task[None] | None = None
        self._slots = asyncio.Semaphore(MAX_CONCURRENT_EVENTS)
        self.sockets.on_connect(self._connect)
        self.sockets.on_disconnect(self._disconnect)
        self._event("join_room", schemas.JoinRoomIn, self._join_room)
        self._event("leave_room", schemas.RoomRefIn, self._leave_room)
        self._event("message", schemas.MessageIn, self._message, refused=_REJECTED.inc)
        self._event("typing", schemas.TypingIn, self._typing)
        self._event("presence", schemas.RoomRefIn, self._presence)
        self._event("read", schemas.ReadIn, self._read)
        self._event("delete_message", schemas.DeleteMessageIn, self._delete_message)
        self._event("mute_user", schemas.MuteUserIn, self._mute_user)
        self.sockets.on_any(self._unknown_event)

    # Wiring -----------------------------------------------------------------------------

    def attach(self, app: FastAPI) -> None:
        self._state = app.state
        app.state.chat = self
        # First among the app's routes: a Socket.IO handshake (every socket's connect,
        # thousands at once when a deploy makes every client reconnect) would otherwise
        # be tried against each API route before it reaches the mount at the end.
        app.router.routes.insert(0, Mount(SOCKET_PATH, app=self.sockets.asgi_app()))

    def lifespan(self, inner: Lifespan) -> Lifespan:
        """The app's lifespan, then the chat's own shutdown (before the runtime's)."""

        @asynccontextmanager
        async def wrapped(app: FastAPI) -> AsyncIterator[None]:
            async with inner(app):
                try:
                    # Revocations end open sockets, in this process and (with Redis) in
                    # every other.
                    self._stop_listening = await self.runtime.revocations.listen(
                        self._on_revocation
                    )
                    self._stop_pushing = live.register(self.push_to_users)
                    drain: Drain | None = getattr(app.state, "drain", None)
                    if drain is not None:
                        drain.on_drain("chat", self.hang_up)
                    yield
                finally:
                    await self.shutdown()

        return wrapped

    async def push_to_users(
        self, event: str, messages: Sequence[tuple[uuid.UUID, dict[str, Any]]]
    ) -> None:
        """`kit.live` pushes: each payload to its user's personal room."""
        for user_id, payload in messages:
            await self.sockets.emit(event, payload, to=live.user_room(user_id))

    async def hang_up(self) -> None:
        """The drain's first step for the chat (kit.shutdown): store the messages the
        writer holds (their senders get their acks, their rooms the broadcast), then drop
        every connection at the transport, without a Socket.IO or Engine.IO close:
        official clients take that for a lost connection and reconnect, which the load
        balancer sends to another replica (this one no longer listens)."""
        flushed = await self.writer.flush(FLUSH_SECONDS)
        dropped = await self.sockets.drop_all()
        logger.info("chat_hung_up", connections=dropped, messages_flushed=flushed)

    async def shutdown(self) -> None:
        await self.writer.flush(FLUSH_SECONDS)
        if self._stop_pushing is not None:
            self._stop_pushing()
            self._stop_pushing = None
        if self._stop_listening is not None:
            self._stop_listening()
            self._stop_listening = None
        for task in (self._refresher, self._access_checker):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._refresher = self._access_checker = None
        for connection in list(self.connections.values()):
            for room_id in connection.rooms:
                with contextlib.suppress(Exception):
                    await self.presence.remove(room_key(room_id), connection.presence)
        CHAT_SOCKETS.dec(len(self.connections))
        self.connections.clear()
        self._by_user.clear()
        await self.writer.close()
        await self.sockets.shutdown()
        await self.presence.close()

    @property
    def runtime(self) -> Runtime:
        assert self._state is not None, "ChatGateway.attach(app) was not called"
        runtime: Runtime = self._state.runtime
        return runtime

    @property
    def policy(self) -> MessagePolicy:
        if self._policy is None:
            self._policy = MessagePolicy(self.settings, self.runtime.rate_limiter)
        return self._policy

    @property
    def clock(self) -> Clock:
        """`app.state.clock` (tests move it) or the system clock; looked up once, as
        every event needs it and a missing state attribute is an exception each time."""
        if self._clock is None:
            self._clock = getattr(self._state, "clock", None) or SystemClock()
        return self._clock

    @asynccontextmanager
    async def _service(self) -> AsyncIterator[ChatService]:
        """One event, one transaction: committed on success, rolled back on error."""
        runtime = self.runtime
        now = self.clock.now()
        async with transaction(runtime) as session:
            courses = CourseService(
                session, cache=runtime.cache, cache_ttl=self.settings.cache_ttl_seconds, now=now
            )
            yield ChatService(session, courses=courses, settings=self.settings, now=now)

    def _event(
        self,
        name: str,
        model: type[Payload],
        action: Callable[[Connection, Payload], Awaitable[dict[str, Any]]],
        *,
        refused: Callable[[], None] | None = None,
    ) -> None:
        """`refused` is called for each event refused after sign-in (bad payload,
        domain error, failure): the chat counts its rejected messages with it."""

        async def handle(sid: str, *args: Any) -> dict[str, Any]:
            connection = self.connections.get(sid)
            if connection is None:
                return failure("unauthorized", "This connection is not signed in.")
            if self.clock.now() >= connection.expires_at:
                return failure(
                    "token-expired", "The access token expired: reconnect with a fresh one."
                )
            if len(args) != 1:
                return failure(
                    "validation-error", f"`{name}` takes exactly one JSON object as its payload."
                )
            try:
                payload = model.model_validate(args[0])
            except ValidationError as error:
                if refused is not None:
                    refused()
                return _validation_ack(error)
            try:
                async with self._slots:
                    return ok(**await action(connection, payload))
            except DomainError as error:
                if refused is not None:
                    refused()
                return _error_ack(error)
            except Exception:
                if refused is not None:
                    refused()
                logger.exception("chat_event_failed", chat_event=name, sid=sid)
                return failure(
                    "internal-error", "The server failed to handle this event; it has been logged."
                )

        self.sockets.on(name, handle)

    async def _unknown_event(self, event: str, sid: str, *args: Any) -> dict[str, Any]:
        return failure("unknown-event", f"There is no chat event named {event!r}.")

    # Connection -------------------------------------------------------------------------

    async def _connect(self, sid: str, environ: dict[str, Any], auth: Any) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        if not isinstance(token, str) or not token:
            raise ConnectionRefused(
                "Sign in: connect with {'token': <access token>} as the auth payload.",
                {"type": "unauthorized", "detail": "No access token in the auth payload."},
            )
        runtime = self.runtime
        try:
            # Reads only: no BEGIN and COMMIT round trips (a reconnecting class is
            # thousands of connects at once).
            async with self._slots, runtime.database.read_sessionmaker() as session:
                caller = await authenticate_socket(runtime, session, self.clock, token)
        except Unauthorized as error:
            raise ConnectionRefused(
                error.detail, {"type": error.slug, "detail": error.detail}
            ) from None
        except Exception:
            logger.exception("chat_connect_failed", sid=sid)
            detail = "The server could not sign this connection in; try again."
            raise ConnectionRefused(detail, {"type": "internal-error", "detail": detail}) from None
        if caller.user.email_verified_at is None:
            raise ConnectionRefused(
                EMAIL_NOT_VERIFIED, {"type": "email-not-verified", "detail": EMAIL_NOT_VERIFIED}
            )
        self.connections[sid] = Connection(
            sid=sid,
            user_id=caller.user.id,
            full_name=caller.user.full_name,
            jti=caller.claims.jti,
            expires_at=caller.claims.expires_at,
            session_id=caller.claims.session_id,
        )
        self._by_user.setdefault(caller.user.id, set()).add(sid)
        CHAT_SOCKETS.inc()
        # The personal room: notifications reach every connection of the user.
        await self.sockets.enter_room(sid, live.user_room(caller.user.id))
        if self._refresher is None:
            self._refresher = self.sockets.start_background_task(self._refresh_presence)
        if self._access_checker is None:
            self._access_checker = self.sockets.start_background_task(self._check_access)

    def _forget(self, sid: str) -> Connection | None:
        """Take a connection out of this process's books: its events are refused from
        now on (`unauthorized`)."""
        connection = self.connections.pop(sid, None)
        if connection is not None:
            CHAT_SOCKETS.dec()
            sids = self._by_user.get(connection.user_id)
            if sids is not None:
                sids.discard(sid)
                if not sids:
                    del self._by_user[connection.user_id]
        return connection

    async def _disconnect(self, sid: str, reason: str) -> None:
        connection = self._forget(sid)
        if connection is None:
            return
        for room_id in list(connection.rooms):
            try:
                async with self._slots:
                    await self._leave(connection, room_id)
            except Exception:
                logger.exception("chat_presence_cleanup_failed", sid=sid, room_id=str(room_id))

    async def _refresh_presence(self) -> None:
        """Keep this process's presence entries alive while their sockets are."""
        interval = self.settings.chat_presence_ttl_seconds / 3
        while True:
            await asyncio.sleep(interval)
            held = [
                (room_key(room_id), connection.presence)
                for connection in list(self.connections.values())
                for room_id in list(connection.rooms)
            ]
            try:
                await self.presence.refresh(held)
            except Exception:
                logger.exception("chat_presence_refresh_failed", entries=len(held))

    async def _check_not_revoked(self, connection: Connection) -> None:
        """Signing out denies the token: a connected socket notices within seconds (a
        cache read per write event would be one more Redis round trip per message)."""
        now = time.monotonic()
        if now - connection.revocation_checked_at < REVOCATION_CHECK_SECONDS:
            return
        if await self.runtime.cache.get(DENIED_JTI_PREFIX + connection.jti) is not None:
            raise Unauthorized("The access token was revoked.", slug="invalid-token")
        connection.revocation_checked_at = now

    # Revocations ------------------------------------------------------------------------

    async def _on_revocation(self, revocation: Revocation) -> None:
        """Announced after a commit, by this process or another: end the connections of
        a signed-out session or a closed account; re-check the rooms of an account whose
        memberships changed."""
        sids = self._by_user.get(revocation.user_id, set())
        connections = [self.connections[sid] for sid in list(sids) if sid in self.connections]
        if revocation.kind is Ended.membership:
            await self._recheck_rooms(connections)
            return
        if revocation.kind is Ended.sessions:
            ended = set(revocation.session_ids)
            connections = [c for c in connections if c.session_id in ended]
            kind, detail = SESSION_ENDED
        else:
            kind, detail = ACCOUNT_CLOSED
        for connection in connections:
            await self._end(connection, kind, detail)

    async def _end(self, connection: Connection, kind: str, detail: str) -> None:
        """Refuse the connection's events at once, take it out of its rooms (the others
        see it go offline), tell the client why, and hang up."""
        if self._forget(connection.sid) is None:
            return  # already ended, or hung up by itself
        logger.info("chat_connection_ended", sid=connection.sid, reason=kind)
        for room_id in list(connection.rooms):
            await self.sockets.leave_room(connection.sid, room_key(room_id))
            try:
                await self._leave(connection, room_id)
            except Exception:
                logger.exception("chat_presence_cleanup_failed", sid=connection.sid)
        with contextlib.suppress(Exception):
            await self.sockets.emit(
                "signed_out", {"type": kind, "detail": detail}, to=connection.sid
            )
        await self.sockets.disconnect(connection.sid)

    async def _recheck_rooms(self, connections: list[Connection]) -> None:
        """Take connections out of the rooms their users may no longer be in (left the
        course, lost the instructor role): one query for all of them."""
        # The rooms as they are now: a room joined while the query runs was admitted by
        # its own check and is not judged by this one.
        held = [(c, room_id) for c in connections for room_id in c.rooms]
        if not held:
            return
        async with self._service() as service:
            still = await service.repo.still_open([(c.user_id, room) for c, room in held])
        for connection, room_id in held:
            if (connection.user_id, room_id) in still or room_id not in connection.rooms:
                continue
            if connection.sid in self.connections:
                await self.sockets.leave_room(connection.sid, room_key(room_id))
                await self._leave(connection, room_id)
                event = {
                    "room_id": str(room_id),
                    "type": "not-a-member",
                    "detail": "You are no longer a member of this room.",
                }
                await self.sockets.emit("removed_from_room", event, to=connection.sid)

    async def recheck_access(self) -> None:
        """The safety net under the announcements (which a replica reconnecting to
        Redis can miss): every connection of this process against the database, its
        login session and account in one query, its rooms in another."""
        connections = list(self.connections.values())
        if not connections:
            return
        async with transaction(self.runtime) as session:
            still_open = await open_sessions(session, list({c.session_id for c in connections}))
        for connection in connections:
            if connection.session_id not in still_open:
                await self._end(connection, *SESSION_ENDED)
        await self._recheck_rooms([c for c in connections if c.sid in self.connections])

    async def _check_access(self) -> None:
        interval = self.settings.chat_access_check_seconds
        while True:
            await asyncio.sleep(interval)
            try:
                await self.recheck_access()
            except Exception:
                logger.exception("chat_access_check_failed")

    def _joined(self, connection: Connection, room_id: uuid.UUID) -> JoinedRoom:
        joined = connection.rooms.get(room_id)
        if joined is None:
            raise Forbidden("Join the room first (`join_room`).", slug="not-joined")
        return joined

    # Presence ---------------------------------------------------------------------------

    async def online(self, room_id: uuid.UUID) -> list[schemas.Person]:
        entries = distinct_users(await self.presence.entries(room_key(room_id)))
        return [schemas.Person(id=entry.user_id, full_name=entry.full_name) for entry in entries]

    async def _broadcast_presence(
        self, room_id: uuid.UUID, connection: Connection, status: Literal["online", "offline"]
    ) -> list[schemas.Person]:
        """The room's online list, broadcast when this connection changed its user's
        status: their first connection in the room, or their last one gone."""
        entries = await self.presence.entries(room_key(room_id))
        others = [
            entry
            for entry in entries
            if entry.user_id == connection.user_id and entry.sid != connection.sid
        ]
        online = [
            schemas.Person(id=entry.user_id, full_name=entry.full_name)
            for entry in distinct_users(entries)
        ]
        if not others:
            event = schemas.PresenceEvent(
                room_id=room_id,
                user_id=connection.user_id,
                status=status,
                online=online,
            )
            await self.broadcast_model("presence", event, room_id)
        return online

    async def _leave(self, connection: Connection, room_id: uuid.UUID) -> None:
        connection.rooms.pop(room_id, None)
        connection.typing.pop(room_id, None)
        await self.presence.remove(room_key(room_id), connection.presence)
        await self._broadcast_presence(room_id, connection, "offline")

    # Broadcasts -------------------------------------------------------------------------

    async def broadcast(
        self, event: str, data: dict[str, Any], room_id: uuid.UUID, *, skip_sid: str | None = None
    ) -> None:
        """To everyone in the room, on every replica."""
        await self.sockets.emit(event, data, to=room_key(room_id), skip_sid=skip_sid)

    async def broadcast_model(self, event: str, data: BaseModel, room_id: uuid.UUID) -> None:
        await self.broadcast(event, data.model_dump(mode="json"), room_id)

    # Events -----------------------------------------------------------------------------

    async def _join_room(
        self, connection: Connection, payload: schemas.JoinRoomIn
    ) -> dict[str, Any]:
        async with self._service() as service:
            user = await service.active_user(connection.user_id)
            access = await service.join(user, room_id=payload.room_id, course_id=payload.course_id)
            room = await service.room_out(access, user)
        if connection.sid not in self.connections:
            # It hung up while the room was being looked up: leave no presence behind.
            raise Unauthorized("This connection is closed.")
        if room.id in connection.rooms:
            online = await self.online(room.id)
        else:
            connection.rooms[room.id] = JoinedRoom(room.id, room.kind, room.course_id)
            await self.sockets.enter_room(connection.sid, room_key(room.id))
            await self.presence.add(room_key(room.id), connection.presence)
            online = await self._broadcast_presence(room.id, connection, "online")
        return {
            "room": room.model_dump(mode="json"),
            "online": [person.model_dump(mode="json") for person in online],
        }

    async def _leave_room(
        self, connection: Connection, payload: schemas.RoomRefIn
    ) -> dict[str, Any]:
        self._joined(connection, payload.room_id)
        await self.sockets.leave_room(connection.sid, room_key(payload.room_id))
        await self._leave(connection, payload.room_id)
        return {"room_id": str(payload.room_id)}

    async def _message(self, connection: Connection, payload: schemas.MessageIn) -> dict[str, Any]:
        received = time.perf_counter()
        joined = self._joined(connection, payload.room_id)
        await self._check_not_revoked(connection)
        pending = await self.policy.admit(
            Sender(connection.user_id, connection.full_name),
            SendTarget(joined.room_id, joined.course_id),
            payload.client_id,
            payload.text,
        )
        stored = await self.writer.write(pending)
        if stored is None:
            # A retry (its message comes back, not broadcast again), or refused.
            async with self._service() as service:
                data = (await service.unstored(pending)).model_dump(mode="json")
            return {"message": data, "duplicate": True}
        data = pending.out(stored.created_at).model_dump(mode="json")
        await self.broadcast("message", data, joined.room_id)
        CHAT_DELIVERY.observe(time.perf_counter() - received)
        _DELIVERED.inc()
        return {"message": data, "duplicate": False}

    async def _typing(self, connection: Connection, payload: schemas.TypingIn) -> dict[str, Any]:
        self._joined(connection, payload.room_id)
        # A client repeating itself is told nothing new: no broadcast to the whole room.
        now = time.monotonic()
        last = connection.typing.get(payload.room_id)
        if last is not None and last[1] == payload.typing and now - last[0] < TYPING_REPEAT_SECONDS:
            return {"broadcast": False}
        connection.typing[payload.room_id] = (now, payload.typing)
        event = schemas.TypingEvent(
            room_id=payload.room_id,
            user=schemas.Person(id=connection.user_id, full_name=connection.full_name),
            typing=payload.typing,
        )
        await self.broadcast(
            "typing", event.model_dump(mode="json"), payload.room_id, skip_sid=connection.sid
        )
        return {"broadcast": True}

    async def _presence(self, connection: Connection, payload: schemas.RoomRefIn) -> dict[str, Any]:
        self._joined(connection, payload.room_id)
        online = await self.online(payload.room_id)
        return {
            "room_id": str(payload.room_id),
            "online": [person.model_dump(mode="json") for person in online],
        }

    async def _read(self, connection: Connection, payload: schemas.ReadIn) -> dict[str, Any]:
        self._joined(connection, payload.room_id)
        async with self._service() as service:
            marker, unread = await service.mark_read(
                connection.user_id, payload.room_id, payload.message_id
            )
        event = schemas.ReadEvent(
            room_id=payload.room_id, user_id=connection.user_id, message_id=marker
        )
        await self.broadcast(
            "read", event.model_dump(mode="json"), payload.room_id, skip_sid=connection.sid
        )
        return {
            "room_id": str(payload.room_id),
            "last_read_message_id": str(marker),
            "unread_count": unread,
        }

    async def _delete_message(
        self, connection: Connection, payload: schemas.DeleteMessageIn
    ) -> dict[str, Any]:
        await self._check_not_revoked(connection)
        async with self._service() as service:
            user = await service.active_user(connection.user_id)
            message = await service.deletable_message(user, payload.message_id)
            event = await service.delete_message(user, message)
        await self.broadcast_model("message_deleted", event, event.room_id)
        return event.model_dump(mode="json")

    async def _mute_user(
        self, connection: Connection, payload: schemas.MuteUserIn
    ) -> dict[str, Any]:
        await self._check_not_revoked(connection)
        body = schemas.MuteIn(minutes=payload.minutes, reason=payload.reason)
        async with self._service() as service:
            user = await service.active_user(connection.user_id)
            mute, _ = await service.mute_in_room(user, payload.room_id, payload.user_id, body)
        await self.broadcast_model("user_muted", muted_event(mute), mute.room_id)
        return {"mute": mute.model_dump(mode="json")}


def muted_event(mute: schemas.MuteOut) -> schemas.UserMutedEvent:
    return schemas.UserMutedEvent(
        room_id=mute.room_id,
        course_id=mute.course_id,
        user_id=mute.user_id,
        muted_until=mute.muted_until,
        reason=mute.reason,
    )
