"""Courses, their syllabus, and what learners do with them."""

from __future__ import annotations

import datetime as dt
import enum
import uuid

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Computed,
    Enum,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from lyceum.models.base import Base, Timestamps, UUIDPrimaryKey


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    return Enum(cls, name=name, values_callable=lambda members: [m.value for m in members])


class CourseLevel(enum.StrEnum):
    beginner = "beginner"
    intermediate = "intermediate"
    advanced = "advanced"


class CourseStatus(enum.StrEnum):
    draft = "draft"
    published = "published"
    archived = "archived"


class LessonKind(enum.StrEnum):
    text = "text"
    video = "video"
    file = "file"


class EnrollmentStatus(enum.StrEnum):
    active = "active"
    completed = "completed"
    cancelled = "cancelled"


def _weighted_document(config: str) -> str:
    return (
        f"setweight(to_tsvector('{config}'::regconfig, coalesce(title, '')), 'A') || "
        f"setweight(to_tsvector('{config}'::regconfig, coalesce(subtitle, '') || ' ' || "
        f"coalesce(tags_text, '')), 'B') || "
        f"setweight(to_tsvector('{config}'::regconfig, coalesce(description, '')), 'C') || "
        f"setweight(to_tsvector('{config}'::regconfig, coalesce(lesson_titles, '')), 'D')"
    )


# Each course is indexed in its own language's configuration (migrations 0004, 0005):
# English with stemming after unaccent ("statistic" finds "statistics"), every other
# language with `lyceum`, `simple` after unaccent ("lap trinh" finds "Lập trình").
SEARCH_DOCUMENT = (
    f"CASE WHEN lower(language) LIKE 'en%' THEN {_weighted_document('lyceum_english')} "
    f"ELSE {_weighted_document('lyceum')} END"
)


class Course(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "courses"
    __table_args__ = (
        Index("ix_courses_search", "search", postgresql_using="gin"),
        Index("ix_courses_tags", "tags", postgresql_using="gin"),
        Index(
            "ix_courses_catalog",
            "status",
            "published_at",
            postgresql_where=text("status = 'published'"),
        ),
        CheckConstraint("price_cents >= 0", name="price_not_negative"),
    )

    slug: Mapped[str] = mapped_column(String(120), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    subtitle: Mapped[str] = mapped_column(String(300), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    language: Mapped[str] = mapped_column(String(12), index=True)
    level: Mapped[CourseLevel] = mapped_column(_enum(CourseLevel, "course_level"))
    category: Mapped[str] = mapped_column(String(80), index=True)
    tags: Mapped[list[str]] = mapped_column(ARRAY(String(50)), default=list)
    # Denormalised for the search document: tags and lesson titles as plain text.
    tags_text: Mapped[str] = mapped_column(Text, default="")
    lesson_titles: Mapped[str] = mapped_column(Text, default="")
    search: Mapped[str] = mapped_column(TSVECTOR, Computed(SEARCH_DOCUMENT, persisted=True))
    cover_key: Mapped[str | None] = mapped_column(String(255))
    price_cents: Mapped[int] = mapped_column(Integer, default=0)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    status: Mapped[CourseStatus] = mapped_column(
        _enum(CourseStatus, "course_status"), default=CourseStatus.draft
    )
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    published_at: Mapped[dt.datetime | None]


class CourseStats(Base):
    """A course's counters (learners, ratings), apart from the course row: updating them
    never rewrites the course (and its stored search document) nor locks it. They are
    folded in from `CourseStatChange` rows by a periodic job."""

    __tablename__ = "course_stats"
    __table_args__ = (
        Index("ix_course_stats_enrollment_count", "enrollment_count"),
        Index("ix_course_stats_rating", "rating_average", "rating_count"),
    )

    course_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("courses.id", ondelete="CASCADE"), primary_key=True
    )
    # Learners whose enrollment is not cancelled (active or completed).
    enrollment_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    rating_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    rating_points: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    rating_average: Mapped[float | None] = mapped_column(
        Numeric(3, 2, asdecimal=False),
        Computed(
            "CASE WHEN rating_count > 0 THEN round(rating_points::numeric / rating_count, 2) END",
            persisted=True,
        ),
    )


class CourseStatChange(Base):
    """One change to a course's counters, appended by the request that caused it
    (an enrollment +1, a new review +1 and its points). Appending never waits for
    another writer, however popular the course; the fold job sums and deletes them."""

    __tablename__ = "course_stat_changes"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    course_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("courses.id", ondelete="CASCADE"), index=True
    )
    enrollments: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    ratings: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    rating_points: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class CourseInstructor(Base):
    """Who teaches a course: its owner and any co-instructors."""

    __tablename__ = "course_instructors"

    course_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("courses.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class Module(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "modules"

    course_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("courses.id", ondelete="CASCADE"), index=True
    )
    title: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer)


class Lesson(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "lessons"

    module_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("modules.id", ondelete="CASCADE"), index=True
    )
    course_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("courses.id", ondelete="CASCADE"), index=True
    )
    title: Mapped[str] = mapped_column(String(200))
    kind: Mapped[LessonKind] = mapped_column(_enum(LessonKind, "lesson_kind"))
    content: Mapped[str] = mapped_column(Text, default="")
    video_url: Mapped[str | None] = mapped_column(String(2048))
    duration_seconds: Mapped[int | None] = mapped_column(Integer)
    estimated_minutes: Mapped[int] = mapped_column(Integer, default=10)
    is_preview: Mapped[bool] = mapped_column(default=False)
    position: Mapped[int] = mapped_column(Integer)
    # A `file` lesson shows one of the course's files (models.content.CourseFile).
    file_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("course_files.id", ondelete="SET NULL"), index=True
    )


class Enrollment(UUIDPrimaryKey, Base):
    __tablename__ = "enrollments"
    __table_args__ = (UniqueConstraint("course_id", "user_id"),)

    course_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("courses.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[EnrollmentStatus] = mapped_column(
        _enum(EnrollmentStatus, "enrollment_status"), default=EnrollmentStatus.active
    )
    enrolled_at: Mapped[dt.datetime]
    completed_at: Mapped[dt.datetime | None]
    last_lesson_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("lessons.id", ondelete="SET NULL")
    )
    last_activity_at: Mapped[dt.datetime | None]


class LessonCompletion(Base):
    __tablename__ = "lesson_completions"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    lesson_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("lessons.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    course_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("courses.id", ondelete="CASCADE"), index=True
    )
    completed_at: Mapped[dt.datetime]


class Certificate(UUIDPrimaryKey, Base):
    __tablename__ = "certificates"
    __table_args__ = (UniqueConstraint("user_id", "course_id"),)

    code: Mapped[str] = mapped_column(String(32), unique=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    course_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"))
    learner_name: Mapped[str] = mapped_column(String(200))
    course_title: Mapped[str] = mapped_column(String(200))
    instructor_name: Mapped[str] = mapped_column(String(200))
    issued_at: Mapped[dt.datetime]
    storage_key: Mapped[str | None] = mapped_column(String(255))


class Review(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "reviews"
    __table_args__ = (
        UniqueConstraint("course_id", "user_id"),
        CheckConstraint("rating BETWEEN 1 AND 5", name="rating_range"),
    )

    course_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("courses.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    rating: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text, default="")
