"""What an account may do before its email address is confirmed: browse, enroll in free
courses, read lessons and track progress; the AI tutor (a cost per question) and chat
(other people) answer 403 `email-not-verified` until then."""

from __future__ import annotations

import httpx
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection

from lyceum.models.identity import Role, User
from tests.courses.test_courses import published
from tests.identity.helpers import account

API = "/api/v1"


async def test_an_unverified_learner_studies_but_neither_asks_the_tutor_nor_chats(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    teacher = await account(client, connection, role=Role.instructor, prefix="teacher")
    course, lessons = await published(client, teacher)
    learner = await account(client, connection, verified=False)
    me = (await client.get(f"{API}/users/me", headers=learner.headers)).json()
    assert me["email_verified"] is False

    allowed = [
        await client.post(f"{API}/courses/{course['id']}/enrollments", headers=learner.headers),
        await client.get(f"{API}/lessons/{lessons[1]}", headers=learner.headers),
        await client.post(f"{API}/lessons/{lessons[1]}/complete", headers=learner.headers),
        await client.get(f"{API}/courses/{course['id']}/progress", headers=learner.headers),
    ]
    assert [response.status_code for response in allowed] == [201, 200, 200, 200]

    gated = [
        ("POST", f"{API}/tutor/conversations", {"course_id": course["id"]}),
        ("GET", f"{API}/tutor/conversations", None),
        ("GET", f"{API}/chat/rooms", None),
        ("GET", f"{API}/chat/courses/{course['id']}/room", None),
        ("POST", f"{API}/chat/rooms/direct", {"user_id": str(teacher.id)}),
    ]
    for method, path, body in gated:
        response = await client.request(method, path, json=body, headers=learner.headers)
        assert response.status_code == 403, (path, response.text)
        assert response.json()["type"].endswith("/email-not-verified"), response.json()

    await connection.execute(
        update(User).where(User.id == learner.id).values(email_verified_at=User.created_at)
    )
    for method, path, body in gated:
        response = await client.request(method, path, json=body, headers=learner.headers)
        assert response.status_code in {200, 201}, (path, response.text)
