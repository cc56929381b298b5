"""Chat test pieces: people with access tokens, committed courses (a real server must
see them), and a Socket.IO client that records what it hears."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import httpx
import socketio
from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.ext.asyncio import AsyncSession as _AsyncSession

from lyceum.kit.runtime import Runtime
from lyceum.kit.security import TokenCodec
from lyceum.models.courses import Course
from lyceum.models.identity import LoginSession, Role, User
from tests.content.helpers import Person, course_with_lesson, enroll
from tests.identity.helpers import register, unique_email
from tests.support.clock import FrozenClock

ACK_SECONDS = 10.0
EVENT_SECONDS = 5.0
# Every event the server sends.
SERVER_EVENTS = (
    "message",
    "presence",
    "typing",
    "read",
    "message_deleted",
    "user_muted",
    "user_unmuted",
    "signed_out",
    "removed_from_room",
    "notification",
)


@dataclass
class Member(Person):
    token: str = ""
    full_name: str = ""
    # The login session its token belongs to (an access token always has one).
    session_id: uuid.UUID = field(default_factory=uuid.uuid4)


def mint(
    tokens: TokenCodec,
    user_id: uuid.UUID,
    role: Role,
    now: dt.datetime,
    minutes: float = 30,
    *,
    session_id: uuid.UUID,
) -> str:
    """An access token as login issues it, for the login session `session_id`."""
    token, _, _ = tokens.encode(
        subject=user_id,
        role=role.value,
        token_type="access",
        now=now,
        lifetime=dt.timedelta(minutes=minutes),
        extra={"sid": str(session_id)},
    )
    return token


def new_user(role: Role, name: str) -> User:
    return User(
        id=uuid.uuid4(),
        email=f"{name.lower().replace(' ', '-')}-{uuid.uuid4().hex[:10]}@example.com",
        full_name=name,
        role=role,
        email_verified_at=dt.datetime.now(dt.UTC),
    )


def login_of(user: User, now: dt.datetime) -> LoginSession:
    """A login session of `user`, as signing in creates one."""
    return LoginSession(
        id=uuid.uuid4(),
        user_id=user.id,
        created_at=now,
        last_used_at=now,
        expires_at=now + dt.timedelta(days=7),
    )


def member_of(user: User, login: LoginSession, tokens: TokenCodec, now: dt.datetime) -> Member:
    token = mint(tokens, user.id, user.role, now, session_id=login.id)
    return Member(
        id=user.id,
        headers={"Authorization": f"Bearer {token}"},
        token=token,
        full_name=user.full_name,
        session_id=login.id,
    )


async def member_in(
    connection: AsyncConnection, tokens: TokenCodec, now: dt.datetime, role: Role, name: str
) -> Member:
    """A person inside the test's (rolled-back) transaction."""
    user = new_user(role, name)
    login = login_of(user, now)
    async with _AsyncSession(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    ) as session:
        session.add(user)
        await session.flush()
        session.add(login)
        await session.commit()
    return member_of(user, login, tokens, now)


@dataclass
class Live:
    """The in-process server of this test session, and a committed HTTP client on it."""

    url: str
    http: httpx.AsyncClient
    runtime: Runtime
    clock: FrozenClock
    users: list[uuid.UUID] = field(default_factory=list)
    courses: list[uuid.UUID] = field(default_factory=list)

    async def member(self, role: Role = Role.student, name: str = "Ada Learner") -> Member:
        user = new_user(role, name)
        login = login_of(user, self.clock.now())
        async with self.runtime.database.sessionmaker() as session:
            session.add(user)
            await session.flush()
            session.add(login)
            await session.commit()
        self.users.append(user.id)
        return member_of(user, login, self.runtime.tokens, self.clock.now())

    async def course(self, teacher: Member, *, publish: bool = True) -> str:
        course, _ = await course_with_lesson(self.http, teacher, publish=publish)
        self.courses.append(uuid.UUID(course["id"]))
        return str(course["id"])

    async def registered(self) -> tuple[uuid.UUID, str]:
        """A verified account that signs in with a password (PASSWORD): its id and
        email."""
        email = unique_email("chat")
        user_id = uuid.UUID(str((await register(self.http, email))["id"]))
        self.users.append(user_id)
        async with self.runtime.database.engine.begin() as conn:
            await conn.execute(
                update(User).where(User.id == user_id).values(email_verified_at=User.created_at)
            )
        return user_id, email

    async def another_login(self, who: Member) -> Member:
        """The same person signed in a second time (another device): a login session of
        its own."""
        async with self.runtime.database.sessionmaker() as session:
            user = await session.get(User, who.id)
            assert user is not None
            login = login_of(user, self.clock.now())
            session.add(login)
            await session.commit()
        return member_of(user, login, self.runtime.tokens, self.clock.now())

    async def enroll(self, course_id: str, *learners: Member) -> None:
        for learner in learners:
            await enroll(self.http, course_id, learner)

    async def classroom(self, learners: int = 2) -> tuple[str, Member, list[Member]]:
        """A published course with its instructor and some enrolled learners."""
        teacher = await self.member(Role.instructor, "Grace Teacher")
        course_id = await self.course(teacher)
        people = [await self.member(name=f"Learner {index}") for index in range(learners)]
        await self.enroll(course_id, *people)
        return course_id, teacher, people

    async def cleanup(self) -> None:
        async with self.runtime.database.engine.begin() as conn:
            if self.courses:
                await conn.execute(delete(Course).where(Course.id.in_(self.courses)))
            if self.users:
                await conn.execute(delete(User).where(User.id.in_(self.users)))


class ChatClient:
    """python-socketio's AsyncClient, recording every server event in a queue."""

    def __init__(self) -> None:
        self.sio = socketio.AsyncClient(reconnection=False)
        self.received: dict[str, asyncio.Queue[dict[str, Any]]] = defaultdict(asyncio.Queue)
        self.refusal: Any = None
        self.hung_up = asyncio.Event()
        for name in SERVER_EVENTS:
            self.sio.on(name, self._recorder(name))
        self.sio.on("connect_error", self._refused)
        self.sio.on("disconnect", self._hung_up)

    def _recorder(self, name: str) -> Any:
        async def record(data: dict[str, Any]) -> None:
            self.received[name].put_nowait(data)

        return record

    async def _refused(self, data: Any) -> None:
        self.refusal = data

    async def _hung_up(self, *reason: Any) -> None:
        self.hung_up.set()

    async def disconnected(self) -> None:
        """The server hangs up within EVENT_SECONDS."""
        await asyncio.wait_for(self.hung_up.wait(), EVENT_SECONDS)
        assert not self.sio.connected

    async def connect(self, url: str, token: str | None) -> None:
        await self.sio.connect(
            url,
            auth={"token": token} if token is not None else None,
            transports=["websocket"],
            wait_timeout=10,
        )

    async def call(self, event: str, *payload: Any) -> dict[str, Any]:
        answer: dict[str, Any] = await self.sio.call(
            event, payload[0] if len(payload) == 1 else payload or None, timeout=ACK_SECONDS
        )
        return answer

    async def next(self, event: str) -> dict[str, Any]:
        return await asyncio.wait_for(self.received[event].get(), EVENT_SECONDS)

    async def none(self, event: str, within: float = 0.3) -> None:
        """Nothing of this kind arrives within `within` seconds."""
        await asyncio.sleep(within)
        assert self.received[event].empty(), self.received[event].get_nowait()

    def drain(self, event: str) -> list[dict[str, Any]]:
        items = []
        while not self.received[event].empty():
            items.append(self.received[event].get_nowait())
        return items

    async def join(self, **ref: str) -> dict[str, Any]:
        answer = await self.call("join_room", ref)
        assert answer["ok"], answer
        return answer

    async def send(self, room_id: str, text: str, client_id: str | None = None) -> dict[str, Any]:
        return await self.call(
            "message",
            {"room_id": room_id, "client_id": client_id or uuid.uuid4().hex, "text": text},
        )

    async def close(self) -> None:
        if self.sio.connected:
            await self.sio.disconnect()
