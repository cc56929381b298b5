"""A request leaves no reference cycle through its database session.

Whatever a request's session, transaction and connection refer to must go when the
request is done, by reference counting. A cycle through them (the driver connection's
memo in `session.info` once held the transaction, which holds the session) makes ~40
objects a request that only the garbage collector's full passes free: under a burst of
500 quiz submissions, 41,000 objects at a time and 70-260 ms of stopped event loop each.
This drives the requests of a quiz (the path where it was found), a profile read and a
profile change, and a tutor question with its streamed answer (stored in transactions of
its own) and catalog reads on a server-like app, then collects with every unreachable
object kept for inspection."""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from lyceum.kit.runtime import Runtime
from tests.assessments.helpers import (
    API,
    add_question,
    add_quiz,
    classroom,
    short_answer,
    single_choice,
    start,
    true_false,
)
from tests.conftest import committing_client
from tests.tutor.test_tutor_providers import course_about

# What a request's database work is made of; none may be left for the collector.
REQUEST_OBJECTS = {
    "sqlalchemy.orm.session.Session",
    "sqlalchemy.orm.session.SessionTransaction",
    "sqlalchemy.ext.asyncio.session.AsyncSession",
    "sqlalchemy.engine.base.Connection",
    "sqlalchemy.engine.base.RootTransaction",
    "sqlalchemy.orm.identity._WeakInstanceDict",
}


def _kind(thing: object) -> str:
    return f"{type(thing).__module__}.{type(thing).__qualname__}"


class Window:
    """Requests driven inside `with Window(engine) as window:` and what they left for the
    collector (`window.left()`).

    The collector is off inside. Every request object (of `engine`: the migrations' own
    connection, from the test session's set-up, is not a request's) that exists when the
    window opens is held until it closes: what earlier tests and jobs left in cycles of
    their own, and which only becomes unreachable while these requests run (a failed
    job's traceback let go of by the job runner, say), is not counted against them."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self._held: list[object] = []

    def _ours(self, thing: object) -> bool:
        return _kind(thing) in REQUEST_OBJECTS and getattr(thing, "engine", self.engine) is (
            self.engine
        )

    def __enter__(self) -> Window:
        gc.collect()
        self._held = [thing for thing in gc.get_objects() if self._ours(thing)]
        gc.disable()
        return self

    def left(self) -> Counter[str]:
        """The request objects made in the window that a full collection finds
        unreachable now."""
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            gc.collect()
            return Counter(_kind(thing) for thing in gc.garbage if self._ours(thing))
        finally:
            gc.set_debug(0)
            gc.garbage.clear()

    def __exit__(self, *exc: object) -> None:
        gc.enable()
        self._held.clear()


async def test_a_quiz_and_profile_requests_leave_no_session_for_the_collector(
    client: httpx.AsyncClient, connection: AsyncConnection, runtime: Runtime
) -> None:
    room = await classroom(client, connection, runtime)
    questions = [
        await add_question(client, room, body)
        for body in (single_choice(), true_false(), short_answer())
    ]
    quiz = await add_quiz(client, room, [q["id"] for q in questions], pass_percent=50)
    answers: list[dict[str, Any]] = [
        {"question_id": questions[0]["id"], "choice": "b"},
        {"question_id": questions[1]["id"], "value": True},
        {"question_id": questions[2]["id"], "text": "paris"},
    ]
    learner = room.learner.headers
    with Window(runtime.database.engine.sync_engine) as window:
        sheet = await start(client, quiz["id"], room.learner)
        saved = await client.put(
            f"{API}/attempts/{sheet['id']}/answers", json={"answers": answers}, headers=learner
        )
        assert saved.status_code == 200, saved.text
        submitted = await client.post(
            f"{API}/attempts/{sheet['id']}/submit", json={"answers": answers}, headers=learner
        )
        assert submitted.status_code == 200, submitted.text
        result = await client.get(f"{API}/attempts/{sheet['id']}/result", headers=learner)
        assert result.status_code == 200, result.text
        me = await client.get(f"{API}/users/me", headers=learner)
        assert me.status_code == 200, me.text
        renamed = await client.patch(
            f"{API}/users/me", json={"bio": "No cycles here."}, headers=learner
        )
        assert renamed.status_code == 200, renamed.text
        left = window.left()
    assert not left, left


@pytest.fixture
async def live(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """Every request commits (the tutor's answer is stored after the question's
    transaction, in sessions of its own)."""
    async with committing_client(runtime) as http:
        yield http


async def test_a_tutor_question_and_catalog_reads_leave_no_session_for_the_collector(
    live: httpx.AsyncClient, runtime: Runtime
) -> None:
    course, learner, _ = await course_about(
        live, runtime, "# Energy\n\nMitochondria turn glucose into ATP."
    )
    chat = await live.post(
        f"{API}/tutor/conversations", json={"course_id": course["id"]}, headers=learner.headers
    )
    assert chat.status_code == 201, chat.text
    with Window(runtime.database.engine.sync_engine) as window:
        asked = await live.post(
            f"{API}/tutor/conversations/{chat.json()['id']}/messages",
            json={"content": "What do mitochondria do?"},
            headers={**learner.headers, "Accept": "text/event-stream"},
        )
        assert asked.status_code == 201, asked.text
        assert "event: done" in asked.text
        history = await live.get(
            f"{API}/tutor/conversations/{chat.json()['id']}", headers=learner.headers
        )
        assert history.status_code == 200, history.text
        catalog = await live.get(f"{API}/courses", params={"q": "energy"})
        assert catalog.status_code == 200, catalog.text
        one = await live.get(f"{API}/courses/{course['id']}", headers=learner.headers)
        assert one.status_code == 200, one.text
        left = window.left()
    assert not left, left


def test_the_window_counts_what_is_made_inside_it_and_nothing_older(runtime: Runtime) -> None:
    """A cycle through a session made before the window, let go of inside it, is not the
    window's; one made inside is."""
    engine = runtime.database.engine
    older: list[Any] = [AsyncSession(bind=engine)]
    older[0].sync_session.info["cycle"] = older  # session → info → list → session
    with Window(engine.sync_engine) as window:
        del older
        assert not window.left()
        newer = AsyncSession(bind=engine)
        newer.sync_session.info["cycle"] = newer
        del newer
        left = window.left()
    assert left == Counter(
        {
            "sqlalchemy.ext.asyncio.session.AsyncSession": 1,
            "sqlalchemy.orm.session.Session": 1,
            "sqlalchemy.orm.identity._WeakInstanceDict": 1,
        }
    ), left
