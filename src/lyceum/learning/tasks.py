"""Learning jobs: the mail sent on enrollment."""

from __future__ import annotations

import uuid

from lyceum.config import get_settings
from lyceum.courses.repository import CourseRepository
from lyceum.identity.repository import IdentityRepository
from lyceum.kit.events import on
from lyceum.kit.jobs import DEFAULT_RETRY, job_app, task_session
from lyceum.kit.mail import send_templated
from lyceum.kit.storage import create_storage
from lyceum.learning.certificates import certificate_out, issue_for
from lyceum.models.courses import Enrollment


@job_app.task(name="lyceum.learning.send_enrollment_mail", retry=DEFAULT_RETRY)
async def send_enrollment_mail(enrollment_id: str) -> None:
    async with task_session() as session:
        enrollment = await session.get(Enrollment, uuid.UUID(enrollment_id))
        if enrollment is None:
            return
        user = await IdentityRepository(session).user_by_id(enrollment.user_id)
        course = await CourseRepository(session).course(enrollment.course_id)
        if user is None or course is None or not user.is_active:
            return
        base = str(get_settings().public_base_url).rstrip("/")
        await send_templated(
            "course_enrolled",
            user.email,
            {
                "full_name": user.full_name,
                "course_title": course.title,
                "course_url": f"{base}/api/v1/courses/{course.id}",
            },
        )


@job_app.task(name="lyceum.learning.issue_certificate", retry=DEFAULT_RETRY)
async def issue_certificate(enrollment_id: str) -> None:
    """Make, store and mail the certificate of a completed course (safe to run twice)."""
    settings = get_settings()
    async with task_session() as session:
        certificate = await issue_for(
            session, uuid.UUID(enrollment_id), settings=settings, storage=create_storage(settings)
        )
        if certificate is None:
            return
        user = await IdentityRepository(session).user_by_id(certificate.user_id)
        if user is None or not user.is_active:
            return
        out = certificate_out(certificate, settings)
        await send_templated(
            "certificate_issued",
            user.email,
            {
                "full_name": certificate.learner_name,
                "course_title": certificate.course_title,
                "code": certificate.code,
                "download_url": out.download_url,
                "verify_url": out.verify_url,
            },
        )


on("course.enrolled", send_enrollment_mail)
on("course.completed", issue_certificate)
