"""The span of UTC days a report covers (payments and analytics reports)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class Period:
    """UTC days `first` to `last`, both included."""

    first: dt.date
    last: dt.date

    def bounds(self) -> tuple[dt.datetime, dt.datetime]:
        """[start, end): midnight UTC of `first` to midnight UTC after `last`."""
        start = dt.datetime.combine(self.first, dt.time(), tzinfo=dt.UTC)
        if self.last == dt.date.max:  # no day after it: the last instant there is
            return start, dt.datetime.max.replace(tzinfo=dt.UTC)
        end = dt.datetime.combine(self.last + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
        return start, end

    def days(self) -> list[dt.date]:
        """Every day of the span, in order (none when `first` is after `last`)."""
        count = (self.last - self.first).days + 1
        return [self.first + dt.timedelta(days=n) for n in range(max(count, 0))]


def days_ending(last: dt.date, days: int) -> dt.date:
    """The first of `days` days that end on `last`: never before the first day a date
    can hold (a `to` of 0001-01-01 is a period, not an overflow)."""
    return last - dt.timedelta(days=min(days - 1, (last - dt.date.min).days))
