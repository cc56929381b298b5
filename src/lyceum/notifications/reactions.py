"""How notifications react, inside the emitting transaction, to other domains' events:
the learner hears that a certificate is ready, a grade arrived, or an enrollment took.

Links are API paths (`/api/v1/...`); the mail job makes them absolute with the
deployment's public base URL.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.kit.events import react
from lyceum.models.notifications import Category
from lyceum.notifications.repository import NotificationRepository
from lyceum.notifications.service import notify


async def _course_title(session: AsyncSession, course_id: str) -> str:
    return await NotificationRepository(session).course_title(uuid.UUID(course_id)) or ""


async def certificate_issued(
    session: AsyncSession, *, certificate_id: str, code: str, user_id: str, course_id: str
) -> None:
    title = await _course_title(session, course_id)
    await notify(
        session,
        user_ids=[uuid.UUID(user_id)],
        category=Category.course_activity,
        kind="certificate.issued",
        title=f"Your certificate for {title} is ready",
        body=f"You completed {title}. Anyone can verify your certificate with code {code}.",
        url=f"/api/v1/me/certificates/{code}/pdf",
        template="certificate_issued",
        context={
            "course_title": title,
            "code": code,
            "download_url": f"/api/v1/me/certificates/{code}/pdf",
            "verify_url": f"/api/v1/certificates/{code}",
        },
        dedupe_key=f"certificate.issued:{certificate_id}",
        data={"certificate_id": certificate_id, "code": code, "course_id": course_id},
    )


async def _grade_released(
    session: AsyncSession,
    *,
    kind: str,
    item_id: str,
    user_id: str,
    course_id: str,
    score: float,
    max_score: float,
    url: str,
) -> None:
    title = await _course_title(session, course_id)
    await notify(
        session,
        user_ids=[uuid.UUID(user_id)],
        category=Category.grades,
        kind=kind,
        title=f"New grade in {title}",
        body=f"You scored {score:g} of {max_score:g}.",
        url=url,
        template="grade_released",
        context={"course_title": title, "score": f"{score:g}", "max_score": f"{max_score:g}"},
        dedupe_key=f"{kind}:{item_id}:{score:g}",
        data={"course_id": course_id, "score": score, "max_score": max_score},
    )


async def quiz_attempt_graded(
    session: AsyncSession,
    *,
    attempt_id: str,
    quiz_id: str,
    user_id: str,
    course_id: str,
    score: float,
    max_score: float,
    passed: bool,
) -> None:
    await _grade_released(
        session,
        kind="quiz.attempt.graded",
        item_id=attempt_id,
        user_id=user_id,
        course_id=course_id,
        score=score,
        max_score=max_score,
        url=f"/api/v1/attempts/{attempt_id}/result",
    )


async def submission_graded(
    session: AsyncSession,
    *,
    submission_id: str,
    assignment_id: str,
    user_id: str,
    course_id: str,
    score: float,
    max_score: float,
) -> None:
    await _grade_released(
        session,
        kind="submission.graded",
        item_id=submission_id,
        user_id=user_id,
        course_id=course_id,
        score=score,
        max_score=max_score,
        url=f"/api/v1/assignments/{assignment_id}/submissions/me",
    )


async def enrollment_created(
    session: AsyncSession, *, enrollment_id: str, user_id: str, course_id: str
) -> None:
    title = await _course_title(session, course_id)
    await notify(
        session,
        user_ids=[uuid.UUID(user_id)],
        category=Category.course_activity,
        kind="enrollment.created",
        title=f"You are enrolled in {title}",
        body="Start with the first lesson whenever you are ready.",
        url=f"/api/v1/courses/{course_id}",
        template="course_enrolled",
        context={"course_title": title, "course_url": f"/api/v1/courses/{course_id}"},
        dedupe_key=f"enrollment.created:{enrollment_id}",
        data={"enrollment_id": enrollment_id, "course_id": course_id},
    )


react("certificate.issued", certificate_issued)
react("quiz.attempt.graded", quiz_attempt_graded)
react("submission.graded", submission_graded)
react("enrollment.created", enrollment_created)
