"""The published OpenAPI document: what FastAPI generates, finished so that generated
clients (openapi-python-client, openapi-generator, ...) can rely on it.

FastAPI leaves four things to the application, and each one broke a generated client:

* errors: every error the server sends is `application/problem+json`, but a response
  declared with a `model` lands under `application/json`. Here every 4XX/5XX body is
  published under `application/problem+json` only, with its schema (`Problem` unless
  the route declared a richer one).
* optional sign-in: an endpoint that serves anonymous callers and shows more to signed-in
  ones (its dependency is marked with `allows_anonymous`) must not declare the bearer
  token as required. Here its security is `[{}, {<scheme>: []}]`: either none, or the token.
* `201 Created`: every one carries `Location`; here the header is declared.
* bodies read by the endpoint itself (JSON or a form): `request_body()` declares them
  with named components, which generators import cleanly (inline object schemas they
  turn into modules of their own, which did not import).

The public events (`kit.events.catalogue()`) are published in the document's
`webhooks` section (OpenAPI 3.1): one operation per event type, whose body is the
envelope (`id`, `type`, `version`, `occurred_at`) around the event's typed `data`, with
the Standard Webhooks headers a receiver verifies.

And a body that is not JSON (an image, a PDF, CSV, Prometheus text) declared without a
schema is published as a string (text) or binary, so that it is typed too.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Literal, TypeVar

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import iter_route_contexts
from fastapi.security.base import SecurityBase
from pydantic import BaseModel, Field, create_model
from starlette.routing import BaseRoute

from lyceum.kit.errors import Problem
from lyceum.kit.events import CatalogueEntry, catalogue

PROBLEM_MEDIA_TYPE = "application/problem+json"
COMPONENT_REF = "#/components/schemas/"
# Component schemas an operation brings along (from `request_body()`); moved into
# `components.schemas` when the document is finished.
_EXTRA_COMPONENTS = "x-lyceum-components"
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

LOCATION_HEADER: dict[str, Any] = {
    "description": "The URL of the created resource.",
    "schema": {"type": "string", "format": "uri-reference"},
}

_Dependency = TypeVar("_Dependency", bound=Callable[..., Any])
_ANONYMOUS_ALLOWED: list[Callable[..., Any]] = []


def allows_anonymous(dependency: _Dependency) -> _Dependency:
    """Marks an authentication dependency that lets anonymous callers through: the
    security schemes below it are published as optional on the endpoints using it."""
    _ANONYMOUS_ALLOWED.append(dependency)
    return dependency


def component_schemas(model: type[BaseModel]) -> dict[str, dict[str, Any]]:
    """The model's JSON schema and those of the models it uses, keyed by component name."""
    schema = model.model_json_schema(ref_template=COMPONENT_REF + "{model}")
    nested: dict[str, dict[str, Any]] = schema.pop("$defs", {})
    return {**nested, str(schema.get("title", model.__name__)): schema}


def request_body(
    content: Mapping[str, type[BaseModel]], *, required: bool = True
) -> dict[str, Any]:
    """`openapi_extra` for an endpoint that parses its body itself: one named component
    per media type."""
    components: dict[str, dict[str, Any]] = {}
    media: dict[str, Any] = {}
    for media_type, model in content.items():
        schemas = component_schemas(model)
        components.update(schemas)
        name = next(reversed(schemas))
        media[media_type] = {"schema": {"$ref": COMPONENT_REF + name}}
    return {"requestBody": {"required": required, "content": media}, _EXTRA_COMPONENTS: components}


class DocumentedAPI(FastAPI):
    """FastAPI whose OpenAPI document is finished by `finish_openapi`."""

    _finished: dict[str, Any] | None = None

    def openapi(self) -> dict[str, Any]:
        schema = super().openapi()
        if schema is not self._finished:
            finish_openapi(schema, self.routes)
            self._finished = schema
        return schema


def finish_openapi(schema: dict[str, Any], routes: Iterable[BaseRoute]) -> None:
    """Applies the rules in this module's docstring to a generated document, in place."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name, component in component_schemas(Problem).items():
        components.setdefault(name, component)
    anonymous = _anonymous_operations(routes)
    for path, method, operation in _operations(schema):
        for name, component in operation.pop(_EXTRA_COMPONENTS, {}).items():
            if components.setdefault(name, component) != component:
                raise ValueError(f"Two different schemas want the component name {name!r}")
        responses: dict[str, Any] = operation.get("responses", {})
        for status, response in responses.items():
            if _is_error(status):
                _problem_content(response)
                continue
            if status == "201":
                response.setdefault("headers", {}).setdefault("Location", LOCATION_HEADER)
            for media_type, media in (response.get("content") or {}).items():
                if not media.get("schema") and not _is_json(media_type):
                    media["schema"] = _raw_body(media_type)
        if (path, method) in anonymous and operation.get("security"):
            operation["security"] = [{}, *(s for s in operation["security"] if s)]
    publish_events(schema)


WEBHOOK_HEADERS = [
    ("webhook-id", "The message id (the event's `id`): the same on every retry and redelivery."),
    ("webhook-timestamp", "Unix seconds when this attempt was signed."),
    (
        "webhook-signature",
        "`v1,` + base64 HMAC-SHA256 of `{webhook-id}.{webhook-timestamp}.{body}`, keyed by "
        "the endpoint's secret (base64 after `whsec_`); verify with a Standard Webhooks library.",
    ),
]


def event_envelope(entry: CatalogueEntry) -> type[BaseModel]:
    """The model of the JSON document delivered for one public event."""
    name = entry.payload.__name__ + "Event"
    model: type[BaseModel] = create_model(
        name,
        __doc__=f"`{entry.name}` ({entry.version}): {entry.summary}",
        id=(uuid.UUID, Field(description="The event's id (also the `webhook-id` header).")),
        type=(Literal[entry.name], Field(description="The event type.")),  # type: ignore[arg-type]
        version=(Literal[entry.version], Field(description="The payload version.")),  # type: ignore[arg-type]
        occurred_at=(dt.datetime, Field(description="When it happened (UTC).")),
        data=(entry.payload, Field(description="The event's payload.")),
    )
    return model


def publish_events(schema: dict[str, Any]) -> None:
    """One `webhooks` entry per public event, its envelope a named component."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    published: dict[str, Any] = {}
    for name, entry in sorted(catalogue().items()):
        schemas = component_schemas(event_envelope(entry))
        for component_name, component in schemas.items():
            components.setdefault(component_name, component)
        published[name] = {
            "post": {
                "operationId": "event_" + name.replace(".", "_"),
                "summary": name,
                "description": f"{entry.summary} Delivered to the endpoints subscribed to "
                "it; any 2xx answer acknowledges it, anything else is retried.",
                "tags": ["webhooks"],
                "parameters": [
                    {
                        "name": header,
                        "in": "header",
                        "required": True,
                        "description": description,
                        "schema": {"type": "string"},
                    }
                    for header, description in WEBHOOK_HEADERS
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": COMPONENT_REF + next(reversed(schemas))}
                        }
                    },
                },
                "responses": {"200": {"description": "Received (any 2xx)."}},
            }
        }
    schema["webhooks"] = published


def _operations(schema: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in schema.get("paths", {}).items():
        for method in _METHODS:
            if method in item:
                yield path, method, item[method]


def _is_error(status: str) -> bool:
    return status[:1] in {"4", "5"}


def _is_json(media_type: str) -> bool:
    essence = media_type.split(";")[0].strip()
    return essence == "application/json" or essence.endswith("+json")


def _raw_body(media_type: str) -> dict[str, Any]:
    """The schema of a body that is not JSON: text, or bytes (an image, a PDF, a file)."""
    if media_type.startswith("text/"):
        return {"type": "string"}
    return {"type": "string", "format": "binary"}


def _problem_content(response: dict[str, Any]) -> None:
    """The server answers every error with problem+json: whatever schema was declared
    (under application/json, where FastAPI puts a `model`) is published there only, and
    an error declared without one is a `Problem`."""
    content: dict[str, Any] = response.get("content") or {}
    schema: dict[str, Any] = {"$ref": COMPONENT_REF + Problem.__name__}
    for media_type in (PROBLEM_MEDIA_TYPE, "application/json"):
        declared = (content.get(media_type) or {}).get("schema")
        if declared:
            schema = declared
            break
    response["content"] = {PROBLEM_MEDIA_TYPE: {"schema": schema}}


def _anonymous_operations(routes: Iterable[BaseRoute]) -> set[tuple[str, str]]:
    """(path, method) of the operations whose every security scheme sits below an
    `allows_anonymous` dependency."""
    found = set()
    for context in iter_route_contexts(list(routes)):
        dependant: Dependant | None = getattr(context, "dependant", None)
        if dependant is None or not context.path_format:
            continue
        if _optional_only(dependant):
            for method in context.methods or ():
                found.add((context.path_format, method.lower()))
    return found


def _optional_only(dependant: Dependant) -> bool:
    """Whether the dependency tree reaches a security scheme, and only through
    dependencies marked `allows_anonymous`."""
    optional = False
    pending = list(dependant.dependencies)
    while pending:
        current = pending.pop()
        if any(current.call is allowed for allowed in _ANONYMOUS_ALLOWED):
            optional = True
        elif isinstance(current.call, SecurityBase):
            return False
        else:
            pending.extend(current.dependencies)
    return optional
