"""Input rules shared by every domain."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
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


# RFC 3339 `full-date` and `date-time`: what the schema's `date` and `date-time` formats
# promise, and all a date in a query, a path or a body may be. pydantic's lax mode also
# reads numbers and numeric strings as Unix time (`?since=0` was 1970-01-01) and takes a
# date-time where a date is asked for.
_FULL_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATE_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?(?:[Zz]|[+-][0-9]{2}:[0-9]{2})"
)


def _full_date(value: Any) -> Any:
    if type(value) is dt.date or (isinstance(value, str) and _FULL_DATE.fullmatch(value)):
        return value
    raise ValueError("must be a date written YYYY-MM-DD (RFC 3339 full-date)")


def _date_time(value: Any) -> Any:
    if isinstance(value, dt.datetime) or (isinstance(value, str) and _DATE_TIME.fullmatch(value)):
        return value
    raise ValueError(
        "must be a date and time with its UTC offset, e.g. 2026-12-03T09:30:00Z (RFC 3339)"
    )


# Use these for every date and time a client sends (tests/test_openapi_dates.py walks the
# routes for any other).
IsoDate = Annotated[dt.date, BeforeValidator(_full_date)]
IsoDateTime = Annotated[AwareDatetime, BeforeValidator(_date_time)]
