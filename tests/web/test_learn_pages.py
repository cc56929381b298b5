"""Learner pages without a browser (the in-process client, signed in through the web
form): the tutor panel tells an unverified learner to verify their address, and
what an instructor or learner wrote is shown as text."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncConnection

from lyceum.models.identity import Role
from tests.content.helpers import pdf_pages
from tests.identity.helpers import Account, account

API = "/api/v1"


async def _course(client: httpx.AsyncClient, teacher: Account) -> dict[str, Any]:
    headers = teacher.headers
    course = (
        await client.post(
            f"{API}/courses",
            json={"title": "<b>Loops</b> & <i>more</i>", "description": "About loops."},
            headers=headers,
        )
    ).json()
    module = (
        await client.post(
            f"{API}/courses/{course['id']}/modules", json={"title": "One"}, headers=headers
        )
    ).json()
    lesson = await client.post(
        f"{API}/courses/{course['id']}/modules/{module['id']}/lessons",
        json={"title": "<script>x()</script> loops", "content": "## For loops\n\nText."},
        headers=headers,
    )
    assert lesson.status_code == 201, lesson.text
    published = await client.post(f"{API}/courses/{course['id']}/publish", headers=headers)
    assert published.status_code == 200, published.text
    return {"id": course["id"], "lesson_id": lesson.json()["id"]}


async def _sign_in(client: httpx.AsyncClient, who: Account) -> str:
    await client.get("/login")
    token = str(client.cookies["lyceum_csrf"])
    answer = await client.post(
        "/login", data={"email": who.email, "password": who.password, "csrf_token": token}
    )
    assert answer.status_code == 303, answer.text
    return token


async def test_an_unverified_learner_is_told_to_verify_before_the_tutor(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    teacher = await account(client, connection, role=Role.instructor, prefix="teach")
    course = await _course(client, teacher)
    learner = await account(client, connection, verified=False, prefix="unverified")
    enrolled = await client.post(
        f"{API}/courses/{course['id']}/enrollments", headers=learner.headers
    )
    assert enrolled.status_code == 201, enrolled.text
    token = await _sign_in(client, learner)

    page = await client.get(f"/learn/lessons/{course['lesson_id']}")
    assert page.status_code == 200, page.text
    assert "Verify your email address to use the tutor." in page.text
    assert 'id="s-for-loops"' in page.text
    assert "<script>x()</script>" not in page.text
    assert "&lt;script&gt;x()&lt;/script&gt; loops" in page.text

    started = await client.post(
        "/learn/tutor/conversations",
        data={"course_id": course["id"], "lesson_id": course["lesson_id"]},
        headers={"X-CSRF-Token": token, "Accept": "application/json"},
    )
    assert started.status_code == 403
    assert started.json() == {"error": "Verify your email address to use the tutor."}

    home = await client.get(f"/learn/courses/{course['id']}")
    assert home.status_code == 200
    assert "<b>Loops</b>" not in home.text
    assert "&lt;b&gt;Loops&lt;/b&gt; &amp; &lt;i&gt;more&lt;/i&gt;" in home.text


async def test_a_course_file_opens_in_the_browser_where_a_page_link_can_point(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    teacher = await account(client, connection, role=Role.instructor, prefix="teach")
    course = await _course(client, teacher)
    uploaded = await client.post(
        f"{API}/courses/{course['id']}/files",
        files={
            "file": ("notes.pdf", pdf_pages(["First page.", "Second page."]), "application/pdf")
        },
        headers=teacher.headers,
    )
    assert uploaded.status_code in (200, 201, 202), uploaded.text
    file_id = uploaded.json()["id"]
    await _sign_in(client, teacher)
    opened = await client.get(f"/learn/courses/{course['id']}/files/{file_id}")
    assert opened.status_code == 200, opened.text
    assert opened.headers["content-type"] == "application/pdf"
    # Shown, not saved: `#page=N` on the link then opens the browser's viewer at that page.
    assert opened.headers["content-disposition"].startswith("inline")
    assert opened.headers["x-content-type-options"] == "nosniff"  # set for every answer
    assert opened.content.startswith(b"%PDF")
