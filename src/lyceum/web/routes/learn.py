"""The learner: my learning, the lesson reader with the tutor beside it, quizzes, essay
assignments, certificates (and the public page that verifies one).

Every page shows what the API answers its user: a lesson the caller may not read, an
attempt, a submission or a tutor conversation of someone else is refused by the API,
and that refusal is the page the browser gets.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlsplit

import orjson
from fastapi import APIRouter, File, Form, UploadFile
from starlette.datastructures import UploadFile as StarletteUpload
from starlette.responses import RedirectResponse, Response, StreamingResponse

from lyceum.web.api import ApiProblem
from lyceum.web.context import Page, PageDep, PageNotFound, SignedInForm, SignedInPage
from lyceum.web.markdown import heading_id

router = APIRouter(include_in_schema=False)

HEADING_SEPARATOR = " \u203a "  # how the content index joins a passage's heading path
ESSAY_UPLOAD_MAX_BYTES = 20 * 1024 * 1024
INLINE_TYPES = ("application/pdf", "image/png", "image/jpeg", "image/webp")


# Helpers ---------------------------------------------------------------------------------


async def _optional(page: Page, path: str, *, params: dict[str, Any] | None = None) -> Any:
    """The API's answer, or None when it refuses (403/404/409): a part of a page the
    caller may not see is left out rather than failing the page."""
    try:
        return await page.api.get(path, params=params)
    except ApiProblem as problem:
        if problem.status in (403, 404, 409):
            return None
        raise


def citation_href(citation: dict[str, Any], course_id: str) -> str:
    """Where a tutor citation leads: the lesson's section (the anchor the lesson reader
    gives that heading), or the file at its page."""
    if citation.get("kind") == "lesson":
        heading = str(citation.get("heading") or "")
        section = heading.split(HEADING_SEPARATOR)[-1].strip()
        anchor = f"#{heading_id(section)}" if section else ""
        return f"/learn/lessons/{citation['id']}{anchor}"
    page_number = citation.get("page")
    anchor = f"#page={int(page_number)}" if page_number else ""
    return f"/learn/courses/{course_id}/files/{citation['id']}{anchor}"


def _with_hrefs(message: dict[str, Any], course_id: str) -> dict[str, Any]:
    for citation in message.get("citations") or []:
        citation["href"] = citation_href(citation, course_id)
    return message


def _lesson_order(course: dict[str, Any]) -> list[dict[str, Any]]:
    return [lesson for module in course["modules"] for lesson in module["lessons"]]


def _completed(progress: dict[str, Any] | None) -> set[str]:
    if not progress:
        return set()
    return {str(item["id"]) for item in progress["lessons"] if item["completed"]}


def _tutor_problem(page: Page, problem: ApiProblem) -> str:
    if problem.status == 429:
        return page.gettext("You have asked the tutor a lot recently: try again in a while.")
    if problem.status == 403 and "verif" in (problem.slug + problem.detail).lower():
        return page.gettext("Verify your email address to use the tutor.")
    if problem.status == 409:
        return page.gettext("The tutor is switched off for this course.")
    return problem.detail or problem.title


# My learning -----------------------------------------------------------------------------


@router.get("/learn")
async def my_learning(page: SignedInPage) -> Response:
    enrollments = (await page.api.get("me/enrollments", params={"size": 50}))["items"]
    courses: list[dict[str, Any]] = []
    # One call after another: a page holds at most one pooled connection at a time.
    for enrollment in enrollments:
        if enrollment["status"] == "cancelled":
            continue
        progress = None
        if len(courses) < 12:
            progress = await _optional(page, f"courses/{enrollment['course_id']}/progress")
        courses.append({"enrollment": enrollment, "progress": progress})
    resume = next(
        (
            c
            for c in courses
            if c["progress"]
            and c["progress"]["status"] != "completed"
            and c["progress"]["resume_lesson_id"]
        ),
        None,
    )
    resume_title = None
    if resume is not None:
        progress = resume["progress"]
        resume_title = next(
            (x["title"] for x in progress["lessons"] if x["id"] == progress["resume_lesson_id"]),
            None,
        )
    try:
        recommended = (await page.api.get("me/recommendations", params={"limit": 4}))["items"]
    except ApiProblem:
        recommended = []
    return page.render(
        "learn/home.html",
        courses=courses,
        resume=resume,
        resume_title=resume_title,
        recommended=recommended,
    )


# A course's home for its learner ---------------------------------------------------------


@router.get("/learn/courses/{course_id:uuid}")
async def course_home(page: SignedInPage, course_id: uuid.UUID) -> Response:
    course = await page.api.get(f"courses/{course_id}")
    progress = await page.api.get(f"courses/{course_id}/progress")
    quizzes = (await page.api.get(f"courses/{course_id}/quizzes", params={"size": 100}))["items"]
    assignments = (await page.api.get(f"courses/{course_id}/assignments", params={"size": 100}))[
        "items"
    ]
    files = await _optional(page, f"courses/{course_id}/files", params={"size": 100})
    certificate = None
    if progress["status"] == "completed":
        mine = (await page.api.get("me/certificates", params={"size": 100}))["items"]
        certificate = next((c for c in mine if c["course_id"] == str(course_id)), None)
    return page.render(
        "learn/course.html",
        course=course,
        progress=progress,
        done=_completed(progress),
        quizzes=quizzes,
        assignments=assignments,
        files=files["items"] if files else [],
        certificate=certificate,
    )


@router.get("/learn/courses/{course_id:uuid}/files/{file_id:uuid}")
async def course_file(page: SignedInPage, course_id: uuid.UUID, file_id: uuid.UUID) -> Response:
    """A course file's bytes, shown in the browser when it can (a PDF opens at the page
    its link names with `#page=N`)."""
    link = await page.api.get(f"courses/{course_id}/files/{file_id}/download")
    url = urlsplit(str(link["url"]))
    if not url.path.startswith("/api/v1/files/"):  # object storage: its own signed link
        return page.finish(RedirectResponse(str(link["url"]), status_code=303))
    answer = await page.api.call("GET", url.path, params=dict(parse_qsl(url.query)))
    if answer.status >= 400:
        raise PageNotFound()
    media_type = answer.headers.get("content-type", "application/octet-stream")
    disposition = answer.headers.get("content-disposition", "attachment")
    if media_type.split(";")[0] in INLINE_TYPES:
        disposition = disposition.replace("attachment", "inline", 1)
    return page.finish(
        Response(
            answer.body,
            media_type=media_type,
            headers={
                "Content-Disposition": disposition,
                "Cache-Control": "private, no-store",
            },
        )
    )


# The lesson reader -----------------------------------------------------------------------


@router.get("/learn/lessons/{lesson_id:uuid}")
async def lesson_page(
    page: PageDep, lesson_id: uuid.UUID, conversation: uuid.UUID | None = None
) -> Response:
    lesson = await page.api.get(f"lessons/{lesson_id}")
    course_id = lesson["course_id"]
    course = await page.api.get(f"courses/{course_id}")
    progress = None
    if page.user is not None:
        progress = await _optional(page, f"courses/{course_id}/progress")
    order = _lesson_order(course)
    ids = [str(item["id"]) for item in order]
    position = ids.index(str(lesson_id)) if str(lesson_id) in ids else -1
    next_lesson = order[position + 1] if 0 <= position < len(order) - 1 else None
    previous_lesson = order[position - 1] if position > 0 else None
    files: list[dict[str, Any]] = []
    attached = None
    conversations: list[dict[str, Any]] = []
    current = None
    tutor_message = None
    if progress is not None:
        listing = await _optional(page, f"courses/{course_id}/files", params={"size": 100})
        files = listing["items"] if listing else []
        if lesson.get("file_id"):
            attached = next((f for f in files if f["id"] == lesson["file_id"]), None)
        try:
            conversations = (
                await page.api.get(
                    "tutor/conversations", params={"course_id": course_id, "size": 20}
                )
            )["items"]
        except ApiProblem as problem:
            if problem.status not in (403, 404, 409, 429):
                raise
            tutor_message = _tutor_problem(page, problem)
        if conversation is not None and tutor_message is None:
            # Someone else's conversation (or none): the API refuses; the panel starts afresh.
            current = await _optional(page, f"tutor/conversations/{conversation}")
            if current is not None:
                _with_hrefs_all(current)
    return page.render(
        "learn/lesson.html",
        lesson=lesson,
        course=course,
        progress=progress,
        done=_completed(progress),
        next_lesson=next_lesson,
        previous_lesson=previous_lesson,
        files=files,
        attached=attached,
        conversations=conversations,
        current=current,
        tutor_message=tutor_message,
    )


@router.post("/learn/lessons/{lesson_id:uuid}/complete")
async def complete_lesson(page: SignedInForm, lesson_id: uuid.UUID) -> Response:
    progress = await page.api.post(f"lessons/{lesson_id}/complete")
    if not page.htmx:
        return page.redirect(f"/learn/lessons/{lesson_id}")
    lesson = await page.api.get(f"lessons/{lesson_id}")
    course = await page.api.get(f"courses/{lesson['course_id']}")
    order = [str(item["id"]) for item in _lesson_order(course)]
    position = order.index(str(lesson_id)) if str(lesson_id) in order else -1
    next_id = order[position + 1] if 0 <= position < len(order) - 1 else None
    return page.render(
        "learn/_complete.html",
        lesson=lesson,
        progress=progress,
        done=_completed(progress),
        next_lesson_id=next_id,
        just_completed=True,
    )


# The tutor -------------------------------------------------------------------------------


@router.post("/learn/tutor/conversations")
async def start_conversation(
    page: SignedInForm,
    course_id: Annotated[uuid.UUID, Form()],
    lesson_id: Annotated[uuid.UUID | None, Form()] = None,
) -> Response:
    """A new conversation about the course (and lesson): JSON `{id}` for the page's
    script, else back to the lesson with the conversation open."""
    body: dict[str, Any] = {"course_id": str(course_id)}
    if lesson_id is not None:
        body["lesson_id"] = str(lesson_id)
    wants_json = "application/json" in page.request.headers.get("accept", "")
    try:
        created = await page.api.post("tutor/conversations", json=body)
    except ApiProblem as problem:
        if not wants_json:
            raise
        return page.finish(
            Response(
                orjson.dumps({"error": _tutor_problem(page, problem)}),
                status_code=problem.status,
                media_type="application/json",
            )
        )
    if wants_json:
        return page.finish(
            Response(orjson.dumps({"id": created["id"]}), media_type="application/json")
        )
    target = f"/learn/lessons/{lesson_id}" if lesson_id else f"/learn/courses/{course_id}"
    return page.redirect(f"{target}?conversation={created['id']}")


def _sse(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


async def _relay(chunks: AsyncIterator[bytes], course_id: str) -> AsyncIterator[bytes]:
    """The API's events, passed on as they come; each citation gains the `href` of the
    lesson section or file page it names."""
    buffer = b""
    async for chunk in chunks:
        buffer += chunk.replace(b"\r\n", b"\n")
        while b"\n\n" in buffer:
            raw, buffer = buffer.split(b"\n\n", 1)
            name, data = "message", b""
            for line in raw.split(b"\n"):
                if line.startswith(b"event:"):
                    name = line[6:].strip().decode()
                elif line.startswith(b"data:"):
                    data += line[5:].strip()
            if name == "citation":
                citation = orjson.loads(data)
                citation["href"] = citation_href(citation, course_id)
                yield _sse(name, citation)
            else:
                yield raw + b"\n\n"
    if buffer.strip():
        yield buffer + b"\n\n"


@router.post("/learn/tutor/conversations/{conversation_id:uuid}/messages")
async def ask_tutor(
    page: SignedInForm,
    conversation_id: uuid.UUID,
    content: Annotated[str, Form(max_length=100_000)] = "",
) -> Response:
    """Ask: streamed (Server-Sent Events) to the page's script, which asks with
    `Accept: text/event-stream`; a plain form post waits for the whole answer."""
    conversation = await page.api.get(f"tutor/conversations/{conversation_id}")
    course_id = str(conversation["course_id"])
    back = (
        f"/learn/lessons/{conversation['lesson_id']}"
        if conversation.get("lesson_id")
        else f"/learn/tutor/conversations/{conversation_id}"
    )
    path = f"tutor/conversations/{conversation_id}/messages"
    if "text/event-stream" not in page.request.headers.get("accept", ""):
        try:
            await page.api.post(path, json={"content": content})
        except ApiProblem as problem:
            if problem.status not in (403, 409, 422, 429, 502):
                raise
        return page.redirect(f"{back}?conversation={conversation_id}")
    context = page.api.stream("POST", path, json={"content": content})
    try:
        _response, chunks = await context.__aenter__()
    except ApiProblem as problem:
        detail = problem.for_field("content") or _tutor_problem(page, problem)
        return page.finish(
            Response(
                _sse("problem", {"status": problem.status, "detail": detail}),
                status_code=problem.status,
                media_type="text/event-stream",
                headers=problem.wait_headers,
            )
        )

    async def relay() -> AsyncIterator[bytes]:
        try:
            async for event in _relay(chunks, course_id):
                yield event
        finally:
            await context.__aexit__(None, None, None)

    return page.finish(
        StreamingResponse(
            relay(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    )


@router.get("/learn/tutor/conversations/{conversation_id:uuid}")
async def conversation_page(page: SignedInPage, conversation_id: uuid.UUID) -> Response:
    conversation = await page.api.get(f"tutor/conversations/{conversation_id}")
    _with_hrefs_all(conversation)
    template = "learn/_conversation.html" if page.htmx else "learn/conversation.html"
    course = await page.api.get(f"courses/{conversation['course_id']}")
    return page.render(template, current=conversation, course=course)


def _with_hrefs_all(conversation: dict[str, Any]) -> None:
    for message in conversation["messages"]:
        _with_hrefs(message, str(conversation["course_id"]))


# Quizzes ---------------------------------------------------------------------------------


@router.get("/learn/quizzes/{quiz_id:uuid}")
async def quiz_page(page: SignedInPage, quiz_id: uuid.UUID) -> Response:
    quiz = await page.api.get(f"quizzes/{quiz_id}")
    attempts = await page.api.get(f"quizzes/{quiz_id}/attempts/me", params={"size": 50})
    course = await page.api.get(f"courses/{quiz['course_id']}")
    return page.render(
        "learn/quiz.html", quiz=quiz, attempts=attempts["items"], course=course, problem=None
    )


@router.post("/learn/quizzes/{quiz_id:uuid}/attempts")
async def start_attempt(page: SignedInForm, quiz_id: uuid.UUID) -> Response:
    try:
        attempt = await page.api.post(f"quizzes/{quiz_id}/attempts")
    except ApiProblem as problem:
        if problem.status not in (403, 409, 422):
            raise
        quiz = await page.api.get(f"quizzes/{quiz_id}")
        attempts = await page.api.get(f"quizzes/{quiz_id}/attempts/me", params={"size": 50})
        course = await page.api.get(f"courses/{quiz['course_id']}")
        return page.render(
            "learn/quiz.html",
            status=problem.status,
            quiz=quiz,
            attempts=attempts["items"],
            course=course,
            problem=problem,
        )
    return page.redirect(f"/learn/attempts/{attempt['id']}")


@router.get("/learn/attempts/{attempt_id:uuid}")
async def attempt_page(page: SignedInPage, attempt_id: uuid.UUID) -> Response:
    sheet = await page.api.get(f"attempts/{attempt_id}")
    if sheet["status"] != "in_progress":
        return page.redirect(f"/learn/attempts/{attempt_id}/result")
    quiz = await page.api.get(f"quizzes/{sheet['quiz_id']}")
    return page.render("learn/attempt.html", sheet=sheet, quiz=quiz, problem=None)


async def _answers(page: Page, sheet: dict[str, Any]) -> list[dict[str, Any]]:
    """The sheet's answers from the submitted form (`q-<question id>` fields)."""
    form = await page.request.form()
    answers: list[dict[str, Any]] = []
    for question in sheet["questions"]:
        name = f"q-{question['question_id']}"
        kind = question["kind"]
        answer: dict[str, Any] = {"question_id": question["question_id"]}
        if kind == "multiple_choice":
            chosen = [v for v in form.getlist(name) if isinstance(v, str)]
            if not chosen:
                continue
            answer["choices"] = chosen
        else:
            value = form.get(name)
            if not isinstance(value, str) or value == "":
                continue
            if kind == "single_choice":
                answer["choice"] = value
            elif kind == "true_false":
                answer["value"] = value == "true"
            else:
                answer["text"] = value
        answers.append(answer)
    return answers


@router.post("/learn/attempts/{attempt_id:uuid}/submit")
async def submit_attempt(page: SignedInForm, attempt_id: uuid.UUID) -> Response:
    sheet = await page.api.get(f"attempts/{attempt_id}")
    if sheet["status"] == "in_progress":
        answers = await _answers(page, sheet)
        try:
            await page.api.post(f"attempts/{attempt_id}/submit", json={"answers": answers})
        except ApiProblem as problem:
            if problem.status == 409:  # time was up: the server submitted it already
                return page.redirect(f"/learn/attempts/{attempt_id}/result")
            if problem.status != 422:
                raise
            quiz = await page.api.get(f"quizzes/{sheet['quiz_id']}")
            return page.render(
                "learn/attempt.html", status=422, sheet=sheet, quiz=quiz, problem=problem
            )
    return page.redirect(f"/learn/attempts/{attempt_id}/result")


@router.get("/learn/attempts/{attempt_id:uuid}/result")
async def attempt_result(page: SignedInPage, attempt_id: uuid.UUID) -> Response:
    result = await page.api.get(f"attempts/{attempt_id}/result")
    quiz = await page.api.get(f"quizzes/{result['quiz_id']}")
    return page.render("learn/result.html", result=result, quiz=quiz)


# Essay assignments -----------------------------------------------------------------------


async def _assignment_page(
    page: Page, assignment_id: uuid.UUID, *, problem: ApiProblem | None, text: str, status: int
) -> Response:
    assignment = await page.api.get(f"assignments/{assignment_id}")
    submission = await _optional(page, f"assignments/{assignment_id}/submissions/me")
    course = await page.api.get(f"courses/{assignment['course_id']}")
    return page.render(
        "learn/assignment.html",
        status=status,
        assignment=assignment,
        submission=submission,
        course=course,
        problem=problem,
        text=text,
    )


@router.get("/learn/assignments/{assignment_id:uuid}")
async def assignment_page(page: SignedInPage, assignment_id: uuid.UUID) -> Response:
    return await _assignment_page(page, assignment_id, problem=None, text="", status=200)


@router.post("/learn/assignments/{assignment_id:uuid}/submission")
async def submit_assignment(
    page: SignedInForm,
    assignment_id: uuid.UUID,
    text: Annotated[str, Form(max_length=200_000)] = "",
    file: Annotated[UploadFile | str | None, File()] = None,
) -> Response:
    try:
        if isinstance(file, StarletteUpload) and file.filename:
            data = await file.read(ESSAY_UPLOAD_MAX_BYTES + 1)
            await page.api.post(
                f"assignments/{assignment_id}/submissions/file",
                files={
                    "file": (
                        file.filename,
                        data,
                        file.content_type or "application/octet-stream",
                    )
                },
            )
        else:
            await page.api.post(f"assignments/{assignment_id}/submissions", json={"text": text})
    except ApiProblem as problem:
        if problem.status not in (409, 413, 422, 429):
            raise
        return await _assignment_page(
            page, assignment_id, problem=problem, text=text, status=problem.status
        )
    return page.redirect(f"/learn/assignments/{assignment_id}")


# Certificates ----------------------------------------------------------------------------


@router.get("/learn/certificates")
async def certificates(page: SignedInPage) -> Response:
    mine = await page.api.get("me/certificates", params={"size": 100})
    return page.render("learn/certificates.html", certificates=mine["items"])


@router.get("/learn/certificates/{code}/pdf")
async def certificate_pdf(page: SignedInPage, code: str) -> Response:
    answer = await page.api.call("GET", f"me/certificates/{code}/pdf")
    if answer.status == 401:
        raise ApiProblem(401, "Unauthorized", "", "unauthorized")
    if answer.status >= 400:
        raise PageNotFound()
    return page.finish(
        Response(
            answer.body,
            media_type=answer.headers.get("content-type", "application/pdf"),
            headers={
                "Content-Disposition": answer.headers.get(
                    "content-disposition", f'attachment; filename="{code}.pdf"'
                ),
                "Cache-Control": "private, no-store",
            },
        )
    )


@router.get("/certificates/{code}")
async def verify_certificate(page: PageDep, code: str) -> Response:
    try:
        certificate = await page.api.get(f"certificates/{code}")
    except ApiProblem as problem:
        if problem.status not in (404, 422):
            raise
        raise PageNotFound() from problem
    return page.render("learn/verify.html", certificate=certificate)
