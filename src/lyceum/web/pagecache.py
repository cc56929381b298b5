"""Whole-page caching of the public catalog pages (`/` and `/catalog`) for signed-out
visitors, answered before routing, the page dependency and rendering: the page a
signed-out visitor sees depends only on the URL, the page language, whether htmx asked
(a fragment), the scheme (Secure cookies) and the catalog, so it is kept under those,
keyed on the catalog version that the API's response cache is keyed on
(`kit.responsecache`): publishing, changing or archiving a listed course bumps it after
its commit, so the pages change at once, exactly when the JSON does.

Two things in a page belong to one browser: its CSRF token (in every form and in the
htmx headers) and the cookie that sets it on a first visit. The stored body has a
marker (random per process, so no course title can contain it) where the token was;
each answer puts this browser's token in its place, and a browser without a (valid)
token gets a fresh one and its `Set-Cookie`, as the page itself would do. A request
that carries a session cookie, valid or not, is never answered from here: the page
must check it (and may clear it). Only a 200 whose only cookie is the CSRF cookie is
stored; the page's own headers (Content-Security-Policy, Cache-Control, Vary) are
stored and sent with it."""

from __future__ import annotations

import functools
import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl

import orjson
from starlette.requests import cookie_parser
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lyceum.config import Settings
from lyceum.kit.cache import Cache
from lyceum.web import i18n
from lyceum.web.session import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    csrf_shape_ok,
    secure_cookies,
    set_csrf_cookie,
)

# Pages of this size or under are kept (a catalog page is ~20 KB).
MAX_ENTRY_BYTES = 512 * 1024
KEY_PREFIX = "page:"


@dataclass(frozen=True)
class _Served:
    """Stands in for the route in `scope` (metrics and the access log name the page)."""

    path: str


_TOKEN_STAND_IN = "x" * 43  # a token's shape


@functools.cache
def _csrf_cookie_template(secure: bool) -> tuple[bytes, bytes]:
    """The `Set-Cookie` of a new CSRF token, written by `web.session.set_csrf_cookie`
    itself (once), split where the token goes."""
    response = Response()
    set_csrf_cookie(response, _TOKEN_STAND_IN, secure)
    header = next(value for name, value in response.raw_headers if name == b"set-cookie")
    before, _, after = header.partition(_TOKEN_STAND_IN.encode())
    return before, after


class PageCacheMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        paths: Mapping[str, frozenset[str]],
        version_key: str,
        settings: Settings,
    ) -> None:
        self.app = app
        # path -> the query parameters its page reads: a URL with any other is not
        # kept (random parameters must not fill the cache with copies of one page).
        self.paths = dict(paths)
        self.version_key = version_key
        self.ttl = float(settings.cache_ttl_seconds)
        self.always_secure = secure_cookies(settings)
        # Where the browser's CSRF token goes in a stored page: random per process.
        self.marker = f"csrf-{secrets.token_hex(16)}".encode()
        self._set_cookie: dict[tuple[str, bool], bytes] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "GET"
            or scope["path"] not in self.paths
            or self.ttl <= 0
        ):
            await self.app(scope, receive, send)
            return
        if scope["query_string"] and not self._known_query(scope):
            await self.app(scope, receive, send)
            return
        cookie_header = b""
        accept_language: bytes | None = None
        htmx = b""
        for name, value in scope["headers"]:
            if name == b"cookie":
                cookie_header = cookie_header + b"; " + value if cookie_header else value
            elif name == b"accept-language":
                accept_language = value
            elif name == b"hx-request":
                htmx = value
        cookies = cookie_parser(cookie_header.decode("latin-1")) if cookie_header else {}
        if cookies.get(SESSION_COOKIE):
            await self.app(scope, receive, send)  # signed in (or to be signed out)
            return
        locale = i18n.negotiate(
            cookies.get(i18n.LANGUAGE_COOKIE),
            accept_language.decode("latin-1") if accept_language is not None else None,
        )
        secure = self.always_secure or scope.get("scheme") == "https"
        cache: Cache = scope["app"].state.runtime.cache
        version = (await cache.get(self.version_key) or b"0").decode()
        query = hashlib.blake2b(scope["query_string"], digest_size=16).hexdigest()
        key = (
            f"{KEY_PREFIX}{scope['path']}:{locale}:{'s' if secure else 'p'}:"
            f"{'h' if htmx == b'true' else 'f'}:v{version}:{query}"
        )
        existing = cookies.get(CSRF_COOKIE)
        token = existing if existing and csrf_shape_ok(existing) else None
        entry = await cache.get(key)
        if entry is not None:
            await self._answer(scope, send, entry, token, secure)
            return
        await self._render_and_keep(scope, receive, send, cache, key, token)

    def _known_query(self, scope: Scope) -> bool:
        allowed = self.paths[scope["path"]]
        query = scope["query_string"].decode("latin-1")
        return all(name in allowed for name, _ in parse_qsl(query, keep_blank_values=True))

    async def _answer(
        self, scope: Scope, send: Send, entry: bytes, token: str | None, secure: bool
    ) -> None:
        head, _, stored = entry.partition(b"\x00")
        headers = [
            (name.encode("latin-1"), value.encode("latin-1")) for name, value in orjson.loads(head)
        ]
        if token is None:
            token = secrets.token_urlsafe(32)
            before, after = _csrf_cookie_template(secure)
            headers.append((b"set-cookie", before + token.encode() + after))
        body = stored.replace(self.marker, token.encode())
        headers.append((b"content-length", str(len(body)).encode()))
        headers.append((b"x-cache", b"hit"))
        scope["route"] = _Served(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _render_and_keep(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        cache: Cache,
        key: str,
        token: str | None,
    ) -> None:
        status = 0
        headers: list[tuple[bytes, bytes]] = []
        parts: list[bytes] = []
        size = 0

        async def capture(message: Message) -> None:
            nonlocal status, size
            if message["type"] == "http.response.start":
                status = message["status"]
                headers.extend(message.get("headers", ()))
                message["headers"] = [*message.get("headers", ()), (b"x-cache", b"miss")]
            elif message["type"] == "http.response.body" and status == 200:
                chunk = message.get("body", b"")
                size += len(chunk)
                if size <= MAX_ENTRY_BYTES:
                    parts.append(chunk)
            await send(message)

        await self.app(scope, receive, capture)
        if status != 200 or size > MAX_ENTRY_BYTES:
            return
        kept: list[tuple[str, str]] = []
        for name, value in headers:
            lowered = name.lower()
            if lowered == b"set-cookie":
                cookie_name, _, rest = value.partition(b"=")
                if cookie_name.strip() != CSRF_COOKIE.encode():
                    return  # a cookie of another kind: this answer is not for everyone
                token = rest.split(b";", 1)[0].strip().decode("latin-1")
            elif lowered == b"content-type":
                if not value.startswith(b"text/html"):
                    return
                kept.append((name.decode("latin-1"), value.decode("latin-1")))
            elif lowered != b"content-length":
                kept.append((name.decode("latin-1"), value.decode("latin-1")))
        if token is None:
            return  # whose token the page carries is unknown: keep nothing
        body = b"".join(parts).replace(token.encode(), self.marker)
        await cache.set(key, orjson.dumps(kept) + b"\x00" + body, self.ttl)
