"""The published schema speaks JSON Schema (no constraint is lost to a keyword that
validators ignore: pydantic writes `ge`/`le`/`gt`/`lt` where it cannot place a bound), and
says what a client generator needs: unique names, typed bodies, problems where errors
are, who may call anonymously, and where created resources are."""

from __future__ import annotations

import functools
import re
from typing import Annotated, Any

from fastapi import Depends
from fastapi.security import OAuth2PasswordBearer

from lyceum.app import create_app
from lyceum.config import Settings
from lyceum.kit.errors import Problem
from lyceum.kit.openapi import DocumentedAPI, allows_anonymous

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
    schema = _published()
    assert _stray_keywords(schema, "") == []


def test_the_check_finds_a_stray_bound() -> None:
    node = {"properties": {"n": {"anyOf": [{"type": "integer", "ge": 1}, {"type": "null"}]}}}
    assert _stray_keywords(node, "") == ["/properties/n/anyOf/0/ge"]


# `\s`, `\d`, `\w` and `\b` mean different things in Python's, Rust's (pydantic-core) and
# ECMAScript's regex engines (Python's `\s` takes U+001C-U+001F, `\d` any Unicode digit),
# so a client or schemathesis builds values the server refuses. Patterns spell classes out.
_SHORTHAND = re.compile(r"(?<!\\)(?:\\\\)*\\[sSdDwWbB]")


def _engine_dependent_patterns(node: Any, path: str) -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "pattern" and isinstance(value, str) and _SHORTHAND.search(value):
                found.append(f"{path}: {value}")
            found += _engine_dependent_patterns(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _engine_dependent_patterns(value, f"{path}/{index}")
    return found


def test_patterns_mean_the_same_in_every_regex_engine() -> None:
    assert _engine_dependent_patterns(_published(), "") == []


def test_the_check_finds_a_shorthand_class() -> None:
    node = {"properties": {"u": {"type": "string", "pattern": r"^(/[^\s#]*)?$"}}}
    assert _engine_dependent_patterns(node, "") == ["/properties/u: ^(/[^\\s#]*)?$"]
    assert _engine_dependent_patterns({"pattern": r"^[\\s]$"}, "") == []


# What a client generator needs of the document (tests/test_generated_client.py runs one).

_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
PROBLEM_FIELDS = {"type", "title", "status", "detail"}


@functools.cache
def _published() -> dict[str, Any]:
    """Built once: the tests only read it."""
    return create_app(Settings(database_url=None, log_level="WARNING")).openapi()


def _operations(schema: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{method.upper()} {path}", operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in _METHODS
    ]


def _component(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref", "")
    assert ref.startswith("#/components/schemas/"), node
    found: dict[str, Any] = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return found


def _class_name(name: str) -> str:
    """What generators keep of a name when they make a class of it."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def name_collisions(components: dict[str, dict[str, Any]]) -> list[str]:
    """Components whose title says another name than their key, or whose names collide
    once a generator strips them to a class name (it names classes by the title)."""
    problems = []
    seen: dict[str, str] = {}
    for name, component in components.items():
        title = component.get("title", name)
        if _class_name(title) != _class_name(name):
            problems.append(f"{name}: titled {title!r}")
        other = seen.setdefault(_class_name(title), name)
        if other != name:
            problems.append(f"{name} and {other} both make the class {title!r}")
    return problems


def test_every_schema_name_is_unique_and_its_own() -> None:
    assert name_collisions(_published()["components"]["schemas"]) == []


def test_the_check_finds_two_schemas_of_one_name() -> None:
    components = {
        "lyceum__chat__schemas__MessageOut": {"title": "MessageOut"},
        "lyceum__tutor__schemas__MessageOut": {"title": "MessageOut"},
        "Page_RoomOut_": {"title": "Page[RoomOut]"},
    }
    assert len(name_collisions(components)) == 3


def test_every_error_is_a_problem_under_problem_json_only() -> None:
    schema = _published()
    for operation_name, operation in _operations(schema):
        errors = {k: v for k, v in operation["responses"].items() if k[0] in "45"}
        assert {"4XX", "5XX"} <= errors.keys(), operation_name
        for status, response in errors.items():
            assert list(response["content"]) == ["application/problem+json"], (
                operation_name,
                status,
            )
            body = _component(schema, response["content"]["application/problem+json"]["schema"])
            assert body["properties"].keys() >= PROBLEM_FIELDS, (operation_name, status)
            assert body["properties"]["status"]["type"] == "integer"


def test_every_success_body_is_typed() -> None:
    schema = _published()
    for operation_name, operation in _operations(schema):
        for status, response in operation["responses"].items():
            if status[0] != "2":
                continue
            for media_type, media in response.get("content", {}).items():
                assert media.get("schema"), (operation_name, status, media_type)


def test_objects_are_named_components_not_inline_schemas() -> None:
    """Generators make a module of every inline object, named after where it sits; the
    login body made that way did not import."""
    inline: list[str] = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            if "properties" in node:
                inline.append(path)
            for key, value in node.items():
                walk(value, f"{path}/{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{path}/{index}")

    walk(_published()["paths"], "")
    assert inline == []


def test_every_created_answer_declares_its_location() -> None:
    created = [
        (operation_name, response)
        for operation_name, operation in _operations(_published())
        for status, response in operation["responses"].items()
        if status == "201"
    ]
    assert len(created) >= 15
    for operation_name, response in created:
        assert response["headers"]["Location"]["schema"]["type"] == "string", operation_name


def test_anonymous_callers_are_optional_and_signed_in_ones_required() -> None:
    """`{}` in a security list means "no credentials"; only endpoints that serve
    anonymous callers carry it (tests/test_openapi_security.py calls each one)."""
    security = {name: op.get("security") for name, op in _operations(_published())}
    bearer = {"OAuth2PasswordBearer": []}
    optional = sorted(name for name, value in security.items() if value == [{}, bearer])
    assert "GET /api/v1/courses/{course_id}" in optional
    assert "GET /api/v1/courses/{course_id}/reviews" in optional
    assert security["GET /api/v1/users/me"] == [bearer]
    assert security["PATCH /api/v1/courses/{course_id}"] == [bearer]
    assert security["GET /api/v1/courses"] is None
    assert all(value in (None, [bearer], [{}, bearer]) for value in security.values())


def test_time_zones_are_one_enum_with_safe_constant_names() -> None:
    schema = _published()
    profile = schema["components"]["schemas"]["ProfileUpdate"]["properties"]["timezone"]
    zone = _component(schema, profile["anyOf"][0])
    assert zone["title"] == "TimeZone" and zone["type"] == "string"
    names = zone["x-enum-varnames"]
    assert len(names) == len(zone["enum"]) > 400
    assert len({_class_name(name) for name in names}) == len(names)
    assert {"Asia/Ho_Chi_Minh", "UTC", "GMT0", "GMT+0", "GMT-0"} <= set(zone["enum"])
    assert all(re.fullmatch(r"[A-Z][A-Z0-9_]*", name) for name in names)
    assert "localtime" not in zone["enum"]


def test_login_bodies_are_named_and_the_oauth2_form_has_its_own_route() -> None:
    schema = _published()
    login = schema["paths"]["/api/v1/auth/login"]["post"]["requestBody"]["content"]
    assert login == {"application/json": {"schema": {"$ref": "#/components/schemas/LoginRequest"}}}
    form = schema["paths"]["/api/v1/auth/token"]["post"]["requestBody"]["content"]
    assert list(form) == ["application/x-www-form-urlencoded"]
    assert _component(schema, form["application/x-www-form-urlencoded"]["schema"])["required"] == [
        "username",
        "password",
    ]
    flow = schema["components"]["securitySchemes"]["OAuth2PasswordBearer"]["flows"]["password"]
    assert flow["tokenUrl"] == "/api/v1/auth/token"


_bearer = OAuth2PasswordBearer(tokenUrl="/token", auto_error=False)


@allows_anonymous
async def _maybe_signed_in(token: Annotated[str | None, Depends(_bearer)]) -> str | None:
    return token


class Taken(Problem):
    owner: str


def test_the_finished_document_follows_the_rules_for_any_route() -> None:
    """kit/openapi.py on a small app: an error declared bare or with its own model, a
    route answering 201, a dependency letting anonymous callers through, a binary body."""
    app = DocumentedAPI()

    @app.post("/things", status_code=201, responses={409: {"model": Taken}, 410: {}})
    async def make(token: Annotated[str | None, Depends(_bearer)]) -> dict[str, str]:
        return {}

    @app.get("/things/{n}", responses={200: {"content": {"image/png": {}}}})
    async def read(n: int, who: Annotated[str | None, Depends(_maybe_signed_in)]) -> None:
        return None

    schema = app.openapi()
    make_op = schema["paths"]["/things"]["post"]
    read_op = schema["paths"]["/things/{n}"]["get"]
    assert make_op["responses"]["409"]["content"] == {
        "application/problem+json": {"schema": {"$ref": "#/components/schemas/Taken"}}
    }
    assert make_op["responses"]["410"]["content"] == {
        "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
    }
    assert "Location" in make_op["responses"]["201"]["headers"]
    assert make_op["security"] == [{"OAuth2PasswordBearer": []}]
    assert read_op["security"] == [{}, {"OAuth2PasswordBearer": []}]
    assert read_op["responses"]["200"]["content"]["image/png"]["schema"] == {
        "type": "string",
        "format": "binary",
    }
    assert {"Problem", "FieldProblem", "Taken"} <= schema["components"]["schemas"].keys()
    assert app.openapi() is schema
