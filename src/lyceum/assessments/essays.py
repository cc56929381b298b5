"""Essay assignments: authoring with a rubric, learners' submissions (text or a DOCX /
PDF upload), the scoring job's proposal, and the instructor's review.

A submission moves `scoring` -> `needs_review` -> `reviewed` -> `released`. The
scoring job stores a proposal; an instructor accepts it or overrides points per
criterion, then releases the grade. With `auto_release`, an AI score (never an
offline estimate, never a flagged near-duplicate) is released by the job itself.
Every change to a grade writes an audit entry with its before and after."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.assessments import schemas
from lyceum.assessments.grading import count_words, late_days
from lyceum.assessments.repository import AssessmentRepository
from lyceum.assessments.scoring import ScoringInput
from lyceum.assessments.service import audit, check_instants, check_placement, readable_by
from lyceum.config import Settings
from lyceum.content.extraction import ExtractionError, Limits, read_upload
from lyceum.content.filetypes import FIELD, FileKind, inspect_upload
from lyceum.courses.service import CourseService
from lyceum.kit.errors import Conflict, Forbidden, Invalid, NotFound, PayloadTooLarge
from lyceum.kit.events import emit
from lyceum.kit.sandbox import Sandbox
from lyceum.learning.service import complete_if_done
from lyceum.models.assessments import (
    Assignment,
    EssaySubmission,
    LatePolicy,
    SubmissionStatus,
)
from lyceum.models.courses import Course
from lyceum.models.identity import User

ESSAY_FILE_KINDS = {FileKind.pdf, FileKind.docx}
# More text than an essay file may hold: several times the longest essay an assignment
# may ask for (20,000 words), room for notes and a bibliography.
ESSAY_MAX_CHARS = 500_000


def rubric_document(rubric: schemas.RubricIn, points: float) -> dict[str, Any]:
    """The stored rubric, after the checks a schema cannot express: unique criterion
    ids, levels from lowest to highest points, and top levels adding up to the
    assignment's points."""
    ids = [criterion.id for criterion in rubric.criteria]
    for index, criterion in enumerate(rubric.criteria):
        field = f"body.rubric.criteria.{index}"
        if ids.count(criterion.id) > 1:
            raise Invalid(f"Criterion id {criterion.id!r} is used twice.", field=f"{field}.id")
        for level, (lower, upper) in enumerate(
            zip(criterion.levels, criterion.levels[1:], strict=False), start=1
        ):
            if upper.points <= lower.points:
                raise Invalid(
                    f"Levels go from lowest to highest points: level {level} "
                    f"({upper.title!r}, {upper.points:g} points) is not above level "
                    f"{level - 1} ({lower.title!r}, {lower.points:g} points).",
                    field=f"{field}.levels.{level}.points",
                    slug="rubric-levels-out-of-order",
                )
    top = round(sum(criterion.levels[-1].points for criterion in rubric.criteria), 2)
    if abs(top - points) > 0.005:
        raise Invalid(
            f"The criteria's top levels add up to {top:g} points, not the assignment's {points:g}.",
            field="body.points",
            slug="rubric-points-mismatch",
        )
    return {
        "criteria": [
            {
                "id": criterion.id,
                "title": criterion.title,
                "description": criterion.description,
                "key_terms": list(dict.fromkeys(term.strip() for term in criterion.key_terms)),
                "levels": [level.model_dump() for level in criterion.levels],
            }
            for criterion in rubric.criteria
        ]
    }


def criterion_max(assignment: Assignment) -> dict[str, float]:
    return {
        criterion["id"]: float(criterion["levels"][-1]["points"])
        for criterion in assignment.rubric["criteria"]
    }


def grade_state(submission: EssaySubmission) -> dict[str, Any]:
    """What an audit entry records of a submission's grade."""
    return {
        "status": submission.status.value,
        "points": submission.points,
        "percent": submission.percent,
        "criteria": {
            item["criterion_id"]: item["points"]
            for item in (submission.final or {}).get("criteria", [])
        },
    }


def settle(assignment: Assignment, submission: EssaySubmission, final: dict[str, Any]) -> None:
    """Set the final grade: criteria points, the late penalty, percent and pass."""
    submission.final = final
    raw = round(sum(float(item["points"]) for item in final["criteria"]), 2)
    submission.points_raw = raw
    submission.points = round(raw * (1 - submission.penalty_percent / 100), 2)
    submission.percent = round(100 * submission.points / assignment.points, 2)
    submission.passed = submission.percent >= assignment.pass_percent


def final_from_proposal(proposal: dict[str, Any], comment: str) -> dict[str, Any]:
    return {
        "criteria": [
            {"criterion_id": item["criterion_id"], "points": item["points"], "comment": ""}
            for item in proposal["criteria"]
        ],
        "comment": comment,
    }


async def release_grade(
    session: AsyncSession,
    assignment: Assignment,
    submission: EssaySubmission,
    *,
    actor: User | None,
    action: str,
    before: dict[str, Any],
    comment: str,
    now: dt.datetime,
) -> None:
    submission.status = SubmissionStatus.released
    submission.released_at = now
    await session.flush()
    await audit(
        session,
        course_id=submission.course_id,
        subject_type="submission",
        subject_id=submission.id,
        actor=actor,
        action=action,
        before=before,
        after=grade_state(submission),
        comment=comment,
        at=now,
    )
    # Only a required assessment can be what completes the course.
    if submission.passed and assignment.required:
        await complete_if_done(session, submission.course_id, submission.user_id, now)


# The scoring job's side -----------------------------------------------------------------


async def scoring_input(session: AsyncSession, submission_id: uuid.UUID) -> ScoringInput | None:
    """What the scorer needs, or None when there is nothing to score (deleted, or
    scored already: the job is safe to run twice)."""
    repo = AssessmentRepository(session)
    submission = await repo.submission(submission_id)
    if submission is None or submission.status is not SubmissionStatus.scoring:
        return None
    assignment = await repo.assignment(submission.assignment_id)
    if assignment is None:
        return None
    return ScoringInput(
        prompt=assignment.prompt,
        criteria=list(assignment.rubric["criteria"]),
        reference_answer=assignment.reference_answer,
        min_words=assignment.min_words,
        max_words=assignment.max_words,
        essay=submission.text,
    )


async def store_score(
    session: AsyncSession,
    submission_id: uuid.UUID,
    proposal: schemas.ScoreProposal,
    vector: list[float],
    *,
    similarity_threshold: float,
    now: dt.datetime,
) -> bool:
    """Store the proposal once: a submission no longer `scoring` (scored by an earlier
    run, or graded by hand meanwhile) is left alone. Returns whether it stored."""
    repo = AssessmentRepository(session)
    submission = await repo.submission(submission_id, for_update=True)
    if submission is None or submission.status is not SubmissionStatus.scoring:
        return False
    assignment = await repo.assignment(submission.assignment_id)
    if assignment is None:
        return False
    submission.proposal = proposal.model_dump(mode="json")
    submission.scored_at = now
    submission.scoring_error = None
    submission.embedding = vector
    submission.status = SubmissionStatus.needs_review
    await session.flush()
    near = await repo.near_duplicates(submission, vector, similarity_threshold)
    for other_id, similarity in near:
        await repo.flag_pair(submission.id, other_id, round(similarity, 4), now)
    if assignment.auto_release and not proposal.estimate and not near:
        before = grade_state(submission)
        settle(assignment, submission, final_from_proposal(submission.proposal, ""))
        await release_grade(
            session,
            assignment,
            submission,
            actor=None,
            action="auto_release",
            before=before,
            comment=f"Released automatically ({proposal.scorer}).",
            now=now,
        )
    return True


async def record_scoring_failure(
    session: AsyncSession, submission_id: uuid.UUID, reason: str
) -> None:
    """Scoring gave up: the submission waits for an instructor to grade it by hand."""
    submission = await AssessmentRepository(session).submission(submission_id, for_update=True)
    if submission is not None and submission.status is SubmissionStatus.scoring:
        submission.status = SubmissionStatus.needs_review
        submission.scoring_error = reason


# The requests' side ---------------------------------------------------------------------


class EssayService:
    def __init__(
        self,
        session: AsyncSession,
        courses: CourseService,
        *,
        settings: Settings,
        now: dt.datetime,
    ) -> None:
        self.session = session
        self.courses = courses
        self.repo = AssessmentRepository(session)
        self.settings = settings
        self.now = now

    # Authoring ------------------------------------------------------------------------

    @staticmethod
    def _check_limits(
        min_words: int | None, max_words: int | None, due_at: dt.datetime | None
    ) -> None:
        check_instants(due_at=due_at)
        if min_words is not None and max_words is not None and min_words > max_words:
            raise Invalid("`min_words` is above `max_words`.", field="body.min_words")

    async def create(
        self, caller: User, course_id: uuid.UUID, data: schemas.AssignmentCreate
    ) -> Assignment:
        course = await self.courses.editable_course(course_id, caller)
        await check_placement(self.session, course, data.module_id, data.lesson_id)
        self._check_limits(data.min_words, data.max_words, data.due_at)
        assignment = Assignment(
            course_id=course.id,
            created_by=caller.id,
            rubric=rubric_document(data.rubric, data.points),
            **data.model_dump(exclude={"rubric"}),
        )
        await self.repo.add(assignment)
        await self.session.refresh(assignment)
        return assignment

    async def editable(self, caller: User, assignment_id: uuid.UUID) -> tuple[Course, Assignment]:
        assignment = await self.repo.assignment(assignment_id)
        if assignment is None:
            raise NotFound("No such assignment.")
        course = await self.courses.editable_course(assignment.course_id, caller)
        return course, assignment

    async def update(
        self, caller: User, assignment_id: uuid.UUID, data: schemas.AssignmentUpdate
    ) -> Assignment:
        course, assignment = await self.editable(caller, assignment_id)
        sent = data.model_fields_set
        nullable = {"module_id", "lesson_id", "min_words", "max_words", "due_at"}
        if ({"rubric", "points"} & sent) and await self.repo.assignment_has_submissions(
            assignment.id
        ):
            raise Conflict(
                "Learners have submitted: the rubric and points can no longer change.",
                slug="assignment-has-submissions",
            )
        for name in sent - {"rubric"}:
            value = getattr(data, name)
            if value is None and name not in nullable:
                continue
            setattr(assignment, name, value)
        if data.rubric is not None:
            assignment.rubric = rubric_document(data.rubric, assignment.points)
        elif "points" in sent:
            stored = schemas.RubricIn.model_validate(assignment.rubric)
            rubric_document(stored, assignment.points)
        self._check_limits(assignment.min_words, assignment.max_words, assignment.due_at)
        await check_placement(self.session, course, assignment.module_id, assignment.lesson_id)
        await self.session.flush()
        await self.session.refresh(assignment)
        return assignment

    async def delete(self, caller: User, assignment_id: uuid.UUID) -> None:
        _, assignment = await self.editable(caller, assignment_id)
        if await self.repo.assignment_has_submissions(assignment.id):
            raise Conflict(
                "Learners have submitted; unpublish the assignment instead of deleting grades.",
                slug="assignment-has-submissions",
            )
        await self.repo.delete(assignment)

    async def readable(self, caller: User, assignment_id: uuid.UUID) -> tuple[Assignment, bool]:
        assignment = await self.repo.assignment(assignment_id)
        return await readable_by(self.courses, caller, assignment, "assignment")

    async def listing(
        self, caller: User, course_id: uuid.UUID, offset: int, limit: int
    ) -> tuple[list[Assignment], int]:
        course, can_edit = await self.courses.member_access(course_id, caller)
        return await self.repo.assignments(
            course.id, published_only=not can_edit, offset=offset, limit=limit
        )

    # Submitting -----------------------------------------------------------------------

    async def _open_for(
        self, caller: User, assignment_id: uuid.UUID
    ) -> tuple[Assignment, float, int]:
        """(assignment, penalty percent, days late) for a learner about to submit."""
        assignment, can_edit = await self.readable(caller, assignment_id)
        if can_edit:
            raise Forbidden(
                "Only the course's enrolled learners submit essays.", slug="not-a-learner"
            )
        if await self.repo.submission_of(assignment.id, caller.id) is not None:
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
        return assignment, penalty, days

    async def submit_text(
        self, caller: User, assignment_id: uuid.UUID, text: str
    ) -> tuple[Assignment, EssaySubmission]:
        assignment, penalty, days = await self._open_for(caller, assignment_id)
        return assignment, await self._store(
            caller, assignment, text.strip(), penalty, days, source="text", field="body.text"
        )

    async def submit_file(
        self, caller: User, assignment_id: uuid.UUID, data: bytes, filename: str, sandbox: Sandbox
    ) -> tuple[Assignment, EssaySubmission]:
        """The file's text is read while the learner waits, so within budgets: in the
        sandbox (time, memory, off the serving process), at most ESSAY_MAX_PAGES pages and
        ESSAY_MAX_CHARS characters; beyond any of them the upload is refused."""
        assignment, penalty, days = await self._open_for(caller, assignment_id)
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
        return assignment, await self._store(
            caller,
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
        caller: User,
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
            user_id=caller.id,
            text=text,
            word_count=words,
            source=source,
            file_name=file_name,
            submitted_at=self.now,
            late_days=days,
            penalty_percent=penalty,
            status=SubmissionStatus.scoring,
        )
        try:
            async with self.session.begin_nested():
                await self.repo.add(submission)
        except IntegrityError:
            raise Conflict(
                "You have submitted this assignment already.", slug="already-submitted"
            ) from None
        # The scoring job (assessments.tasks) is enqueued in this transaction.
        await emit(self.session, "essay.submitted", submission_id=str(submission.id))
        return submission

    async def mine(
        self, caller: User, assignment_id: uuid.UUID
    ) -> tuple[Assignment, EssaySubmission]:
        assignment, _ = await self.readable(caller, assignment_id)
        submission = await self.repo.submission_of(assignment.id, caller.id)
        if submission is None:
            raise NotFound("You have not submitted this assignment.")
        return assignment, submission

    # Review ---------------------------------------------------------------------------

    async def queue(
        self,
        caller: User,
        course_id: uuid.UUID,
        statuses: list[SubmissionStatus],
        offset: int,
        limit: int,
    ) -> tuple[list[schemas.SubmissionSummary], int]:
        course = await self.courses.editable_course(course_id, caller)
        rows, total = await self.repo.submissions(
            course_id=course.id, statuses=statuses, offset=offset, limit=limit
        )
        return [_summary(*row) for row in rows], total

    async def for_assignment(
        self, caller: User, assignment_id: uuid.UUID, offset: int, limit: int
    ) -> tuple[list[schemas.SubmissionSummary], int]:
        _, assignment = await self.editable(caller, assignment_id)
        rows, total = await self.repo.submissions(
            assignment_id=assignment.id, offset=offset, limit=limit
        )
        return [_summary(*row) for row in rows], total

    async def _reviewable(
        self, caller: User, submission_id: uuid.UUID, *, for_update: bool = False
    ) -> tuple[Assignment, EssaySubmission]:
        submission = await self.repo.submission(submission_id, for_update=for_update)
        if submission is None:
            raise NotFound("No such submission.")
        await self.courses.editable_course(submission.course_id, caller)
        assignment = await self.repo.assignment(submission.assignment_id)
        assert assignment is not None  # submissions are deleted with their assignment
        return assignment, submission

    async def review(self, caller: User, submission_id: uuid.UUID) -> schemas.SubmissionReview:
        assignment, submission = await self._reviewable(caller, submission_id)
        return await self.review_view(assignment, submission)

    async def review_view(
        self, assignment: Assignment, submission: EssaySubmission
    ) -> schemas.SubmissionReview:
        names = await self.repo.user_names([submission.user_id])
        similar = await self.repo.similar_to(submission.id)
        final = submission.final or {}
        return schemas.SubmissionReview(
            id=submission.id,
            assignment_id=assignment.id,
            user_id=submission.user_id,
            learner_name=names.get(submission.user_id, ""),
            status=submission.status,
            text=submission.text,
            word_count=submission.word_count,
            source=submission.source,
            file_name=submission.file_name,
            submitted_at=submission.submitted_at,
            late_days=submission.late_days,
            penalty_percent=submission.penalty_percent,
            proposal=schemas.ScoreProposal.model_validate(submission.proposal)
            if submission.proposal
            else None,
            scoring_error=submission.scoring_error,
            final=[schemas.FinalCriterion.model_validate(item) for item in final["criteria"]]
            if final
            else None,
            comment=final.get("comment", ""),
            points_raw=submission.points_raw,
            points=submission.points,
            percent=submission.percent,
            passed=submission.passed,
            reviewed_at=submission.reviewed_at,
            released_at=submission.released_at,
            similar=[
                schemas.SimilarSubmission(submission_id=other, user_id=user, similarity=score)
                for other, user, score in similar
            ],
        )

    async def _settle_reviewed(
        self,
        caller: User,
        assignment: Assignment,
        submission: EssaySubmission,
        final: dict[str, Any],
        *,
        action: str,
        comment: str,
        release_now: bool,
    ) -> None:
        before = grade_state(submission)
        settle(assignment, submission, final)
        was_released = submission.status is SubmissionStatus.released
        if not was_released:
            submission.status = SubmissionStatus.reviewed
        submission.reviewed_by = caller.id
        submission.reviewed_at = self.now
        await self.session.flush()
        await audit(
            self.session,
            course_id=submission.course_id,
            subject_type="submission",
            subject_id=submission.id,
            actor=caller,
            action=action,
            before=before,
            after=grade_state(submission),
            comment=comment,
            at=self.now,
        )
        if was_released and submission.passed and assignment.required:
            # A regrade of a released grade counts at once, for the learner too.
            await complete_if_done(self.session, submission.course_id, submission.user_id, self.now)
        elif release_now:
            await release_grade(
                self.session,
                assignment,
                submission,
                actor=caller,
                action="release",
                before=grade_state(submission),
                comment="",
                now=self.now,
            )

    async def accept(
        self, caller: User, submission_id: uuid.UUID, data: schemas.AcceptIn
    ) -> tuple[Assignment, EssaySubmission]:
        assignment, submission = await self._reviewable(caller, submission_id, for_update=True)
        if submission.proposal is None:
            raise Conflict(
                "There is no proposal to accept yet; grade it by criterion instead.",
                slug="no-proposal",
            )
        if submission.status is SubmissionStatus.released:
            raise Conflict("This grade is released already.", slug="already-released")
        await self._settle_reviewed(
            caller,
            assignment,
            submission,
            final_from_proposal(submission.proposal, data.comment),
            action="accept",
            comment=data.comment,
            release_now=data.release,
        )
        return assignment, submission

    async def override(
        self, caller: User, submission_id: uuid.UUID, data: schemas.OverrideIn
    ) -> tuple[Assignment, EssaySubmission]:
        assignment, submission = await self._reviewable(caller, submission_id, for_update=True)
        maxima = criterion_max(assignment)
        current = {
            item["criterion_id"]: item
            for item in (
                submission.final or final_from_proposal(submission.proposal or {"criteria": []}, "")
            )["criteria"]
        }
        given: dict[str, schemas.CriterionOverride] = {}
        for index, item in enumerate(data.criteria):
            field = f"body.criteria.{index}"
            if item.criterion_id not in maxima:
                raise Invalid("No such criterion in the rubric.", field=f"{field}.criterion_id")
            if item.criterion_id in given:
                raise Invalid("The criterion is graded twice.", field=f"{field}.criterion_id")
            if item.points > maxima[item.criterion_id]:
                raise Invalid(
                    f"This criterion is worth at most {maxima[item.criterion_id]:g} points.",
                    field=f"{field}.points",
                )
            given[item.criterion_id] = item
        missing = [
            criterion for criterion in maxima if criterion not in given and criterion not in current
        ]
        if missing:
            raise Invalid(
                f"There is no proposal to keep for {', '.join(missing)}: grade every criterion.",
                field="body.criteria",
            )
        final = {
            "criteria": [
                {
                    "criterion_id": criterion,
                    "points": round(given[criterion].points, 2)
                    if criterion in given
                    else float(current[criterion]["points"]),
                    "comment": given[criterion].comment
                    if criterion in given
                    else current[criterion].get("comment", ""),
                }
                for criterion in maxima
            ],
            "comment": data.comment,
        }
        await self._settle_reviewed(
            caller,
            assignment,
            submission,
            final,
            action="override",
            comment=data.comment,
            release_now=data.release,
        )
        return assignment, submission

    async def release(
        self, caller: User, submission_id: uuid.UUID
    ) -> tuple[Assignment, EssaySubmission]:
        assignment, submission = await self._reviewable(caller, submission_id, for_update=True)
        if submission.status is SubmissionStatus.released:
            raise Conflict("This grade is released already.", slug="already-released")
        if submission.status is not SubmissionStatus.reviewed:
            raise Conflict(
                "Accept the proposal or grade the submission before releasing it.",
                slug="not-reviewed",
            )
        await release_grade(
            self.session,
            assignment,
            submission,
            actor=caller,
            action="release",
            before=grade_state(submission),
            comment="",
            now=self.now,
        )
        return assignment, submission

    async def audit_trail(
        self,
        caller: User,
        course_id: uuid.UUID,
        subject_id: uuid.UUID | None,
        offset: int,
        limit: int,
    ) -> tuple[list[schemas.AuditEntryOut], int]:
        course = await self.courses.editable_course(course_id, caller)
        rows, total = await self.repo.audit(course.id, subject_id, offset, limit)
        return [
            schemas.AuditEntryOut(
                id=entry.id,
                subject_type=entry.subject_type,
                subject_id=entry.subject_id,
                actor_id=entry.actor_id,
                actor_name=name,
                action=entry.action,
                before=entry.before,
                after=entry.after,
                comment=entry.comment,
                at=entry.at,
            )
            for entry, name in rows
        ], total


def _summary(
    submission: EssaySubmission, assignment: Assignment, name: str, flagged: bool
) -> schemas.SubmissionSummary:
    proposal = submission.proposal or {}
    return schemas.SubmissionSummary(
        id=submission.id,
        assignment_id=assignment.id,
        assignment_title=assignment.title,
        user_id=submission.user_id,
        learner_name=name,
        status=submission.status,
        word_count=submission.word_count,
        submitted_at=submission.submitted_at,
        late_days=submission.late_days,
        estimate=proposal.get("estimate") if proposal else None,
        proposed_points=proposal.get("total_points") if proposal else None,
        points=submission.points,
        flagged=flagged,
    )
