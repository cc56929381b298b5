"""/docs and /redoc work without internet: each page loads only scripts, styles and images
that the app itself serves from the package (and runs no inline script), every one of
them is there, and the vendored UIs carry their versions and licences."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI

from lyceum.apidocs import STATIC

PAGES = ["/docs", "/redoc"]
CONTENT_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".png": "image/png",
}


class _Links(HTMLParser):
    """Every URL a page loads, and its inline scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0
        self._in_script_without_src = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        for name in ("src", "href", "spec-url", "data-openapi-url"):
            if attributes.get(name):
                self.urls.append(str(attributes[name]))
        self._in_script_without_src = tag == "script" and not attributes.get("src")

    def handle_data(self, data: str) -> None:
        if self._in_script_without_src and data.strip():
            self.inline_scripts += 1

    def handle_endtag(self, tag: str) -> None:
        self._in_script_without_src = False


def links(html: str) -> _Links:
    parser = _Links()
    parser.feed(html)
    return parser


@pytest.mark.parametrize("page", PAGES)
async def test_a_docs_page_loads_only_what_the_app_serves(
    client: httpx.AsyncClient, page: str
) -> None:
    response = await client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    found = links(response.text)
    assert found.inline_scripts == 0
    assert len(found.urls) >= 3
    for url in found.urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc and url.startswith("/"), url
        asset = await client.get(url)
        assert asset.status_code == 200, url
        suffix = parts.path[parts.path.rfind(".") :]
        if suffix in CONTENT_TYPES:
            assert asset.headers["content-type"].startswith(CONTENT_TYPES[suffix]), url
    scripts = [url for url in found.urls if url.endswith(".js")]
    assert scripts, "the page runs no script of its own"


@pytest.mark.parametrize("page", PAGES)
async def test_a_docs_page_allows_scripts_from_this_server_only(
    client: httpx.AsyncClient, page: str
) -> None:
    policy = (await client.get(page)).headers["content-security-policy"]
    directives = {
        name: values for name, *values in (directive.split() for directive in policy.split(";"))
    }
    assert directives["default-src"] == ["'none'"]
    assert directives["script-src"] == ["'self'"]
    assert directives["connect-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert not any("http" in value for values in directives.values() for value in values)


async def test_swagger_ui_starts_on_the_published_schema(client: httpx.AsyncClient) -> None:
    found = links((await client.get("/docs")).text)
    schema_url = next(url for url in found.urls if url.endswith("openapi.json"))
    schema = await client.get(schema_url)
    assert schema.status_code == 200 and schema.json()["info"]["title"] == "Lyceum API"
    starter = await client.get(next(url for url in found.urls if url.endswith("init.js")))
    assert "SwaggerUIBundle(" in starter.text and "openapiUrl" in starter.text


async def test_links_carry_the_prefix_the_app_is_mounted_under(app: FastAPI) -> None:
    transport = httpx.ASGITransport(app=app, root_path="/learning")
    async with httpx.AsyncClient(transport=transport, base_url="http://lyceum.test") as http:
        for page in PAGES:
            found = links((await http.get(page)).text)
            assert all(url.startswith("/learning/") for url in found.urls), found.urls


def test_the_vendored_uis_carry_their_versions_and_licences() -> None:
    versions = (STATIC / "VERSIONS").read_text()
    assert "swagger-ui-dist 5." in versions and "redoc 2." in versions
    for folder, bundle in (
        ("swagger-ui", "swagger-ui-bundle.js"),
        ("redoc", "redoc.standalone.js"),
    ):
        assert (STATIC / folder / "LICENSE").stat().st_size > 500
        assert (STATIC / folder / f"{bundle}.LICENSE.txt").exists()
        text = (STATIC / folder / bundle).read_text(encoding="utf-8")
        assert len(text) > 500_000
        assert "sourceMappingURL" not in text[-300:]
