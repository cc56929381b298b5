"""A published course with an instructor and an enrolled learner, and the bodies of
questions, quizzes and assignments, built through the real API."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy import func, insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from lyceum.kit.runtime import Runtime
from lyceum.models.identity import LoginSession, Role, User
from tests.courses.test_courses import published

API = "/api/v1"


@dataclass
class Member:
    """A signed-in account. Made straight in the database with a token from the app's
    own codec: these tests are about assessments, and two argon2 hashes per account
    (register, login) would dominate their run time. tests/identity covers sign-in."""

    id: uuid.UUID
    email: str
    headers: dict[str, str]


async def member(
    connection: AsyncConnection,
    runtime: Runtime,
    role: Role = Role.student,
    *,
    prefix: str = "user",
    name: str = "Ada Lovelace",
) -> Member:
    user_id = uuid.uuid4()
    email = f"{prefix}-{user_id.hex[:12]}@example.com"
    await connection.execute(
        insert(User).values(
            id=user_id,
            email=email,
            full_name=name,
            role=role,
            is_active=True,
            email_verified_at=func.now(),
            locale="en",
            timezone="UTC",
            preferences={},
        )
    )
    now = dt.datetime.now(dt.UTC)
    session_id = uuid.uuid4()
    await connection.execute(
        insert(LoginSession).values(
            id=session_id,
            user_id=user_id,
            created_at=now,
            last_used_at=now,
            expires_at=now + dt.timedelta(days=1),
        )
    )
    token, _, _ = runtime.tokens.encode(
        subject=user_id,
        role=role.value,
        token_type="access",
        now=now,
        lifetime=dt.timedelta(hours=3),
        extra={"sid": str(session_id)},
    )
    return Member(user_id, email, {"Authorization": f"Bearer {token}"})


@dataclass
class Classroom:
    course: dict[str, Any]
    lessons: list[str]
    module_id: str
    teacher: Member
    learner: Member

    @property
    def course_id(self) -> str:
        return str(self.course["id"])


async def classroom(
    client: httpx.AsyncClient, connection: AsyncConnection, runtime: Runtime
) -> Classroom:
    teacher = await member(connection, runtime, Role.instructor, prefix="teacher")
    course, lessons = await published(client, teacher)  # type: ignore[arg-type]
    learner = await member(connection, runtime, prefix="learner")
    enrolled = await client.post(
        f"{API}/courses/{course['id']}/enrollments", headers=learner.headers
    )
    assert enrolled.status_code == 201, enrolled.text
    return Classroom(course, lessons, course["modules"][0]["id"], teacher, learner)


async def enrolled_learner(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    runtime: Runtime,
    room: Classroom,
    prefix: str = "peer",
) -> Member:
    learner = await member(connection, runtime, prefix=prefix)
    enrolled = await client.post(
        f"{API}/courses/{room.course_id}/enrollments", headers=learner.headers
    )
    assert enrolled.status_code == 201, enrolled.text
    return learner


def single_choice(
    prompt: str = "Which organelle makes most of a cell's ATP?", **extra: Any
) -> dict[str, Any]:
    return {
        "kind": "single_choice",
        "prompt": prompt,
        "options": [
            {"id": "a", "text": "Ribosome"},
            {"id": "b", "text": "Mitochondrion"},
            {"id": "c", "text": "Golgi apparatus"},
        ],
        "correct": "b",
        "points": 2,
        "explanation": "Mitochondria run oxidative phosphorylation.",
        **extra,
    }


def multiple_choice(**extra: Any) -> dict[str, Any]:
    return {
        "kind": "multiple_choice",
        "prompt": "Which of these are prime numbers?",
        "options": [{"id": str(n), "text": str(n)} for n in (2, 3, 4, 9)],
        "correct": ["2", "3"],
        "points": 4,
        "explanation": "4 and 9 are squares.",
        **extra,
    }


def true_false(**extra: Any) -> dict[str, Any]:
    return {
        "kind": "true_false",
        "prompt": "Water boils at 100 degrees Celsius at sea level.",
        "correct": True,
        "explanation": "At 1 atm.",
        **extra,
    }


def short_answer(**extra: Any) -> dict[str, Any]:
    return {
        "kind": "short_answer",
        "prompt": "What is the capital of France?",
        "match": "case_insensitive",
        "accepted": ["Paris"],
        "explanation": "Paris has been the capital since 987.",
        **extra,
    }


def essay_question(**extra: Any) -> dict[str, Any]:
    return {
        "kind": "essay",
        "prompt": "Explain in a paragraph why the sky is blue.",
        "points": 5,
        "reference_answer": "Rayleigh scattering of sunlight by air molecules.",
        **extra,
    }


async def add_question(
    client: httpx.AsyncClient, room: Classroom, body: dict[str, Any]
) -> dict[str, Any]:
    response = await client.post(
        f"{API}/courses/{room.course_id}/questions", json=body, headers=room.teacher.headers
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def add_quiz(
    client: httpx.AsyncClient, room: Classroom, question_ids: list[str], **settings: Any
) -> dict[str, Any]:
    body = {
        "title": "Checkpoint",
        "published": True,
        "sections": [{"question_id": question_id} for question_id in question_ids],
        **settings,
    }
    response = await client.post(
        f"{API}/courses/{room.course_id}/quizzes", json=body, headers=room.teacher.headers
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def start(client: httpx.AsyncClient, quiz_id: str, who: Member) -> dict[str, Any]:
    response = await client.post(f"{API}/quizzes/{quiz_id}/attempts", headers=who.headers)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def rubric(**extra: Any) -> dict[str, Any]:
    return {
        "criteria": [
            {
                "id": "content",
                "title": "Content",
                "description": "Explains the mechanism correctly.",
                "key_terms": ["photosynthesis", "chlorophyll", "glucose"],
                "levels": [
                    {"title": "Missing", "descriptor": "No mechanism.", "points": 0},
                    {"title": "Partial", "descriptor": "Some steps.", "points": 3},
                    {"title": "Complete", "descriptor": "All steps.", "points": 6},
                ],
            },
            {
                "id": "clarity",
                "title": "Clarity",
                "levels": [
                    {"title": "Unclear", "points": 0},
                    {"title": "Clear", "points": 4},
                ],
            },
        ],
        **extra,
    }


def assignment_body(**extra: Any) -> dict[str, Any]:
    return {
        "title": "How plants make food",
        "prompt": "Explain how green plants make their own food from light.",
        "rubric": rubric(),
        "points": 10,
        "reference_answer": "Plants use chlorophyll to capture light and turn carbon dioxide "
        "and water into glucose and oxygen: photosynthesis.",
        "min_words": 20,
        "max_words": 400,
        "published": True,
        **extra,
    }


async def add_assignment(
    client: httpx.AsyncClient, room: Classroom, **extra: Any
) -> dict[str, Any]:
    response = await client.post(
        f"{API}/courses/{room.course_id}/assignments",
        json=assignment_body(**extra),
        headers=room.teacher.headers,
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


GOOD_ESSAY = (
    "Green plants make their food by photosynthesis. In the leaves, chlorophyll absorbs "
    "sunlight, and the plant uses that energy to combine carbon dioxide from the air with "
    "water from the soil. The result is glucose, which stores the energy, and oxygen, "
    "which the plant releases. Plants use the glucose to grow and to respire."
)


def in_test_transaction(session: AsyncSession) -> Any:
    """A `sessions` scope for `assessments.tasks.score` that works inside the test's
    transaction: each scope is a savepoint, rolled back if it raises."""

    @asynccontextmanager
    async def scope() -> AsyncIterator[AsyncSession]:
        async with session.begin_nested():
            yield session

    return scope


@contextmanager
def statements(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every statement psycopg sends, through SQLAlchemy or on the driver connection,
    one by one or as a batch (`executemany`, which the unit of work uses for rows of one
    table: each of its rows counts as a statement), whitespace collapsed."""
    sent: list[str] = []
    execute = psycopg.AsyncCursor.execute
    executemany = psycopg.AsyncCursor.executemany

    def text_of(query: Any) -> str:
        # Driver statements go as bytes (PostgreSQL's numbered placeholders).
        return " ".join((query.decode() if isinstance(query, bytes) else str(query)).split())

    async def record(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(text_of(query))
        return await execute(self, query, *args, **kwargs)

    async def record_many(self: Any, query: Any, params: Any, *args: Any, **kwargs: Any) -> Any:
        params = list(params)
        sent.extend(text_of(query) for _ in params)
        return await executemany(self, query, params, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(psycopg.AsyncCursor, "execute", record)
        patch.setattr(psycopg.AsyncCursor, "executemany", record_many)
        yield sent
