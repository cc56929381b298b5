"""Enrollment and progress routes."""

from __future__ import annotations

from fastapi import Response, status

from lyceum.courses.permissions import EditableCourse, SignedInVisibleCourse, VisibleCourse
from lyceum.identity.permissions import CurrentUser, RuntimeDep
from lyceum.kit.db import Session, reads_only
from lyceum.kit.pagination import Page, Paging
from lyceum.kit.revocations import Ended, Revocation
from lyceum.kit.routing import Router
from lyceum.learning import schemas
from lyceum.learning.certificates import certificate_out, public_certificate, stored_pdf
from lyceum.learning.permissions import (
    ActiveEnrollment,
    CertificateCode,
    LearnerLesson,
    Learning,
    MyCertificate,
    MyEnrollment,
    MyReview,
    ReviewableCourse,
)
from lyceum.learning.repository import LearningRepository
from lyceum.learning.schemas import CertificateOut, CertificatePublic, ReviewIn, ReviewOut

learning = Router(tags=["learning"])


@learning.post(
    "/courses/{course_id:uuid}/enrollments",
    status_code=status.HTTP_201_CREATED,
    summary="Enroll in a free published course (paid ones answer 402 until checkout)",
)
async def enroll(
    caller: CurrentUser, course: SignedInVisibleCourse, service: Learning, response: Response
) -> schemas.CourseProgress:
    enrollment = await service.enroll(caller, course)
    response.headers["Location"] = f"/api/v1/courses/{course.id}/progress"
    return await service.progress(course, enrollment)


@learning.delete(
    "/courses/{course_id:uuid}/enrollments/me",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Leave a course",
    description="Open chat sockets of the caller leave the course's room within moments "
    "(`removed_from_room`).",
)
async def unenroll(
    caller: CurrentUser,
    enrollment: MyEnrollment,
    service: Learning,
    session: Session,
    runtime: RuntimeDep,
) -> None:
    await service.unenroll(enrollment)
    # Open chat sockets leave the course's room once this commits.
    runtime.revocations.announce_after_commit(
        session, Revocation(Ended.membership, caller.id, "unenrolled")
    )


@learning.get(
    "/courses/{course_id:uuid}/enrollments",
    summary="The roster of a course (its instructors and admins)",
)
async def roster(
    course: EditableCourse, service: Learning, paging: Paging
) -> Page[schemas.RosterEntry]:
    items, total = await service.roster(course, paging.offset, paging.size)
    return Page.of(items, total, paging)


@learning.get("/me/enrollments", summary="The caller's courses with their progress")
@reads_only
async def my_enrollments(
    caller: CurrentUser, service: Learning, paging: Paging
) -> Page[schemas.EnrollmentOut]:
    items, total = await service.my_enrollments(caller, paging.offset, paging.size)
    return Page.of(items, total, paging)


@learning.post(
    "/lessons/{lesson_id:uuid}/complete",
    summary="Mark a lesson done (idempotent); answers the course progress",
)
async def complete_lesson(
    caller: CurrentUser, learner: LearnerLesson, service: Learning
) -> schemas.CourseProgress:
    return await service.complete_lesson(caller, learner.lesson, learner.course, learner.enrollment)


@learning.get(
    "/courses/{course_id:uuid}/progress",
    summary="The caller's progress in a course: per lesson, percent, resume point",
)
@reads_only
async def progress(learner: ActiveEnrollment, service: Learning) -> schemas.CourseProgress:
    return await service.progress(learner.course, learner.enrollment)


@learning.get(
    "/certificates/{code}",
    summary="Verify a certificate (public: name, course and date only)",
)
async def verify_certificate(code: CertificateCode, session: Session) -> CertificatePublic:
    return await public_certificate(session, code)


@learning.get("/me/certificates", summary="The caller's certificates with download links")
async def my_certificates(
    caller: CurrentUser, session: Session, runtime: RuntimeDep, paging: Paging
) -> Page[CertificateOut]:
    rows, total = await LearningRepository(session).certificates_of(
        caller.id, paging.offset, paging.size
    )
    return Page.of([certificate_out(c, runtime.settings) for c in rows], total, paging)


@learning.get(
    "/me/certificates/{code}/pdf",
    summary="Download one of the caller's certificates",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}, "description": "The certificate"}},
)
async def certificate_pdf(certificate: MyCertificate, runtime: RuntimeDep) -> Response:
    data = await stored_pdf(runtime.storage, certificate)
    return Response(
        data,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{certificate.code}.pdf"'},
    )


@learning.put(
    "/courses/{course_id:uuid}/reviews/me",
    summary="Rate and review a course (enrolled learners; once, editable)",
    responses={201: {"model": ReviewOut, "description": "Created"}},
)
async def put_review(
    caller: CurrentUser,
    course: ReviewableCourse,
    body: ReviewIn,
    service: Learning,
    response: Response,
) -> ReviewOut:
    review, created = await service.upsert_review(caller, course, body)
    if created:
        response.status_code = status.HTTP_201_CREATED
        response.headers["Location"] = f"/api/v1/courses/{course.id}/reviews/me"
    return review


@learning.delete(
    "/courses/{course_id:uuid}/reviews/me",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Withdraw the caller's review",
)
async def delete_review(review: MyReview, service: Learning) -> None:
    await service.delete_review(review)


@learning.get("/courses/{course_id:uuid}/reviews", summary="A course's reviews, newest first")
async def list_reviews(course: VisibleCourse, service: Learning, paging: Paging) -> Page[ReviewOut]:
    items, total = await service.reviews(course, paging.offset, paging.size)
    return Page.of(items, total, paging)
