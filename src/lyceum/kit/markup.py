"""HTML that Lyceum itself puts into API strings: raw text escaped, then its own tags.

Every other string of the API (names, titles, file names, messages) is raw text that
clients must escape; the few fields documented as HTML are built here.
"""

from __future__ import annotations

import re
from html import escape

# Delimiters handed to PostgreSQL's ts_headline around each hit instead of the tags
# themselves: the text around them is escaped first, then they become tags. Control
# characters that visible text does not use; any that the text itself holds are dropped.
HIT_START = "\x02"
HIT_STOP = "\x03"
_HIT = re.compile(f"{HIT_START}([^{HIT_START}{HIT_STOP}]*){HIT_STOP}")


def highlighted(text: str) -> str:
    """`text` with hits between HIT_START and HIT_STOP, as HTML: the text escaped (a
    course description holding `<img onerror=...>` stays text), each hit in <mark>."""
    parts: list[str] = []
    position = 0
    for hit in _HIT.finditer(text):
        parts.append(_text(text[position : hit.start()]))
        parts.append(f"<mark>{_text(hit.group(1))}</mark>")
        position = hit.end()
    parts.append(_text(text[position:]))
    return "".join(parts)


def _text(raw: str) -> str:
    return escape(raw.replace(HIT_START, "").replace(HIT_STOP, ""), quote=False)
