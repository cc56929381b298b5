"""The session facts the web page cache reads (`web.session.SessionFacts`): deleted at
once by a change to the account, and again once it commits, so facts a page kept after
checking the database before that commit are never read; never read for another user
or past the login session."""

from __future__ import annotations

import datetime as dt
import uuid

from lyceum.identity.service import forget_web_facts
from lyceum.kit.cache import MemoryCache
from lyceum.kit.db import unit_of_work
from lyceum.kit.runtime import Runtime
from lyceum.models.identity import Role
from lyceum.web.session import (
    SessionFacts,
    WebClaims,
    facts_generation,
    keep_facts,
    kept_facts,
)

NOW = dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.UTC)


def _claims(user_id: uuid.UUID, session_id: uuid.UUID, lasts: dt.timedelta) -> WebClaims:
    return WebClaims(user_id=user_id, session_id=session_id, role="student", expires_at=NOW + lasts)


async def _keep(cache: MemoryCache, claims: WebClaims, facts: SessionFacts) -> None:
    generation = await facts_generation(cache, claims.user_id)
    await keep_facts(cache, claims, generation, facts, NOW)


async def test_a_change_deletes_the_facts_before_and_after_its_commit(runtime: Runtime) -> None:
    cache = MemoryCache()
    user_id = uuid.uuid4()
    first, second = (_claims(user_id, uuid.uuid4(), dt.timedelta(days=1)) for _ in range(2))
    facts = SessionFacts(user_id=user_id, role=Role.student, full_name="Ann", locale="vi")
    for claims in (first, second):
        await _keep(cache, claims, facts)
        assert await kept_facts(cache, claims) == facts

    async with runtime.database.sessionmaker() as session, unit_of_work(session):
        await forget_web_facts(session, cache, user_id)
        # Every session of the user at once, before the commit.
        assert await kept_facts(cache, first) is None
        assert await kept_facts(cache, second) is None
        # A page that checked the database before the commit keeps what it saw.
        await _keep(cache, first, facts)
        assert await kept_facts(cache, first) == facts
    assert await kept_facts(cache, first) is None  # deleted again after the commit

    # Afterwards a page keeps (and reads) new ones as before.
    await _keep(cache, first, facts)
    assert await kept_facts(cache, first) == facts


async def test_facts_are_read_for_their_own_user_within_the_session_only() -> None:
    cache = MemoryCache()
    user_id, session_id = uuid.uuid4(), uuid.uuid4()
    facts = SessionFacts(user_id=user_id, role=Role.admin, full_name="Ann", locale=None)
    claims = _claims(user_id, session_id, dt.timedelta(days=1))
    await _keep(cache, claims, facts)
    # The same login session id in a token of another user: nothing.
    other = _claims(uuid.uuid4(), session_id, dt.timedelta(days=1))
    assert await kept_facts(cache, other) is None
    # Facts of another user are not kept under this session.
    await _keep(cache, other, facts)
    assert await kept_facts(cache, other) is None
    # A session that has ended keeps nothing.
    ended = _claims(user_id, uuid.uuid4(), dt.timedelta(seconds=-1))
    await _keep(cache, ended, facts)
    assert await kept_facts(cache, ended) is None
