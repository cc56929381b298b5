"""Every chat REST route, called by each kind of caller (inside the test transaction)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from lyceum.config import Settings
from lyceum.kit.db import get_session
from lyceum.kit.runtime import Runtime
from lyceum.models.chat import ChatMessage, ChatMute
from lyceum.models.courses import Course, CourseInstructor, CourseLevel, CourseStatus, Enrollment
from lyceum.models.identity import Role
from tests.chat.helpers import Member, member_in
from tests.conftest import client_for, make_app
from tests.support.clock import FrozenClock

CALLERS = ["anonymous", "enrolled", "other_learner", "instructor", "other_instructor", "admin"]


@pytest.fixture(scope="module")
def shared_app(settings: Settings, runtime: Runtime) -> FastAPI:
    """Built once: building the app costs more than a test here."""
    return make_app(settings, runtime, None)


@pytest.fixture
async def client(
    shared_app: FastAPI, connection: AsyncConnection, clock: FrozenClock
) -> AsyncIterator[httpx.AsyncClient]:
    """The shared app with its sessions inside this test's transaction (rolled back)."""

    async def session_in_test_transaction() -> AsyncIterator[AsyncSession]:
        async with AsyncSession(
            bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        ) as session:
            try:
                yield session
            except BaseException:
                await session.rollback()
                raise
            else:
                await session.commit()

    shared_app.dependency_overrides[get_session] = session_in_test_transaction
    shared_app.state.clock = clock
    async with client_for(shared_app) as http:
        yield http
    shared_app.dependency_overrides.clear()


@dataclass
class World:
    ids: dict[str, str]
    people: dict[str, Member | None]
    # Set up what a request consumes (a message to delete, a mute to lift), per caller.
    fresh: Callable[..., Awaitable[dict[str, str]]]


async def _add(connection: AsyncConnection, row: Any) -> None:
    async with AsyncSession(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    ) as session:
        await session.merge(row)
        await session.commit()


async def _course(connection: AsyncConnection, teacher: Member, status: CourseStatus) -> uuid.UUID:
    course = Course(
        id=uuid.uuid4(),
        slug=f"chat-{uuid.uuid4().hex[:12]}",
        title="Chemistry",
        language="en",
        level=CourseLevel.beginner,
        category="science",
        status=status,
        owner_id=teacher.id,
    )
    await _add(connection, course)
    await _add(connection, CourseInstructor(course_id=course.id, user_id=teacher.id))
    return course.id


@pytest.fixture
async def world(
    client: httpx.AsyncClient, connection: AsyncConnection, runtime: Runtime, clock: FrozenClock
) -> World:
    async def make(role: Role, name: str) -> Member:
        return await member_in(connection, runtime.tokens, clock.now(), role, name)

    teacher = await make(Role.instructor, "Grace Teacher")
    enrolled = await make(Role.student, "Ada Enrolled")
    target = await make(Role.student, "Tom Target")
    people: dict[str, Member | None] = {
        "anonymous": None,
        "enrolled": enrolled,
        "other_learner": await make(Role.student, "Eve Other"),
        "instructor": teacher,
        "other_instructor": await make(Role.instructor, "Olga Other"),
        "admin": await make(Role.admin, "Root Admin"),
    }
    # Written straight into the transaction: the routes under test only read them.
    course = {"id": str(await _course(connection, teacher, CourseStatus.published))}
    draft = {"id": str(await _course(connection, teacher, CourseStatus.draft))}
    for learner in (enrolled, target):
        await _add(
            connection,
            Enrollment(
                course_id=uuid.UUID(course["id"]), user_id=learner.id, enrolled_at=clock.now()
            ),
        )
    room = await client.get(f"/api/v1/chat/courses/{course['id']}/room", headers=teacher.headers)
    direct = await client.post(
        "/api/v1/chat/rooms/direct", json={"user_id": str(teacher.id)}, headers=enrolled.headers
    )
    assert room.status_code == 200 and direct.status_code == 201, direct.text
    ids = {
        "course": course["id"],
        "draft": draft["id"],
        "room": room.json()["id"],
        "direct": direct.json()["id"],
        "teacher": str(teacher.id),
        "target": str(target.id),
    }

    async def fresh(who: str, *, mute: bool) -> dict[str, str]:
        made = {}
        for key, room_id in (("course_message", ids["room"]), ("direct_message", ids["direct"])):
            message = ChatMessage(
                id=uuid.uuid4(),
                room_id=uuid.UUID(room_id),
                sender_id=enrolled.id,
                client_id=f"{key}-{who}",
                text="hello",
            )
            await _add(connection, message)
            made[key] = str(message.id)
        if mute:
            await _add(
                connection,
                ChatMute(
                    course_id=uuid.UUID(ids["course"]),
                    user_id=target.id,
                    muted_until=clock.now() + dt.timedelta(minutes=10),
                    muted_by_id=teacher.id,
                    reason="",
                ),
            )
        return made

    return World(ids, people, fresh)


DIRECT_TO_TEACHER = {"user_id": "{teacher}"}

# (method, path template, body, expected status per caller in CALLERS order)
MATRIX: list[tuple[str, str, Any, list[int]]] = [
    ("GET", "/api/v1/chat/rooms", None, [401, 200, 200, 200, 200, 200]),
    ("GET", "/api/v1/chat/courses/{course}/room", None, [401, 200, 403, 200, 403, 200]),
    ("GET", "/api/v1/chat/courses/{draft}/room", None, [401, 404, 404, 200, 404, 200]),
    ("GET", "/api/v1/chat/rooms/{room}", None, [401, 200, 404, 200, 404, 200]),
    ("GET", "/api/v1/chat/rooms/{room}/messages", None, [401, 200, 404, 200, 404, 200]),
    ("GET", "/api/v1/chat/rooms/{room}/presence", None, [401, 200, 404, 200, 404, 200]),
    ("GET", "/api/v1/chat/rooms/{direct}", None, [401, 200, 404, 200, 404, 404]),
    ("GET", "/api/v1/chat/rooms/{direct}/messages", None, [401, 200, 404, 200, 404, 404]),
    ("GET", "/api/v1/chat/rooms/{direct}/presence", None, [401, 200, 404, 200, 404, 404]),
    ("POST", "/api/v1/chat/rooms/direct", DIRECT_TO_TEACHER, [401, 200, 404, 422, 404, 404]),
    ("DELETE", "/api/v1/chat/messages/{course_message}", None, [401, 204, 404, 204, 404, 204]),
    ("DELETE", "/api/v1/chat/messages/{direct_message}", None, [401, 204, 404, 403, 404, 404]),
    ("GET", "/api/v1/chat/courses/{course}/mutes", None, [401, 403, 403, 200, 403, 200]),
    (
        "PUT",
        "/api/v1/chat/courses/{course}/mutes/{target}",
        {"minutes": 5},
        [401, 403, 403, 201, 403, 200],
    ),
    (
        "DELETE",
        "/api/v1/chat/courses/{course}/mutes/{target}",
        "lift",
        [401, 403, 403, 204, 403, 204],
    ),
]


@pytest.mark.parametrize(("method", "template", "body", "expected"), MATRIX)
async def test_authorization_matrix(
    client: httpx.AsyncClient,
    world: World,
    method: str,
    template: str,
    body: Any,
    expected: list[int],
) -> None:
    answers = {}
    for who in CALLERS:
        made = await world.fresh(who, mute=body == "lift")
        path = template.format(**world.ids, **made)
        payload = body
        if body == DIRECT_TO_TEACHER:
            payload = {"user_id": world.ids["teacher"]}
        elif body == "lift":
            payload = None
        caller = world.people[who]
        response = await client.request(
            method, path, json=payload, headers=caller.headers if caller else {}
        )
        answers[who] = response.status_code
        if response.status_code >= 400:
            assert response.headers["content-type"] == "application/problem+json"
    assert answers == dict(zip(CALLERS, expected, strict=True))


async def test_unknown_ids_are_404_for_everyone(client: httpx.AsyncClient, world: World) -> None:
    admin = world.people["admin"]
    assert admin is not None
    missing = uuid.uuid4()
    for path in (
        f"/api/v1/chat/rooms/{missing}",
        f"/api/v1/chat/rooms/{missing}/messages",
        f"/api/v1/chat/courses/{missing}/room",
    ):
        assert (await client.get(path, headers=admin.headers)).status_code == 404
    gone = await client.delete(f"/api/v1/chat/messages/{missing}", headers=admin.headers)
    assert gone.status_code == 404
    nobody = await client.post(
        "/api/v1/chat/rooms/direct", json={"user_id": str(missing)}, headers=admin.headers
    )
    assert nobody.status_code == 404
    for bad in ({"user_id": "x"}, {}, {"user_id": str(missing), "extra": 1}, []):
        response = await client.post("/api/v1/chat/rooms/direct", json=bad, headers=admin.headers)
        assert response.status_code == 422, bad
