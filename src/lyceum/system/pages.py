"""The stylesheet of Lyceum's own small pages outside the web app (the sandbox
provider's checkout and the pages a buyer lands on after paying). The pages mailed
links land on (`/verify-email`, `/reset-password`) are the web app's
(`lyceum.web.routes.account`).
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

router = APIRouter(include_in_schema=False)

STYLE_PATH = "/pages/page.css"
# Static, and the same for every deployment: cached by browsers for an hour.
_ASSET_HEADERS = {"Cache-Control": "public, max-age=3600"}

_STYLE = """body{font-family:system-ui,sans-serif;max-width:28rem;margin:4rem auto;
padding:0 1rem;color:#1f2933}button{background:#2563eb;color:#fff;border:0;
padding:.6rem 1rem;border-radius:6px;font-size:1rem}input{width:100%;padding:.5rem;
margin:.5rem 0 1rem;font-size:1rem}#result{margin-top:1rem}
"""


@router.get(STYLE_PATH)
async def page_style() -> Response:
    return Response(_STYLE, media_type="text/css; charset=utf-8", headers=_ASSET_HEADERS)
