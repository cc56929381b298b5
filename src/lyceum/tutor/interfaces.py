"""What the tutor needs from other domains, as interfaces it owns, and how the app
supplies them.

`GradedQuestionGuard`: is a question (part of) graded work the learner has open? Then
the tutor gives hints, not the answer. The assessments domain implements it
(`lyceum.assessments.guard.AssessmentGuard`); the tutor does not import assessments.
The app wires the two together where it is composed (`lyceum.app.create_app` calls
`use_graded_question_guard`), and a route takes the guard for its request with
`GradedWork`. An app that registers none has no graded work (`NoGradedWork`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated, Protocol

from fastapi import Depends, FastAPI, Request
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.config import Settings
from lyceum.identity.permissions import RuntimeDep
from lyceum.kit.clock import ClockDep
from lyceum.kit.db import Session
from lyceum.models.courses import Course
from lyceum.models.identity import User


class GradedQuestionGuard(Protocol):
    """Decides whether a question is (part of) graded work, so the tutor hints instead
    of answering."""

    async def is_graded_question(self, learner: User, course: Course, text: str) -> bool: ...


class NoGradedWork:
    """Until a course has assessments, no question is graded work."""

    async def is_graded_question(self, learner: User, course: Course, text: str) -> bool:
        return False


# A request's guard from its session (it reads the learner's open work in the request's
# transaction), the settings and the request's time.
GuardFactory = Callable[[AsyncSession, Settings, dt.datetime], GradedQuestionGuard]

_GUARD_FACTORY = "tutor_graded_question_guard"


def use_graded_question_guard(app: FastAPI, factory: GuardFactory) -> None:
    """Composition: the guard the app's tutor consults on every question."""
    setattr(app.state, _GUARD_FACTORY, factory)


async def graded_question_guard(
    request: Request, session: Session, runtime: RuntimeDep, clock: ClockDep
) -> GradedQuestionGuard:
    factory: GuardFactory | None = getattr(request.app.state, _GUARD_FACTORY, None)
    if factory is None:
        return NoGradedWork()
    return factory(session, runtime.settings, clock.now())


GradedWork = Annotated[GradedQuestionGuard, Depends(graded_question_guard)]
