"""Learning jobs: the mail sent on enrollment, and the certificate of a completed
course (made, stored and mailed once)."""

from __future__ import annotations

import uuid

from lyceum.courses.service import course_by_id
from lyceum.identity.service import user_by_id
from lyceum.kit.events import on
from lyceum.kit.jobs import JobContext, Queue, resources, task, transaction
from lyceum.learning.certificates import certificate_out, issue_for
from lyceum.learning.repository import LearningRepository


@task(name="lyceum.learning.send_enrollment_mail", queue=Queue.mail, pass_context=True)
async def send_enrollment_mail(
    context: JobContext, enrollment_id: str, user_id: str = "", course_id: str = ""
) -> None:
    runtime = resources(context)
    async with transaction(runtime) as session:
        enrollment = await LearningRepository(session).enrollment_by_id(uuid.UUID(enrollment_id))
        if enrollment is None:
            return
        user = await user_by_id(session, enrollment.user_id)
        course = await course_by_id(session, enrollment.course_id)
        if user is None or course is None or not user.is_active:
            return
        base = runtime.settings.base_url()
        await runtime.mailer.send_once(
            session,
            # Enrolling again after leaving is a new enrollment date, and a new mail.
            key=f"course_enrolled:{enrollment.id}:{enrollment.enrolled_at.isoformat()}",
            template="course_enrolled",
            to=user.email,
            context={
                "full_name": user.full_name,
                "course_title": course.title,
                "course_url": f"{base}/api/v1/courses/{course.id}",
            },
        )


@task(name="lyceum.learning.issue_certificate", queue=Queue.certificates, pass_context=True)
async def issue_certificate(
    context: JobContext, enrollment_id: str, user_id: str = "", course_id: str = ""
) -> None:
    """Make, store and mail the certificate of a completed course (safe to run twice:
    the certificate is made once, the mail sent once)."""
    runtime = resources(context)
    # The certificate commits first; the mail follows in a transaction of its own, so a
    # retry finds the certificate made and, once it went out, the mail sent.
    async with transaction(runtime) as session:
        certificate = await issue_for(
            session, uuid.UUID(enrollment_id), settings=runtime.settings, storage=runtime.storage
        )
        if certificate is None:
            return
        out = certificate_out(certificate, runtime.settings)
    async with transaction(runtime) as session:
        user = await user_by_id(session, certificate.user_id)
        if user is None or not user.is_active:
            return
        await runtime.mailer.send_once(
            session,
            key=f"certificate_issued:{certificate.code}",
            template="certificate_issued",
            to=user.email,
            context={
                "full_name": certificate.learner_name,
                "course_title": certificate.course_title,
                "code": certificate.code,
                "download_url": out.download_url,
                "verify_url": out.verify_url,
            },
        )


on("enrollment.created", send_enrollment_mail)
on("course.completed", issue_certificate)
