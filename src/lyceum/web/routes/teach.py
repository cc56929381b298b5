"""Instructors: the course editor, files, tutor settings, quizzes and banks, assignments
and rubrics, the review queue, the gradebook, announcements, analytics.

Every page shows what the API answers its user: another instructor opening a course
they do not teach gets the API's refusal. Only the role gate (students get a 403 page
before any call) is decided here, from the signed-in account, as the navigation does.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from babel.numbers import get_currency_precision
from fastapi import APIRouter, Depends, File, Form, Query, UploadFile
from starlette.datastructures import FormData
from starlette.responses import Response

from lyceum.web.api import ApiProblem, ApiResponse, FieldError
from lyceum.web.api import _problem as api_problem
from lyceum.web.context import Page, SignedInForm, SignedInPage
from lyceum.web.markdown import render_markdown

router = APIRouter(include_in_schema=False)

TEACHING_ROLES = ("instructor", "admin")
UPLOAD_MAX_BYTES = 10 * 1024 * 1024
UPLOAD_TYPES = {
    ".pdf": "application/pdf",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
}
PENDING_FILE = ("pending", "processing")
RUBRIC_SLOTS = 4
LEVELS = ("beginner", "intermediate", "advanced")


def _gate(current: Page) -> Page:
    """Students get a 403 page at once (the API would refuse every call anyway)."""
    assert current.user is not None
    if current.user.role.value not in TEACHING_ROLES:
        raise ApiProblem(
            403,
            current.gettext("Forbidden"),
            current.gettext("These pages are for instructors and admins."),
            "forbidden",
        )
    return current


async def teacher_page(current: SignedInPage) -> Page:
    return _gate(current)


async def teacher_form(current: SignedInForm) -> Page:
    return _gate(current)


TeachPage = Annotated[Page, Depends(teacher_page)]
TeachForm = Annotated[Page, Depends(teacher_form)]


# Small helpers ---------------------------------------------------------------------------


def _text(form: FormData, name: str, default: str = "") -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else default


def _number(form: FormData, name: str) -> float | None:
    raw = _text(form, name)
    if not raw:
        return None
    try:
        number = float(raw.replace(",", "."))
    except ValueError:
        return None
    # nan and inf are no numbers a form means (and JSON has no way to say them).
    return number if math.isfinite(number) and abs(number) < 1e12 else None


def _int(form: FormData, name: str) -> int | None:
    number = _number(form, name)
    return None if number is None else int(number)


def _checked(form: FormData, name: str) -> bool:
    return form.get(name) in ("on", "true", "1")


def _local_problem(page: Page, field: str, message: str) -> ApiProblem:
    return ApiProblem(
        422,
        page.gettext("Check the form"),
        message,
        "validation",
        errors=[FieldError(f"body.{field}", message)],
    )


def _cents(amount: str, currency: str) -> int | None:
    """A price typed in major units ("12.50") as minor units of `currency`."""
    try:
        value = Decimal(amount.replace(",", ".") or "0")
        return int(value.scaleb(get_currency_precision(currency)))
    except (InvalidOperation, ValueError):
        return None


def _major(price: dict[str, Any]) -> str:
    currency = str(price["currency"])
    value = Decimal(int(price["amount_cents"])).scaleb(-get_currency_precision(currency))
    return f"{value:f}"


def _iso(local: str) -> str | None:
    """A `datetime-local` value (taken as UTC) as ISO-8601 UTC."""
    if not local:
        return None
    try:
        moment = dt.datetime.fromisoformat(local)
    except ValueError:
        return None
    return moment.replace(tzinfo=dt.UTC).isoformat()


def _done(page: Page, key: str | None) -> str | None:
    """The notice a form's redirect asks for (`?done=...`): post, redirect, get, so a
    reload never sends a form again."""
    messages = {
        "saved": page.gettext("Saved."),
        "published": page.gettext("Published."),
        "archived": page.gettext("Archived."),
        "question-added": page.gettext("Question added."),
        "question-deleted": page.gettext("Question deleted."),
        "quiz-created": page.gettext("Quiz created."),
        "assignment-created": page.gettext("Assignment created."),
        "graded": page.gettext("Grade saved."),
        "accepted": page.gettext("Proposal accepted."),
        "released": page.gettext("Released."),
        "posted": page.gettext("Announcement posted."),
    }
    return messages.get(key or "")


Done = Annotated[str | None, Query(max_length=40)]


async def _course(page: Page, course_id: uuid.UUID) -> dict[str, Any]:
    course: dict[str, Any] = await page.api.get(f"courses/{course_id}")
    return course


# My courses ------------------------------------------------------------------------------


async def _index(page: Page, *, problem: ApiProblem | None = None, title: str = "") -> Response:
    courses = await page.api.get("courses/teaching", params={"size": 100})
    return page.render(
        "teach/index.html",
        status=problem.status if problem else 200,
        courses=courses,
        problem=problem,
        title=title,
    )


@router.get("/teach")
async def teach_home(page: TeachPage) -> Response:
    return await _index(page)


@router.post("/teach/courses")
async def create_course(
    page: TeachForm, title: Annotated[str, Form(max_length=300)] = ""
) -> Response:
    try:
        course = await page.api.post("courses", json={"title": title})
    except ApiProblem as problem:
        return await _index(page, problem=problem, title=title)
    return page.redirect(f"/teach/courses/{course['id']}")


@router.post("/teach/preview")
async def preview(page: TeachForm) -> Response:
    """The markdown of a description, lesson or announcement as it will be shown."""
    form = await page.request.form()
    source = ""
    for name in ("content", "description", "body", "prompt"):
        value = form.get(name)
        if isinstance(value, str) and value:
            source = value
            break
    return page.render("teach/_preview.html", html=render_markdown(source[:200_000]))


# The course editor -----------------------------------------------------------------------


async def _editor(
    page: Page,
    course_id: uuid.UUID,
    *,
    problem: ApiProblem | None = None,
    notice: str | None = None,
    values: dict[str, Any] | None = None,
) -> Response:
    course = await _course(page, course_id)
    # Tutor settings are for the course's instructors and admins only: this is also
    # where another instructor gets the API's refusal for a published course.
    tutor = await page.api.get(f"tutor/courses/{course_id}/settings")
    return page.render(
        "teach/editor.html",
        status=problem.status if problem else 200,
        course=course,
        tutor=tutor,
        problem=problem,
        notice=notice,
        values=values
        or {
            **course,
            "amount": _major(course["price"]),
            "currency": course["price"]["currency"],
            "tags": ", ".join(course["tags"]),
        },
        levels=LEVELS,
        section="editor",
    )


@router.get("/teach/courses/{course_id:uuid}")
async def editor(page: TeachPage, course_id: uuid.UUID, done: Done = None) -> Response:
    return await _editor(page, course_id, notice=_done(page, done))


@router.post("/teach/courses/{course_id:uuid}")
async def save_course(page: TeachForm, course_id: uuid.UUID) -> Response:
    form = await page.request.form()
    values = {
        "title": _text(form, "title"),
        "subtitle": _text(form, "subtitle"),
        "description": str(form.get("description") or ""),
        "level": _text(form, "level", "beginner"),
        "language": _text(form, "language", "en"),
        "category": _text(form, "category", "general"),
        "tags": _text(form, "tags"),
        "amount": _text(form, "amount", "0"),
        "currency": _text(form, "currency", "USD").upper(),
    }
    cents = _cents(values["amount"], values["currency"])
    if cents is None:
        problem = _local_problem(page, "amount", page.gettext("Enter a price such as 12.50."))
        return await _editor(page, course_id, problem=problem, values=values)
    body = {
        "title": values["title"],
        "subtitle": values["subtitle"],
        "description": values["description"],
        "level": values["level"],
        "language": values["language"],
        "category": values["category"],
        "tags": [t.strip() for t in values["tags"].split(",") if t.strip()],
        "price": {"amount_cents": cents, "currency": values["currency"]},
    }
    try:
        await page.api.patch(f"courses/{course_id}", json=body)
    except ApiProblem as problem:
        if problem.status not in (400, 409, 422):
            raise
        return await _editor(page, course_id, problem=problem, values=values)
    return page.redirect(f"/teach/courses/{course_id}?done=saved")


async def _change_status(page: Page, course_id: uuid.UUID, action: str) -> Response:
    try:
        await page.api.post(f"courses/{course_id}/{action}")
    except ApiProblem as problem:
        if problem.status not in (400, 409, 422):
            raise
        return await _editor(page, course_id, problem=problem)
    done = "published" if action == "publish" else "archived"
    return page.redirect(f"/teach/courses/{course_id}?done={done}")


@router.post("/teach/courses/{course_id:uuid}/publish")
async def publish_course(page: TeachForm, course_id: uuid.UUID) -> Response:
    return await _change_status(page, course_id, "publish")


@router.post("/teach/courses/{course_id:uuid}/archive")
async def archive_course(page: TeachForm, course_id: uuid.UUID) -> Response:
    return await _change_status(page, course_id, "archive")


# Modules and lessons (htmx: each answers the syllabus fragment) --------------------------


async def _syllabus(
    page: Page, course_id: uuid.UUID, problem: ApiProblem | None = None
) -> Response:
    if not page.htmx:
        if problem is not None:
            return await _editor(page, course_id, problem=problem)
        return page.redirect(f"/teach/courses/{course_id}#syllabus")
    modules = await page.api.get(f"courses/{course_id}/modules")
    return page.render(
        "teach/_syllabus.html",
        course={"id": str(course_id), "modules": modules},
        syllabus_problem=problem,
    )


async def _guarded(page: Page, course_id: uuid.UUID, method: str, path: str, **kw: Any) -> Response:
    try:
        await getattr(page.api, method)(path, **kw)
    except ApiProblem as problem:
        if problem.status not in (400, 409, 422):
            raise
        return await _syllabus(page, course_id, problem)
    return await _syllabus(page, course_id)


@router.post("/teach/courses/{course_id:uuid}/modules")
async def add_module(
    page: TeachForm, course_id: uuid.UUID, title: Annotated[str, Form(max_length=300)] = ""
) -> Response:
    return await _guarded(
        page, course_id, "post", f"courses/{course_id}/modules", json={"title": title}
    )


@router.post("/teach/courses/{course_id:uuid}/modules/{module_id:uuid}/rename")
async def rename_module(
    page: TeachForm,
    course_id: uuid.UUID,
    module_id: uuid.UUID,
    title: Annotated[str, Form(max_length=300)] = "",
) -> Response:
    path = f"courses/{course_id}/modules/{module_id}"
    return await _guarded(page, course_id, "patch", path, json={"title": title})


@router.post("/teach/courses/{course_id:uuid}/modules/{module_id:uuid}/delete")
async def delete_module(page: TeachForm, course_id: uuid.UUID, module_id: uuid.UUID) -> Response:
    return await _guarded(page, course_id, "delete", f"courses/{course_id}/modules/{module_id}")


def _moved(ids: list[str], item: str, direction: str) -> list[str]:
    order = list(ids)
    index = order.index(item)
    other = index - 1 if direction == "up" else index + 1
    if 0 <= other < len(order):
        order[index], order[other] = order[other], order[index]
    return order


@router.post("/teach/courses/{course_id:uuid}/modules/{module_id:uuid}/move")
async def move_module(
    page: TeachForm,
    course_id: uuid.UUID,
    module_id: uuid.UUID,
    direction: Annotated[Literal["up", "down"], Form()] = "up",
) -> Response:
    modules = await page.api.get(f"courses/{course_id}/modules")
    ids = [m["id"] for m in modules]
    if str(module_id) not in ids:
        return await _syllabus(page, course_id)
    order = _moved(ids, str(module_id), direction)
    return await _guarded(
        page, course_id, "put", f"courses/{course_id}/modules/order", json={"ids": order}
    )


@router.post("/teach/courses/{course_id:uuid}/modules/{module_id:uuid}/lessons")
async def add_lesson(
    page: TeachForm,
    course_id: uuid.UUID,
    module_id: uuid.UUID,
    title: Annotated[str, Form(max_length=300)] = "",
    kind: Annotated[Literal["text", "video", "file"], Form()] = "text",
) -> Response:
    path = f"courses/{course_id}/modules/{module_id}/lessons"
    return await _guarded(page, course_id, "post", path, json={"title": title, "kind": kind})


@router.post("/teach/courses/{course_id:uuid}/lessons/{lesson_id:uuid}/move")
async def move_lesson(
    page: TeachForm,
    course_id: uuid.UUID,
    lesson_id: uuid.UUID,
    direction: Annotated[Literal["up", "down"], Form()] = "up",
) -> Response:
    modules = await page.api.get(f"courses/{course_id}/modules")
    for module in modules:
        ids = [lesson["id"] for lesson in module["lessons"]]
        if str(lesson_id) in ids:
            order = _moved(ids, str(lesson_id), direction)
            path = f"courses/{course_id}/modules/{module['id']}/lessons/order"
            return await _guarded(page, course_id, "put", path, json={"ids": order})
    return await _syllabus(page, course_id)


async def _lesson_page(
    page: Page,
    lesson_id: uuid.UUID,
    *,
    problem: ApiProblem | None = None,
    notice: str | None = None,
    values: dict[str, Any] | None = None,
) -> Response:
    lesson = await page.api.get(f"lessons/{lesson_id}")
    course = await _course(page, lesson["course_id"])
    files = await page.api.get(f"courses/{lesson['course_id']}/files", params={"size": 100})
    return page.render(
        "teach/lesson.html",
        status=problem.status if problem else 200,
        lesson=lesson,
        course=course,
        files=files["items"],
        values=values or lesson,
        problem=problem,
        notice=notice,
        section="editor",
    )


@router.get("/teach/lessons/{lesson_id:uuid}")
async def lesson_editor(page: TeachPage, lesson_id: uuid.UUID, done: Done = None) -> Response:
    return await _lesson_page(page, lesson_id, notice=_done(page, done))


@router.post("/teach/lessons/{lesson_id:uuid}")
async def save_lesson(page: TeachForm, lesson_id: uuid.UUID) -> Response:
    form = await page.request.form()
    values: dict[str, Any] = {
        "title": _text(form, "title"),
        "content": str(form.get("content") or ""),
        "video_url": _text(form, "video_url") or None,
        "file_id": _text(form, "file_id") or None,
        "estimated_minutes": _int(form, "estimated_minutes") or 10,
        "is_preview": _checked(form, "is_preview"),
    }
    try:
        await page.api.patch(f"lessons/{lesson_id}", json=values)
    except ApiProblem as problem:
        if problem.status not in (400, 409, 422):
            raise
        lesson = await page.api.get(f"lessons/{lesson_id}")
        return await _lesson_page(page, lesson_id, problem=problem, values={**lesson, **values})
    return page.redirect(f"/teach/lessons/{lesson_id}?done=saved")


@router.post("/teach/lessons/{lesson_id:uuid}/delete")
async def delete_lesson(page: TeachForm, lesson_id: uuid.UUID) -> Response:
    lesson = await page.api.get(f"lessons/{lesson_id}")
    await page.api.delete(f"lessons/{lesson_id}")
    return page.redirect(f"/teach/courses/{lesson['course_id']}#syllabus")


# Files -----------------------------------------------------------------------------------


async def _files(
    page: Page,
    course_id: uuid.UUID,
    *,
    problem: ApiProblem | None = None,
    notice: str | None = None,
) -> Response:
    files = await page.api.get(f"courses/{course_id}/files", params={"size": 100})
    waiting = any(f["status"] in PENDING_FILE for f in files["items"])
    if page.htmx and page.request.method == "GET":
        return page.render(
            "teach/_files.html", course={"id": str(course_id)}, files=files, waiting=waiting
        )
    course = await _course(page, course_id)
    return page.render(
        "teach/files.html",
        status=problem.status if problem else 200,
        course=course,
        files=files,
        waiting=waiting,
        problem=problem,
        notice=notice,
        section="files",
    )


@router.get("/teach/courses/{course_id:uuid}/files")
async def files_page(page: TeachPage, course_id: uuid.UUID) -> Response:
    return await _files(page, course_id)


@router.post("/teach/courses/{course_id:uuid}/files")
async def upload_file(
    page: TeachForm, course_id: uuid.UUID, file: Annotated[UploadFile | None, File()] = None
) -> Response:
    if file is None or not file.filename:
        problem = _local_problem(page, "file", page.gettext("Choose a file to upload."))
        return await _files(page, course_id, problem=problem)
    data = await file.read(UPLOAD_MAX_BYTES + 1)
    if len(data) > UPLOAD_MAX_BYTES:
        problem = _local_problem(page, "file", page.gettext("The file is larger than 10 MB."))
        return await _files(page, course_id, problem=problem)
    name = file.filename
    suffix = "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""
    content_type = UPLOAD_TYPES.get(suffix) or file.content_type or "application/octet-stream"
    try:
        await page.api.post(
            f"courses/{course_id}/files", files={"file": (name, data, content_type)}
        )
    except ApiProblem as problem:
        if problem.status not in (400, 409, 413, 415, 422, 429):
            raise
        return await _files(page, course_id, problem=problem)
    return page.redirect(f"/teach/courses/{course_id}/files")


@router.post("/teach/courses/{course_id:uuid}/files/{file_id:uuid}/delete")
async def delete_file(page: TeachForm, course_id: uuid.UUID, file_id: uuid.UUID) -> Response:
    await page.api.delete(f"courses/{course_id}/files/{file_id}")
    return page.redirect(f"/teach/courses/{course_id}/files")


# Tutor settings --------------------------------------------------------------------------


async def _tutor(
    page: Page,
    course_id: uuid.UUID,
    *,
    problem: ApiProblem | None = None,
    notice: str | None = None,
) -> Response:
    settings = await page.api.get(f"tutor/courses/{course_id}/settings")
    course = await _course(page, course_id)
    return page.render(
        "teach/tutor.html",
        status=problem.status if problem else 200,
        course=course,
        settings=settings,
        problem=problem,
        notice=notice,
        section="tutor",
    )


@router.get("/teach/courses/{course_id:uuid}/tutor")
async def tutor_page(page: TeachPage, course_id: uuid.UUID, done: Done = None) -> Response:
    return await _tutor(page, course_id, notice=_done(page, done))


@router.post("/teach/courses/{course_id:uuid}/tutor")
async def save_tutor(page: TeachForm, course_id: uuid.UUID) -> Response:
    form = await page.request.form()
    body = {
        "enabled": _checked(form, "enabled"),
        "mode": _text(form, "mode", "socratic"),
        "instructions": str(form.get("instructions") or ""),
        "monthly_token_budget": _int(form, "monthly_token_budget"),
        "hourly_message_limit": _int(form, "hourly_message_limit"),
    }
    try:
        await page.api.patch(f"tutor/courses/{course_id}/settings", json=body)
    except ApiProblem as problem:
        if problem.status not in (400, 409, 422):
            raise
        return await _tutor(page, course_id, problem=problem)
    return page.redirect(f"/teach/courses/{course_id}/tutor?done=saved")


# Assessments: question bank, quizzes, assignments ----------------------------------------


async def _assessments(
    page: Page,
    course_id: uuid.UUID,
    *,
    problem: ApiProblem | None = None,
    notice: str | None = None,
    form_name: str = "",
) -> Response:
    course = await _course(page, course_id)
    questions = await page.api.get(f"courses/{course_id}/questions", params={"size": 100})
    quizzes = await page.api.get(f"courses/{course_id}/quizzes", params={"size": 100})
    assignments = await page.api.get(f"courses/{course_id}/assignments", params={"size": 100})
    return page.render(
        "teach/assessments.html",
        status=problem.status if problem else 200,
        course=course,
        questions=questions,
        quizzes=quizzes,
        assignments=assignments,
        problem=problem,
        notice=notice,
        form_name=form_name,
        rubric_slots=RUBRIC_SLOTS,
        section="assessments",
    )


@router.get("/teach/courses/{course_id:uuid}/assessments")
async def assessments_page(page: TeachPage, course_id: uuid.UUID, done: Done = None) -> Response:
    return await _assessments(page, course_id, notice=_done(page, done))


def _question_body(form: FormData) -> dict[str, Any]:
    kind = _text(form, "kind", "single_choice")
    body: dict[str, Any] = {
        "kind": kind,
        "prompt": _text(form, "prompt"),
        "points": _number(form, "points") or 1.0,
        "tags": [t.strip() for t in _text(form, "tags").split(",") if t.strip()],
        "explanation": _text(form, "explanation"),
    }
    lines = [line.strip() for line in str(form.get("options") or "").splitlines()]
    options = [line for line in lines if line]
    answer = _text(form, "answer")
    if kind in ("single_choice", "multiple_choice"):
        # One option per line; the correct ones start with "*".
        body["options"] = [
            {"id": f"o{n + 1}", "text": text.lstrip("*").strip()} for n, text in enumerate(options)
        ]
        correct = [f"o{n + 1}" for n, text in enumerate(options) if text.startswith("*")]
        body["correct"] = correct if kind == "multiple_choice" else (correct or [""])[0]
    elif kind == "true_false":
        body["correct"] = answer.lower() in ("true", "yes", "1", "đúng")
    elif kind == "short_answer":
        body["match"] = "case_insensitive"
        body["accepted"] = [a.strip() for a in answer.split("|") if a.strip()]
    return body


@router.post("/teach/courses/{course_id:uuid}/questions")
async def add_question(page: TeachForm, course_id: uuid.UUID) -> Response:
    form = await page.request.form()
    try:
        await page.api.post(f"courses/{course_id}/questions", json=_question_body(form))
    except ApiProblem as problem:
        if problem.status not in (400, 409, 422):
            raise
        return await _assessments(page, course_id, problem=problem, form_name="question")
    return page.redirect(f"/teach/courses/{course_id}/assessments?done=question-added")


@router.post("/teach/courses/{course_id:uuid}/questions/{question_id:uuid}/delete")
async def delete_question(
    page: TeachForm, course_id: uuid.UUID, question_id: uuid.UUID
) -> Response:
    try:
        await page.api.delete(f"questions/{question_id}")
    except ApiProblem as problem:
        if problem.status not in (400, 409, 422):
            raise
        return await _assessments(page, course_id, problem=problem)
    return page.redirect(f"/teach/courses/{course_id}/assessments?done=question-deleted")


@router.post("/teach/courses/{course_id:uuid}/quizzes")
async def add_quiz(page: TeachForm, course_id: uuid.UUID) -> Response:
    form = await page.request.form()
    sections: list[dict[str, Any]] = [
        {"question_id": value} for value in form.getlist("question_ids") if isinstance(value, str)
    ]
    tag = _text(form, "draw_tag")
    draw = _int(form, "draw_count")
    if tag and draw:
        sections.append({"tag": tag, "draw": draw})
    minutes = _number(form, "time_limit_minutes")
    body = {
        "title": _text(form, "title"),
        "description": _text(form, "description"),
        "time_limit_seconds": int(minutes * 60) if minutes else None,
        "max_attempts": _int(form, "max_attempts"),
        "pass_percent": _number(form, "pass_percent") or 60.0,
        "review_policy": _text(form, "review_policy", "answers_after_submit"),
        "published": _checked(form, "published"),
        "sections": sections,
    }
    try:
        await page.api.post(f"courses/{course_id}/quizzes", json=body)
    except ApiProblem as problem:
        if problem.status not in (400, 409, 422):
            raise
        return await _assessments(page, course_id, problem=problem, form_name="quiz")
    return page.redirect(f"/teach/courses/{course_id}/assessments?done=quiz-created")


@router.post("/teach/courses/{course_id:uuid}/quizzes/{quiz_id:uuid}/publish")
async def publish_quiz(
    page: TeachForm,
    course_id: uuid.UUID,
    quiz_id: uuid.UUID,
    published: Annotated[bool, Form()] = True,
) -> Response:
    try:
        await page.api.patch(f"quizzes/{quiz_id}", json={"published": published})
    except ApiProblem as problem:
        if problem.status not in (400, 409, 422):
            raise
        return await _assessments(page, course_id, problem=problem)
    return page.redirect(f"/teach/courses/{course_id}/assessments?done=saved")


def _rubric(form: FormData) -> tuple[list[dict[str, Any]], float]:
    """Criteria from the form's slots (blank ones skipped): each scored from 0 to its
    points in three levels."""
    criteria: list[dict[str, Any]] = []
    total = 0.0
    for n in range(1, RUBRIC_SLOTS + 1):
        title = _text(form, f"criterion_{n}_title")
        points = _number(form, f"criterion_{n}_points")
        if not title:
            continue
        top = points if points and points > 0 else 1.0
        terms = _text(form, f"criterion_{n}_terms")
        criteria.append(
            {
                "id": f"c{n}",
                "title": title,
                "description": _text(form, f"criterion_{n}_description"),
                "key_terms": [t.strip() for t in terms.split(",") if t.strip()],
                "levels": [
                    {"title": "Missing", "points": 0},
                    {"title": "Partial", "points": round(top / 2, 2)},
                    {"title": "Full", "points": top},
                ],
            }
        )
        total += top
    return criteria, total


@router.post("/teach/courses/{course_id:uuid}/assignments")
async def add_assignment(page: TeachForm, course_id: uuid.UUID) -> Response:
    form = await page.request.form()
    criteria, total = _rubric(form)
    if not criteria:
        problem = _local_problem(
            page, "criterion_1_title", page.gettext("Give the rubric at least one criterion.")
        )
        return await _assessments(page, course_id, problem=problem, form_name="assignment")
    body = {
        "title": _text(form, "title"),
        "prompt": _text(form, "prompt"),
        "reference_answer": str(form.get("reference_answer") or ""),
        "min_words": _int(form, "min_words"),
        "max_words": _int(form, "max_words"),
        "due_at": _iso(_text(form, "due_at")),
        "late_policy": "penalty" if _checked(form, "late_penalty") else "refuse",
        "published": _checked(form, "published"),
        "rubric": {"criteria": criteria},
        "points": total,
    }
    try:
        await page.api.post(f"courses/{course_id}/assignments", json=body)
    except ApiProblem as problem:
        if problem.status not in (400, 409, 422):
            raise
        return await _assessments(page, course_id, problem=problem, form_name="assignment")
    return page.redirect(f"/teach/courses/{course_id}/assessments?done=assignment-created")


@router.post("/teach/courses/{course_id:uuid}/assignments/{assignment_id:uuid}/publish")
async def publish_assignment(
    page: TeachForm,
    course_id: uuid.UUID,
    assignment_id: uuid.UUID,
    published: Annotated[bool, Form()] = True,
) -> Response:
    try:
        await page.api.patch(f"assignments/{assignment_id}", json={"published": published})
    except ApiProblem as problem:
        if problem.status not in (400, 409, 422):
            raise
        return await _assessments(page, course_id, problem=problem)
    return page.redirect(f"/teach/courses/{course_id}/assessments?done=saved")


# The review queue ------------------------------------------------------------------------


@router.get("/teach/courses/{course_id:uuid}/review")
async def review_queue(page: TeachPage, course_id: uuid.UUID) -> Response:
    queue = await page.api.get(f"courses/{course_id}/review-queue", params={"size": 100})
    course = await _course(page, course_id)
    return page.render("teach/review.html", course=course, queue=queue, section="review")


async def _submission(
    page: Page,
    course_id: uuid.UUID,
    submission_id: uuid.UUID,
    *,
    problem: ApiProblem | None = None,
    notice: str | None = None,
) -> Response:
    submission = await page.api.get(f"submissions/{submission_id}")
    assignment = await page.api.get(f"assignments/{submission['assignment_id']}/definition")
    if str(assignment["course_id"]) != str(course_id):
        return page.redirect(
            f"/teach/courses/{assignment['course_id']}/submissions/{submission_id}"
        )
    course = await _course(page, course_id)
    proposed = {c["criterion_id"]: c for c in (submission["proposal"] or {}).get("criteria", [])}
    final = {c["criterion_id"]: c for c in submission["final"] or []}
    return page.render(
        "teach/submission.html",
        status=problem.status if problem else 200,
        course=course,
        submission=submission,
        assignment=assignment,
        proposed=proposed,
        final=final,
        problem=problem,
        notice=notice,
        section="review",
    )


@router.get("/teach/courses/{course_id:uuid}/submissions/{submission_id:uuid}")
async def submission_page(
    page: TeachPage, course_id: uuid.UUID, submission_id: uuid.UUID, done: Done = None
) -> Response:
    return await _submission(page, course_id, submission_id, notice=_done(page, done))


@router.post("/teach/courses/{course_id:uuid}/submissions/{submission_id:uuid}/grade")
async def grade_submission(
    page: TeachForm, course_id: uuid.UUID, submission_id: uuid.UUID
) -> Response:
    form = await page.request.form()
    criteria = []
    for key in form:
        if key.startswith("points_"):
            criterion = key.removeprefix("points_")
            points = _number(form, key)
            if points is None:
                continue
            criteria.append(
                {
                    "criterion_id": criterion,
                    "points": points,
                    "comment": _text(form, f"comment_{criterion}"),
                }
            )
    body = {
        "criteria": criteria,
        "comment": _text(form, "comment"),
        "release": _checked(form, "release"),
    }
    try:
        await page.api.put(f"submissions/{submission_id}/grade", json=body)
    except ApiProblem as problem:
        if problem.status not in (400, 409, 422):
            raise
        return await _submission(page, course_id, submission_id, problem=problem)
    return page.redirect(f"/teach/courses/{course_id}/submissions/{submission_id}?done=graded")


async def _settle(
    page: Page, course_id: uuid.UUID, submission_id: uuid.UUID, action: str
) -> Response:
    try:
        await page.api.post(f"submissions/{submission_id}/{action}", json={})
    except ApiProblem as problem:
        if problem.status not in (400, 409, 422):
            raise
        return await _submission(page, course_id, submission_id, problem=problem)
    done = "accepted" if action == "accept" else "released"
    return page.redirect(f"/teach/courses/{course_id}/submissions/{submission_id}?done={done}")


@router.post("/teach/courses/{course_id:uuid}/submissions/{submission_id:uuid}/accept")
async def accept_submission(
    page: TeachForm, course_id: uuid.UUID, submission_id: uuid.UUID
) -> Response:
    return await _settle(page, course_id, submission_id, "accept")


@router.post("/teach/courses/{course_id:uuid}/submissions/{submission_id:uuid}/release")
async def release_submission(
    page: TeachForm, course_id: uuid.UUID, submission_id: uuid.UUID
) -> Response:
    return await _settle(page, course_id, submission_id, "release")


# The gradebook ---------------------------------------------------------------------------


@router.get("/teach/courses/{course_id:uuid}/gradebook")
async def gradebook(page: TeachPage, course_id: uuid.UUID) -> Response:
    book = await page.api.get(f"courses/{course_id}/gradebook", params={"size": 100})
    course = await _course(page, course_id)
    cells = {
        (row["user_id"], cell["assessment_id"]): cell
        for row in book["items"]
        for cell in row["cells"]
    }
    return page.render(
        "teach/gradebook.html", course=course, book=book, cells=cells, section="gradebook"
    )


def _download(page: Page, answer: ApiResponse, fallback_name: str) -> Response:
    """A file the API answered (CSV), passed on as a download; an error as its page."""
    if answer.status >= 400:
        raise api_problem(answer.status, answer.headers, answer.body)
    headers = {
        "Content-Disposition": answer.headers.get(
            "content-disposition", f'attachment; filename="{fallback_name}"'
        ),
        "Cache-Control": "no-store",
    }
    content_type = answer.headers.get("content-type", "text/csv; charset=utf-8")
    return page.finish(Response(answer.body, media_type=content_type, headers=headers))


@router.get("/teach/courses/{course_id:uuid}/gradebook.csv")
async def gradebook_csv(page: TeachPage, course_id: uuid.UUID) -> Response:
    answer = await page.api.call("GET", f"courses/{course_id}/gradebook.csv")
    return _download(page, answer, f"gradebook-{course_id}.csv")


# Announcements ---------------------------------------------------------------------------


async def _announcements(
    page: Page,
    course_id: uuid.UUID,
    *,
    problem: ApiProblem | None = None,
    notice: str | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    course = await _course(page, course_id)
    listed = await page.api.get(f"courses/{course_id}/announcements", params={"size": 50})
    return page.render(
        "teach/announcements.html",
        status=problem.status if problem else 200,
        course=course,
        announcements=listed,
        problem=problem,
        notice=notice,
        values=values or {"title": "", "body": "", "publish_at": ""},
        section="announcements",
    )


@router.get("/teach/courses/{course_id:uuid}/announcements")
async def announcements_page(page: TeachPage, course_id: uuid.UUID, done: Done = None) -> Response:
    # The list is open to the course's learners too: the tutor settings call makes the
    # page refuse anyone who does not teach the course, as the API decides.
    await page.api.get(f"tutor/courses/{course_id}/settings")
    return await _announcements(page, course_id, notice=_done(page, done))


@router.post("/teach/courses/{course_id:uuid}/announcements")
async def post_announcement(
    page: TeachForm,
    course_id: uuid.UUID,
    title: Annotated[str, Form(max_length=300)] = "",
    body: Annotated[str, Form(max_length=30_000)] = "",
    publish_at: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    values = {"title": title, "body": body, "publish_at": publish_at}
    payload: dict[str, Any] = {"title": title, "body": body}
    if publish_at:
        payload["publish_at"] = _iso(publish_at)
    try:
        await page.api.post(f"courses/{course_id}/announcements", json=payload)
    except ApiProblem as problem:
        if problem.status not in (400, 409, 422):
            raise
        return await _announcements(page, course_id, problem=problem, values=values)
    return page.redirect(f"/teach/courses/{course_id}/announcements?done=posted")


# Analytics -------------------------------------------------------------------------------

REPORTS = ("overview", "lessons", "tutor", "at-risk")


def _bars(values: list[tuple[str, float]], *, width: int = 600, bar: int = 22) -> dict[str, Any]:
    """Geometry of a horizontal bar chart (label, value) drawn by the template."""
    top = max((v for _, v in values), default=0) or 1
    label_width = 200
    rows = [
        {
            "label": label if len(label) <= 30 else label[:29] + "…",
            "value": value,
            "y": n * (bar + 8),
            "width": round((width - label_width - 60) * value / top, 1),
        }
        for n, (label, value) in enumerate(values)
    ]
    return {
        "rows": rows,
        "width": width,
        "height": max(len(rows) * (bar + 8), bar),
        "bar": bar,
        "label_width": label_width,
    }


def _columns(values: list[tuple[str, float]], *, height: int = 160) -> dict[str, Any]:
    """Geometry of a column chart over days (label, value)."""
    top = max((v for _, v in values), default=0) or 1
    step = 16
    cols = [
        {
            "label": label,
            "value": value,
            "x": 40 + n * step,
            "height": round((height - 20) * value / top, 1),
        }
        for n, (label, value) in enumerate(values)
    ]
    return {
        "cols": cols,
        "width": 40 + len(cols) * step + 10,
        "height": height,
        "step": step,
        "top": top,
    }


@router.get("/teach/courses/{course_id:uuid}/analytics")
async def analytics(page: TeachPage, course_id: uuid.UUID) -> Response:
    overview = await page.api.get(f"analytics/courses/{course_id}/overview")
    funnel = await page.api.get(f"analytics/courses/{course_id}/lessons")
    tutor = await page.api.get(f"analytics/courses/{course_id}/tutor")
    at_risk = await page.api.get(f"analytics/courses/{course_id}/at-risk", params={"size": 50})
    course = await _course(page, course_id)
    quizzes = await page.api.get(f"courses/{course_id}/quizzes", params={"size": 20})
    assignments = await page.api.get(f"courses/{course_id}/assignments", params={"size": 20})
    quiz_reports = [
        (quiz, await page.api.get(f"analytics/quizzes/{quiz['id']}/items"))
        for quiz in quizzes["items"]
    ]
    rubric_reports = []
    for assignment in assignments["items"]:
        report = await page.api.get(f"analytics/assignments/{assignment['id']}/rubric")
        chart = _bars([(c["title"], round(c["mean"] or 0, 2)) for c in report["items"]])
        rubric_reports.append((assignment, report, chart))
    funnel_chart = _bars([(row["lesson_title"], row["completed"]) for row in funnel["items"]])
    activity_chart = _columns([(day["day"], day["events"]) for day in overview["days"]])
    return page.render(
        "teach/analytics.html",
        course=course,
        overview=overview,
        funnel=funnel,
        tutor=tutor,
        at_risk=at_risk,
        quiz_reports=quiz_reports,
        rubric_reports=rubric_reports,
        funnel_chart=funnel_chart,
        activity_chart=activity_chart,
        section="analytics",
    )


@router.get("/teach/courses/{course_id:uuid}/analytics/{report:str}.csv")
async def analytics_csv(
    page: TeachPage,
    course_id: uuid.UUID,
    report: Literal["overview", "lessons", "tutor", "at-risk", "quiz", "rubric"],
    item: uuid.UUID | None = None,
) -> Response:
    if report == "quiz" and item is not None:
        path = f"analytics/quizzes/{item}/items"
    elif report == "rubric" and item is not None:
        path = f"analytics/assignments/{item}/rubric"
    elif report in REPORTS:
        path = f"analytics/courses/{course_id}/{report}"
    else:
        raise ApiProblem(404, page.gettext("Not found"), "", "not-found")
    answer = await page.api.call("GET", path, params={"format": "csv"})
    return _download(page, answer, f"{report}-{course_id}.csv")
