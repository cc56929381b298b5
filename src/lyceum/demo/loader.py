"""`lyceum demo`: six published courses (English and Vietnamese) with real lesson text,
two of them priced (for the sandbox payment flow), a published auto-graded quiz and an
essay assignment with a rubric in Python Foundations, an instructor who teaches them, a
student, an admin, and an enrollment history of 24 demo learners (`history.py`), after
which a recommendation model rebuild is enqueued. Running it again changes nothing
(a quiz or assignment missing from an earlier load, found by its title, is added)."""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.assessments.schemas import assignments as assignment_schemas
from lyceum.assessments.schemas import questions as question_schemas
from lyceum.assessments.schemas import quizzes as quiz_schemas
from lyceum.assessments.service.assignments import AssignmentService
from lyceum.assessments.service.questions import QuestionService
from lyceum.assessments.service.quizzes import QuizService
from lyceum.courses import schemas
from lyceum.courses.service import CourseService
from lyceum.demo.history import HistoryResult, load_history
from lyceum.identity.service import ensure_account
from lyceum.kit.cache import Cache
from lyceum.models.courses import Course
from lyceum.models.identity import Role, User
from lyceum.recommendations.service import request_rebuild

INSTRUCTOR_EMAIL = "teacher@demo.lyceum.dev"
INSTRUCTOR_PASSWORD = "demo teacher passphrase"  # noqa: S105 (published demo login)
STUDENT_EMAIL = "student@demo.lyceum.dev"
STUDENT_PASSWORD = "demo student passphrase"  # noqa: S105 (published demo login)
ADMIN_EMAIL = "admin@demo.lyceum.dev"
ADMIN_PASSWORD = "demo admin passphrase"  # noqa: S105 (published demo login)
# Everything in an assessment's TOML table that is not a field of its create body.
_PLACEMENT = {"lesson", "questions", "criteria"}


@dataclass(frozen=True)
class DemoResult:
    created: list[str]
    existing: list[str]
    history: HistoryResult | None = None  # None: it was loaded before
    # "slug: title" of each quiz and assignment added by this run.
    assessments: list[str] = field(default_factory=list)


def demo_courses() -> list[dict[str, Any]]:
    folder = resources.files("lyceum.demo") / "courses"
    courses = []
    for entry in sorted(folder.iterdir(), key=lambda item: item.name):
        if entry.name.endswith(".toml"):
            courses.append(tomllib.loads(entry.read_text(encoding="utf-8")))
    return courses


async def load_demo(session: AsyncSession, *, cache: Cache, now: dt.datetime) -> DemoResult:
    teacher = await ensure_account(
        session,
        email=INSTRUCTOR_EMAIL,
        password=INSTRUCTOR_PASSWORD,
        full_name="Minh Trần",
        role=Role.instructor,
        now=now,
    )
    student = await ensure_account(
        session,
        email=STUDENT_EMAIL,
        password=STUDENT_PASSWORD,
        full_name="Lan Nguyễn",
        role=Role.student,
        now=now,
    )
    await ensure_account(
        session,
        email=ADMIN_EMAIL,
        password=ADMIN_PASSWORD,
        full_name="Hà Phạm",
        role=Role.admin,
        now=now,
    )
    service = CourseService(session, cache=cache, cache_ttl=60, now=now)
    created, existing, assessments = [], [], []
    for data in demo_courses():
        found = await service.course_by_slug(data["slug"])
        if found is not None:
            existing.append(data["slug"])
            assessments += await _load_assessments(session, service, found, teacher, data)
            continue
        course = await service.create(
            teacher,
            schemas.CourseCreate(
                title=data["title"],
                slug=data["slug"],
                subtitle=data.get("subtitle", ""),
                description=data.get("description", ""),
                language=data["language"],
                level=data["level"],
                category=data["category"],
                tags=data.get("tags", []),
                price=schemas.Price(
                    amount_cents=data.get("price_cents", 0), currency=data.get("currency", "USD")
                ),
            ),
        )
        for module_data in data["modules"]:
            module = await service.add_module(course, module_data["title"])
            for lesson in module_data["lessons"]:
                await service.add_lesson(
                    course,
                    module,
                    schemas.LessonCreate(
                        title=lesson["title"],
                        kind=lesson.get("kind", "text"),
                        content=lesson.get("content", ""),
                        video_url=lesson.get("video_url"),
                        duration_seconds=lesson.get("duration_seconds"),
                        estimated_minutes=lesson.get("minutes", 10),
                        is_preview=lesson.get("preview", False),
                    ),
                )
        await service.publish(course)
        created.append(data["slug"])
        assessments += await _load_assessments(session, service, course, teacher, data)
    await session.flush()
    history = await load_history(session, service, student_id=student.id, now=now)
    if history is not None:  # the model is rebuilt by a job, in this transaction
        await request_rebuild(session, now)
    return DemoResult(created=created, existing=existing, history=history, assessments=assessments)


async def _load_assessments(
    session: AsyncSession,
    service: CourseService,
    course: Course,
    author: User,
    data: dict[str, Any],
) -> list[str]:
    """The course's `[[quizzes]]` (with their questions) and `[[assignments]]` (with their
    rubric), created through the assessments services as an instructor would, published;
    those already there (by title) are left alone."""
    if not data.get("quizzes") and not data.get("assignments"):
        return []
    lessons = {lesson.title: lesson.id for lesson in await service.lessons(course.id)}
    added: list[str] = []
    quizzes, questions = QuizService(session), QuestionService(session)
    held, _ = await quizzes.listing(course, published_only=False, offset=0, limit=100)
    titles = {quiz.title for quiz, _ in held}
    question_in: TypeAdapter[question_schemas.QuestionIn] = TypeAdapter(question_schemas.QuestionIn)
    for quiz_data in data.get("quizzes", []):
        if quiz_data["title"] in titles:
            continue
        sections = []
        for question_data in quiz_data["questions"]:
            question = await questions.create(
                course, author, question_in.validate_python(question_data)
            )
            sections.append(quiz_schemas.SectionIn(question_id=question.id))
        body = {key: value for key, value in quiz_data.items() if key not in _PLACEMENT}
        await quizzes.create(
            course,
            quiz_schemas.QuizCreate(
                **body,
                lesson_id=lessons[quiz_data["lesson"]] if "lesson" in quiz_data else None,
                sections=sections,
                published=True,
            ),
        )
        added.append(f"{data['slug']}: {quiz_data['title']}")
    assignments = AssignmentService(session)
    written, _ = await assignments.listing(course, published_only=False, offset=0, limit=100)
    titles = {assignment.title for assignment in written}
    for assignment_data in data.get("assignments", []):
        if assignment_data["title"] in titles:
            continue
        body = {key: value for key, value in assignment_data.items() if key not in _PLACEMENT}
        await assignments.create(
            course,
            author,
            assignment_schemas.AssignmentCreate(
                **body,
                lesson_id=(
                    lessons[assignment_data["lesson"]] if "lesson" in assignment_data else None
                ),
                rubric=assignment_schemas.RubricIn.model_validate(
                    {"criteria": assignment_data["criteria"]}
                ),
                published=True,
            ),
        )
        added.append(f"{data['slug']}: {assignment_data['title']}")
    return added
