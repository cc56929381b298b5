"""Committed (not rolled-back) courses, accounts and files, for tests in which a job
worker must see what the API wrote."""

from __future__ import annotations

import functools
import io
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from fpdf import FPDF
from pypdf import PdfWriter
from pypdf.generic import NameObject, NumberObject
from sqlalchemy import update

from lyceum.kit.runtime import Runtime
from lyceum.models.identity import Role, User
from tests.identity.helpers import login, register, unique_email
from tests.support.jobs import run_jobs


@dataclass
class Person:
    id: uuid.UUID
    headers: dict[str, str]


async def person(http: httpx.AsyncClient, runtime: Runtime, role: Role = Role.student) -> Person:
    email = unique_email(role.value)
    user = await register(http, email)
    user_id = uuid.UUID(str(user["id"]))
    async with runtime.database.engine.begin() as conn:
        await conn.execute(
            update(User)
            .where(User.id == user_id)
            .values(role=role, email_verified_at=User.created_at)
        )
    tokens = await login(http, email)
    return Person(user_id, {"Authorization": f"Bearer {tokens['access_token']}"})


async def course_with_lesson(
    http: httpx.AsyncClient,
    teacher: Person,
    *,
    lesson_title: str = "Welcome",
    content: str = "Hello.",
    language: str = "en",
    publish: bool = True,
) -> tuple[dict[str, Any], str]:
    course = await http.post(
        "/api/v1/courses",
        json={"title": f"Course {uuid.uuid4().hex[:8]}", "language": language},
        headers=teacher.headers,
    )
    assert course.status_code == 201, course.text
    course_id = course.json()["id"]
    module = await http.post(
        f"/api/v1/courses/{course_id}/modules", json={"title": "One"}, headers=teacher.headers
    )
    lesson = await http.post(
        f"/api/v1/courses/{course_id}/modules/{module.json()['id']}/lessons",
        json={"title": lesson_title, "content": content},
        headers=teacher.headers,
    )
    assert lesson.status_code == 201, lesson.text
    if publish:
        published = await http.post(f"/api/v1/courses/{course_id}/publish", headers=teacher.headers)
        assert published.status_code == 200, published.text
    return course.json(), lesson.json()["id"]


async def enroll(http: httpx.AsyncClient, course_id: str, learner: Person) -> None:
    response = await http.post(f"/api/v1/courses/{course_id}/enrollments", headers=learner.headers)
    assert response.status_code == 201, response.text


def pdf_pages(pages: list[str]) -> bytes:
    document = FPDF()
    document.set_font("helvetica", size=12)
    for text in pages:
        document.add_page()
        document.multi_cell(0, 8, text)
    return bytes(document.output())


@functools.cache
def blank_pdf(pages: int, declared: int | None = None) -> bytes:
    """A PDF of `pages` empty pages (35,000 make about 4.5 MB), which says it has
    `declared` pages (default: the truth) in its page tree's /Count."""
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(612, 792)
    if declared is not None:
        tree = writer.root_object["/Pages"].get_object()
        tree[NameObject("/Count")] = NumberObject(declared)
    output = io.BytesIO()
    writer.write(output)
    return output.getvalue()


async def upload(
    http: httpx.AsyncClient,
    course_id: str,
    who: Person,
    name: str,
    data: bytes,
    content_type: str = "application/octet-stream",
) -> httpx.Response:
    url = f"/api/v1/courses/{course_id}/files"
    if "\x00" in name:
        # httpx would percent-encode the NUL; a hostile client sends it raw.
        body = (
            b'--b\r\nContent-Disposition: form-data; name="file"; filename="'
            + name.encode()
            + b'"\r\nContent-Type: '
            + content_type.encode()
            + b"\r\n\r\n"
            + data
            + b"\r\n--b--\r\n"
        )
        headers = {**who.headers, "Content-Type": "multipart/form-data; boundary=b"}
        return await http.post(url, content=body, headers=headers)
    return await http.post(
        url, files={"file": (name, io.BytesIO(data), content_type)}, headers=who.headers
    )


async def drain_jobs() -> None:
    """Run every queued job to completion, in this process."""
    await run_jobs()
