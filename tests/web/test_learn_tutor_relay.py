"""The tutor's citations as links: a lesson section's anchor is the one the lesson
reader gives its heading, a file's page opens the file at that page; the relay of the
API's Server-Sent Events adds those links without holding the stream back."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import orjson

from lyceum.web.markdown import render_markdown
from lyceum.web.routes.learn import _relay, citation_href

COURSE = str(uuid.uuid4())
LESSON = str(uuid.uuid4())
FILE = str(uuid.uuid4())


def test_a_lesson_citation_links_to_the_anchor_of_its_section() -> None:
    citation = {"kind": "lesson", "id": LESSON, "heading": "Vòng lặp \u203a Vòng lặp for"}
    href = citation_href(citation, COURSE)
    assert href == f"/learn/lessons/{LESSON}#s-vong-lap-for"
    html = render_markdown("# Vòng lặp\n\n## Vòng lặp for\n\ntext")
    assert 'id="s-vong-lap-for"' in str(html)


def test_a_citation_without_a_heading_links_to_the_lesson() -> None:
    assert citation_href({"kind": "lesson", "id": LESSON, "heading": None}, COURSE) == (
        f"/learn/lessons/{LESSON}"
    )


def test_a_file_citation_opens_the_file_at_its_page() -> None:
    href = citation_href({"kind": "file", "id": FILE, "page": 7}, COURSE)
    assert href == f"/learn/courses/{COURSE}/files/{FILE}#page=7"


async def test_the_relay_adds_links_to_citations_and_passes_the_rest_on() -> None:
    citation = {
        "number": 1,
        "kind": "lesson",
        "id": LESSON,
        "title": "Loops",
        "page": None,
        "heading": "Loops with for",
        "quote": "A for loop",
    }
    events = (
        b'event: delta\ndata: {"text": "A for "}\n\n'
        b'event: delta\ndata: {"text": "loop [1]"}\n\nevent: cita'
        + b"tion\ndata: "
        + orjson.dumps(citation)
        + b"\n\n"
        + b'event: done\ndata: {"status": "complete"}\n\n'
    )

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(events), 17):  # cut anywhere, as a network would
            yield events[start : start + 17]

    relayed = b"".join([part async for part in _relay(chunks(), COURSE)])
    blocks = [block for block in relayed.split(b"\n\n") if block]
    assert [block.split(b"\n")[0] for block in blocks] == [
        b"event: delta",
        b"event: delta",
        b"event: citation",
        b"event: done",
    ]
    data = orjson.loads(blocks[2].split(b"data: ", 1)[1])
    assert data["href"] == f"/learn/lessons/{LESSON}#s-loops-with-for"
    assert data["quote"] == "A for loop"
