"""The time source. Services take `now` from a Clock so tests can move time forward
(token expiry) without sleeping (tests/support/clock.py has the one they use)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Protocol

from fastapi import Depends, Request


class Clock(Protocol):
    def now(self) -> dt.datetime: ...


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


async def get_clock(request: Request) -> Clock:
    clock: Clock = getattr(request.app.state, "clock", None) or SystemClock()
    return clock


ClockDep = Annotated[Clock, Depends(get_clock)]
