"""Live pushes to one user's open connections, after the commit.

A process that holds sockets (the API, with its Socket.IO gateway) registers a
publisher here; domains that want something shown at once to a user who is online call
`push_after_commit`. Nothing is pushed before the data is committed. A standalone
worker holds no sockets: with REDIS_URL set it registers a relay that hands its pushes
to the API processes through Redis (`chat.transport.redis_relay`); without Redis it
pushes nothing. The REST lists are the source of truth either way.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.kit.db import after_commit

# `publisher(event, [(user_id, payload), ...])`
Publisher = Callable[[str, Sequence[tuple[uuid.UUID, dict[str, Any]]]], Awaitable[None]]

_publishers: list[Publisher] = []


def register(publisher: Publisher) -> Callable[[], None]:
    """Add a publisher for this process; returns the function that removes it."""
    _publishers.append(publisher)

    def unregister() -> None:
        if publisher in _publishers:
            _publishers.remove(publisher)

    return unregister


def listening() -> bool:
    """Whether anything in this process would deliver a push (if not, callers need not
    collect what they would push)."""
    return bool(_publishers)


def user_room(user_id: uuid.UUID) -> str:
    """The personal room every connection of a user joins."""
    return f"user:{user_id}"


def push_after_commit(
    session: AsyncSession, event: str, messages: Sequence[tuple[uuid.UUID, dict[str, Any]]]
) -> None:
    if not messages or not _publishers:
        return
    publishers = list(_publishers)

    async def push() -> None:
        for publisher in publishers:
            await publisher(event, messages)

    after_commit(session, push)
