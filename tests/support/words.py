"""Unique words for search tests."""

from __future__ import annotations

import uuid

_LETTERS = str.maketrans("0123456789", "ghijklmnop")


def search_marker() -> str:
    """A word of letters unique to one test, safe to search for. A hex marker such as
    `245e555e` reads to PostgreSQL's text parser as a number in scientific notation
    followed by a letter, and a word ending like an inflection would be stemmed; this
    one is letters only and ends in `x`."""
    return "zq" + uuid.uuid4().hex[:8].translate(_LETTERS) + "x"
