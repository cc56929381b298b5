"""Dates and times a client sends are RFC 3339 strings, as the schema's `date` and
`date-time` formats say, and nothing else: pydantic's lax mode read `?since=0` as
1970-01-01 (a number or a numeric string as Unix time) and took a date-time for a date.
The walk below finds every date and time in every route's query, path, headers and body,
so a new one declared with a plain `dt.date` fails here."""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel, TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection

from lyceum.app import create_app
from lyceum.config import Settings
from lyceum.models.identity import Role
from tests.identity.helpers import account

NOT_DATES = [0, 1_700_000_000, -1, 2.5, True, "0", "1700000000", "2026-12-03T00:00:00Z", "20261203"]
NOT_DATE_TIMES = [
    0,
    1_700_000_000,
    1_700_000_000.5,
    True,
    "0",
    "1700000000",
    "2026-12-03",
    "2026-12-03T09:30:00",
]
A_DATE = "2026-12-03"
A_DATE_TIME = "2026-12-03T09:30:00+07:00"

Accepts = Callable[[Any], bool]


def _kind(annotation: Any) -> str | None:
    """The `date` or `date-time` format the annotation publishes (through unions, lists
    and Annotated, not into other models), else None."""
    schema = TypeAdapter(annotation).json_schema()
    schema.pop("$defs", None)
    formats: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("format") in {"date", "date-time"}:
                formats.add(node["format"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    assert len(formats) <= 1, (annotation, formats)
    return formats.pop() if formats else None


def _models(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    elif isinstance(annotation, types.UnionType) or typing.get_args(annotation):
        for argument in typing.get_args(annotation):
            yield from _models(argument)


def _model_inputs(
    model: type[BaseModel], seen: set[type[BaseModel]]
) -> Iterator[tuple[str, str, Accepts]]:
    if model in seen:
        return
    seen.add(model)
    for name, field in model.model_fields.items():
        kind = _kind(field.annotation)
        if kind:

            def accepts(value: Any, model: type[BaseModel] = model, name: str = name) -> bool:
                try:
                    model.__pydantic_validator__.validate_assignment(
                        model.model_construct(), name, value
                    )
                except ValidationError:
                    return False
                return True

            yield f"{model.__name__}.{name}", kind, accepts
        for nested in _models(field.annotation):
            yield from _model_inputs(nested, seen)


def _dependants(dependant: Dependant) -> Iterator[Dependant]:
    yield dependant
    for sub in dependant.dependencies:
        yield from _dependants(sub)


def date_inputs() -> dict[str, tuple[str, Accepts]]:
    """Every date or time a request can carry, by where it sits."""
    app = create_app(Settings(database_url=None, log_level="WARNING"))
    found: dict[str, tuple[str, Accepts]] = {}
    seen: set[type[BaseModel]] = set()
    for context in iter_route_contexts(app.routes):
        root: Dependant | None = getattr(context, "dependant", None)
        if root is None:
            continue
        for dependant in _dependants(root):
            for field in (
                dependant.query_params
                + dependant.path_params
                + dependant.header_params
                + dependant.cookie_params
            ):
                kind = _kind(field.field_info.annotation)
                if kind:
                    accepts: Accepts = lambda value, field=field: not field.validate(value)[1]  # noqa: E731
                    found[f"{context.path_format} {field.name}"] = (kind, accepts)
            for body in dependant.body_params:
                for model in _models(body.field_info.annotation):
                    for where, kind, accepts in _model_inputs(model, seen):
                        found[where] = (kind, accepts)
    return found


def test_every_date_a_client_sends_is_strict() -> None:
    inputs = date_inputs()
    assert {"/api/v1/tutor/usage since", "QuizCreate.due_at", "AssignmentCreate.due_at"} <= set(
        inputs
    ), sorted(inputs)
    lax = []
    for where, (kind, accepts) in inputs.items():
        good, bad = (A_DATE, NOT_DATES) if kind == "date" else (A_DATE_TIME, NOT_DATE_TIMES)
        if not accepts(good):
            lax.append(f"{where} refuses {good!r}")
        lax += [f"{where} accepts {value!r}" for value in bad if accepts(value)]
    assert lax == []


@pytest.fixture
async def teacher_headers(client: httpx.AsyncClient, connection: AsyncConnection) -> dict[str, str]:
    return (await account(client, connection, role=Role.instructor)).headers


@pytest.mark.parametrize("since", ["0", "1700000000", "2026-12-03T00:00:00Z", "yesterday"])
async def test_a_number_is_not_a_date_in_a_query(
    client: httpx.AsyncClient, teacher_headers: dict[str, str], since: str
) -> None:
    response = await client.get(
        "/api/v1/tutor/usage", params={"since": since}, headers=teacher_headers
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert [error["field"] for error in response.json()["errors"]] == ["query.since"]


async def test_an_iso_date_is_a_date(
    client: httpx.AsyncClient, teacher_headers: dict[str, str]
) -> None:
    response = await client.get(
        "/api/v1/tutor/usage", params={"since": "2026-12-01"}, headers=teacher_headers
    )
    assert response.status_code == 200, response.text


async def test_a_number_is_not_a_time_in_a_body(
    client: httpx.AsyncClient, teacher_headers: dict[str, str]
) -> None:
    course = await client.post("/api/v1/courses", json={"title": "Dates"}, headers=teacher_headers)
    quizzes = f"/api/v1/courses/{course.json()['id']}/quizzes"
    refused = await client.post(
        quizzes, json={"title": "Timed", "due_at": 1_700_000_000}, headers=teacher_headers
    )
    assert refused.status_code == 422, refused.text
    assert [error["field"] for error in refused.json()["errors"]] == ["body.due_at"]
    listed = await client.get(quizzes, headers=teacher_headers)
    assert listed.json()["total"] == 0
    accepted = await client.post(
        quizzes, json={"title": "Timed", "due_at": A_DATE_TIME}, headers=teacher_headers
    )
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["due_at"].startswith("2026-12-03T02:30:00")
