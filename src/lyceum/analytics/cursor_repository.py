"""Watermarks for the jobs that read the event store incrementally (rollups, xAPI
forwarding, ...), safe under concurrent writers.

A sequence number is not a safe watermark: ids are taken when a row is written but
become visible when its transaction commits, so a reader that remembers "up to id N"
can miss a row with a smaller id committed later. Each event row carries instead the id
of the transaction that wrote it (`tx`, `pg_current_xact_id()`), and a reader takes as
its upper bound the oldest transaction still running (`pg_snapshot_xmin`): every row
below it was written by a transaction that has finished, so it is visible now or never
will be. `advance` hands out the window [lo, hi) of such rows and moves the named
cursor to hi in the caller's transaction: the aggregation and the move commit together,
and two runs of one job serialise on the cursor's row lock. A transaction left open
somewhere holds the bound back (the rows wait, none is lost).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True)
class Window:
    """Rows with `lo <= tx < hi` (transaction ids as integers)."""

    name: str
    lo: int
    hi: int

    @property
    def empty(self) -> bool:
        return self.hi <= self.lo

    def params(self) -> dict[str, str]:
        """Bind parameters for `WINDOW_CLAUSE` in a statement of your own."""
        return {"window_lo": str(self.lo), "window_hi": str(self.hi)}

    def clause(self) -> TextClause:
        """The window's condition, bound, for `select(...).where(window.clause())` over
        the events table (or any table with a `tx` column in the FROM list)."""
        return text(WINDOW_CLAUSE).bindparams(**self.params())


WINDOW_CLAUSE = "tx >= CAST(:window_lo AS xid8) AND tx < CAST(:window_hi AS xid8)"
"""The SQL condition of a window over a table with a `tx` column; bind `Window.params()`."""


async def advance(session: AsyncSession, name: str) -> Window:
    """Lock cursor `name` (made at 0 on first use), take the window from its position
    to the oldest running transaction, and move the cursor there (committed with the
    caller's transaction)."""
    await session.execute(
        text(
            "INSERT INTO analytics_cursors (name, position) VALUES (:name, '0'::xid8)"
            " ON CONFLICT (name) DO NOTHING"
        ),
        {"name": name},
    )
    lo = (
        await session.execute(
            text("SELECT position::text FROM analytics_cursors WHERE name = :name FOR UPDATE"),
            {"name": name},
        )
    ).scalar_one()
    hi = (
        await session.execute(text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text"))
    ).scalar_one()
    window = Window(name=name, lo=int(lo), hi=max(int(lo), int(hi)))
    if not window.empty:
        await session.execute(
            text(
                "UPDATE analytics_cursors SET position = CAST(:hi AS xid8), updated_at = now()"
                " WHERE name = :name"
            ),
            {"name": name, "hi": str(window.hi)},
        )
    return window


async def position(session: AsyncSession, name: str) -> int | None:
    """Where cursor `name` stands, or None before its first run."""
    value = (
        await session.execute(
            text("SELECT position::text FROM analytics_cursors WHERE name = :name"),
            {"name": name},
        )
    ).scalar_one_or_none()
    return None if value is None else int(value)
