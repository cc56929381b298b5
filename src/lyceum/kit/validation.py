"""Input rules shared by every domain.

Everything a client sends is checked before the database sees it. PostgreSQL refuses
three things JSON parsers (Python's `json`, which FastAPI and python-socketio use)
happily produce: NUL characters in text, lone UTF-16 surrogates (`"\\ud800"`, which
UTF-8 cannot encode), and non-finite numbers (`NaN`, `Infinity`, and `1e400`, which
parses as infinity). Every request model (`RequestModel`) refuses them in any field at
any depth with a 422 naming the field, and free-form JSON fields (`json_object`) are
bounded in depth and size too (`JsonLimits`).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    GetCoreSchemaHandler,
    Strict,
    StringConstraints,
    field_validator,
)
from pydantic_core import core_schema

# For schemas: a string without NUL characters, so clients (and schemathesis) know.
NO_NUL = r"^[^\x00]*$"
# At least one visible character. Whitespace is spelled out rather than written `\s`,
# whose meaning differs between Python, Rust and ECMAScript regex engines.
_SPACE = "\\x00-\\x20\\x7f-\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff"
VISIBLE_TEXT = f"^[^\\x00]*[^{_SPACE}][^\\x00]*$"

# Deeper than any legitimate document, shallow enough that no walk over it (ours, the
# encoder's, PostgreSQL's) comes near a recursion limit.
JSON_MAX_DEPTH = 32


def _text_problem(text: str) -> str | None:
    # On every field of every request: the cheapest test first. `in` is a memchr, and
    # an ASCII-only string (flagged by CPython, O(1)) cannot hold a surrogate; otherwise
    # encoding is the fastest complete check (a regex over the text is several times
    # slower; bench/validation.py).
    if "\x00" in text:
        return "must not contain NUL (\\u0000) characters"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "must be valid Unicode text (a lone UTF-16 surrogate such as \\ud800 is not)"
    return None


def _located(path: str, problem: str) -> str:
    return f"{path}: {problem}" if path else problem


def json_problem(value: Any, *, max_depth: int = JSON_MAX_DEPTH) -> str | None:
    """Why `value` (as parsed from JSON) cannot be stored, naming where inside it; None
    if it can. Walks iteratively, so a hostile nesting depth costs no recursion."""
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, str):
            problem = _text_problem(item)
            if problem:
                return _located(path, problem)
        elif isinstance(item, float):
            if not math.isfinite(item):
                return _located(
                    path, "numbers must be finite (NaN, Infinity and 1e400 are not JSON numbers)"
                )
        elif isinstance(item, dict | list | tuple):
            if depth >= max_depth:
                return _located(path, f"nests deeper than {max_depth} levels")
            if isinstance(item, dict):
                for key, child in item.items():
                    # A bad key is named escaped: the message itself must be storable.
                    key_text = str(key).encode("utf-8", "backslashreplace").decode()
                    child_path = f"{path}.{key_text}" if path else key_text
                    if isinstance(key, str) and (problem := _text_problem(key)):
                        return _located(child_path, f"the key {problem}")
                    stack.append((child, child_path, depth + 1))
            else:
                for index, child in enumerate(item):
                    stack.append((child, f"{path}[{index}]", depth + 1))
    return None


def _checked_text(value: str) -> str:
    problem = _text_problem(value)
    if problem:
        raise ValueError(problem)
    return value


SafeStr = Annotated[str, AfterValidator(_checked_text)]


@dataclass(frozen=True)
class JsonLimits:
    """Metadata for a free-form JSON field, `Annotated[dict[str, Any], JsonLimits(...)]`:
    values PostgreSQL's JSONB can hold (finite numbers, valid text without NUL), nested
    at most `max_depth` deep and at most `max_bytes` as UTF-8 JSON. Each violation is a
    422 naming the field and the place inside it."""

    max_bytes: int
    max_depth: int = JSON_MAX_DEPTH

    def check(self, value: Any) -> Any:
        problem = json_problem(value, max_depth=self.max_depth)
        if problem:
            raise ValueError(problem)
        size = len(json.dumps(value, ensure_ascii=False, allow_nan=False).encode())
        if size > self.max_bytes:
            raise ValueError(
                f"must serialise to at most {self.max_bytes} bytes of JSON, not {size}"
            )
        return value

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self.check, handler(source))


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
    """Base of request bodies and socket payloads: unknown fields are refused, and so is,
    in any field at any depth, what PostgreSQL cannot store (NUL characters, lone
    surrogates, NaN and infinities); each refusal names its field."""

    model_config = ConfigDict(extra="forbid", regex_engine="python-re", allow_inf_nan=False)

    @field_validator("*")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        if isinstance(value, str):
            return _checked_text(value)
        if isinstance(value, float | dict | list | tuple):
            problem = json_problem(value)
            if problem:
                raise ValueError(problem)
        return value


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
