"""The one API field that is HTML, the catalog's search snippet: course text escaped,
hits in <mark>. Every other API string is raw text, returned as it was stored."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncConnection

from lyceum.kit.markup import HIT_START, HIT_STOP, highlighted
from lyceum.models.identity import Role
from tests.courses.test_courses import published
from tests.identity.helpers import account
from tests.support.words import search_marker


def test_text_around_hits_is_escaped_and_stray_delimiters_dropped() -> None:
    raw = f"<img src=x onerror=alert(1)> & {HIT_START}Python{HIT_STOP} {HIT_STOP}basics{HIT_START}"
    assert highlighted(raw) == "&lt;img src=x onerror=alert(1)&gt; &amp; <mark>Python</mark> basics"
    assert highlighted(f"{HIT_START}<b>{HIT_STOP}") == "<mark>&lt;b&gt;</mark>"


async def test_catalog_snippets_escape_markup_in_course_text(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    teacher = await account(client, connection, role=Role.instructor, prefix="teacher")
    marker = search_marker()
    title = f'Python <script>alert("t")</script> {marker}'
    description = f"Learn python {marker} <img src=x onerror=alert(1)> & more"
    course, _ = await published(client, teacher, title=title, description=description)
    assert course["title"] == title  # raw text, as stored

    found = await client.get("/api/v1/courses", params={"q": f"python {marker}"})
    (item,) = [item for item in found.json()["items"] if item["id"] == course["id"]]
    assert item["title"] == title
    snippet = item["snippet"]
    assert "<mark>" in snippet and "</mark>" in snippet
    assert "<img" not in snippet and "<script" not in snippet
    assert "&lt;img src=x onerror=alert(1)&gt; &amp; more" in snippet
    assert snippet.replace("<mark>", "").replace("</mark>", "").count("<") == 0
