"""The two pages mailed links land on, so verification and reset work with Lyceum
alone. Each page only posts the token from its URL to the API; a web app that serves
its own pages at PUBLIC_BASE_URL replaces them.

The pages carry no inline script or style: one script and one stylesheet are served
beside them, and a Content-Security-Policy allows nothing else (no inline code, no
other origin, no framing). Every string put into a page is HTML-escaped; the token and
the API's answers are handled as text by the script, never as markup.
"""

from __future__ import annotations

from html import escape

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

router = APIRouter(include_in_schema=False)

SCRIPT_PATH = "/pages/token-page.js"
STYLE_PATH = "/pages/page.css"
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
)
# Static, and the same for every deployment: cached by browsers for an hour.
_ASSET_HEADERS = {"Cache-Control": "public, max-age=3600"}

_STYLE = """body{font-family:system-ui,sans-serif;max-width:28rem;margin:4rem auto;
padding:0 1rem;color:#1f2933}button{background:#2563eb;color:#fff;border:0;
padding:.6rem 1rem;border-radius:6px;font-size:1rem}input{width:100%;padding:.5rem;
margin:.5rem 0 1rem;font-size:1rem}#result{margin-top:1rem}
"""

# Which API call a page makes is named by `data-action` on its <body>; the message on
# success by `data-done`. Results are written with textContent: never parsed as HTML.
_SCRIPT = """"use strict";
const token = new URLSearchParams(location.search).get("token") || "";
const page = document.body.dataset;
const result = document.getElementById("result");

async function send(path, payload) {
  const response = await fetch(path, {method: "POST",
    headers: {"Content-Type": "application/json"}, body: JSON.stringify(payload)});
  if (response.ok) return page.done;
  const problem = await response.json().catch(() => ({}));
  return problem.detail || "Something went wrong.";
}

if (page.action === "verify-email") {
  document.getElementById("go").addEventListener("click", async () => {
    result.textContent = await send("/api/v1/auth/verify-email", {token});
  });
} else if (page.action === "reset-password") {
  document.getElementById("form").addEventListener("submit", async (event) => {
    event.preventDefault();
    result.textContent = await send("/api/v1/auth/password/reset",
      {token, new_password: document.getElementById("password").value});
  });
}
"""


def _page(*, title: str, action: str, done: str, body: str) -> HTMLResponse:
    html = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)} - Lyceum</title>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<link rel="stylesheet" href="{STYLE_PATH}"></head>\n'
        f'<body data-action="{escape(action)}" data-done="{escape(done)}">'
        f"<h1>{escape(title)}</h1>{body}"
        '<p id="result" role="status"></p>'
        f'<script src="{SCRIPT_PATH}" defer></script></body></html>'
    )
    return HTMLResponse(html, headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY})


@router.get("/verify-email", response_class=HTMLResponse)
async def verify_email_page() -> HTMLResponse:
    return _page(
        title="Confirm your email",
        action="verify-email",
        done="Your email address is confirmed. You can close this page.",
        body="<p>Confirm the email address of your account.</p>"
        '<button id="go" type="button">Confirm my email</button>',
    )


@router.get("/reset-password", response_class=HTMLResponse)
async def reset_password_page() -> HTMLResponse:
    return _page(
        title="Choose a new password",
        action="reset-password",
        done="Your password is changed. Sign in again with the new one.",
        body='<form id="form"><label>New password (at least 8 characters)'
        '<input id="password" type="password" minlength="8" required autocomplete="new-password">'
        '</label><button type="submit">Set password</button></form>',
    )


@router.get(SCRIPT_PATH)
async def token_page_script() -> Response:
    return Response(_SCRIPT, media_type="text/javascript; charset=utf-8", headers=_ASSET_HEADERS)


@router.get(STYLE_PATH)
async def page_style() -> Response:
    return Response(_STYLE, media_type="text/css; charset=utf-8", headers=_ASSET_HEADERS)
