"""Answering or submitting reads an attempt's items in the statement that locks it
(`QuizRepository.attempt_for_answers`). A request that had to wait for the lock still
reads the items as the request holding it left them: the items' rows are locked too,
and PostgreSQL reads the newest version of every row it locks."""

from __future__ import annotations

import asyncio
import uuid

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from lyceum.assessments.repository.quizzes import QuizRepository
from lyceum.kit.runtime import Runtime
from tests.assessments.helpers import add_question, add_quiz, classroom, single_choice, start


async def _waiting_for_a_lock(runtime: Runtime, query_start: str) -> bool:
    async with runtime.database.engine.connect() as watcher:
        found = await watcher.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE wait_event_type = 'Lock' AND query LIKE :query"
            ),
            {"query": query_start + "%"},
        )
        return bool(found.scalar_one())


async def test_items_changed_while_waiting_for_the_lock_are_read_fresh(
    client: httpx.AsyncClient, connection: AsyncConnection, runtime: Runtime
) -> None:
    room = await classroom(client, connection, runtime)
    question = await add_question(client, room, single_choice())
    quiz = await add_quiz(client, room, [question["id"]])
    attempt_id = uuid.UUID((await start(client, quiz["id"], room.learner))["id"])
    # Two requests at once need rows both can see: this test commits its setup, and
    # deletes it at the end.
    await connection.commit()
    engine = runtime.database.engine
    try:
        async with AsyncSession(engine) as first, AsyncSession(engine) as second:
            holder = QuizRepository(first)
            found = await holder.attempt_with_quiz(attempt_id, for_update=True)
            assert found is not None
            (item,) = await holder.items(attempt_id)
            assert item.response is None
            item.response = {"choice": "b"}
            await first.flush()

            waiting = asyncio.create_task(QuizRepository(second).attempt_for_answers(attempt_id))
            for _ in range(500):
                if await _waiting_for_a_lock(runtime, "SELECT quiz_attempts."):
                    break
                assert not waiting.done()
                await asyncio.sleep(0.01)
            else:
                raise AssertionError("the second reader never waited for the lock")
            await first.commit()

            read = await waiting
            assert read is not None
            _, _, items = read
            assert [it.response for it in items] == [{"choice": "b"}]
            await second.rollback()
    finally:
        async with engine.begin() as cleanup:
            # Quizzes first: a question a quiz section draws cannot go before it.
            for table in ("quizzes", "courses"):
                column = "course_id" if table == "quizzes" else "id"
                await cleanup.execute(
                    text(f"DELETE FROM {table} WHERE {column} = :course"),  # noqa: S608
                    {"course": room.course_id},
                )
            await cleanup.execute(
                text("DELETE FROM users WHERE id IN (:teacher, :learner)"),
                {"teacher": room.teacher.id, "learner": room.learner.id},
            )
