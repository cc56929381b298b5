"""The tools the model may call while it answers (`tutor.llm` declares them), and the
catalog lookup the offline tutor shares with them.

Their reach: this learner, this course, read-only, each call in a short transaction of
the answer's own (`AnswerService.transaction`: the request's session is closed while
the answer streams). What they return goes back to the model, so it is framed like the
prompt's data (`lyceum.kit.prompts`): course text and catalog entries as escaped
elements."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.content.service import search_course_material
from lyceum.kit.ai.embedding import Embedder, load_embedder
from lyceum.kit.prompts import element, quoted, quoted_inline
from lyceum.tutor import offline
from lyceum.tutor.grounding import sources_element
from lyceum.tutor.repository import TutorRepository
from lyceum.tutor.service.turns import SOURCES_PER_TURN, PreparedTurn

Transaction = Callable[[], AbstractAsyncContextManager[AsyncSession]]

# The part of a lesson the get_lesson tool hands the model.
LESSON_CHARS = 6000


async def catalog_matches(session: AsyncSession, question: str) -> list[offline.CourseSuggestion]:
    """Published courses whose search document shares words with the question, best
    first; the most popular ones when nothing matches."""
    return [
        offline.CourseSuggestion(row.title, row.subtitle, f"/api/v1/courses/{row.id}")
        for row in await TutorRepository(session).catalog_matches(question)
    ]


class TutorToolbox:
    """`tutor.llm.TutorTools` for one turn."""

    def __init__(
        self, turn: PreparedTurn, *, embedder: Callable[[], Embedder], transaction: Transaction
    ) -> None:
        self.turn = turn
        self.embedder = embedder
        self.transaction = transaction

    async def search_course_material(self, query: str) -> str:
        embedder = await load_embedder(self.embedder)
        async with self.transaction() as session:
            hits = await search_course_material(
                session, embedder, self.turn.course_id, query, SOURCES_PER_TURN
            )
        first = len(self.turn.grounding.sources) + 1
        self.turn.grounding.sources.extend(hits)
        return sources_element(hits, first=first)

    async def get_lesson(self, lesson: int) -> str:
        entry = self.turn.grounding.lesson_numbered(lesson)
        if entry is None:
            return quoted_inline("error", f"The syllabus has no lesson {lesson}.")
        async with self.transaction() as session:
            found = await TutorRepository(session).lesson(entry.id)
        if found is None or found.course_id != self.turn.course_id:
            return quoted_inline("error", f"Lesson {lesson} no longer exists.")
        return quoted("lesson", found.content[:LESSON_CHARS], n=lesson, title=found.title)

    async def get_my_progress(self) -> str:
        percent = self.turn.grounding.progress_percent
        if percent is None:
            text = "The learner is not enrolled in this course (an instructor or admin)."
        else:
            text = f"The learner has completed {percent:.0f}% of this course's lessons."
        return quoted_inline("learner_progress", text)

    async def search_catalog(self, query: str) -> str:
        async with self.transaction() as session:
            found = await catalog_matches(session, query)
        if not found:
            return quoted_inline("catalog", "no courses found")
        return element(
            "catalog",
            [quoted("course", item.subtitle, title=item.title, url=item.url) for item in found],
        )
