"""The published schema speaks JSON Schema: no constraint is lost to a keyword that
validators ignore (pydantic writes `ge`/`le`/`gt`/`lt` where it cannot place a bound)."""

from __future__ import annotations

from typing import Any

from lyceum.app import create_app
from lyceum.config import Settings

PYDANTIC_ONLY = {"ge", "le", "gt", "lt", "multiple_of", "min_length", "max_length"}


def _stray_keywords(node: Any, path: str) -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        in_schema = "type" in node or "anyOf" in node or "$ref" in node
        for key, value in node.items():
            if in_schema and key in PYDANTIC_ONLY:
                found.append(f"{path}/{key}")
            found += _stray_keywords(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _stray_keywords(value, f"{path}/{index}")
    return found


def test_every_bound_is_published_as_json_schema() -> None:
    schema = create_app(Settings(database_url=None, log_level="WARNING")).openapi()
    assert _stray_keywords(schema, "") == []


def test_the_check_finds_a_stray_bound() -> None:
    node = {"properties": {"n": {"anyOf": [{"type": "integer", "ge": 1}, {"type": "null"}]}}}
    assert _stray_keywords(node, "") == ["/properties/n/anyOf/0/ge"]
