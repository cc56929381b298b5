"""The two pages mailed links land on, so verification and reset work with Lyceum
alone. Each page only posts the token from its URL to the API; a web app that serves
its own pages at PUBLIC_BASE_URL replaces them."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(include_in_schema=False)

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} - Lyceum</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:system-ui,sans-serif;max-width:28rem;margin:4rem auto;padding:0 1rem;
color:#1f2933}}button{{background:#2563eb;color:#fff;border:0;padding:.6rem 1rem;
border-radius:6px;font-size:1rem}}input{{width:100%;padding:.5rem;margin:.5rem 0 1rem;
font-size:1rem}}#result{{margin-top:1rem}}</style></head>
<body><h1>{title}</h1>{body}<p id="result" role="status"></p>
<script>
const token = new URLSearchParams(location.search).get("token") || "";
async function send(path, payload) {{
  const response = await fetch(path, {{method: "POST",
    headers: {{"Content-Type": "application/json"}}, body: JSON.stringify(payload)}});
  if (response.ok) return "{done}";
  const problem = await response.json().catch(() => ({{}}));
  return problem.detail || "Something went wrong.";
}}
{script}
</script></body></html>"""


@router.get("/verify-email", response_class=HTMLResponse)
async def verify_email_page() -> str:
    return _PAGE.format(
        title="Confirm your email",
        body="<p>Confirm the email address of your account.</p>"
        '<button id="go">Confirm my email</button>',
        done="Your email address is confirmed. You can close this page.",
        script='document.getElementById("go").onclick = async () => {'
        ' document.getElementById("result").textContent ='
        ' await send("/api/v1/auth/verify-email", {token}); };',
    )


@router.get("/reset-password", response_class=HTMLResponse)
async def reset_password_page() -> str:
    return _PAGE.format(
        title="Choose a new password",
        body='<form id="form"><label>New password (at least 8 characters)'
        '<input id="password" type="password" minlength="8" required autocomplete="new-password">'
        '</label><button type="submit">Set password</button></form>',
        done="Your password is changed. Sign in again with the new one.",
        script='document.getElementById("form").onsubmit = async (event) => {'
        ' event.preventDefault(); document.getElementById("result").textContent ='
        ' await send("/api/v1/auth/password/reset",'
        ' {token, new_password: document.getElementById("password").value}); };',
    )
