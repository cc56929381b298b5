"""How the web app answers what goes wrong: HTML pages, never problem+json.

A page whose API call was refused shows why (403, 404, 409, 422, 429 with its
Retry-After); a signed-out browser asking for a signed-in page is sent to the sign-in
page and back; a form without a valid CSRF token is a 403 page."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from lyceum.web import i18n
from lyceum.web.api import ApiProblem
from lyceum.web.context import (
    CONTENT_SECURITY_POLICY,
    CsrfRejected,
    LoginRequired,
    PageNotFound,
    environment,
)
from lyceum.web.session import CSRF_FIELD


def _to_login(request: Request, next_path: str) -> Response:
    target = "/login?next=" + quote(next_path, safe="")
    if request.headers.get("hx-request") == "true":
        return Response(status_code=200, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


def error_page(request: Request, status: int, title: str, detail: str) -> Response:
    locale = i18n.negotiate(None, request.headers.get("accept-language"))
    html = (
        environment(locale)
        .get_template("error.html")
        .render(
            page=None,
            user=None,
            csrf_token="",
            csrf_field=CSRF_FIELD,
            locale=locale,
            direction=i18n.direction(locale),
            path=request.url.path,
            status=status,
            title=title,
            detail=detail,
        )
    )
    response = HTMLResponse(html, status_code=status)
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["Cache-Control"] = "no-store"
    return response


async def _login_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequired)
    return _to_login(request, exc.next_path)


async def _csrf(request: Request, exc: Exception) -> Response:
    t = i18n.translations(i18n.negotiate(None, request.headers.get("accept-language")))
    return error_page(
        request,
        403,
        t.gettext("This form has expired"),
        t.gettext("Reload the page and try again."),
    )


async def _not_found(request: Request, exc: Exception) -> Response:
    t = i18n.translations(i18n.negotiate(None, request.headers.get("accept-language")))
    return error_page(
        request, 404, t.gettext("Not found"), t.gettext("There is no such page here.")
    )


async def _api_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiProblem)
    if exc.status == 401:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return _to_login(request, path if request.method == "GET" else "/")
    status = exc.status if 400 <= exc.status < 600 else 500
    response = error_page(request, status, exc.title, exc.detail)
    response.headers.update(exc.wait_headers)
    return response


def install(app: FastAPI) -> None:
    app.add_exception_handler(LoginRequired, _login_required)
    app.add_exception_handler(CsrfRejected, _csrf)
    app.add_exception_handler(PageNotFound, _not_found)
    app.add_exception_handler(ApiProblem, _api_problem)
