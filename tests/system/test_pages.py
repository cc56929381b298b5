"""The pages mailed links open: no inline script or style, a Content-Security-Policy
that allows nothing else, and nothing from the URL echoed into the HTML."""

from __future__ import annotations

import re

import httpx
import pytest

HOSTILE_TOKEN = "<script>alert(1)</script>\"'><img src=x onerror=alert(2)>"


@pytest.mark.parametrize(
    ("path", "api_call"),
    [
        ("/verify-email", "/api/v1/auth/verify-email"),
        ("/reset-password", "/api/v1/auth/password/reset"),
    ],
)
async def test_token_pages_run_only_their_own_script_under_a_strict_policy(
    client: httpx.AsyncClient, path: str, api_call: str
) -> None:
    page = await client.get(path, params={"token": HOSTILE_TOKEN})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = {}
    for directive in page.headers["content-security-policy"].split(";"):
        name, _, value = directive.strip().partition(" ")
        policy[name] = value
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'" and policy["form-action"] == "'none'"
    assert "unsafe" not in page.headers["content-security-policy"]

    html = page.text
    # The token stays in the URL: the page never echoes it.
    assert "alert" not in html and "onerror" not in html
    # No inline code: every <script> has a src and is empty; no style attributes or blocks.
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, flags=re.S)
    assert scripts and all('src="/' in attributes and not body for attributes, body in scripts)
    assert "<style" not in html and " style=" not in html
    assert not re.search(r"<[^>]*\son\w+\s*=", html)  # no event-handler attributes

    (script_path,) = re.findall(r'<script src="([^"]+)"', html)
    (style_path,) = re.findall(r'<link rel="stylesheet" href="([^"]+)"', html)
    script = await client.get(script_path)
    assert script.headers["content-type"].startswith("text/javascript")
    assert (
        api_call in script.text and "textContent" in script.text and "innerHTML" not in script.text
    )
    style = await client.get(style_path)
    assert style.headers["content-type"].startswith("text/css")
