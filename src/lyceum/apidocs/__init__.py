"""The API documentation pages, /docs (Swagger UI) and /redoc (ReDoc), with their
scripts and styles served from this package, so that they work on a machine without
internet. The files are copied from the npm packages by scripts/refresh-docs-assets
(versions and integrity in static/VERSIONS, licences beside each bundle)."""

from __future__ import annotations

from html import escape
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"
ASSETS_PATH = "/docs/assets"

# Scripts and styles from this server only: no inline script (Swagger UI starts from
# swagger-init.js). Both UIs set inline styles, ReDoc builds its search index in a worker
# made from a blob, and Swagger's "Try it out" calls this server.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "worker-src 'self' blob:",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)

router = APIRouter(include_in_schema=False)

_SWAGGER_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} - Swagger UI</title>
<link rel="stylesheet" href="{assets}/swagger-ui/swagger-ui.css">
<link rel="icon" type="image/png" href="{assets}/swagger-ui/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{assets}/swagger-ui/swagger-ui-bundle.js"></script>
<script src="{assets}/swagger-init.js" data-openapi-url="{openapi_url}"></script>
</body>
</html>
"""

_REDOC_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} - ReDoc</title>
<link rel="icon" type="image/png" href="{assets}/swagger-ui/favicon-32x32.png">
<style>body {{ margin: 0; padding: 0; }}</style>
</head>
<body>
<noscript>ReDoc needs JavaScript to show the documentation.</noscript>
<redoc spec-url="{openapi_url}"></redoc>
<script src="{assets}/redoc/redoc.standalone.js"></script>
</body>
</html>
"""


def _page(request: Request, template: str) -> HTMLResponse:
    # Behind a proxy that mounts the app under a prefix, links carry the prefix.
    root = request.scope.get("root_path", "").rstrip("/")
    html = template.format(
        title=escape(request.app.title),
        assets=escape(root + ASSETS_PATH),
        openapi_url=escape(root + (request.app.openapi_url or "/openapi.json")),
    )
    return HTMLResponse(html, headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY})


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    return _page(request, _SWAGGER_PAGE)


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    return _page(request, _REDOC_PAGE)


def assets() -> StaticFiles:
    """The vendored files, for mounting at ASSETS_PATH."""
    return StaticFiles(directory=STATIC)
