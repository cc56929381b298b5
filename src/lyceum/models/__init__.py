"""Every ORM table, one module per aggregate, on one `Base` with a naming convention."""

from lyceum.models import analytics as analytics  # registers the analytics events and rollups
from lyceum.models import assessments as assessments  # registers the assessment tables
from lyceum.models import channels as channels  # registers the SMS and push tables
from lyceum.models import chat as chat  # registers the chat tables on Base.metadata
from lyceum.models import events as events  # registers the public event log
from lyceum.models import jobs as jobs  # registers the job failure log
from lyceum.models import mail as mail  # registers the mail delivery log
from lyceum.models import notifications as notifications  # registers the notification tables
from lyceum.models import payments as payments  # registers orders, coupons, refunds, events
from lyceum.models import recommendations as recommendations  # registers the stored model
from lyceum.models import reminders as reminders  # registers the sent reminders
from lyceum.models import webhooks as webhooks  # registers webhook endpoints and deliveries
from lyceum.models.base import Base
from lyceum.models.content import ContentChunk, CourseFile
from lyceum.models.courses import (
    Certificate,
    Course,
    CourseInstructor,
    Enrollment,
    Lesson,
    LessonCompletion,
    Module,
    Review,
)
from lyceum.models.identity import LoginSession, OneTimeToken, RecoveryCode, RefreshToken, User
from lyceum.models.tutor import Conversation, Message, TutorSettings

__all__ = [
    "Base",
    "Certificate",
    "ContentChunk",
    "Conversation",
    "Course",
    "CourseFile",
    "CourseInstructor",
    "Enrollment",
    "Lesson",
    "LessonCompletion",
    "LoginSession",
    "Message",
    "Module",
    "OneTimeToken",
    "RecoveryCode",
    "RefreshToken",
    "Review",
    "TutorSettings",
    "User",
]
