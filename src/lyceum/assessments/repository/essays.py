"""Every query of essay assignments, learners' submissions and their similarity flags."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.dialects.postgresql import insert

from lyceum.assessments.repository.base import Repository
from lyceum.models.assessments import (
    Assignment,
    EssaySubmission,
    SimilarityFlag,
    SubmissionStatus,
)
from lyceum.models.identity import User


class EssayRepository(Repository):
    async def assignment(
        self, assignment_id: uuid.UUID, *, for_update: bool = False
    ) -> Assignment | None:
        return await self.session.get(Assignment, assignment_id, with_for_update=for_update)

    async def assignments(
        self, course_id: uuid.UUID, *, published_only: bool, offset: int, limit: int
    ) -> tuple[list[Assignment], int]:
        return await self._course_page(Assignment, course_id, published_only, offset, limit)

    async def assignment_has_submissions(self, assignment_id: uuid.UUID) -> bool:
        query = select(exists().where(EssaySubmission.assignment_id == assignment_id))
        return bool((await self.session.execute(query)).scalar_one())

    async def submission(
        self, submission_id: uuid.UUID, *, for_update: bool = False
    ) -> EssaySubmission | None:
        return await self.session.get(EssaySubmission, submission_id, with_for_update=for_update)

    async def submission_of(
        self, assignment_id: uuid.UUID, user_id: uuid.UUID
    ) -> EssaySubmission | None:
        query = select(EssaySubmission).where(
            EssaySubmission.assignment_id == assignment_id, EssaySubmission.user_id == user_id
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def submissions_of_learner(
        self, user_id: uuid.UUID
    ) -> list[tuple[EssaySubmission, Assignment]]:
        """Every submission of one learner, with its assignment, oldest first."""
        rows = await self.session.execute(
            select(EssaySubmission, Assignment)
            .join(Assignment, Assignment.id == EssaySubmission.assignment_id)
            .where(EssaySubmission.user_id == user_id)
            .order_by(EssaySubmission.submitted_at, EssaySubmission.id)
        )
        return [(submission, assignment) for submission, assignment in rows]

    async def submissions(
        self,
        *,
        course_id: uuid.UUID | None = None,
        assignment_id: uuid.UUID | None = None,
        statuses: Sequence[SubmissionStatus] = (),
        offset: int,
        limit: int,
    ) -> tuple[list[tuple[EssaySubmission, Assignment, str, bool]], int]:
        """(submission, assignment, learner name, flagged), oldest first: the review
        queue order."""
        conditions: list[Any] = []
        if course_id is not None:
            conditions.append(EssaySubmission.course_id == course_id)
        if assignment_id is not None:
            conditions.append(EssaySubmission.assignment_id == assignment_id)
        if statuses:
            conditions.append(EssaySubmission.status.in_(list(statuses)))
        total = await self._count(EssaySubmission, conditions)
        flagged = exists().where(SimilarityFlag.submission_id == EssaySubmission.id)
        rows = await self.session.execute(
            select(EssaySubmission, Assignment, User.full_name, flagged)
            .join(Assignment, Assignment.id == EssaySubmission.assignment_id)
            .join(User, User.id == EssaySubmission.user_id)
            .where(*conditions)
            .order_by(EssaySubmission.submitted_at, EssaySubmission.id)
            .offset(offset)
            .limit(limit)
        )
        return [(sub, assignment, name, bool(flag)) for sub, assignment, name, flag in rows], total

    async def near_duplicates(
        self, submission: EssaySubmission, vector: Sequence[float], threshold: float
    ) -> list[tuple[uuid.UUID, float]]:
        """Other learners' submissions to the same assignment at least `threshold`
        similar (cosine) to `vector`."""
        distance = EssaySubmission.embedding.cosine_distance(list(vector))
        rows = await self.session.execute(
            select(EssaySubmission.id, (1 - distance).label("similarity"))
            .where(
                EssaySubmission.assignment_id == submission.assignment_id,
                EssaySubmission.user_id != submission.user_id,
                EssaySubmission.embedding.is_not(None),
                distance <= 1 - threshold,
            )
            .order_by(distance)
            .limit(50)
        )
        return [(other_id, float(similarity)) for other_id, similarity in rows]

    async def flag_pair(
        self, first: uuid.UUID, second: uuid.UUID, similarity: float, at: dt.datetime
    ) -> None:
        """Both directions; flagging a pair again changes nothing (a rerun job)."""
        rows = [
            {
                "submission_id": a,
                "other_submission_id": b,
                "similarity": similarity,
                "flagged_at": at,
            }
            for a, b in ((first, second), (second, first))
        ]
        await self.session.execute(insert(SimilarityFlag).values(rows).on_conflict_do_nothing())

    async def similar_to(
        self, submission_id: uuid.UUID
    ) -> list[tuple[uuid.UUID, uuid.UUID, float]]:
        """(other submission, its learner, similarity), most similar first."""
        rows = await self.session.execute(
            select(
                SimilarityFlag.other_submission_id,
                EssaySubmission.user_id,
                SimilarityFlag.similarity,
            )
            .join(EssaySubmission, EssaySubmission.id == SimilarityFlag.other_submission_id)
            .where(SimilarityFlag.submission_id == submission_id)
            .order_by(SimilarityFlag.similarity.desc())
        )
        return [(other, user, float(similarity)) for other, user, similarity in rows]
