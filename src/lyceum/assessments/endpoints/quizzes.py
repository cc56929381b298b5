"""Quiz routes: composing quizzes (their instructors and admins) and reading their
settings (the course's members)."""

from __future__ import annotations

from fastapi import Response, status

from lyceum.assessments import views
from lyceum.assessments.permissions import EditableQuiz, Quizzes, ReadableQuiz
from lyceum.assessments.schemas import quizzes as schemas
from lyceum.courses.permissions import EditableCourse, MemberCourse
from lyceum.kit.pagination import Page, Paging
from lyceum.kit.routing import Router

router = Router()

API = "/api/v1"


@router.post(
    "/courses/{course_id:uuid}/quizzes",
    status_code=status.HTTP_201_CREATED,
    summary="Create a quiz (its instructors and admins)",
    description="`sections` compose it in order: fixed questions, and `draw` questions "
    "picked at random per attempt from the bank's questions with a `tag`.",
)
async def create_quiz(
    course: EditableCourse, body: schemas.QuizCreate, service: Quizzes, response: Response
) -> schemas.QuizOut:
    quiz, sections = await service.create(course, body)
    response.headers["Location"] = f"{API}/quizzes/{quiz.id}"
    return views.quiz_out(quiz, sections)


@router.get(
    "/courses/{course_id:uuid}/quizzes",
    summary="The course's quizzes (learners: published ones)",
)
async def list_quizzes(
    membership: MemberCourse, service: Quizzes, paging: Paging
) -> Page[schemas.QuizInfo]:
    rows, total = await service.listing(
        membership.course,
        published_only=not membership.can_edit,
        offset=paging.offset,
        limit=paging.size,
    )
    return Page.of([views.quiz_info(quiz, sections) for quiz, sections in rows], total, paging)


@router.get("/quizzes/{quiz_id:uuid}", summary="A quiz's settings (never its questions)")
async def get_quiz(quiz: ReadableQuiz, service: Quizzes) -> schemas.QuizInfo:
    return views.quiz_info(quiz, await service.sections_of(quiz))


@router.get(
    "/quizzes/{quiz_id:uuid}/definition",
    summary="A quiz with its composition (its instructors and admins)",
)
async def get_quiz_definition(quiz: EditableQuiz, service: Quizzes) -> schemas.QuizOut:
    return views.quiz_out(quiz, await service.sections_of(quiz))


@router.patch("/quizzes/{quiz_id:uuid}", summary="Change a quiz")
async def update_quiz(
    quiz: EditableQuiz, body: schemas.QuizUpdate, service: Quizzes
) -> schemas.QuizOut:
    quiz, sections = await service.change(quiz, body)
    return views.quiz_out(quiz, sections)


@router.delete(
    "/quizzes/{quiz_id:uuid}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a quiz nobody has attempted",
)
async def delete_quiz(quiz: EditableQuiz, service: Quizzes) -> None:
    await service.remove(quiz)
