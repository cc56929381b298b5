"""What the xAPI feed keeps from a learner: the score (and success) of a quiz whose
review policy is "none" (its attempt view and the gradebook hide them too), while the
course's instructors and admins still read them; and a cursor whose horizon no first
page made (a forged one reaching into running transactions) is refused."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from lyceum.models.assessments import Quiz, ReviewPolicy
from tests.analytics.test_xapi_endpoints import (
    FEED,
    World,
    _cursor,
    _forged,
    event_values,
    insert_events,
    read_all,
    world,
)

__all__ = ["world"]


async def _quiz(connection: AsyncConnection, course_id: str, policy: ReviewPolicy) -> uuid.UUID:
    quiz_id = uuid.uuid4()
    await connection.execute(
        insert(Quiz).values(
            id=quiz_id,
            course_id=uuid.UUID(course_id),
            title=f"Quiz {policy.value}",
            pass_percent=50,
            review_policy=policy,
            published=True,
        )
    )
    return quiz_id


def _graded(user_id: uuid.UUID, course_id: str, quiz_id: uuid.UUID, second: int) -> dict[str, Any]:
    return event_values(
        user_id,
        uuid.UUID(course_id),
        second=second,
        verb="passed",
        object_type="quiz",
        object_id=quiz_id,
        source="server",
        result={"score": 8, "max_score": 10, "success": True},
    )


async def test_a_learner_does_not_read_scores_their_quiz_hides(
    client: httpx.AsyncClient, connection: AsyncConnection, world: World
) -> None:
    hidden = await _quiz(connection, world.course, ReviewPolicy.none)
    shown = await _quiz(connection, world.course, ReviewPolicy.score_only)
    hidden_id, shown_id = await insert_events(
        connection,
        [
            _graded(world.learner.id, world.course, hidden, 100),
            _graded(world.learner.id, world.course, shown, 101),
        ],
    )
    mine, _ = await read_all(client, world.learner, course=world.course, limit=1)
    by_id = {s["id"]: s for s in mine}
    assert "score" not in by_id[str(hidden_id)].get("result", {})
    assert "success" not in by_id[str(hidden_id)].get("result", {})
    assert by_id[str(shown_id)]["result"]["score"]["raw"] == 8
    assert by_id[str(shown_id)]["result"]["success"] is True
    for reader in (world.teacher, world.admin):
        found, _ = await read_all(client, reader, course=world.course)
        seen = {s["id"]: s for s in found}
        for statement_id in (hidden_id, shown_id):
            assert seen[str(statement_id)]["result"]["score"]["raw"] == 8
            assert seen[str(statement_id)]["result"]["success"] is True


async def test_a_cursor_past_the_current_horizon_is_refused(
    client: httpx.AsyncClient, world: World
) -> None:
    first = await client.get(
        FEED, params={"course": world.course, "limit": 1}, headers=world.admin.headers
    )
    more = first.json()["more"]
    assert more
    forged = {**_cursor(more), "h": 2**63 - 1}
    answer = await client.get(FEED, params={"cursor": _forged(forged)}, headers=world.admin.headers)
    assert answer.status_code == 422
    problem = answer.json()
    assert problem["errors"][0]["field"] == "query.cursor"
    # The cursor as answered still works.
    again = await client.get(more, headers=world.admin.headers)
    assert again.status_code == 200
