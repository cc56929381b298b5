"""Question bank routes: a course's questions, for its instructors and admins."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Response, status

from lyceum.assessments import views
from lyceum.assessments.permissions import EditableQuestion, Questions
from lyceum.assessments.repository.questions import QuestionFilters
from lyceum.assessments.schemas import questions as schemas
from lyceum.courses.permissions import EditableCourse
from lyceum.identity.permissions import CurrentUser
from lyceum.kit.pagination import Page, Paging
from lyceum.kit.routing import Router
from lyceum.models.assessments import Difficulty, QuestionKind

router = Router()

API = "/api/v1"
TagQuery = Annotated[str | None, Query(min_length=1, max_length=50, pattern=r"^[^\x00]*$")]


@router.post(
    "/courses/{course_id:uuid}/questions",
    status_code=status.HTTP_201_CREATED,
    summary="Add a question to the course's bank (its instructors and admins)",
    description="Single choice, multiple choice, true/false, short answer (exact, "
    "case-insensitive, regex or numeric with tolerance) or essay; `kind` selects the "
    "shape. Regex answers are vetted: invalid or potentially catastrophic patterns "
    "answer 422 (`unsafe-pattern`).",
)
async def create_question(
    course: EditableCourse,
    body: schemas.QuestionIn,
    caller: CurrentUser,
    service: Questions,
    response: Response,
) -> schemas.QuestionOut:
    question = await service.create(course, caller, body)
    response.headers["Location"] = f"{API}/questions/{question.id}"
    return views.question_out(question)


@router.get(
    "/courses/{course_id:uuid}/questions",
    summary="The course's question bank (its instructors and admins)",
)
async def list_questions(
    course: EditableCourse,
    service: Questions,
    paging: Paging,
    tag: TagQuery = None,
    kind: QuestionKind | None = None,
    difficulty: Difficulty | None = None,
) -> Page[schemas.QuestionOut]:
    rows, total = await service.listing(
        course,
        QuestionFilters(tag=tag, kind=kind, difficulty=difficulty),
        paging.offset,
        paging.size,
    )
    return Page.of([views.question_out(row) for row in rows], total, paging)


@router.get("/questions/{question_id:uuid}", summary="One question with its key")
async def get_question(question: EditableQuestion) -> schemas.QuestionOut:
    return views.question_out(question)


@router.put(
    "/questions/{question_id:uuid}",
    summary="Replace a question (attempts already started keep the version they drew)",
)
async def replace_question(
    question: EditableQuestion, body: schemas.QuestionIn, service: Questions
) -> schemas.QuestionOut:
    return views.question_out(await service.replace(question, body))


@router.delete(
    "/questions/{question_id:uuid}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a question (409 while a quiz names it)",
)
async def delete_question(question: EditableQuestion, service: Questions) -> None:
    await service.remove(question)
