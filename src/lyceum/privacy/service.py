"""Assembling a user's data export: one JSON file per section, a README and their own
stored files, in one zip. Every section comes from its domain's service; nothing here
reads a table."""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")

PAGE = 500

README = """\
Your data at {site}, exported on {created_at} for {email}.

One JSON file per section (UTF-8; times are ISO 8601, UTC):

  profile.json                   your account: name, email, role, locale, preferences
  enrollments.json               the courses you joined, their status and your progress
  quiz_attempts.json             your quiz attempts; a score appears where the course
                                 shows it to you (graded attempts, review allowed)
  essay_submissions.json         your essays; a grade and feedback appear once released
  tutor_conversations.json       your conversations with the AI tutor, every turn
  chat_messages.json             the chat messages you wrote (not the others' replies,
                                 not messages deleted)
  orders.json                    your orders, amounts, and receipt numbers
  notification_preferences.json  how you want to be notified, quiet hours, time zone

files/ holds the files you uploaded that are still stored (your avatar). Essay files
are not kept after their text is read: the text is in essay_submissions.json.
"""


@dataclass
class Export:
    """What one user's export holds: JSON sections by file name, and stored files."""

    sections: dict[str, Any] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)

    def zip(self, *, site: str, email: str, created_at: dt.datetime) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(
                "README.txt",
                README.format(site=site, email=email, created_at=created_at.isoformat()),
            )
            for name, content in self.sections.items():
                archive.writestr(
                    f"{name}.json", json.dumps(content, indent=2, ensure_ascii=False) + "\n"
                )
            for name, data in self.files.items():
                archive.writestr(f"files/{name}", data)
        return buffer.getvalue()


async def every_page(read: Callable[[int, int], Awaitable[tuple[list[T], int]]]) -> list[T]:
    """Every item of a paged service read (`read(offset, limit) -> (items, total)`)."""
    items: list[T] = []
    while True:
        page, total = await read(len(items), PAGE)
        items.extend(page)
        if not page or len(items) >= total:
            return items
