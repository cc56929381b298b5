"""Field types the assessment bodies share: bounded texts, points, word counts, times."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, Strict, StringConstraints

from lyceum.kit.validation import NO_NUL, VISIBLE_TEXT, integral_float

OptionId = Annotated[
    str, StringConstraints(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_-]+$")
]
Tag = Annotated[
    str,
    StringConstraints(min_length=1, max_length=50, pattern=VISIBLE_TEXT),
]
Prompt = Annotated[str, StringConstraints(min_length=1, max_length=10_000, pattern=VISIBLE_TEXT)]
LongText = Annotated[str, StringConstraints(max_length=20_000, pattern=NO_NUL)]
ShortText = Annotated[str, StringConstraints(max_length=2_000, pattern=NO_NUL)]
OptionText = Annotated[str, StringConstraints(min_length=1, max_length=1_000, pattern=VISIBLE_TEXT)]
AcceptedAnswer = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=NO_NUL)]
KeyTerm = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=VISIBLE_TEXT)]
# Points are stored to the hundredth: anything smaller would round to 0.
Points = Annotated[float, Field(ge=0.01, le=1000)]
# Bounds inside the integer type (not on the field), so they reach the OpenAPI schema
# as minimum/maximum also where the field is optional.
Words = Annotated[int, Strict(), Field(ge=1, le=20_000), BeforeValidator(integral_float)]
Seconds = Annotated[int, Strict(), Field(ge=10, le=7 * 24 * 3600), BeforeValidator(integral_float)]
Attempts = Annotated[int, Strict(), Field(ge=1, le=100), BeforeValidator(integral_float)]
Essay = Annotated[str, StringConstraints(min_length=1, max_length=200_000, pattern=VISIBLE_TEXT)]
MatchMode = Literal["exact", "case_insensitive", "regex", "numeric"]
