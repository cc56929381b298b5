"""The time source. Services take `now` from a Clock so tests can move time forward
(token expiry) without sleeping."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Protocol

from fastapi import Depends, Request


class Clock(Protocol):
    def now(self) -> dt.datetime: ...


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


class FrozenClock:
    """A clock that only moves when told to (tests)."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        self.current = start or dt.datetime.now(dt.UTC)

    def now(self) -> dt.datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        self.current += dt.timedelta(**delta)


async def get_clock(request: Request) -> Clock:
    clock: Clock = getattr(request.app.state, "clock", None) or SystemClock()
    return clock


ClockDep = Annotated[Clock, Depends(get_clock)]
