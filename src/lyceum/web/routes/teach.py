"""Instructors: the course editor, files, tutor settings, quizzes and banks, assignments and rubrics, the review queue, the gradebook, announcements, analytics."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
