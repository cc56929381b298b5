"""Markdown (lesson bodies, announcements, feedback) to safe HTML.

CommonMark through markdown-it-py with raw HTML turned off: a `<script>` or an
`<img onerror=...>` in the source is shown as text. Link targets are checked by
markdown-it (no `javascript:`, `vbscript:`, `file:` or non-image `data:` URLs). Each
heading gets an `id` from its text (the same slug `heading_id` gives), so the tutor's
citations can link to the section they came from.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from markdown_it import MarkdownIt
from markupsafe import Markup

_NON_WORD = re.compile(r"[^\w\s-]", re.UNICODE)
_SPACES = re.compile(r"[\s_-]+")


def heading_id(text: str) -> str:
    """`Vòng lặp for` -> `vong-lap-for`: lower case, accents dropped, words joined."""
    decomposed = unicodedata.normalize("NFKD", text.replace("đ", "d").replace("Đ", "D"))
    ascii_text = "".join(c for c in decomposed if not unicodedata.combining(c))
    slug = _SPACES.sub("-", _NON_WORD.sub("", ascii_text).strip().lower())
    return f"s-{slug}" if slug else "s"


def _heading_ids(state: Any) -> None:
    tokens = state.tokens
    seen: dict[str, int] = {}
    for index, token in enumerate(tokens):
        if token.type == "heading_open" and index + 1 < len(tokens):
            slug = heading_id(tokens[index + 1].content)
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            token.attrSet("id", slug if count == 0 else f"{slug}-{count}")


_parser = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
_parser.enable("table")
_parser.enable("strikethrough")
_parser.core.ruler.push("heading_ids", _heading_ids)


def render_markdown(source: str | None) -> Markup:
    return Markup(_parser.render(source or ""))  # noqa: S704 (raw HTML is off: escaped)
