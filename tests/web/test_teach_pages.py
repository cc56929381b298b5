"""The instructor's pages without a browser (in process): each renders for the course's
instructor, in English and Vietnamese, with user text escaped; the forms' refusals are
shown on the page."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy.ext.asyncio import AsyncConnection

from lyceum.models.identity import Role
from tests.courses.test_courses import new_course
from tests.identity.helpers import Account, account


async def _signed_in(client: httpx.AsyncClient, who: Account) -> str:
    await client.get("/login")
    token = str(client.cookies["lyceum_csrf"])
    answer = await client.post(
        "/login", data={"email": who.email, "password": who.password, "csrf_token": token}
    )
    assert answer.status_code == 303, answer.text
    return token


async def test_every_teaching_page_renders(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    teacher = await account(client, connection, role=Role.instructor, prefix="teach")
    course = await new_course(client, teacher, title=f"<script>x</script> {uuid.uuid4().hex[:6]}")
    token = await _signed_in(client, teacher)
    base = f"/teach/courses/{course['id']}"
    for path in (
        "/teach",
        base,
        f"{base}/files",
        f"{base}/tutor",
        f"{base}/assessments",
        f"{base}/review",
        f"{base}/gradebook",
        f"{base}/announcements",
        f"{base}/analytics",
    ):
        for language in ("en", "vi"):
            page = await client.get(path, headers={"Accept-Language": language})
            assert page.status_code == 200, (path, page.text[:2000])
            assert "<script>x</script>" not in page.text
            assert " style=" not in page.text
    csv = await client.get(f"{base}/gradebook.csv")
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert "attachment" in csv.headers["content-disposition"]

    refused = await client.post(f"{base}/publish", data={"csrf_token": token})
    assert refused.status_code in (409, 422), refused.text[:500]
    assert 'role="alert"' in refused.text

    preview = await client.post(
        "/teach/preview", data={"csrf_token": token, "content": "**bold** <i>raw</i>"}
    )
    assert "<strong>bold</strong>" in preview.text
    assert "<i>raw</i>" not in preview.text
