"""Input rules shared by every domain."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator

# For schemas: a string without NUL characters, so clients (and schemathesis) know.
NO_NUL = r"^[^\x00]*$"


def contains_nul(value: Any, depth: int = 0) -> bool:
    """Whether a JSON-like value holds a NUL character anywhere (keys included)."""
    if depth > 64:
        return False
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(
            contains_nul(key, depth + 1) or contains_nul(item, depth + 1)
            for key, item in value.items()
        )
    if isinstance(value, list | tuple):
        return any(contains_nul(item, depth + 1) for item in value)
    return False


def _reject_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL (\\u0000) characters")
    return value


SafeStr = Annotated[str, AfterValidator(_reject_nul)]
