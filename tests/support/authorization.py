"""The authorization matrix's machinery: the app's route table, who may call each route,
and which probe rows reach which route.

Every route of the app has an entry in `tests/test_authorization_matrix.py` (`WHO`):
the kind of caller it is for. Routes with an id in their path also need probe rows,
concrete requests made by each kind of caller against one shared world (a learner
trying another learner's or another course's object by changing the id), in one of
the matrix tables (`MATRIX_TABLES`). A route without an entry, or with a path id and
no probe row, fails the suite with a message naming it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from starlette.routing import BaseRoute, compile_path


class Who(StrEnum):
    """Who may call a route."""

    anyone = "anyone"  # no token needed (a token, if sent, must be valid)
    signed_link = "signed link"  # the link's signature is the credential
    metrics_scraper = "metrics scraper"  # METRICS_TOKEN, or open outside production
    # lessons: previews for anyone who may see the course, the others for its members
    previews_open = "previews: anyone; other lessons: the course's members"
    signed_in = "any signed-in user"
    verified = "a signed-in user with a confirmed email address"
    instructor = "instructors and admins (by role)"
    admin = "admins"
    owner = "the object's owner"
    course_member = "the course's members: enrolled learners, its instructors, admins"
    enrolled_learner = "learners enrolled in the course"
    course_editor = "the course's instructors and admins"
    course_owner = "the course's owner and admins"


# Routes that anonymous callers may reach: the others answer them 401.
OPEN = frozenset({Who.anyone, Who.signed_link, Who.metrics_scraper})
# Routes for verified accounts only (403 `email-not-verified` to the others).
VERIFIED_ONLY = frozenset({Who.verified})
# Routes that a signed-in student is refused by role (403) whatever the ids.
BY_ROLE = frozenset({Who.admin, Who.instructor})

# (method, path template, body, expected status per caller in the table's caller order)
Row = tuple[str, str, Any, Sequence[int | None]]


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # with convertors: /api/v1/courses/{course_id:uuid}
    path_format: str  # /api/v1/courses/{course_id}
    pattern: re.Pattern[str]

    @property
    def key(self) -> str:
        return f"{self.method} {self.path_format}"

    @property
    def has_path_id(self) -> bool:
        return "{" in self.path_format


def routes_of(app: FastAPI | Iterable[BaseRoute]) -> list[Route]:
    """Every (method, path) the app answers, in matching order (HEAD left out: it
    follows GET). Mounts (static files, Socket.IO) have no methods and are left out."""
    routes = app.routes if isinstance(app, FastAPI) else list(app)
    found = []
    for context in iter_route_contexts(routes):
        if not context.methods or context.path is None:
            continue
        pattern, path_format, _ = compile_path(context.path)
        for method in sorted(context.methods - {"HEAD"}):
            found.append(Route(method, context.path, path_format, pattern))
    return found


class _AnyId(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return str(uuid.uuid4())


def resolve(routes: list[Route], method: str, template: str) -> Route | None:
    """The route a probe row's request reaches (any id filled in), as the router
    would pick it: the first whose path and method match."""
    path = template.format_map(_AnyId()).split("?", 1)[0]
    for route in routes:
        if route.method == method and route.pattern.match(path):
            return route
    return None


def sample_path(route: Route) -> str:
    """A concrete path for the route with made-up ids (no such objects exist)."""

    def fill(match: re.Match[str]) -> str:
        return "LYC-AAAA-BBBB-CCCC" if match.group(2) in (None, "str") else str(uuid.uuid4())

    return re.sub(r"{(\w+)(?::(\w+))?}", fill, route.path)


def problems(
    routes: list[Route], who: dict[str, Who], tables: dict[str, Sequence[Row]]
) -> list[str]:
    """What the matrix misses: routes without an entry, entries for no route, routes
    with an id in their path that no probe row reaches, and rows that reach no route."""
    found: list[str] = []
    keys = {route.key for route in routes}
    for route in routes:
        if route.key not in who:
            found.append(
                f"{route.key} has no entry in the authorization matrix (WHO in "
                "tests/test_authorization_matrix.py): say who may call it and add probe rows"
            )
    found += [f"{key} is in WHO but the app has no such route" for key in who if key not in keys]
    probed: set[str] = set()
    for table, rows in tables.items():
        for method, template, *_ in rows:
            reached = resolve(routes, method, template)
            if reached is None:
                found.append(f"{table}: {method} {template} reaches no route")
            else:
                probed.add(reached.key)
    for route in routes:
        if route.has_path_id and route.key in who and route.key not in probed:
            found.append(
                f"{route.key} takes an id in its path but no probe row of the authorization "
                "matrix calls it: add rows showing who reaches which object"
            )
    return found
