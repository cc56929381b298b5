"""Learners' essay submissions: as text or as a PDF / Word upload read within budgets,
word limits, lateness and its penalty, and the scoring job enqueued with the
submission."""

from __future__ import annotations

import asyncio
import datetime as dt

from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.assessments.grading import count_words, late_days
from lyceum.assessments.repository.essays import EssayRepository
from lyceum.config import Settings
from lyceum.kit.documents.extraction import ExtractionError, Limits, read_upload
from lyceum.kit.documents.filetypes import FIELD, FileKind, inspect_upload
from lyceum.kit.errors import Conflict, Invalid, NotFound, PayloadTooLarge
from lyceum.kit.events import emit
from lyceum.kit.sandbox import Sandbox
from lyceum.models.assessments import (
    Assignment,
    EssaySubmission,
    LatePolicy,
    SubmissionStatus,
)
from lyceum.models.identity import User

ESSAY_FILE_KINDS = {FileKind.pdf, FileKind.docx}
# More text than an essay file may hold: several times the longest essay an assignment
# may ask for (20,000 words), room for notes and a bibliography.
ESSAY_MAX_CHARS = 500_000


class SubmissionService:
    """Works on assignments the caller may submit to or read
    (`assessments.permissions`)."""

    def __init__(self, session: AsyncSession, *, settings: Settings, now: dt.datetime) -> None:
        self.session = session
        self.repo = EssayRepository(session)
        self.settings = settings
        self.now = now

    async def _lateness(self, assignment: Assignment, learner: User) -> tuple[float, int]:
        """(penalty percent, days late) for a learner about to submit."""
        if await self.repo.submission_of(assignment.id, learner.id) is not None:
            raise Conflict("You have submitted this assignment already.", slug="already-submitted")
        days = 0
        if assignment.due_at is not None and self.now > assignment.due_at:
            if assignment.late_policy is LatePolicy.refuse:
                raise Conflict(
                    f"The assignment was due at {assignment.due_at.isoformat()}; late "
                    "submissions are not accepted.",
                    slug="deadline-passed",
                )
            days = late_days((self.now - assignment.due_at).total_seconds())
        penalty = min(100.0, days * assignment.late_penalty_percent_per_day)
        return penalty, days

    async def submit_text(
        self, assignment: Assignment, learner: User, text: str
    ) -> EssaySubmission:
        penalty, days = await self._lateness(assignment, learner)
        return await self._store(
            learner, assignment, text.strip(), penalty, days, source="text", field="body.text"
        )

    async def submit_file(
        self,
        assignment: Assignment,
        learner: User,
        data: bytes,
        filename: str,
        sandbox: Sandbox,
    ) -> EssaySubmission:
        """The file's text is read while the learner waits, so within budgets: in the
        sandbox (time, memory, off the serving process), at most ESSAY_MAX_PAGES pages and
        ESSAY_MAX_CHARS characters; beyond any of them the upload is refused."""
        penalty, days = await self._lateness(assignment, learner)
        inspected = await asyncio.to_thread(inspect_upload, data, filename)
        if inspected.kind not in ESSAY_FILE_KINDS:
            raise Invalid(
                "Upload the essay as a PDF or Word (.docx) file, or send it as text.",
                field=FIELD,
                slug="unsupported-file",
            )
        limits = Limits(
            max_pages=self.settings.essay_max_pages, max_chars=ESSAY_MAX_CHARS, truncate=False
        )
        seconds = self.settings.essay_extraction_timeout_seconds
        try:
            document = await read_upload(sandbox, inspected.kind, data, limits, seconds)
        except ExtractionError as error:
            if error.budget in {"pages", "text"}:
                raise PayloadTooLarge(error.message, field=FIELD, slug="essay-too-long") from None
            slug = "unreadable-file" if error.budget is None else "extraction-limit"
            raise Invalid(error.message, field=FIELD, slug=slug) from None
        text = "\n\n".join(section.text for section in document.sections).strip()
        if not text:
            raise Invalid("The file has no text to grade.", field=FIELD, slug="unreadable-file")
        return await self._store(
            learner,
            assignment,
            text,
            penalty,
            days,
            source=inspected.kind.value,
            field=FIELD,
            file_name=inspected.display_name,
        )

    async def _store(
        self,
        learner: User,
        assignment: Assignment,
        text: str,
        penalty: float,
        days: int,
        *,
        source: str,
        field: str,
        file_name: str | None = None,
    ) -> EssaySubmission:
        words = count_words(text)
        if assignment.min_words is not None and words < assignment.min_words:
            raise Invalid(
                f"The essay has {words} words; this assignment needs at least "
                f"{assignment.min_words}.",
                field=field,
                slug="word-limit",
            )
        if assignment.max_words is not None and words > assignment.max_words:
            raise Invalid(
                f"The essay has {words} words; this assignment allows at most "
                f"{assignment.max_words}.",
                field=field,
                slug="word-limit",
            )
        submission = EssaySubmission(
            assignment_id=assignment.id,
            course_id=assignment.course_id,
            user_id=learner.id,
            text=text,
            word_count=words,
            source=source,
            file_name=file_name,
            submitted_at=self.now,
            late_days=days,
            penalty_percent=penalty,
            status=SubmissionStatus.scoring,
        )
        if not await self.repo.add_unique([submission]):
            raise Conflict("You have submitted this assignment already.", slug="already-submitted")
        # The scoring job (assessments.tasks) is enqueued in this transaction.
        await emit(self.session, "essay.submitted", submission_id=str(submission.id))
        return submission

    async def mine(self, assignment: Assignment, learner: User) -> EssaySubmission:
        submission = await self.repo.submission_of(assignment.id, learner.id)
        if submission is None:
            raise NotFound("You have not submitted this assignment.")
        return submission
