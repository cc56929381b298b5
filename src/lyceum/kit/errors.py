"""Typed domain errors and one translation of every error into RFC 9457 problem+json."""

from __future__ import annotations

from typing import Any

import sqlalchemy.exc
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_BASE = "https://lyceum.dev/problems/"

logger = structlog.get_logger("lyceum.errors")


class FieldProblem(BaseModel):
    """One offending input field."""

    field: str = Field(description="Dotted location, e.g. `body.email` or `query.page`.")
    message: str
    type: str = Field(description="Machine-readable error kind, e.g. `missing`.")


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    type: str = Field(description="A stable URI naming the kind of problem.")
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[FieldProblem] | None = Field(
        default=None, description="Present on validation errors: every offending field."
    )


class DomainError(Exception):
    """Base of the errors raised by services; each maps to one HTTP status."""

    status = 400
    slug = "bad-request"
    title = "Bad request"
    # Whether the transaction the error leaves commits instead of rolling back. Most
    # errors undo the request's writes; a few must keep them, because the error is the
    # outcome of a change that has to stick: `TokenReuse` (a reused refresh token
    # revokes its family *and* answers 401) and the assessments' `TimeUp` (an attempt
    # past its time is graded *and* answers 409). `kit.db.unit_of_work` is the one
    # place that honours it.
    persist_changes = False

    def __init__(
        self,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        field: str | None = None,
        slug: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers
        self.field = field
        if slug is not None:
            self.slug = slug


class NotFound(DomainError):
    status, slug, title = 404, "not-found", "Not found"


class Unauthorized(DomainError):
    status, slug, title = 401, "unauthorized", "Authentication required"

    def __init__(self, detail: str, *, slug: str | None = None) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"}, slug=slug)


class TokenReuse(Unauthorized):
    """A used refresh token came back: its family is revoked, and that must stick."""

    persist_changes = True


class Forbidden(DomainError):
    status, slug, title = 403, "forbidden", "Forbidden"


class Conflict(DomainError):
    status, slug, title = 409, "conflict", "Conflict"


class Invalid(DomainError):
    status, slug, title = 422, "validation-error", "Invalid input"


class PayloadTooLarge(DomainError):
    status, slug, title = 413, "payload-too-large", "Payload too large"


class PaymentRequired(DomainError):
    status, slug, title = 402, "payment-required", "Payment required"


class RateLimited(DomainError):
    status, slug, title = 429, "rate-limited", "Too many requests"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(retry_after, 1))})
        self.retry_after = retry_after


class ServiceUnavailable(DomainError):
    """The server is overloaded, not broken: 503 with Retry-After, so clients and load
    balancers back off and try again."""

    status, slug, title = 503, "overloaded", "Service overloaded"

    def __init__(self, detail: str, *, retry_after: int, title: str | None = None) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(retry_after, 1))})
        self.retry_after = retry_after
        if title is not None:
            self.title = title


_HTTP_TITLES = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Authentication required"),
    402: ("payment-required", "Payment required"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    409: ("conflict", "Conflict"),
    413: ("payload-too-large", "Payload too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    422: ("validation-error", "Invalid input"),
    429: ("rate-limited", "Too many requests"),
    500: ("internal-error", "Internal server error"),
    503: ("unavailable", "Service unavailable"),
}


def problem_response(
    status: int,
    detail: str,
    *,
    slug: str | None = None,
    title: str | None = None,
    instance: str | None = None,
    errors: list[FieldProblem] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    default_slug, default_title = _HTTP_TITLES.get(status, ("error", "Error"))
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + (slug or default_slug),
        "title": title or default_title,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    if errors is not None:
        body["errors"] = [error.model_dump() for error in errors]
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_CONTENT_TYPE)


def _encodable(text: str) -> str:
    """Client text echoed in an error (a dict key in a location) may hold a lone
    surrogate, which UTF-8 cannot encode: it is shown escaped instead."""
    return text.encode("utf-8", "backslashreplace").decode()


def _field_problems(exc: RequestValidationError) -> list[FieldProblem]:
    problems = []
    for item in exc.errors():
        location = _encodable(".".join(str(part) for part in item.get("loc", ())))
        problems.append(
            FieldProblem(
                field=location or "body",
                message=_encodable(str(item.get("msg", "invalid"))),
                type=str(item.get("type", "invalid")),
            )
        )
    return problems


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    errors = None
    if exc.field is not None:
        errors = [FieldProblem(field=exc.field, message=exc.detail, type=exc.slug)]
    return problem_response(
        exc.status,
        exc.detail,
        slug=exc.slug,
        title=exc.title,
        instance=request.url.path,
        errors=errors,
        headers=exc.headers,
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"No route matches {request.method} {request.url.path}."
    headers = dict(exc.headers) if exc.headers else {}
    if exc.status_code == 405:
        if detail == "Method Not Allowed":
            detail = f"{request.method} is not allowed on {request.url.path}."
        # Starlette names only the first route that matched the path; a path served by
        # several routes (GET and PATCH /users/me) allows all of their methods.
        headers["Allow"] = ", ".join(_allowed_methods(request))
    return problem_response(
        exc.status_code, detail, instance=request.url.path, headers=headers or None
    )


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route fully matches on this path (asked of the router itself,
    so nested routers count)."""
    routes = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes
        )
    ]


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = _field_problems(exc)
    if any(problem.type == "json_invalid" for problem in problems):
        return problem_response(
            400,
            "The request body is not valid JSON.",
            slug="malformed-json",
            title="Malformed JSON",
            instance=request.url.path,
            errors=problems,
        )
    names = ", ".join(problem.field for problem in problems)
    return problem_response(
        422,
        f"Invalid input: {names}.",
        instance=request.url.path,
        errors=problems,
    )


async def _unhandled_error(request: Request, exc: Exception) -> JSONResponse:
    logger.error(
        "unhandled_exception",
        path=request.url.path,
        method=request.method,
        request_id=request.scope.get("state", {}).get("request_id"),
        exc_info=exc,
    )
    return problem_response(
        500,
        "The server failed to handle this request; it has been logged.",
        instance=request.url.path,
    )


# How long a client is asked to wait when every database connection is busy.
OVERLOADED_RETRY_AFTER = 2


def _try_again(request: Request, detail: str, slug: str) -> JSONResponse:
    """503 with Retry-After: the server is overloaded or its database unavailable for a
    moment, not broken, so clients and load balancers back off instead of reporting
    an error."""
    return problem_response(
        503,
        detail,
        slug=slug,
        instance=request.url.path,
        headers={"Retry-After": str(OVERLOADED_RETRY_AFTER)},
    )


async def _pool_exhausted(request: Request, exc: Exception) -> JSONResponse:
    """No database connection came free within the pool timeout: the server is
    overloaded, not broken. 503 with Retry-After lets clients and load balancers back
    off instead of reporting an error."""
    logger.warning("database_pool_exhausted", path=request.url.path, method=request.method)
    return _try_again(request, "The server is busy; try again in a moment.", "overloaded")


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """The database refused or dropped the connection (down, restarting, out of
    connection slots: "too many clients"), or ended the transaction for a conflict it
    resolves by aborting one side (a serialization failure, a deadlock): transient, and
    nothing was committed. 503 with Retry-After, like an exhausted pool, not a 500."""
    original = getattr(exc, "orig", None)
    logger.warning(
        "database_unavailable",
        path=request.url.path,
        method=request.method,
        error=type(original or exc).__name__,
        sqlstate=getattr(original, "sqlstate", None),
    )
    return _try_again(
        request,
        "The database is unavailable or busy; try again in a moment.",
        "database-unavailable",
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(sqlalchemy.exc.TimeoutError, _pool_exhausted)
    app.add_exception_handler(sqlalchemy.exc.OperationalError, _database_unavailable)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unhandled_error)


# Declared with the model only: the published document moves every error body to
# application/problem+json, the one media type errors are sent with (kit/openapi.py).
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": Problem, "description": "The request was refused: a problem document."},
    "5XX": {"model": Problem, "description": "The server failed: a problem document."},
}
