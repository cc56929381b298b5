"""What PostgreSQL cannot store never reaches it: NUL characters, lone surrogates and
non-finite numbers are refused in every request model, at any depth, naming the field;
free-form JSON fields are bounded in depth and size."""

from __future__ import annotations

import math
from typing import Annotated, Any

import pytest
from pydantic import ValidationError

from lyceum.kit.validation import JSON_MAX_DEPTH, JsonLimits, RequestModel, json_problem


class Inner(RequestModel):
    text: str


class Body(RequestModel):
    title: str = "ok"
    score: float = 1.0
    items: list[Inner] = []
    extra: Annotated[dict[str, Any], JsonLimits(200)] = {}


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ({"a": [1, 2.5, "x", None, True]}, None),
        ({"a": {"b": [0, math.inf]}}, "a.b[1]: numbers must be finite"),
        ({"a": math.nan}, "a: numbers must be finite"),
        ({"a": ["ok", "bad\ud800"]}, "a[1]: must be valid Unicode"),
        # The bad key is named escaped: the message itself must be encodable.
        ({"k\udfff": 1}, "k\\udfff: the key must be valid Unicode"),
        ({"a": "nul\x00"}, "a: must not contain NUL"),
        (nested(JSON_MAX_DEPTH), None),
        (nested(JSON_MAX_DEPTH + 1), "nests deeper than"),
        # Far beyond any recursion limit: the walk is iterative.
        (nested(100_000), "nests deeper than"),
    ],
)
def test_json_problem_names_the_place(value: Any, problem: str | None) -> None:
    found = json_problem(value)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found, found


@pytest.mark.parametrize(
    ("data", "loc", "message"),
    [
        ({"title": "x\ud800y"}, ("title",), "valid Unicode"),
        ({"title": "x\x00y"}, ("title",), "NUL"),
        ({"score": math.inf}, ("score",), "finite"),
        ({"score": math.nan}, ("score",), "finite"),
        ({"items": [{"text": "fine"}, {"text": "\udc00"}]}, ("items", 1, "text"), "valid Unicode"),
        ({"extra": {"x": -math.inf}}, ("extra",), "x: numbers must be finite"),
        ({"extra": {"x": "y" * 300}}, ("extra",), "at most 200 bytes"),
        ({"extra": nested(JSON_MAX_DEPTH + 2)}, ("extra",), "nests deeper"),
    ],
)
def test_request_models_refuse_what_postgres_cannot_store(
    data: dict[str, Any], loc: tuple[str, ...], message: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        Body.model_validate(data)
    (error,) = caught.value.errors()
    assert error["loc"][: len(loc)] == loc
    assert message in error["msg"], error["msg"]


def test_valid_unicode_and_big_finite_numbers_pass() -> None:
    body = Body.model_validate(
        {"title": "Trần 🎓 \u00e9", "score": 1e308, "extra": {"n": 10**30, "f": -1.5e-300}}
    )
    assert body.title == "Trần 🎓 \u00e9" and body.extra["n"] == 10**30
