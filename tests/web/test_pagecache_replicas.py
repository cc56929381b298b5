"""The page cache (`web.pagecache`) of several processes sharing one cache (replicas on
one Redis), and requests whose headers would key a page under another's name: each
process's markers are random, so an entry carries its own and any process answering it
puts this browser's token where that entry's marker is; a repeated `HX-Request` or
`Accept-Language` is rendered by the page and never kept."""

from __future__ import annotations

import asyncio
import re
from types import SimpleNamespace
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.types import Receive, Scope, Send

from lyceum.config import Settings
from lyceum.kit.cache import MemoryCache
from lyceum.web.pagecache import PageCacheMiddleware
from lyceum.web.session import CSRF_COOKIE, csrf_token, set_csrf_cookie

_TOKEN = re.compile(r'data-csrf="([^"]*)"')


async def _page(scope: Scope, receive: Receive, send: Send) -> None:
    """Stands in for `/catalog`: the browser's CSRF token in the body (a new one and its
    cookie on a first visit), and whether htmx asked, as the real page shows them."""
    request = Request(scope, receive)
    token, new = csrf_token(request)
    fragment = request.headers.get("hx-request") == "true"
    body = f'<p data-csrf="{token}">{"fragment" if fragment else "full page"}</p>'
    response = HTMLResponse(body, headers={"Cache-Control": "no-store"})
    if new:
        set_csrf_cookie(response, token, secure=False)
    await response(scope, receive, send)


def _replica(cache: MemoryCache) -> Any:
    settings = Settings(database_url=None, log_level="WARNING")
    middleware = PageCacheMiddleware(
        _page,
        paths={"/catalog": frozenset({"q"})},
        signed_in_paths={},
        version_key="catalog-version",
        settings=settings,
    )
    state = SimpleNamespace(runtime=SimpleNamespace(cache=cache))
    app = SimpleNamespace(state=state)

    async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = app
        await middleware(scope, receive, send)

    return asgi


async def _get(app: Any, path: str, headers: list[tuple[str, str]]) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return await client.get(path, headers=httpx.Headers(headers))


def test_a_page_kept_by_one_replica_is_answered_right_by_another() -> None:
    async def scenario() -> None:
        cache = MemoryCache()
        a, b = _replica(cache), _replica(cache)
        kept = await _get(a, "/catalog?q=cells", [])
        assert kept.headers["x-cache"] == "miss"
        for token in ("A" * 43, "B" * 43):
            answer = await _get(b, "/catalog?q=cells", [("cookie", f"{CSRF_COOKIE}={token}")])
            assert answer.headers["x-cache"] == "hit"
            assert _TOKEN.findall(answer.text) == [token]
        first = await _get(b, "/catalog?q=cells", [])  # a first visit: a token of its own
        (token,) = _TOKEN.findall(first.text)
        assert first.cookies[CSRF_COOKIE] == token
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token)

    asyncio.run(scenario())


def test_repeated_headers_a_page_is_keyed_on_are_never_kept() -> None:
    async def scenario() -> None:
        cache = MemoryCache()
        app = _replica(cache)
        cookie = ("cookie", f"{CSRF_COOKIE}={'C' * 43}")
        for repeated in (
            [("hx-request", "true"), ("hx-request", "false")],
            [("accept-language", "vi"), ("accept-language", "en")],
        ):
            for _ in range(2):
                answer = await _get(app, "/catalog?q=loops", [cookie, *repeated])
                assert answer.status_code == 200
                assert "x-cache" not in answer.headers  # rendered by the page, not kept
        full = await _get(app, "/catalog?q=loops", [cookie])
        assert full.headers["x-cache"] == "miss"
        assert "full page" in full.text

    asyncio.run(scenario())
