"""The web app's client of the API: every page gets its data, and every form does its
work, by calling the JSON API of this same process, in process.

A page is rendered from what the API answered; nothing here reads the database or
decides who may see what: the API's own authorization (its dependencies, its per-object
checks, its rate limits by client address) applies to the browser exactly as to any
app. The call runs the whole ASGI stack of the app (request id, access log, metrics,
error handling) without a socket: the scope is built here and the answer collected from
the `send` messages, or handed on chunk by chunk for a streamed answer (the tutor's SSE).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson
from starlette.requests import Request
from starlette.types import ASGIApp, Message

API_PREFIX = "/api/v1"

QueryValue = str | int | float | bool | None
Query = Mapping[str, QueryValue | Sequence[str | int]]
# What `files=` takes, as httpx builds multipart bodies: name -> (filename, bytes, type).
Files = Mapping[str, tuple[str, bytes, str]]


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str


# What a form shown again with an API problem may answer with (400 for any other).
FORM_STATUSES = frozenset({400, 401, 403, 409, 422, 429, 503})


@dataclass
class ApiProblem(Exception):
    """A 4xx/5xx answer of the API: its problem+json document, ready to show in a form
    (`detail`, and the message of each offending field by its name without the
    `body.`/`query.` location)."""

    status: int
    title: str
    detail: str
    slug: str
    errors: list[FieldError] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.status} {self.title}: {self.detail}"

    @property
    def form_status(self) -> int:
        """The status of a form shown again with this problem: the API's own when it
        says something about the request (its input, the credentials, a conflict, a
        limit met, a server too busy to take it now), 400 otherwise."""
        return self.status if self.status in FORM_STATUSES else 400

    @property
    def wait_headers(self) -> dict[str, str]:
        """The API's Retry-After, to pass on to the browser (empty when there is none)."""
        value = self.headers.get("retry-after")
        return {"Retry-After": value} if value is not None else {}

    def for_field(self, name: str) -> str | None:
        for error in self.errors:
            if error.field.split(".", 1)[-1] == name or error.field == name:
                return error.message
        return None

    @property
    def field_messages(self) -> dict[str, str]:
        """{field name (without location): message}, the first message of each."""
        messages: dict[str, str] = {}
        for error in self.errors:
            messages.setdefault(error.field.split(".", 1)[-1], error.message)
        return messages


@dataclass(frozen=True)
class ApiResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body) if self.body else None


def _problem(status: int, headers: dict[str, str], body: bytes) -> ApiProblem:
    try:
        document = orjson.loads(body) if body else {}
    except orjson.JSONDecodeError:
        document = {}
    if not isinstance(document, dict):
        document = {}
    errors = [
        FieldError(str(item.get("field", "")), str(item.get("message", "")))
        for item in document.get("errors") or []
        if isinstance(item, dict)
    ]
    type_ = str(document.get("type", ""))
    return ApiProblem(
        status=status,
        title=str(document.get("title", "Error")),
        detail=str(document.get("detail", "")),
        slug=type_.rsplit("/", 1)[-1],
        errors=errors,
        headers=headers,
    )


class Api:
    """Calls of one browser request, authenticated as its signed-in user (or anonymous).

    `get`, `post`, ... answer the decoded JSON and raise `ApiProblem` for an error
    answer; `call` answers the raw response whatever its status; `stream` hands on a
    streamed answer's chunks."""

    def __init__(self, request: Request, access_token: str | None) -> None:
        self._app: ASGIApp = request.app
        outer = request.scope
        self._client = outer.get("client")
        self._server = outer.get("server")
        self._scheme = outer.get("scheme", "http")
        headers: list[tuple[bytes, bytes]] = []
        for name in (b"accept-language", b"user-agent", b"x-request-id", b"host"):
            for key, value in outer["headers"]:
                if key == name:
                    headers.append((key, value))
                    break
        if access_token:
            headers.append((b"authorization", f"Bearer {access_token}".encode()))
        self._headers = headers
        self.signed_in = access_token is not None

    def _scope(
        self, method: str, path: str, params: Query | None, headers: list[tuple[bytes, bytes]]
    ) -> dict[str, Any]:
        full = path if path.startswith("/") else f"{API_PREFIX}/{path}"
        query = urlencode(
            [(k, v) for k, v in (params or {}).items() if v is not None and v != ""], doseq=True
        )
        return {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": method,
            "scheme": self._scheme,
            "path": full,
            "raw_path": full.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": headers,
            "client": self._client,
            "server": self._server,
            "state": {},
        }

    def _encode(
        self,
        json: Any,
        data: Mapping[str, str] | None,
        files: Files | None,
        extra: Mapping[str, str] | None,
    ) -> tuple[bytes, list[tuple[bytes, bytes]]]:
        headers = list(self._headers)
        headers.append((b"accept", b"application/json"))
        body = b""
        if files is not None:
            built = httpx.Request("POST", "http://api", data=data, files=files)
            body = built.read()
            headers.append((b"content-type", built.headers["content-type"].encode()))
        elif json is not None:
            body = orjson.dumps(json)
            headers.append((b"content-type", b"application/json"))
        elif data is not None:
            body = urlencode(data).encode()
            headers.append((b"content-type", b"application/x-www-form-urlencoded"))
        if body:
            headers.append((b"content-length", str(len(body)).encode()))
        for key, value in (extra or {}).items():
            headers.append((key.lower().encode(), value.encode()))
        return body, headers

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: Query | None = None,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        files: Files | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> ApiResponse:
        body, raw_headers = self._encode(json, data, files, headers)
        scope = self._scope(method, path, params, raw_headers)
        sent = False
        status = 500
        response_headers: dict[str, str] = {}
        chunks: list[bytes] = []

        async def receive() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.Event().wait()  # never disconnects: the answer is read whole
            raise AssertionError("unreachable")

        async def send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                for key, value in message.get("headers", ()):
                    response_headers[key.decode("latin-1").lower()] = value.decode("latin-1")
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self._app(scope, receive, send)
        return ApiResponse(status, response_headers, b"".join(chunks))

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self.call(method, path, **kwargs)
        if response.status >= 400:
            raise _problem(response.status, response.headers, response.body)
        if response.status == 204 or not response.body:
            return None
        if not response.headers.get("content-type", "").startswith(
            ("application/json", "application/problem+json")
        ):
            return response.body
        return response.json()

    async def get(self, path: str, *, params: Query | None = None) -> Any:
        return await self._json("GET", path, params=params)

    async def post(self, path: str, **kwargs: Any) -> Any:
        return await self._json("POST", path, **kwargs)

    async def put(self, path: str, **kwargs: Any) -> Any:
        return await self._json("PUT", path, **kwargs)

    async def patch(self, path: str, **kwargs: Any) -> Any:
        return await self._json("PATCH", path, **kwargs)

    async def delete(self, path: str, **kwargs: Any) -> Any:
        return await self._json("DELETE", path, **kwargs)

    @contextlib.asynccontextmanager
    async def stream(
        self,
        method: str,
        path: str,
        *,
        params: Query | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> AsyncIterator[tuple[ApiResponse, AsyncIterator[bytes]]]:
        """A streamed answer: (status and headers, then its body chunk by chunk). An
        error status raises `ApiProblem` before anything is handed on. Leaving the block
        early (the browser went away) tells the API the client disconnected."""
        body, raw_headers = self._encode(json, None, None, headers)
        # One Accept header: the API reads the first, and `_encode` asks for JSON.
        raw_headers = [(k, v) for k, v in raw_headers if k != b"accept"]
        raw_headers.append((b"accept", b"text/event-stream"))
        scope = self._scope(method, path, params, raw_headers)
        queue: asyncio.Queue[Message | None] = asyncio.Queue()
        disconnected = asyncio.Event()
        sent = False

        async def receive() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await disconnected.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            await queue.put(message)

        async def run() -> None:
            try:
                await self._app(scope, receive, send)
            finally:
                await queue.put(None)

        task = asyncio.create_task(run())
        try:
            start = await queue.get()
            if start is None or start["type"] != "http.response.start":
                await task
                raise ApiProblem(500, "Internal Server Error", "No answer.", "internal")
            headers_out = {
                k.decode("latin-1").lower(): v.decode("latin-1") for k, v in start["headers"]
            }
            status = start["status"]
            if status >= 400:
                rest: list[bytes] = []
                while (message := await queue.get()) is not None:
                    rest.append(message.get("body", b""))
                raise _problem(status, headers_out, b"".join(rest))

            async def chunks() -> AsyncIterator[bytes]:
                while (message := await queue.get()) is not None:
                    if message["type"] == "http.response.body":
                        chunk = message.get("body", b"")
                        if chunk:
                            yield chunk
                        if not message.get("more_body", False):
                            return

            yield ApiResponse(status, headers_out, b""), chunks()
        finally:
            disconnected.set()
            if not task.done():
                try:
                    await asyncio.wait_for(task, timeout=5)
                except (TimeoutError, asyncio.CancelledError):
                    task.cancel()
