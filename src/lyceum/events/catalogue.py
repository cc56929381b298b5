"""Every public event and its payload, version "v1": one strict model per event.

An event is emitted with `kit.events.emit(session, name, **payload)`; a catalogued
one is validated against its model here (unknown or missing keys, or a wrong type,
raise), recorded in the `events` table with an id and the time it occurred, and
delivered to the webhook endpoints subscribed to it. Changing a payload in a way that
breaks a receiver means a new version, not an edit of these models. All ids are UUIDs
as strings.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from lyceum.kit.events import catalogue_event

VERSION = "v1"

Id = Annotated[
    str,
    Field(
        pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
        json_schema_extra={"format": "uuid"},
    ),
]


class Payload(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class UserRegistered(Payload):
    """A new account was created."""

    user_id: Id


class UserEmailVerified(Payload):
    """An account confirmed its email address."""

    user_id: Id


class EnrollmentCreated(Payload):
    """A learner enrolled in a course (or enrolled again after leaving it)."""

    enrollment_id: Id
    user_id: Id
    course_id: Id


class LessonCompleted(Payload):
    """A learner completed a lesson for the first time."""

    user_id: Id
    course_id: Id
    lesson_id: Id


class CourseCompleted(Payload):
    """A learner completed every lesson and passed every required assessment."""

    enrollment_id: Id
    user_id: Id
    course_id: Id


class CertificateIssued(Payload):
    """The certificate of a completed course was made; `code` verifies it."""

    certificate_id: Id
    code: str
    user_id: Id
    course_id: Id


class QuizAttemptGraded(Payload):
    """A quiz attempt was graded (automatically, or once an instructor graded the
    items that needed review)."""

    attempt_id: Id
    quiz_id: Id
    user_id: Id
    course_id: Id
    score: float
    max_score: float
    passed: bool


class SubmissionGraded(Payload):
    """An essay submission's grade was released to the learner."""

    submission_id: Id
    assignment_id: Id
    user_id: Id
    course_id: Id
    score: float
    max_score: float


class AnnouncementPublished(Payload):
    """A course announcement was published to its learners."""

    announcement_id: Id
    course_id: Id


class OrderPaid(Payload):
    """A course order was paid: the learner is enrolled. `amount` is in the currency's
    minor units (ISO 4217: cents, fils, ...)."""

    order_id: Id
    user_id: Id
    course_id: Id
    amount: int
    currency: str
    provider: str


class OrderRefunded(Payload):
    """Money of a paid order went back: `refunded_amount` is the total refunded so far
    (minor units), `full` whether that is all of it."""

    order_id: Id
    user_id: Id
    course_id: Id
    amount: int
    currency: str
    provider: str
    refunded_amount: int
    full: bool


class OrderFailed(Payload):
    """The provider declined an order's payment; the learner may check out again."""

    order_id: Id
    user_id: Id
    course_id: Id
    amount: int
    currency: str
    provider: str
    reason: str


class WebhookTest(Payload):
    """A ping an admin sends to check an endpoint (never emitted by the platform)."""

    endpoint_id: Id


EVENTS: dict[str, type[Payload]] = {
    "user.registered": UserRegistered,
    "user.email_verified": UserEmailVerified,
    "enrollment.created": EnrollmentCreated,
    "lesson.completed": LessonCompleted,
    "course.completed": CourseCompleted,
    "certificate.issued": CertificateIssued,
    "quiz.attempt.graded": QuizAttemptGraded,
    "submission.graded": SubmissionGraded,
    "announcement.published": AnnouncementPublished,
    "order.paid": OrderPaid,
    "order.refunded": OrderRefunded,
    "order.failed": OrderFailed,
}
TEST_EVENT = "webhook.test"

for _name, _model in EVENTS.items():
    catalogue_event(_name, _model, version=VERSION, summary=(_model.__doc__ or _name).strip())
catalogue_event(
    TEST_EVENT, WebhookTest, version=VERSION, summary=(WebhookTest.__doc__ or "").strip()
)
