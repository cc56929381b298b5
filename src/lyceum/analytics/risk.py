"""The rules that put a learner on a course's at-risk list, each giving its reason.

A learner is judged only while their enrollment is active (completed and cancelled ones
are not at risk). With `now` the time of the request:

- `inactive`: no activity in the course for `inactive_days` (setting
  `AT_RISK_INACTIVE_DAYS`, 14) or more: their last activity (the later of the analytics
  rollup's last event and the enrollment's last recorded activity, or the enrollment
  itself when there is none) is at or before `now - inactive_days`.
- `falling_scores`: over their graded quiz attempts in the course, in the order they were
  graded, the last three percents are strictly decreasing; or, with at least two, the
  last is at least `SCORE_DROP_POINTS` (20) points below the mean of the earlier ones.
- `stalled`: enrolled `STALLED_DAYS` (14) or more days ago, fewer than
  `STALLED_PROGRESS_PERCENT` (50) % of the course's lessons completed, and no lesson
  completed in the last `STALLED_DAYS` days.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

SCORE_DROP_POINTS: Final = 20.0
STALLED_DAYS: Final = 14
STALLED_PROGRESS_PERCENT: Final = 50.0


@dataclass(frozen=True)
class LearnerState:
    enrolled_at: dt.datetime
    last_activity_at: dt.datetime | None
    lessons_completed: int
    last_completion_at: dt.datetime | None
    # Percents of the graded quiz attempts, oldest first.
    quiz_percents: Sequence[float]


@dataclass(frozen=True)
class Reason:
    code: str
    detail: str


def inactive(state: LearnerState, now: dt.datetime, inactive_days: int) -> Reason | None:
    last = state.last_activity_at or state.enrolled_at
    if last > now - dt.timedelta(days=inactive_days):
        return None
    days = (now - last).days
    return Reason("inactive", f"No activity in the course for {days} days.")


def falling_scores(state: LearnerState) -> Reason | None:
    percents = list(state.quiz_percents)
    if len(percents) >= 3 and percents[-3] > percents[-2] > percents[-1]:
        shown = ", ".join(f"{p:g}" for p in percents[-3:])
        return Reason("falling_scores", f"The last three quiz scores fell: {shown} %.")
    if len(percents) >= 2:
        earlier = sum(percents[:-1]) / (len(percents) - 1)
        if earlier - percents[-1] >= SCORE_DROP_POINTS:
            return Reason(
                "falling_scores",
                f"The last quiz score, {percents[-1]:g} %, is {earlier - percents[-1]:g} "
                f"points below the average of the earlier ones ({earlier:g} %).",
            )
    return None


def stalled(state: LearnerState, now: dt.datetime, lesson_count: int) -> Reason | None:
    window = dt.timedelta(days=STALLED_DAYS)
    if state.enrolled_at > now - window or lesson_count == 0:
        return None
    percent = 100.0 * state.lessons_completed / lesson_count
    if percent >= STALLED_PROGRESS_PERCENT:
        return None
    if state.last_completion_at is not None and state.last_completion_at > now - window:
        return None
    return Reason(
        "stalled",
        f"{state.lessons_completed} of {lesson_count} lessons completed and none in the "
        f"last {STALLED_DAYS} days.",
    )


def reasons(
    state: LearnerState, now: dt.datetime, *, lesson_count: int, inactive_days: int
) -> list[Reason]:
    """Every rule the learner meets, in the order above."""
    found = (
        inactive(state, now, inactive_days),
        falling_scores(state),
        stalled(state, now, lesson_count),
    )
    return [reason for reason in found if reason is not None]
