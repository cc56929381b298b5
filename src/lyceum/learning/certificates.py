"""Course-completion certificates: issued by a job, verifiable by code, downloadable
by their learner."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import secrets
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.config import Settings
from lyceum.courses.service import course_by_id
from lyceum.identity.service import user_by_id
from lyceum.kit.errors import NotFound
from lyceum.kit.events import emit
from lyceum.kit.storage import Storage, put_for_transaction
from lyceum.learning import schemas
from lyceum.learning.certificate_pdf import render_certificate
from lyceum.learning.repository import LearningRepository
from lyceum.models.courses import Certificate, EnrollmentStatus


def new_code() -> str:
    raw = base64.b32encode(secrets.token_bytes(10)).decode().rstrip("=")
    return f"LYC-{raw[:4]}-{raw[4:8]}-{raw[8:12]}"


def verify_url(settings: Settings, code: str) -> str:
    return f"{settings.base_url()}/api/v1/certificates/{code}"


def certificate_out(certificate: Certificate, settings: Settings) -> schemas.CertificateOut:
    base = settings.base_url()
    return schemas.CertificateOut(
        code=certificate.code,
        learner_name=certificate.learner_name,
        course_title=certificate.course_title,
        issued_on=certificate.issued_at.date(),
        course_id=certificate.course_id,
        instructor_name=certificate.instructor_name,
        download_url=f"{base}/api/v1/me/certificates/{certificate.code}/pdf",
        verify_url=verify_url(settings, certificate.code),
    )


async def issue_for(
    session: AsyncSession, enrollment_id: uuid.UUID, *, settings: Settings, storage: Storage
) -> Certificate | None:
    """Create (once) and store the certificate of a completed enrollment. Safe to run
    twice: an existing certificate is reused, and its PDF rewritten under the same key."""
    enrollment = await LearningRepository(session).enrollment_by_id(enrollment_id)
    if enrollment is None or enrollment.status is not EnrollmentStatus.completed:
        return None
    repo = LearningRepository(session)
    if await repo.has_refunded_order(
        enrollment.course_id, enrollment.user_id
    ) and not await repo.has_paid_order(enrollment.course_id, enrollment.user_id):
        return None  # the course was bought and refunded: no certificate for it
    existing = await LearningRepository(session).certificate_for(
        enrollment.user_id, enrollment.course_id
    )
    learner = await user_by_id(session, enrollment.user_id)
    course = await course_by_id(session, enrollment.course_id)
    if learner is None or course is None:
        return None
    certificate = existing
    if certificate is None:
        owner = await user_by_id(session, course.owner_id)
        certificate = Certificate(
            code=new_code(),
            user_id=learner.id,
            course_id=course.id,
            learner_name=learner.full_name,
            course_title=course.title,
            instructor_name=owner.full_name if owner else "",
            issued_at=enrollment.completed_at or dt.datetime.now(dt.UTC),
        )
        session.add(certificate)
        await session.flush()
        await emit(
            session,
            "certificate.issued",
            certificate_id=str(certificate.id),
            code=certificate.code,
            user_id=str(certificate.user_id),
            course_id=str(certificate.course_id),
        )
    pdf = await asyncio.to_thread(
        render_certificate,
        learner_name=certificate.learner_name,
        course_title=certificate.course_title,
        instructor_name=certificate.instructor_name,
        issued_on=certificate.issued_at.date(),
        code=certificate.code,
        verify_url=verify_url(settings, certificate.code),
    )
    key = f"certificates/{certificate.code}.pdf"
    if existing is None:
        # A new code whose row never commits must not leave its PDF behind.
        await put_for_transaction(session, storage, key, pdf, "application/pdf")
    else:
        await storage.put(key, pdf, "application/pdf")  # rewritten in place
    certificate.storage_key = key
    await session.flush()
    return certificate


async def public_certificate(session: AsyncSession, code: str) -> schemas.CertificatePublic:
    certificate = await LearningRepository(session).certificate_by_code(code)
    if certificate is None:
        raise NotFound("No certificate has this code.")
    return schemas.CertificatePublic(
        code=certificate.code,
        learner_name=certificate.learner_name,
        course_title=certificate.course_title,
        issued_on=certificate.issued_at.date(),
    )


async def own_certificate(session: AsyncSession, user_id: uuid.UUID, code: str) -> Certificate:
    """One of the user's certificates whose PDF is stored; anyone else's is 404."""
    certificate = await LearningRepository(session).certificate_by_code(code, user_id=user_id)
    if certificate is None or certificate.storage_key is None:
        raise NotFound("No such certificate of yours.")
    return certificate


async def stored_pdf(storage: Storage, certificate: Certificate) -> bytes:
    assert certificate.storage_key is not None
    data = await storage.get(certificate.storage_key)
    if data is None:
        raise NotFound("The certificate file is not ready yet.")
    return data
