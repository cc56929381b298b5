"""POST /analytics/events: a learner's batch is checked field by field and as a whole
(all or nothing), objects must be ones the learner may see, repeats of a client id are
ignored, and nobody posts for someone else."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from lyceum.analytics.ingest import statement_id
from lyceum.kit.runtime import Runtime
from lyceum.models.analytics import AnalyticsEvent
from lyceum.models.identity import Role
from tests.analytics.ingest_helpers import EVENTS, event, fields_named, post, stored
from tests.assessments.helpers import Classroom, Member, classroom, member
from tests.courses.test_courses import new_course, published

API = "/api/v1"


@dataclass
class World:
    room: Classroom
    other_course: dict[str, Any]
    other_lessons: list[str]
    draft: dict[str, Any]
    stranger: Member  # enrolled nowhere

    @property
    def learner(self) -> Member:
        return self.room.learner

    @property
    def locked(self) -> str:
        """A lesson of the learner's course that is not a preview."""
        return self.room.lessons[1]


@pytest.fixture
async def world(client: httpx.AsyncClient, connection: AsyncConnection, runtime: Runtime) -> World:
    room = await classroom(client, connection, runtime)
    other_teacher = await member(connection, runtime, Role.instructor, prefix="other")
    other_course, other_lessons = await published(client, other_teacher)  # type: ignore[arg-type]
    draft = await new_course(client, room.teacher)  # type: ignore[arg-type]
    stranger = await member(connection, runtime, prefix="stranger")
    return World(room, other_course, other_lessons, draft, stranger)


async def count_events(connection: AsyncConnection, user_id: uuid.UUID) -> int:
    return int(
        (
            await connection.execute(
                select(func.count()).where(
                    AnalyticsEvent.user_id == user_id, AnalyticsEvent.source == "client"
                )
            )
        ).scalar_one()
    )


async def test_a_batch_is_stored_with_course_and_lesson_taken_from_the_objects(
    client: httpx.AsyncClient, connection: AsyncConnection, world: World
) -> None:
    room = world.room
    batch = [
        event("course", room.course_id, id="c-1", context={"platform": "ios"}),
        event("lesson", world.locked, id="l-1", duration_ms=61_000),
        event("lesson", world.locked, verb="paused", id="l-2", duration_ms=5_000),
        event("catalog", verb="searched", id="s-1", context={"query": "cells"}),
        event("course", room.course_id, verb="searched", id="s-2", context={"query": "atp"}),
    ]
    response = await post(client, world.learner.headers, batch)
    assert response.status_code == 202, response.text
    assert response.json() == {"accepted": 5, "duplicates": 0}
    rows = {row.client_event_id: row for row in await stored(connection, world.learner.id)}
    assert set(rows) == {"c-1", "l-1", "l-2", "s-1", "s-2"}
    course_id, lesson_id = uuid.UUID(room.course_id), uuid.UUID(world.locked)
    assert (rows["c-1"].course_id, rows["c-1"].lesson_id) == (course_id, None)
    assert rows["c-1"].context == {"platform": "ios"}
    assert (rows["l-1"].course_id, rows["l-1"].lesson_id) == (course_id, lesson_id)
    assert rows["l-1"].duration_ms == 61_000 and rows["l-1"].source == "client"
    assert rows["l-2"].verb == "paused"
    assert (rows["s-1"].course_id, rows["s-1"].object_id) == (None, None)
    assert rows["s-2"].context == {"query": "atp"}
    # the xAPI statement id is derived from the learner and the app's id
    assert rows["l-1"].event_id == statement_id(world.learner.id, "l-1")


async def test_a_result_and_a_file_page_are_kept(
    client: httpx.AsyncClient, connection: AsyncConnection, world: World
) -> None:
    response = await post(
        client,
        world.learner.headers,
        [
            event(
                "lesson",
                world.locked,
                verb="started",
                result={"score": 3, "max_score": 4, "success": True, "response": "b"},
            )
        ],
    )
    assert response.status_code == 202, response.text
    (row,) = await stored(connection, world.learner.id)
    assert row.result == {"score": 3.0, "max_score": 4.0, "success": True, "response": "b"}


def _bad(world: World) -> list[tuple[dict[str, Any], str]]:
    """(an event, the field its 422 must name)."""
    lesson = world.locked
    now = dt.datetime.now(dt.UTC)
    ok = event("lesson", lesson)
    return [
        ({**ok, "id": ""}, "id"),
        ({**ok, "id": "x" * 65}, "id"),
        ({**ok, "id": "has space"}, "id"),
        ({**ok, "verb": "completed"}, "verb"),  # a server verb
        ({**ok, "verb": "danced"}, "verb"),
        ({**ok, "object": {"type": "user", "id": lesson}}, "object.type"),
        ({**ok, "object": {"type": "lesson"}}, "object.id"),
        ({**ok, "object": {"type": "catalog", "id": lesson}}, "object.id"),
        ({**ok, "object": {"type": "lesson", "id": lesson, "page": 2}}, "object.page"),
        ({**ok, "object": {"type": "lesson", "id": "not-a-uuid"}}, "object.id"),
        ({**ok, "verb": "answered"}, "object"),  # answered takes a quiz item
        ({**ok, "timestamp": "2026-12-04T10:00:00"}, "timestamp"),  # no offset
        ({**ok, "timestamp": "yesterday"}, "timestamp"),
        ({**ok, "timestamp": (now + dt.timedelta(hours=1)).isoformat()}, "timestamp"),
        ({**ok, "timestamp": (now - dt.timedelta(days=31)).isoformat()}, "timestamp"),
        ({**ok, "duration_ms": -1}, "duration_ms"),
        ({**ok, "duration_ms": 24 * 3600 * 1000 + 1}, "duration_ms"),
        ({**ok, "duration_ms": "10"}, "duration_ms"),
        ({**ok, "result": {"score": 5, "max_score": 4}}, "result"),
        ({**ok, "result": {"response": "x" * 1001}}, "result.response"),
        ({**ok, "result": {"grade": "A"}}, "result.grade"),
        ({**ok, "context": {"platform": "ios", "device_id": "abc"}}, "context.device_id"),
        ({**ok, "context": {"nested": {"a": 1}}}, "context.nested"),
        ({**ok, "course_id": world.other_course["id"]}, "course_id"),
        ({**ok, "lesson_id": world.room.lessons[2]}, "lesson_id"),
        ({**ok, "user_id": str(uuid.uuid4())}, "user_id"),
        ({**ok, "actor": {"mbox": "mailto:someone@example.com"}}, "actor"),
    ]


async def test_each_bad_field_is_named_and_nothing_is_written(
    client: httpx.AsyncClient, connection: AsyncConnection, world: World
) -> None:
    bad = _bad(world)
    for bad_event, field in bad:
        # the bad event in third place, between good ones
        batch = [event("course", world.room.course_id), event("lesson", world.locked), bad_event]
        response = await post(client, world.learner.headers, batch)
        assert fields_named(response) == [f"body.events.2.{field}"], (field, response.text)
    # several in one batch: each named, in order. The shape of every event is checked
    # first; times and objects (against the clock and the database) once it is right.
    checked_later = {"timestamp", "course_id", "lesson_id"}
    for group in (
        [(bad_event, field) for bad_event, field in bad if field not in checked_later],
        [(bad_event, field) for bad_event, field in bad[13:15] + bad[23:25]],
    ):
        response = await post(client, world.learner.headers, [item for item, _ in group])
        named = fields_named(response)
        assert named == [f"body.events.{i}.{field}" for i, (_, field) in enumerate(group)]
    assert await count_events(connection, world.learner.id) == 0


async def test_batch_size_is_bounded(
    client: httpx.AsyncClient, connection: AsyncConnection, world: World
) -> None:
    too_many = [event("course", world.room.course_id) for _ in range(501)]
    assert fields_named(await post(client, world.learner.headers, too_many)) == ["body.events"]
    assert fields_named(await post(client, world.learner.headers, [])) == ["body.events"]
    missing = await client.post(EVENTS, json={}, headers=world.learner.headers)
    assert fields_named(missing) == ["body.events"]
    assert await count_events(connection, world.learner.id) == 0
    full = await post(client, world.learner.headers, too_many[:500])
    assert full.json() == {"accepted": 500, "duplicates": 0}


async def test_repeats_are_ignored_within_a_batch_and_across_batches(
    client: httpx.AsyncClient, connection: AsyncConnection, world: World
) -> None:
    course = world.room.course_id
    first = await post(
        client,
        world.learner.headers,
        [
            event("course", course, id="a"),
            event("course", course, id="b"),
            event("course", course, id="a"),
        ],
    )
    assert first.json() == {"accepted": 2, "duplicates": 1}
    again = await post(
        client,
        world.learner.headers,
        [event("course", course, id="b"), event("course", course, id="c")],
    )
    assert again.json() == {"accepted": 1, "duplicates": 1}
    rows = await stored(connection, world.learner.id)
    assert sorted(row.client_event_id for row in rows) == ["a", "b", "c"]
    # the first of the repeated ids in a batch is the one kept
    # another learner's ids are their own
    peer = await post(client, world.stranger.headers, [event("course", course, id="a")])
    assert peer.json() == {"accepted": 1, "duplicates": 0}


async def test_a_learner_cannot_post_for_another(
    client: httpx.AsyncClient, connection: AsyncConnection, world: World
) -> None:
    other = str(world.stranger.id)
    ok = event("course", world.room.course_id)
    in_event = await post(client, world.learner.headers, [{**ok, "user_id": other}])
    assert fields_named(in_event) == ["body.events.0.user_id"]
    on_batch = await client.post(
        EVENTS, json={"events": [ok], "user_id": other}, headers=world.learner.headers
    )
    assert fields_named(on_batch) == ["body.user_id"]
    as_actor = await client.post(
        EVENTS, json={"events": [ok], "actor": {"id": other}}, headers=world.learner.headers
    )
    assert fields_named(as_actor) == ["body.actor"]
    assert await stored(connection, world.stranger.id) == []
    assert await stored(connection, world.learner.id) == []
    # the events are always the caller's
    response = await post(client, world.learner.headers, [ok])
    assert response.status_code == 202
    (row,) = await stored(connection, world.learner.id)
    assert row.user_id == world.learner.id
    anonymous = await client.post(EVENTS, json={"events": [ok]})
    assert anonymous.status_code == 401


async def test_objects_the_learner_cannot_see_are_refused(
    client: httpx.AsyncClient, connection: AsyncConnection, world: World
) -> None:
    other_course = world.other_course["id"]
    preview, locked = world.other_lessons[0], world.other_lessons[1]
    refused = [
        event("lesson", locked),  # a lesson of a course the learner did not enroll in
        event("course", world.draft["id"]),  # a draft
        event("lesson", str(uuid.uuid4())),  # no such lesson
        event("quiz", str(uuid.uuid4())),
        event("file_page", str(uuid.uuid4()), verb="downloaded"),
        event("catalog", verb="searched", course_id=world.draft["id"]),
    ]
    for bad in refused:
        response = await post(client, world.learner.headers, [bad])
        field = "course_id" if bad["object"]["type"] == "catalog" else "object.id"
        assert fields_named(response) == [f"body.events.0.{field}"], bad
        assert response.json()["errors"][0]["type"] == "not_visible"
    assert await stored(connection, world.learner.id) == []
    # a published course's page and its preview lessons are open to any signed-in user
    visible = [event("course", other_course), event("lesson", preview)]
    assert (await post(client, world.learner.headers, visible)).status_code == 202
    # enrolling opens the rest
    enrolled = await client.post(
        f"{API}/courses/{other_course}/enrollments", headers=world.learner.headers
    )
    assert enrolled.status_code == 201
    assert (await post(client, world.learner.headers, [event("lesson", locked)])).status_code == 202
    # the course's instructors see their drafts
    teacher = world.room.teacher
    assert (
        await post(client, teacher.headers, [event("course", world.draft["id"])])
    ).status_code == 202


async def test_course_and_lesson_must_agree_with_the_object(
    client: httpx.AsyncClient, connection: AsyncConnection, world: World
) -> None:
    room = world.room
    agreeing = event("lesson", world.locked, course_id=room.course_id, lesson_id=world.locked)
    assert (await post(client, world.learner.headers, [agreeing])).status_code == 202
    # a course page viewed from within a lesson: the lesson is the event's
    within = event("course", room.course_id, lesson_id=room.lessons[0])
    assert (await post(client, world.learner.headers, [within])).status_code == 202
    rows = {row.client_event_id: row for row in await stored(connection, world.learner.id)}
    assert rows[within["id"]].lesson_id == uuid.UUID(room.lessons[0])
    other_lesson = event("course", room.course_id, lesson_id=world.other_lessons[0])
    response = await post(client, world.learner.headers, [other_lesson])
    assert fields_named(response) == ["body.events.0.lesson_id"]


async def test_quiz_items_quizzes_and_files(
    client: httpx.AsyncClient, connection: AsyncConnection, runtime: Runtime, world: World
) -> None:
    from tests.assessments.helpers import (
        add_assignment,
        add_question,
        add_quiz,
        member,
        single_choice,
        start,
    )

    room = world.room
    question = await add_question(client, room, single_choice())
    quiz = await add_quiz(client, room, [question["id"]])
    answered = event(
        "quiz_item", question["id"], verb="answered", result={"response": "b", "success": True}
    )
    # a question is the learner's once it was drawn into one of their attempts
    response = await post(client, world.learner.headers, [answered])
    assert fields_named(response) == ["body.events.0.object.id"]
    await start(client, quiz["id"], world.learner)
    batch = [event("quiz", quiz["id"], verb="started"), answered | {"id": uuid.uuid4().hex}]
    response = await post(client, world.learner.headers, batch)
    assert response.status_code == 202, response.text
    # not to someone outside the course
    response = await post(client, world.stranger.headers, batch)
    assert fields_named(response) == ["body.events.0.object.id", "body.events.1.object.id"]

    # Unpublished quizzes and assignments, and the questions of an unpublished quiz, are
    # the course's instructors' only: not an enrolled learner's, nor an enrolled
    # learner's whose account happens to be an instructor's elsewhere.
    hidden_question = await add_question(client, room, single_choice())
    hidden_quiz = await add_quiz(client, room, [hidden_question["id"]], published=False)
    hidden_assignment = await add_assignment(client, room, published=False)
    teaching_elsewhere = await member(connection, runtime, Role.instructor, prefix="ie")
    joined = await client.post(
        f"{API}/courses/{room.course_id}/enrollments", headers=teaching_elsewhere.headers
    )
    assert joined.status_code == 201, joined.text
    hidden = [
        event("quiz", hidden_quiz["id"], verb="started"),
        event("quiz_item", hidden_question["id"], verb="answered"),
        event("assignment", hidden_assignment["id"]),
    ]
    for who in (world.learner, teaching_elsewhere):
        response = await post(client, who.headers, hidden)
        assert fields_named(response) == [f"body.events.{n}.object.id" for n in range(3)]
    response = await post(client, room.teacher.headers, hidden)
    assert response.status_code == 202, response.text


def test_statement_ids_are_the_uuid5_of_learner_and_event_id() -> None:
    from lyceum.analytics.ingest import _NAMESPACE, _statement_text

    for number in range(200):
        user, client_id = uuid.uuid4(), f"ev-{number}-{uuid.uuid4().hex[: number % 9]}"
        assert _statement_text(_NAMESPACE + f"{user}/".encode(), client_id) == str(
            statement_id(user, client_id)
        )


async def test_a_body_that_is_not_a_batch(
    client: httpx.AsyncClient, connection: AsyncConnection, world: World
) -> None:
    headers = world.learner.headers
    json_headers = headers | {"content-type": "application/json"}
    broken = await client.post(EVENTS, content=b'{"events": [', headers=json_headers)
    assert broken.status_code == 400, broken.text
    assert broken.json()["errors"][0]["type"] == "json_invalid"
    # malformed JSON is answered before the caller is looked at, as for any JSON body
    anonymous = await client.post(
        EVENTS, content=b'{"events": [', headers={"content-type": "application/json"}
    )
    assert anonymous.status_code == 400
    assert fields_named(await client.post(EVENTS, content=b"", headers=json_headers)) == ["body"]
    assert (await client.post(EVENTS, content=b"")).status_code == 401
    as_text = await client.post(
        EVENTS,
        content=json.dumps({"events": [event("course", world.room.course_id)]}).encode(),
        headers=headers | {"content-type": "text/plain"},
    )
    assert fields_named(as_text) == ["body"]
    # other spellings of the same values (read by the full schema) are stored alike
    spelled = await post(
        client,
        headers,
        [
            event("course", world.room.course_id.upper(), id="u-1", duration_ms=5.0),
            event("lesson", world.locked, id="u-2", context={"platform": None}),
        ],
    )
    assert spelled.json() == {"accepted": 2, "duplicates": 0}, spelled.text
    rows = {row.client_event_id: row for row in await stored(connection, world.learner.id)}
    assert rows["u-1"].object_id == uuid.UUID(world.room.course_id)
    assert rows["u-1"].duration_ms == 5 and rows["u-2"].context is None
    assert rows["u-2"].course_id == uuid.UUID(world.room.course_id)


async def test_a_stored_batch_asks_for_one_rollup_run(
    client: httpx.AsyncClient, connection: AsyncConnection, world: World
) -> None:
    from sqlalchemy import text

    from lyceum.analytics.tasks import ROLLUPS_LOCK

    async def waiting() -> int:
        found = await connection.execute(
            text(
                "SELECT count(*) FROM procrastinate_jobs"
                " WHERE queueing_lock = :lock AND status = 'todo'"
            ),
            {"lock": ROLLUPS_LOCK},
        )
        return int(found.scalar_one())

    await connection.execute(
        text("DELETE FROM procrastinate_jobs WHERE queueing_lock = :lock"), {"lock": ROLLUPS_LOCK}
    )
    for _ in range(2):
        response = await post(
            client, world.learner.headers, [event("course", world.room.course_id)]
        )
        assert response.status_code == 202, response.text
        assert await waiting() == 1


async def test_free_text_is_stored_as_sent(
    client: httpx.AsyncClient, connection: AsyncConnection, world: World
) -> None:
    awkward = 'tab\there\nline\r\\N \\ "quoted" \u2028 é 😀'
    response = await post(
        client,
        world.learner.headers,
        [
            event("lesson", world.locked, verb="started", id="a\\b", result={"response": awkward}),
            event("catalog", verb="searched", id="N", context={"query": awkward}),
        ],
    )
    assert response.json() == {"accepted": 2, "duplicates": 0}, response.text
    rows = {row.client_event_id: row for row in await stored(connection, world.learner.id)}
    assert rows["a\\b"].result == {"response": awkward}
    assert rows["N"].context == {"query": awkward}
