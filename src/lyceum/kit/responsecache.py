"""Whole-response caching for public GET endpoints whose answer depends only on the
URL (the catalog). A hit is answered before routing, dependency solving and parameter
validation: two cache reads and one send. Entries are keyed on a version counter that
every change bumps, so a change is visible at once and stale entries simply age out.

Only successful responses are stored, so a URL whose parameters fail validation is
validated (and refused) every time."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lyceum.kit.cache import Cache

MAX_ENTRY_BYTES = 1024 * 1024


@dataclass(frozen=True)
class _Served:
    """Stands in for the route in `scope` so metrics and the access log name the
    endpoint's template rather than "unmatched"."""

    path: str


class ResponseCacheMiddleware:
    def __init__(self, app: ASGIApp, *, versioned_paths: Mapping[str, str], ttl: float) -> None:
        """`versioned_paths` maps an exact path to the cache key of its version counter."""
        self.app = app
        self.versioned_paths = dict(versioned_paths)
        self.ttl = ttl

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        version_key = (
            self.versioned_paths.get(scope["path"])
            if scope["type"] == "http" and scope["method"] == "GET"
            else None
        )
        if version_key is None:
            await self.app(scope, receive, send)
            return
        cache: Cache = scope["app"].state.runtime.cache
        version = (await cache.get(version_key) or b"0").decode()
        query = hashlib.blake2b(scope["query_string"], digest_size=16).hexdigest()
        key = f"http:{scope['path']}:v{version}:{query}"
        body = await cache.get(key)
        if body is not None:
            scope["route"] = _Served(scope["path"])
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        (b"x-cache", b"hit"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return

        status = 0
        parts: list[bytes] = []
        size = 0

        async def capture(message: Message) -> None:
            nonlocal status, size
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (b"x-cache", b"miss")]
            elif message["type"] == "http.response.body" and status == 200:
                chunk = message.get("body", b"")
                size += len(chunk)
                if size <= MAX_ENTRY_BYTES:
                    parts.append(chunk)
            await send(message)

        await self.app(scope, receive, capture)
        if status == 200 and size <= MAX_ENTRY_BYTES:
            await cache.set(key, b"".join(parts), self.ttl)
