"""Revocations are announced only once their transaction commits, to every listener:
in this process, or through Redis to every process."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from lyceum.kit.db import unit_of_work
from lyceum.kit.errors import Conflict
from lyceum.kit.revocations import Ended, Listener, Revocation, Revocations
from lyceum.kit.runtime import Runtime


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> str | None:
    return None if request.param == "memory" else str(request.getfixturevalue("redis_url"))


async def test_announced_after_the_commit_to_every_listener(
    runtime: Runtime, backend: str | None
) -> None:
    # With Redis, the announcing process and the listening ones are different objects
    # sharing nothing but the server.
    speaker = Revocations(backend)
    hearers = [Revocations(backend) for _ in range(2)] if backend else [speaker]
    heard: list[list[Revocation]] = [[] for _ in hearers]
    arrived = asyncio.Event()

    def recorder(into: list[Revocation]) -> Listener:
        async def record(revocation: Revocation) -> None:
            into.append(revocation)
            if all(heard):
                arrived.set()

        return record

    for hearer, into in zip(hearers, heard, strict=True):
        await hearer.listen(recorder(into))
    user = uuid.uuid4()
    sessions = (uuid.uuid4(), uuid.uuid4())
    signed_out = Revocation(Ended.sessions, user, "logout", sessions)

    async def rolled_back() -> None:
        async with runtime.database.sessionmaker() as session, unit_of_work(session):
            speaker.announce_after_commit(session, Revocation(Ended.account, user, "never"))
            raise Conflict("rolled back")

    with pytest.raises(Conflict):
        await rolled_back()
    async with runtime.database.sessionmaker() as session, unit_of_work(session):
        speaker.announce_after_commit(session, signed_out)
        await asyncio.sleep(0)
        assert not any(heard)  # nothing before the commit
    await asyncio.wait_for(arrived.wait(), 5)
    assert heard == [[signed_out] for _ in hearers]
    for revocations in {speaker, *hearers}:
        await revocations.close()


def test_a_revocation_survives_the_wire() -> None:
    revocation = Revocation(Ended.membership, uuid.uuid4(), "unenrolled")
    assert Revocation.decode(revocation.encode()) == revocation
    signed_out = Revocation(Ended.sessions, uuid.uuid4(), "logout", (uuid.uuid4(),))
    assert Revocation.decode(signed_out.encode().encode()) == signed_out
