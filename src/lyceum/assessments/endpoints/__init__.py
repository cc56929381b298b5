"""Assessment routes, one module per sub-area, in one router: question banks, quizzes
and attempts, essay assignments and their review, the gradebook. Each route parses,
authorizes in its signature (`assessments.permissions`), calls a service and shapes
the answer (`assessments.views`)."""

from __future__ import annotations

from lyceum.assessments.endpoints import (
    assignments,
    attempts,
    gradebook,
    questions,
    quizzes,
    review,
)
from lyceum.kit.routing import Router

assessments = Router(tags=["assessments"])
for module in (questions, quizzes, attempts, assignments, review, gradebook):
    assessments.include_router(module.router)
