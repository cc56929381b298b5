"""The demo's enrollment history: 24 demo learners (learner01..learner24@demo.lyceum.dev)
with the interests people have (programming, science, money, Vietnamese), each enrolled
in two to four of the demo courses, some finished, some part-way (lessons completed),
some reviewed; the demo student (Lan) is part-way through Python Foundations. So
"courses for you", related courses and the analytics reports have something to show.

Deterministic (a seeded generator) and written once: when learner01 exists, nothing is
added. The learners are written with one password hash between them (hashing 24
passwords would take seconds); they sign in with `LEARNER_PASSWORD`."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.courses.service import CourseService
from lyceum.demo.repository import users_by_email
from lyceum.kit.security import hash_password
from lyceum.models.courses import Enrollment, EnrollmentStatus, LessonCompletion, Review
from lyceum.models.identity import Role, User

LEARNERS = 24
LEARNER_PASSWORD = "demo learner passphrase"  # noqa: S105 (published demo login)
SEED = 19

# Interest: the courses it leads to, most likely first.
INTERESTS: dict[str, list[str]] = {
    "programming": ["python-foundations", "lap-trinh-python-co-ban", "statistics-essentials"],
    "science": ["cell-biology", "statistics-essentials", "python-foundations"],
    "money": ["personal-finance", "statistics-essentials", "python-foundations"],
    "vietnamese": ["lap-trinh-python-co-ban", "dia-ly-viet-nam", "cell-biology"],
}
NAMES = [
    "An", "Bình", "Chi", "Dũng", "Emma", "Farah", "Giang", "Hana", "Ibrahim", "Julia",
    "Khoa", "Linh", "Mai", "Noah", "Olivia", "Phúc", "Quân", "Rosa", "Sara", "Tuấn",
    "Uma", "Vy", "Wei", "Yến",
]  # fmt: skip
REVIEWS = {
    5: "Clear, well paced and practical. Recommended.",
    4: "Good course; a few lessons could use more examples.",
    3: "Useful overall, but uneven in places.",
}


def learner_email(number: int) -> str:
    return f"learner{number:02d}@demo.lyceum.dev"


@dataclass(frozen=True)
class HistoryResult:
    learners: int
    enrollments: int
    completions: int
    reviews: int


async def load_history(
    session: AsyncSession, service: CourseService, *, student_id: uuid.UUID, now: dt.datetime
) -> HistoryResult | None:
    """Write the history once; None when it is already there."""
    if await users_by_email(session, [learner_email(1)]):
        return None
    rng = random.Random(SEED)
    courses = {}
    for slug in {slug for slugs in INTERESTS.values() for slug in slugs}:
        course = await service.course_by_slug(slug)
        if course is not None:
            courses[slug] = (course.id, [lesson.id for lesson in await service.lessons(course.id)])
    password_hash = await hash_password(LEARNER_PASSWORD)
    learners = []
    for number, name in enumerate(NAMES[:LEARNERS], start=1):
        learner = User(
            email=learner_email(number),
            full_name=f"{name} (demo learner)",
            password_hash=password_hash,
            role=Role.student,
            email_verified_at=now,
            preferences={},
        )
        learners.append(learner)
    session.add_all(learners)
    await session.flush()
    enrollments = completions = reviews = 0
    plan: list[tuple[uuid.UUID, str, float]] = [(student_id, "python-foundations", 0.4)]
    for learner in learners:
        interest = rng.choice(list(INTERESTS))
        wanted = [slug for slug in INTERESTS[interest] if rng.random() < 0.85]
        if rng.random() < 0.3:  # now and then, something else entirely
            wanted.append(rng.choice(sorted(courses)))
        for slug in dict.fromkeys(wanted):
            progress = 1.0 if rng.random() < 0.45 else rng.choice([0.0, 0.2, 0.4, 0.6, 0.8])
            plan.append((learner.id, slug, progress))
    for user_id, slug, progress in plan:
        if slug not in courses:
            continue
        course_id, lessons = courses[slug]
        started = now - dt.timedelta(days=rng.randint(5, 90))
        done = lessons[: round(progress * len(lessons))]
        finished = bool(lessons) and len(done) == len(lessons)
        session.add(
            Enrollment(
                course_id=course_id,
                user_id=user_id,
                status=EnrollmentStatus.completed if finished else EnrollmentStatus.active,
                enrolled_at=started,
                completed_at=now - dt.timedelta(days=1) if finished else None,
                last_lesson_id=done[-1] if done else None,
                last_activity_at=started + dt.timedelta(days=len(done)) if done else None,
            )
        )
        for position, lesson_id in enumerate(done):
            session.add(
                LessonCompletion(
                    user_id=user_id,
                    lesson_id=lesson_id,
                    course_id=course_id,
                    completed_at=started + dt.timedelta(days=position, hours=1),
                )
            )
        await service.record_stat_change(course_id, enrollments=1)
        enrollments += 1
        completions += len(done)
        if user_id != student_id and progress >= 0.6 and rng.random() < 0.6:
            rating = rng.choice([5, 5, 4, 4, 3])
            session.add(
                Review(course_id=course_id, user_id=user_id, rating=rating, text=REVIEWS[rating])
            )
            await service.record_stat_change(course_id, ratings=1, rating_points=rating)
            reviews += 1
    await session.flush()
    return HistoryResult(len(learners), enrollments, completions, reviews)
