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
that carries a session cookie is never answered from the signed-out page: it is
answered as below, or by the page, which checks it (and may clear it). Only a 200 whose
only cookie is the CSRF cookie is stored; the page's own headers (Content-Security-Policy, Cache-Control, Vary) are
stored and sent with it.

Signed-in visitors of the same pages (`signed_in_paths`: `/`, and `/catalog` when it
searches, the catalog without a search shows the user's own recommendations) are
answered from here too. What such a page shows of its user is the layout's header:
signed in, the links of their role, their name, in their language. A cached page is
kept per role and language with a second marker where the name goes; the name, escaped
as the template escapes it, is put in on each answer. The page renders the name as that
marker itself (`ShownUser`), so no other text of the page is ever mistaken for it.

Which user a cookie names, and that their login session is open, come from the session
facts (`web.session.SessionFacts`) a page keeps after checking the session in the
database; anything that ends the user's sessions or changes those facts deletes them
(`identity.service.forget_web_facts`). A cookie that does not verify, or without kept
facts, goes to the page, which checks the database (and may clear the cookie), keeps the
facts, and renders the page this cache then keeps."""

from __future__ import annotations

import functools
import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

import orjson
from markupsafe import escape
from starlette.requests import cookie_parser
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lyceum.config import Settings
from lyceum.kit.cache import Cache
from lyceum.kit.clock import Clock, SystemClock
from lyceum.models.identity import Role
from lyceum.web import i18n
from lyceum.web.session import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    SessionClaimsMemo,
    SessionFacts,
    csrf_shape_ok,
    kept_facts,
    secure_cookies,
    set_csrf_cookie,
)

# Pages of this size or under are kept (a catalog page is ~20 KB).
MAX_ENTRY_BYTES = 512 * 1024
KEY_PREFIX = "page2:"  # entries of the format below (with their markers)


@dataclass(frozen=True)
class _Served:
    """Stands in for the route in `scope` (metrics and the access log name the page)."""

    path: str


_TOKEN_STAND_IN = "x" * 43  # a token's shape
# Where the page dependency finds the `Ticket` of a request this cache will keep.
TICKET = "lyceum.pagecache"


@dataclass(frozen=True)
class ShownUser:
    """The user a page kept for every user of one role shows: the role, and the name as
    the marker each answer puts the user's own (escaped) name in place of. It has
    nothing else: a template that showed more of the user (an email, an avatar) would
    fail to render rather than be kept with one user's details in it."""

    full_name: str
    role: Role


@dataclass
class Ticket:
    """Handed to the page of a signed-in request this cache will keep: the page puts
    the facts it checked in the database here, and renders the user as `shown`."""

    name_marker: str
    facts: SessionFacts | None = None
    shown: ShownUser | None = field(default=None, init=False)

    def checked(self, facts: SessionFacts) -> ShownUser:
        self.facts = facts
        self.shown = ShownUser(full_name=self.name_marker, role=facts.role)
        return self.shown


@functools.lru_cache(maxsize=1024)
def _parameters(query_string: bytes) -> tuple[tuple[str, str], ...]:
    """A query string's parameters (kept, bounded: the same searches come again)."""
    return tuple(parse_qsl(query_string.decode("latin-1"), keep_blank_values=True))


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
        signed_in_paths: Mapping[str, str | None],
        version_key: str,
        settings: Settings,
    ) -> None:
        self.app = app
        # path -> the query parameters its page reads: a URL with any other is not
        # kept (random parameters must not fill the cache with copies of one page).
        self.paths = dict(paths)
        # path -> None, or a query parameter that must be given (not empty) for the
        # page to show a signed-in user nothing but the layout's header.
        self.signed_in_paths = dict(signed_in_paths)
        self.version_key = version_key
        self.ttl = float(settings.cache_ttl_seconds)
        self.always_secure = secure_cookies(settings)
        # Where the browser's CSRF token goes in a stored page: random per process, and
        # written into each entry, so a replica answering another's entry (one Redis)
        # puts its browser's token where that replica's marker is.
        self.marker = f"csrf-{secrets.token_hex(16)}".encode()
        # Where a signed-in user's name goes: random per process, kept in each entry too.
        self.name_marker = f"name-{secrets.token_hex(16)}"
        self._claims = SessionClaimsMemo()

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
        htmx: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"cookie":
                cookie_header = cookie_header + b"; " + value if cookie_header else value
            elif name == b"accept-language":
                if accept_language is not None:
                    # Repeated: which one the page reads is not this code's to guess, and
                    # a page rendered from one must not be kept under the other's key.
                    await self.app(scope, receive, send)
                    return
                accept_language = value
            elif name == b"hx-request":
                if htmx is not None:
                    await self.app(scope, receive, send)
                    return
                htmx = value
        cookies = cookie_parser(cookie_header.decode("latin-1")) if cookie_header else {}
        accept = accept_language.decode("latin-1") if accept_language is not None else None
        secure = self.always_secure or scope.get("scheme") == "https"
        cache: Cache = scope["app"].state.runtime.cache
        version = (await cache.get(self.version_key) or b"0").decode()
        query = hashlib.blake2b(scope["query_string"], digest_size=16).hexdigest()
        variant = f"{'s' if secure else 'p'}:{'h' if htmx == b'true' else 'f'}:v{version}:{query}"
        existing = cookies.get(CSRF_COOKIE)
        token = existing if existing and csrf_shape_ok(existing) else None
        session_cookie = cookies.get(SESSION_COOKIE)
        if session_cookie:
            await self._signed_in(
                scope, receive, send, cache, session_cookie, accept, variant, token, secure
            )
            return
        locale = i18n.negotiate(cookies.get(i18n.LANGUAGE_COOKIE), accept)
        key = f"{KEY_PREFIX}{scope['path']}:{locale}:{variant}"
        entry = await cache.get(key)
        if entry is not None:
            await self._answer(scope, send, entry, token, secure)
            return
        await self._render_and_keep(scope, receive, send, cache, key, token)

    async def _signed_in(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        cache: Cache,
        cookie: str,
        accept: str | None,
        variant: str,
        token: str | None,
        secure: bool,
    ) -> None:
        if not self._same_for_a_role(scope):
            await self.app(scope, receive, send)
            return
        app_state = scope["app"].state
        clock: Clock = getattr(app_state, "clock", None) or SystemClock()
        claims = self._claims.decode(app_state.runtime.tokens, cookie, now=clock.now())
        if claims is None:
            await self.app(scope, receive, send)  # the page clears the cookie
            return
        facts = await kept_facts(cache, claims)
        if facts is not None:
            entry = await cache.get(self._signed_in_key(scope, facts, accept, variant))
            if entry is not None:
                await self._answer(scope, send, entry, token, secure, facts.full_name)
                return
        ticket = Ticket(name_marker=self.name_marker)
        scope[TICKET] = ticket
        await self._render_and_keep(
            scope, receive, send, cache, None, token, ticket, accept, variant
        )

    @staticmethod
    def _signed_in_key(scope: Scope, facts: SessionFacts, accept: str | None, variant: str) -> str:
        locale = i18n.negotiate(facts.locale, accept)  # as the page chooses it
        return f"{KEY_PREFIX}{scope['path']}:{locale}:{variant}:u-{facts.role.value}"

    def _same_for_a_role(self, scope: Scope) -> bool:
        if scope["path"] not in self.signed_in_paths:
            return False
        needed = self.signed_in_paths[scope["path"]]
        if needed is None:
            return True
        values = [value for name, value in _parameters(scope["query_string"]) if name == needed]
        return bool(values) and all(values)

    def _known_query(self, scope: Scope) -> bool:
        allowed = self.paths[scope["path"]]
        return all(name in allowed for name, _ in _parameters(scope["query_string"]))

    async def _answer(
        self,
        scope: Scope,
        send: Send,
        entry: bytes,
        token: str | None,
        secure: bool,
        user_name: str | None = None,
    ) -> None:
        head, _, stored = entry.partition(b"\x00")
        kept = orjson.loads(head)
        headers = [
            (name.encode("latin-1"), value.encode("latin-1")) for name, value in kept["headers"]
        ]
        if token is None:
            token = secrets.token_urlsafe(32)
            before, after = _csrf_cookie_template(secure)
            headers.append((b"set-cookie", before + token.encode() + after))
        body = stored.replace(kept["csrf"].encode(), token.encode())
        if user_name is not None:  # last: nothing is replaced in the name itself
            body = body.replace(kept["name"].encode(), str(escape(user_name)).encode())
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
        key: str | None,
        token: str | None,
        ticket: Ticket | None = None,
        accept: str | None = None,
        variant: str = "",
    ) -> None:
        """Let the page answer, and keep its answer under `key`; or, for a signed-in
        request (`ticket`), under its user's role and language once the page has
        checked the session. A page rendered for a `ShownUser` has the name marker
        where the name goes: the browser gets the name, the cache the marker."""
        status = 0
        headers: list[tuple[bytes, bytes]] = []
        parts: list[bytes] = []
        size = 0
        held: Message | None = None  # the start of an answer whose name goes in last

        async def capture(message: Message) -> None:
            nonlocal status, size, held
            if message["type"] == "http.response.start":
                status = message["status"]
                headers.extend(message.get("headers", ()))
                if ticket is None or ticket.shown is not None:
                    message["headers"] = [*message.get("headers", ()), (b"x-cache", b"miss")]
                if ticket is not None and ticket.shown is not None:
                    held = message
                    return
            elif message["type"] == "http.response.body":
                chunk = message.get("body", b"")
                if held is not None:
                    parts.append(chunk)
                    size += len(chunk)
                    if message.get("more_body", False):
                        return
                    name = ticket.facts.full_name if ticket and ticket.facts else ""
                    await self._send_named(send, held, b"".join(parts), name)
                    return
                if status == 200:
                    size += len(chunk)
                    if size <= MAX_ENTRY_BYTES:
                        parts.append(chunk)
            await send(message)

        await self.app(scope, receive, capture)
        if ticket is not None:
            if ticket.facts is None or ticket.shown is None:
                return  # not a signed-in page this cache keeps (or the session ended)
            key = self._signed_in_key(scope, ticket.facts, accept, variant)
            if self.name_marker.encode() not in b"".join(parts):
                return  # not the layout of a signed-in user: an error page, a redirect
        if key is None or status != 200 or size > MAX_ENTRY_BYTES:
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
        head = {"headers": kept, "csrf": self.marker.decode(), "name": self.name_marker}
        await cache.set(key, orjson.dumps(head) + b"\x00" + body, self.ttl)

    async def _send_named(self, send: Send, start: Message, body: bytes, name: str) -> None:
        """The held answer, with the user's escaped name where the page put the marker."""
        body = body.replace(self.name_marker.encode(), str(escape(name)).encode())
        start["headers"] = [
            (name, value) for name, value in start["headers"] if name.lower() != b"content-length"
        ] + [(b"content-length", str(len(body)).encode())]
        await send(start)
        await send({"type": "http.response.body", "body": body})
