"""`Router`: an `APIRouter` that turns a request away in a microsecond when no route of
its own could match the path.

FastAPI matches a request by trying each route of each included router in turn, about
1.3 microseconds a route (scope bookkeeping, then the route's regular expression), and
scans the router that matches twice (once to choose it, once to handle). With ~130
routes, a request for one of the last domains' routes spent ~170 microseconds choosing
its route, and a 404 ~340 (measured with `bench/request_cost.py` and a direct ASGI
loop). Every route's path starts with a literal part ("/courses/", "/me/enrollments",
"/chat/rooms/"), and a path this router can match contains one of them: a router whose
routes' literal heads all miss the path answers "no match" without the scan. It only
ever says no earlier; whatever may match still goes through FastAPI's own matching.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.datastructures import DefaultPlaceholder
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute, Match
from starlette.types import Scope


def literal_head(path: str) -> str:
    """The part of a route's path before its first parameter."""
    return path.split("{", 1)[0]


class Router(APIRouter):
    """Every domain's endpoints are declared on one of these (tests/test_routing.py
    checks that the app's routers are)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._heads: tuple[str, ...] | None = None
        self._heads_of: int = -1

    def _literal_heads(self) -> tuple[str, ...] | None:
        """The routes' literal heads; None when one of them is empty or "/" (it could
        be part of any path) or a route is of a kind whose path is not known here."""
        routes: list[BaseRoute] = self.routes
        if self._heads_of == len(routes):
            return self._heads
        heads: set[str] = set()
        complete = True
        for route in routes:
            path = getattr(route, "path", None)
            included = getattr(route, "original_router", None)  # an included router
            if included is not None:
                # Its routes' heads, whatever prefix it was included with: a head is
                # looked for anywhere in the path, and a prefix only comes before it.
                sub = included._literal_heads() if isinstance(included, Router) else None
                if sub is None:
                    complete = False
                    break
                heads.update(sub)
                continue
            if not isinstance(path, str) or literal_head(path) in ("", "/"):
                complete = False
                break
            heads.add(literal_head(path))
        self._heads = tuple(sorted(heads)) if complete and heads else None
        self._heads_of = len(routes)
        return self._heads

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        heads = self._literal_heads()
        if heads is not None:
            path: str = scope["path"]
            for head in heads:
                if head in path:
                    break
            else:
                return Match.NONE, {}
        return super().matches(scope)


def add_to_app(app: FastAPI, router: APIRouter, *, responses: dict[int | str, Any]) -> None:
    """Declare `router`'s routes on the app itself rather than including the router: an
    included router costs about 8 microseconds on each of its requests (FastAPI's
    scope bookkeeping around the nested match), which is a fifth of a request that does
    no I/O. Used for the infrastructure probes (/health/live, /health/ready, /metrics),
    which orchestrators and scrapers call all day; the OpenAPI document is the same as
    with `include_router` (tests/kit/test_routing.py)."""
    for route in router.routes:
        if not isinstance(route, APIRoute):
            raise TypeError(f"not an API route: {route!r}")
        naming = route.generate_unique_id_function
        unique_id: dict[str, Any] = (
            {}
            if isinstance(naming, DefaultPlaceholder)
            else {"generate_unique_id_function": naming}
        )
        app.add_api_route(
            route.path,
            route.endpoint,
            methods=sorted(route.methods or ()),
            response_model=route.response_model,
            status_code=route.status_code,
            tags=route.tags,
            dependencies=route.dependencies,
            summary=route.summary,
            description=route.description,
            response_description=route.response_description,
            responses={**responses, **route.responses},
            deprecated=route.deprecated,
            operation_id=route.operation_id,
            response_model_include=route.response_model_include,
            response_model_exclude=route.response_model_exclude,
            response_model_by_alias=route.response_model_by_alias,
            response_model_exclude_unset=route.response_model_exclude_unset,
            response_model_exclude_defaults=route.response_model_exclude_defaults,
            response_model_exclude_none=route.response_model_exclude_none,
            include_in_schema=route.include_in_schema,
            response_class=route.response_class,
            name=route.name,
            openapi_extra=route.openapi_extra,
            **unique_id,
        )
