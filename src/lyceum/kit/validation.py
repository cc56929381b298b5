"""Input rules shared by every domain."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Strict,
    StringConstraints,
    model_validator,
)

# For schemas: a string without NUL characters, so clients (and schemathesis) know.
NO_NUL = r"^[^\x00]*$"
# At least one visible character. Whitespace is spelled out rather than written `\s`,
# whose meaning differs between Python, Rust and ECMAScript regex engines.
_SPACE = "\\x00-\\x20\\x7f-\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff"
VISIBLE_TEXT = f"^[^\\x00]*[^{_SPACE}][^\\x00]*$"


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


def integral_float(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# JSON Schema's `integer`: 3 and 3.0 are integers; true and "3" are not. Put range
# constraints on the field (`x: JsonInt = Field(ge=...)`), so they reach the OpenAPI
# schema. Inside `Annotated[...] | None` they must come before the lenient validator
# instead (`Annotated[int, Field(ge=..., strict=True), BeforeValidator(integral_float)]`):
# `Annotated[JsonInt, Field(ge=...)]` publishes pydantic's own `ge`/`le` keys, which
# JSON Schema ignores. tests/test_openapi_schema.py checks the schema for them.
JsonInt = Annotated[int, Strict(), BeforeValidator(integral_float)]


class RequestModel(BaseModel):
    """Base of request bodies: unknown fields and NUL characters are refused (PostgreSQL
    text cannot hold NUL, and no legitimate input contains one)."""

    model_config = ConfigDict(extra="forbid", regex_engine="python-re")

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        if contains_nul(data):
            raise ValueError("text must not contain NUL (\\u0000) characters")
        return data


# A one-line name or title: at least one visible character, at most 200 as sent (the
# schema's maxLength), then trimmed. Trimming first would accept 201 characters with a
# leading space, which the published schema says is invalid.
VisibleTitle = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200, pattern=VISIBLE_TEXT),
    AfterValidator(str.strip),
]
