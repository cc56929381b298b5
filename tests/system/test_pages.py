"""The pages mailed links open (now the web app's): no inline script or style, a
Content-Security-Policy that allows nothing else, and what the URL carries (the token)
never turned into markup."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import httpx
import pytest


class _Attributes(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.handlers: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.handlers += [f"{tag} {name}" for name, _ in attrs if name.startswith("on")]


def _event_handler_attributes(html: str) -> list[str]:
    """Event-handler attributes of the parsed page (text inside a quoted value is not
    one: the escaped token may hold `onerror=` as text)."""
    parser = _Attributes()
    parser.feed(html)
    assert "img" not in parser.tags
    return parser.handlers


HOSTILE_TOKEN = "<script>alert(1)</script>\"'><img src=x onerror=alert(2)>"


@pytest.mark.parametrize("path", ["/verify-email", "/reset-password"])
async def test_token_pages_run_only_their_own_scripts_under_a_strict_policy(
    client: httpx.AsyncClient, path: str
) -> None:
    page = await client.get(path, params={"token": HOSTILE_TOKEN})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = {}
    for directive in page.headers["content-security-policy"].split(";"):
        name, _, value = directive.strip().partition(" ")
        policy[name] = value
    assert policy["default-src"] == "'self'"
    assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'" and policy["form-action"] == "'self'"
    assert policy["object-src"] == "'none'" and policy["base-uri"] == "'none'"
    assert "unsafe" not in page.headers["content-security-policy"]

    html = page.text
    # The token is carried in the form escaped: it never becomes a tag or an attribute.
    assert "<script>alert" not in html and "<img src=x" not in html
    assert _event_handler_attributes(html) == []
    # No inline code: every <script> has a src and is empty; no style attributes or blocks.
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, flags=re.S)
    assert scripts and all('src="/' in attributes and not body for attributes, body in scripts)
    assert "<style" not in html and " style=" not in html
    for script_path in re.findall(r'<script src="([^"]+)"', html):
        script = await client.get(script_path)
        assert script.status_code == 200
        assert script.headers["content-type"].startswith("text/javascript")
