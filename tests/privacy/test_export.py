"""GET /me/export: a learner's own data in every section, as the learner-facing routes
show it, their avatar's bytes, nothing of another learner's, and a rate limit."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from typing import Any

import httpx
from PIL import Image
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from lyceum.kit.runtime import Runtime
from lyceum.models.chat import ChatMessage
from lyceum.models.tutor import Message, MessageRole, MessageStatus
from tests.assessments.helpers import (
    API,
    GOOD_ESSAY,
    Member,
    add_assignment,
    add_question,
    add_quiz,
    classroom,
    enrolled_learner,
    member,
    single_choice,
    start,
)
from tests.payments.helpers import checkout, priced_course

SECTIONS = {
    "profile.json",
    "enrollments.json",
    "quiz_attempts.json",
    "essay_submissions.json",
    "tutor_conversations.json",
    "chat_messages.json",
    "orders.json",
    "notification_preferences.json",
}


async def export_of(client: httpx.AsyncClient, who: Member) -> dict[str, bytes]:
    response = await client.get(f"{API}/me/export", headers=who.headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    assert response.headers["content-disposition"].startswith("attachment;")
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def section(files: dict[str, bytes], name: str) -> Any:
    return json.loads(files[f"{name}.json"])


async def test_the_export_holds_every_section_and_nothing_of_another_learner(
    client: httpx.AsyncClient, connection: AsyncConnection, runtime: Runtime
) -> None:
    room = await classroom(client, connection, runtime)
    learner, teacher = room.learner, room.teacher
    other = await enrolled_learner(client, connection, runtime, room, prefix="other")

    done = await client.post(f"{API}/lessons/{room.lessons[0]}/complete", headers=learner.headers)
    assert done.status_code == 200, done.text
    question = await add_question(client, room, single_choice())
    quiz = await add_quiz(client, room, [question["id"]], title="Cells checkpoint")
    attempt = await start(client, quiz["id"], learner)
    submitted = await client.post(
        f"{API}/attempts/{attempt['id']}/submit", json={"answers": []}, headers=learner.headers
    )
    assert submitted.status_code == 200, submitted.text
    assignment = await add_assignment(client, room)
    essay = await client.post(
        f"{API}/assignments/{assignment['id']}/submissions",
        json={"text": GOOD_ESSAY},
        headers=learner.headers,
    )
    assert essay.status_code == 201, essay.text

    conversation = await client.post(
        f"{API}/tutor/conversations",
        json={"course_id": room.course_id, "title": "Why mitochondria"},
        headers=learner.headers,
    )
    assert conversation.status_code == 201, conversation.text
    conversation_id = conversation.json()["id"]
    for role, text in ((MessageRole.user, "What is ATP for?"), (MessageRole.assistant, "Energy.")):
        await connection.execute(
            insert(Message).values(
                conversation_id=conversation_id,
                course_id=room.course_id,
                user_id=learner.id,
                role=role,
                content=text,
                status=MessageStatus.complete,
            )
        )
    chat_room = await client.post(
        f"{API}/chat/rooms/direct", json={"user_id": str(teacher.id)}, headers=learner.headers
    )
    assert chat_room.status_code == 201, chat_room.text
    other_room = await client.post(
        f"{API}/chat/rooms/direct", json={"user_id": str(teacher.id)}, headers=other.headers
    )
    assert other_room.status_code == 201, other_room.text
    for sender, room_id, text in (
        (learner, chat_room.json()["id"], "Learner's own chat line"),
        (teacher, chat_room.json()["id"], "Teacher's reply line"),
        (other, other_room.json()["id"], "Other learner's secret line"),
    ):
        await connection.execute(
            insert(ChatMessage).values(
                room_id=room_id, sender_id=sender.id, client_id=uuid.uuid4().hex, text=text
            )
        )
    paid_course = await priced_course(client, teacher)  # type: ignore[arg-type]  # a Member has the headers
    order = await checkout(client, learner, paid_course["id"])  # type: ignore[arg-type]
    assert order.status_code == 201, order.text
    preferences = await client.patch(
        f"{API}/me/notification-preferences",
        json={"time_zone": "Asia/Ho_Chi_Minh"},
        headers=learner.headers,
    )
    assert preferences.status_code == 200, preferences.text
    picture = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 120, 200)).save(picture, "PNG")
    avatar = await client.put(
        f"{API}/users/me/avatar",
        files={"file": ("me.png", picture.getvalue(), "image/png")},
        headers=learner.headers,
    )
    assert avatar.status_code == 200, avatar.text
    stored_avatar = await client.get(avatar.json()["avatar_url"], headers=learner.headers)

    files = await export_of(client, learner)
    assert set(files) == SECTIONS | {"README.txt", "files/avatar.png"}
    assert b"quiz_attempts.json" in files["README.txt"]
    assert files["files/avatar.png"] == stored_avatar.content
    assert section(files, "profile")["email"] == learner.email
    [enrollment] = section(files, "enrollments")
    assert enrollment["course_id"] == room.course_id and enrollment["percent"] > 0
    [taken] = section(files, "quiz_attempts")
    assert taken["id"] == attempt["id"] and taken["quiz_title"] == "Cells checkpoint"
    [written] = section(files, "essay_submissions")
    assert written["assignment_id"] == assignment["id"]
    assert written["text"] == GOOD_ESSAY
    # Not released yet: no grade, as GET /assignments/{id}/submissions/me shows it.
    mine = await client.get(
        f"{API}/assignments/{assignment['id']}/submissions/me", headers=learner.headers
    )
    assert {key: written[key] for key in mine.json()} == mine.json()
    [talk] = section(files, "tutor_conversations")
    assert talk["id"] == conversation_id and talk["title"] == "Why mitochondria"
    assert [turn["content"] for turn in talk["messages"]] == ["What is ATP for?", "Energy."]
    assert [line["text"] for line in section(files, "chat_messages")] == ["Learner's own chat line"]
    [bought] = section(files, "orders")
    assert bought["id"] == order.json()["id"] and bought["course_id"] == paid_course["id"]
    assert section(files, "notification_preferences")["time_zone"] == "Asia/Ho_Chi_Minh"

    theirs = await export_of(client, other)
    assert "files/avatar.png" not in theirs
    everything = b"".join(theirs.values())
    for mark in (
        learner.email,
        str(learner.id),
        attempt["id"],
        "Why mitochondria",
        "Learner's own chat line",
        order.json()["id"],
        GOOD_ESSAY[:40],
    ):
        assert mark.encode() not in everything, mark
    assert [line["text"] for line in section(theirs, "chat_messages")] == [
        "Other learner's secret line"
    ]
    assert section(theirs, "profile")["email"] == other.email


async def test_the_export_needs_a_token_and_is_rate_limited(
    client: httpx.AsyncClient, connection: AsyncConnection, runtime: Runtime
) -> None:
    anonymous = await client.get(f"{API}/me/export")
    assert anonymous.status_code == 401
    who = await member(connection, runtime, prefix="exporter")
    allowed = int(runtime.settings.data_export_rate_limit.split("/")[0])
    for _ in range(allowed):
        await export_of(client, who)
    refused = await client.get(f"{API}/me/export", headers=who.headers)
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert int(refused.headers["retry-after"]) > 0
