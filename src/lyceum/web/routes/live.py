"""Live parts: the course chat room, announcements for learners, the notification centre and its bell."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
