"""The learner: my learning, the lesson reader with the tutor beside it, quizzes, essay assignments, certificates."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
