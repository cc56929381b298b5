"""Tutor conversations are private: deleting one removes its questions from the tutor
report's copy (`analytics_tutor_questions`), and deleting the account removes every
question of the learner. Through the API, on committed data, with the offline tutor."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import text

from lyceum.kit.runtime import Runtime
from lyceum.models.identity import Role
from tests.analytics.test_facts_tutor import live
from tests.content.helpers import enroll, person
from tests.identity.helpers import PASSWORD
from tests.tutor.test_tutor_offline import conversation, demo_course

__all__ = ["live"]


async def questions(runtime: Runtime, user_id: uuid.UUID) -> list[str]:
    async with runtime.database.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT question FROM analytics_tutor_questions WHERE user_id = :user"
                " ORDER BY asked_at, question"
            ),
            {"user": user_id},
        )
        return [row[0] for row in rows]


async def ask(live: httpx.AsyncClient, chat: str, headers: dict[str, str], question: str) -> None:
    response = await live.post(
        f"/api/v1/tutor/conversations/{chat}/messages", json={"content": question}, headers=headers
    )
    assert response.status_code == 201, response.text


async def test_deleting_a_conversation_or_the_account_forgets_its_questions(
    live: httpx.AsyncClient, runtime: Runtime
) -> None:
    teacher = await person(live, runtime, Role.instructor)
    course = await demo_course(live, teacher, "cell-biology")
    learner = await person(live, runtime)
    await enroll(live, course["id"], learner)
    first = await conversation(live, course["id"], learner)
    second = await conversation(live, course["id"], learner)
    await ask(live, first, learner.headers, "What does the mitochondrion do for the cell?")
    await ask(live, second, learner.headers, "What is a ribosome made of?")
    assert len(await questions(runtime, learner.id)) == 2

    deleted = await live.delete(f"/api/v1/tutor/conversations/{first}", headers=learner.headers)
    assert deleted.status_code == 204, deleted.text
    assert await questions(runtime, learner.id) == ["What is a ribosome made of?"]

    gone = await live.request(
        "DELETE", "/api/v1/users/me", json={"password": PASSWORD}, headers=learner.headers
    )
    assert gone.status_code == 204, gone.text
    assert await questions(runtime, learner.id) == []
