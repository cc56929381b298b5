"""The web app Lyceum serves at `/`: server-rendered pages (Jinja2) made interactive
with htmx, for learners, instructors and admins.

It is a client of Lyceum's own JSON API (`web.api`, called in process): pages show
what the API answers and forms do what the API does, so authorization, validation and
rate limits are the API's. Browser sessions are cookies tied to the API's login
sessions (`web.session`); every page carries a strict Content-Security-Policy
(`web.context`). Static files (our CSS and scripts, and the vendored htmx and Socket.IO
client with their licences, refreshed by `scripts/vendor-assets`) are served from
`/static`, compressed, with a content hash in their URLs.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware.gzip import GZipMiddleware
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from lyceum.courses.service import CATALOG_VERSION_KEY
from lyceum.web import errors
from lyceum.web.context import STATIC_PATH
from lyceum.web.pagecache import PageCacheMiddleware
from lyceum.web.routes import ROUTERS


class _Static(StaticFiles):
    """Static files; a URL with `?v=<hash>` names one version, cached for a year."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code == 200:
            versioned = b"v=" in scope.get("query_string", b"")
            response.headers["Cache-Control"] = (
                "public, max-age=31536000, immutable" if versioned else "public, max-age=300"
            )
        return response


# The pages a signed-out visitor gets from the page cache (`web.pagecache`): they show
# the catalog and nothing of the visitor's; with the query parameters each page reads.
CACHED_PAGES = {
    "/": frozenset[str](),
    "/catalog": frozenset({"q", "category", "level", "language", "price", "sort", "page"}),
}
# Of those, the ones a signed-in user is served from it as well (kept per role and
# language, the user's name filled in), with the query parameter that must be given for
# the page to show them nothing of their own but the header: the catalog without a
# search shows the user's recommendations.
SIGNED_IN_CACHED_PAGES: dict[str, str | None] = {"/": None, "/catalog": "q"}

# The web routes that take a file (avatar, course files, essay uploads): refused by
# the body-size middleware above the file limit before anything is read.
UPLOAD_PATHS = (
    "/account/avatar",
    "/teach/courses/[^/]+/files",
    "/learn/assignments/[^/]+/submission",
)


def upload_limits(limit: int) -> list[tuple[str, int]]:
    return [(pattern, limit) for pattern in UPLOAD_PATHS]


def install(app: FastAPI) -> None:
    for router in ROUTERS:
        app.include_router(router)
    app.mount(
        STATIC_PATH,
        GZipMiddleware(_Static(packages=[("lyceum.web", "static")]), minimum_size=512),
        name="web-static",
    )
    errors.install(app)
    # Inside every middleware added after this (CORS, body size, the request context with
    # its request id, access log and metrics), before routing.
    app.add_middleware(
        PageCacheMiddleware,
        paths=CACHED_PAGES,
        signed_in_paths=SIGNED_IN_CACHED_PAGES,
        version_key=CATALOG_VERSION_KEY,
        settings=app.state.settings,
    )


__all__ = ["install", "upload_limits"]
