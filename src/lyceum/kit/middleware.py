"""Pure ASGI middleware: request id + access log + metrics, security headers, body limit.

The request context wraps the whole application, Starlette's error middleware included
(`app.LyceumAPI`), so every response carries the request id and security headers.

Written against raw ASGI rather than BaseHTTPMiddleware: it adds no task or stream
per request, which keeps the per-request cost small (measured in bench/).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Sequence
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lyceum.kit.accesslog import access_log
from lyceum.kit.errors import FieldProblem, problem_response
from lyceum.kit.metrics import HTTP_LATENCY, HTTP_REQUESTS

_REQUEST_ID_OK = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")

# The methods counted by name; any other (a client may send any token) is "OTHER", so a
# client cannot add label values, or entries to `_SERIES`, without bound.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

# Resolved metric children by (method, route, status): `.labels()` takes a lock and
# builds a key on every call; route templates are bounded, so this stays small.
_SERIES: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def _series(method: str, template: str, status: int) -> tuple[Any, Any]:
    key = (method, template, status)
    series = _SERIES.get(key)
    if series is None:
        series = _SERIES[key] = (
            HTTP_REQUESTS.labels(method, template, str(status)),
            HTTP_LATENCY.labels(method, template),
        )
    return series


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            decoded: str = value.decode("latin-1")
            return decoded
    return None


def security_headers(*, hsts: bool) -> list[tuple[bytes, bytes]]:
    """nosniff, frame-deny, a strict referrer policy, and HSTS in production."""
    headers = [
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"strict-origin-when-cross-origin"),
        (b"cross-origin-opener-policy", b"same-origin"),
    ]
    if hsts:
        headers.append((b"strict-transport-security", b"max-age=63072000; includeSubDomains"))
    return headers


class RequestContextMiddleware:
    """Gives each request an id (taken from `X-Request-ID` or generated, echoed back),
    adds the security headers, logs one line per request and records Prometheus
    metrics by route template. One middleware, one `send` wrapper: each ASGI layer
    costs microseconds on every request."""

    def __init__(self, app: ASGIApp, *, hsts: bool = False) -> None:
        self.app = app
        self.headers = security_headers(hsts=hsts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, b"x-request-id")
        request_id = (
            incoming if incoming and _REQUEST_ID_OK.match(incoming) else os.urandom(16).hex()
        )
        scope.setdefault("state", {})["request_id"] = request_id
        encoded_id = request_id.encode()
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", ()),
                    *self.headers,
                    (b"x-request-id", encoded_id),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            duration = time.perf_counter() - started
            route: Any = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            counter, histogram = _series(
                method if method in _METHODS else "OTHER", template, status
            )
            counter.inc()
            histogram.observe(duration)
            access_log.request(
                method=method,
                route=template,
                path=scope["path"],
                status=status,
                duration_ms=round(duration * 1000, 2),
                request_id=request_id,
            )


class BodyTooLarge(HTTPException):
    """An HTTPException so FastAPI's body parsing re-raises it unchanged (as a 413)."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"The request body exceeds the limit of {max_bytes} bytes.")


class BodySizeLimitMiddleware:
    """Refuses bodies over `max_bytes` with 413, by Content-Length up front and by
    counting streamed chunks otherwise, so an oversized upload is never read whole."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int,
        path_limits: Sequence[tuple[str, int]] = (),
    ) -> None:
        """`path_limits`: (regular expression, bytes) pairs for paths that take less (or
        more) than `max_bytes`, such as an upload route with its own size limit."""
        self.app = app
        self.max_bytes = max_bytes
        self.path_limits = [(re.compile(pattern), limit) for pattern, limit in path_limits]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if b"%00" in scope["query_string"] or "\x00" in scope["path"]:
            # No text Lyceum stores or searches may hold NUL (PostgreSQL refuses it):
            # refused here for every parameter of every route, before any is parsed.
            await self._refuse_nul(scope, receive, send)
            return
        max_bytes = self.max_bytes
        for pattern, limit in self.path_limits:
            if pattern.fullmatch(scope["path"]):
                max_bytes = limit
                break
        declared = _header(scope, b"content-length")
        if declared is None and _header(scope, b"transfer-encoding") is None:
            # No body can follow (GET, HEAD, ...): nothing to count.
            await self.app(scope, receive, send)
            return
        if declared is not None and declared.isdigit() and int(declared) > max_bytes:
            await self._refuse(scope, receive, send, max_bytes)
            return

        received = 0
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    raise BodyTooLarge(max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not response_started:
                await self._refuse(scope, receive, send, max_bytes)

    async def _refuse_nul(self, scope: Scope, receive: Receive, send: Send) -> None:
        where = "path" if "\x00" in scope["path"] else "query"
        response = problem_response(
            422,
            f"The {where} contains a NUL character (%00), which no parameter may hold.",
            slug="validation-error",
            title="Invalid input",
            errors=[FieldProblem(field=where, message="must not contain NUL (%00)", type="nul")],
        )
        await response(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, max_bytes: int) -> None:
        response = problem_response(
            413,
            f"The request body exceeds the limit of {max_bytes} bytes.",
            instance=scope["path"],
        )
        await response(scope, receive, send)
