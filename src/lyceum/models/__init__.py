"""Every ORM table, one module per aggregate, on one `Base` with a naming convention."""

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

__all__ = [
    "Base",
    "Certificate",
    "ContentChunk",
    "Course",
    "CourseFile",
    "CourseInstructor",
    "Enrollment",
    "Lesson",
    "LessonCompletion",
    "LoginSession",
    "Module",
    "OneTimeToken",
    "RecoveryCode",
    "RefreshToken",
    "Review",
    "User",
]
