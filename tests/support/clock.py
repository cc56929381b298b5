"""A clock that only moves when told to: tests put it on `app.state.clock` to move
time forward (token expiry, deadlines) without sleeping."""

from __future__ import annotations

import datetime as dt


class FrozenClock:
    """A clock that only moves when told to (tests)."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        self.current = start or dt.datetime.now(dt.UTC)

    def now(self) -> dt.datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        self.current += dt.timedelta(**delta)
