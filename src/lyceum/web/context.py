"""What every page handler gets: `Page` (the browser's session, its API client, its
language, and `render`), as a FastAPI dependency.

`PageDep` works for anyone; `SignedInPage` sends a signed-out browser to the sign-in
page (and back afterwards); `FormPage` is for state-changing requests and refuses one
without a valid CSRF token; `SignedInForm` is both.

Every page is sent with a Content-Security-Policy that allows scripts, styles, images
and connections from this origin only (no inline script or style, no `eval`), and no
framing.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Annotated, Any
from urllib.parse import quote

from babel.dates import format_date, format_datetime
from babel.numbers import format_currency, get_currency_precision
from fastapi import Depends, Request
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape
from starlette.responses import HTMLResponse, RedirectResponse, Response

from lyceum.config import Settings
from lyceum.identity.service import signed_in_user
from lyceum.kit.clock import ClockDep
from lyceum.kit.db import Session, commit
from lyceum.kit.runtime import Runtime
from lyceum.models.identity import User
from lyceum.web import i18n
from lyceum.web.api import Api, ApiProblem
from lyceum.web.markdown import render_markdown
from lyceum.web.pagecache import TICKET, ShownUser, Ticket
from lyceum.web.session import (
    CSRF_FIELD,
    CSRF_HEADER,
    INTERNAL_ACCESS_LIFETIME,
    SESSION_COOKIE,
    InternalTokens,
    SessionFacts,
    WebClaims,
    clear_session_cookie,
    csrf_token,
    csrf_valid,
    decode_session,
    facts_generation,
    keep_facts,
    secure_cookies,
    set_csrf_cookie,
)

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; font-src 'self'; media-src 'self'; object-src 'none'; "
    "frame-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
STATIC_PATH = "/static"
# A path of this site: printable URL characters only, one leading slash.
_LOCAL_PATH = re.compile(r"^/(?![/\\])[A-Za-z0-9\-._~!$&'()*+,;=:@%/?#]*$")


def is_local_path(target: str) -> bool:
    """`target` stays on this site: not `//host`, `/\\host`, a URL, or a path with a
    tab, line break or space (browsers drop those, which can turn `/\t/host` into
    `//host`)."""
    return len(target) <= 2000 and _LOCAL_PATH.match(target) is not None


class LoginRequired(Exception):
    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


class CsrfRejected(Exception):
    pass


class PageNotFound(Exception):
    pass


@cache
def _static_versions() -> dict[str, str]:
    """A content hash per static file, appended to its URL so browsers may cache the
    files for a year and still fetch a changed one at once."""
    versions: dict[str, str] = {}
    root = resources.files("lyceum.web") / "static"

    def walk(node: Any, prefix: str) -> None:
        for entry in node.iterdir():
            name = f"{prefix}{entry.name}"
            if entry.is_dir():
                walk(entry, name + "/")
            else:
                versions[name] = hashlib.sha256(entry.read_bytes()).hexdigest()[:12]

    walk(root, "")
    return versions


def static_url(path: str) -> str:
    version = _static_versions().get(path)
    suffix = f"?v={version}" if version else ""
    return f"{STATIC_PATH}/{path}{suffix}"


def format_money(price: Mapping[str, Any], *, locale: str) -> str:
    """An API price ({amount_cents, currency}, minor units) for people to read."""
    return _money_text(int(price["amount_cents"]), str(price["currency"]), locale)


# Babel parses the locale's patterns on every call (~45 us a price, a fifth of a page of
# course cards), and a catalog shows the same few prices again and again: the texts are
# kept (bounded) by (amount, currency, language).
@functools.lru_cache(maxsize=4096)
def _money_text(cents: int, currency: str, locale: str) -> str:
    amount = Decimal(cents).scaleb(-get_currency_precision(currency))
    return str(format_currency(amount, currency, locale=locale))


def _parse(value: str | dt.datetime | None) -> dt.datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(str(value))


@functools.lru_cache(maxsize=4096)
def format_when(value: str | dt.datetime | None, *, locale: str) -> str:
    """An API timestamp (UTC ISO-8601) as a date and time, in UTC. (Kept, bounded, as
    `_money_text`: Babel spends ~40 us on each.)"""
    moment = _parse(value)
    if moment is None:
        return ""
    return str(format_datetime(moment, "medium", tzinfo=dt.UTC, locale=locale)) + " UTC"


@functools.lru_cache(maxsize=4096)
def format_day(value: str | dt.datetime | None, *, locale: str) -> str:
    moment = _parse(value)
    return "" if moment is None else str(format_date(moment, "medium", locale=locale))


_MARK = re.compile(r"&lt;(/?)mark&gt;")


def highlights(fragment: str | None) -> Markup:
    """The catalog's `snippet` (escaped text with hits in <mark>) as HTML, trusting
    nothing but <mark>: the whole string is escaped again and only the exact
    `<mark>`/`</mark>` tags come back."""
    return Markup(_MARK.sub(r"<\1mark>", str(escape(fragment or ""))))  # noqa: S704


@cache
def environment(locale: str) -> Environment:
    """One Jinja2 environment per language, with its gettext installed (newstyle:
    `_("Hello %(name)s", name=...)` escapes its arguments)."""
    env = Environment(
        loader=PackageLoader("lyceum", "templates/web"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(i18n.translations(locale), newstyle=True)  # type: ignore[attr-defined]
    env.globals["static"] = static_url
    env.globals["locale_names"] = i18n.LOCALE_NAMES
    # A fresh Idempotency-Key per rendered form (a double submit is one purchase).
    env.globals["new_key"] = lambda: secrets.token_urlsafe(18)
    env.filters["markdown"] = render_markdown
    env.filters["highlights"] = highlights
    env.filters["urlquote"] = lambda value: quote(str(value), safe="")
    env.filters["money"] = functools.partial(format_money, locale=locale)
    env.filters["when"] = functools.partial(format_when, locale=locale)
    env.filters["day"] = functools.partial(format_day, locale=locale)
    return env


@dataclass
class Page:
    request: Request
    settings: Settings
    runtime: Runtime
    api: Api
    user: User | None
    claims: WebClaims | None
    csrf: str
    new_csrf: bool
    locale: str
    now: dt.datetime
    # The short access token the web app's API calls carry (None when signed out); a
    # page script may need it for the Socket.IO connection (`/live/token` hands it out).
    access_token: str | None = None
    # Cookies to set or clear on whatever response this request ends with.
    clear_session: bool = False
    extra_headers: dict[str, str] = field(default_factory=dict)
    # For a page the page cache keeps for every user of a role: the user as templates
    # show them there (the name a marker the cache fills in per answer).
    shown_user: ShownUser | None = None

    @property
    def htmx(self) -> bool:
        """An htmx request (answer with a fragment, not a whole page)."""
        return self.request.headers.get("hx-request") == "true"

    def gettext(self, message: str, **variables: Any) -> str:
        text = i18n.translations(self.locale).gettext(message)
        return text % variables if variables else text

    def socket_ticket(self) -> str:
        """A ticket (`typ: socket`, 5 minutes) that signs this session's Socket.IO
        connection in; the REST API refuses it."""
        if self.claims is None or self.user is None:
            raise LoginRequired(self.request.url.path)
        ticket, _, _ = self.runtime.tokens.encode(
            subject=self.user.id,
            role=self.user.role.value,
            token_type="socket",  # noqa: S106 (a JWT type, not a secret)
            now=self.now,
            lifetime=INTERNAL_ACCESS_LIFETIME,
            extra={"sid": str(self.claims.session_id)},
        )
        return ticket

    @property
    def secure_cookies(self) -> bool:
        return secure_cookies(self.settings, self.request)

    def _finish(self, response: Response) -> Response:
        if self.new_csrf:
            set_csrf_cookie(response, self.csrf, self.secure_cookies)
        if self.clear_session:
            clear_session_cookie(response, self.secure_cookies)
        for key, value in self.extra_headers.items():
            response.headers[key] = value
        return response

    def render(
        self,
        template: str,
        *,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
        **context: Any,
    ) -> Response:
        """`template` as an HTML answer, 200 unless `status` says otherwise. A form shown
        again with an API problem (`problem`) answers with the problem's form status
        and passes on its Retry-After (a limit met, a server too busy): a client told
        to wait by the API is told so by the page too."""
        problem = context.get("problem")
        if isinstance(problem, ApiProblem):
            headers = {**problem.wait_headers, **(headers or {})}
            status = problem.form_status if status is None else status
        env = environment(self.locale)
        html = env.get_template(template).render(
            page=self,
            user=self.shown_user if self.shown_user is not None else self.user,
            csrf_token=self.csrf,
            csrf_field=CSRF_FIELD,
            locale=self.locale,
            direction=i18n.direction(self.locale),
            path=self.request.url.path,
            **context,
        )
        response = HTMLResponse(
            html, status_code=200 if status is None else status, headers=dict(headers or {})
        )
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response.headers["Cache-Control"] = "no-store"
        response.headers["Vary"] = "Cookie, Accept-Language, HX-Request"
        return self._finish(response)

    def redirect(self, url: str) -> Response:
        """A 303 to `url`; for htmx, a 200 telling htmx to go there."""
        if not is_local_path(url):
            url = "/"
        if self.htmx:
            return self._finish(Response(status_code=200, headers={"HX-Redirect": url}))
        return self._finish(RedirectResponse(url, status_code=303))

    def finish(self, response: Response) -> Response:
        """Any other response (a file, a stream): with the cookies this request set.
        A file passed on from the API (a PDF, an image, a CSV) is sandboxed: shown on
        this origin, it may run nothing and load nothing."""
        media_type = response.headers.get("content-type", "")
        if not media_type.startswith(("text/html", "text/event-stream")):
            response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
            response.headers["Cross-Origin-Resource-Policy"] = "same-origin"
        return self._finish(response)


_internal_tokens = InternalTokens()


def internal_tokens() -> InternalTokens:
    return _internal_tokens


async def page(request: Request, session: Session, clock: ClockDep) -> Page:
    runtime: Runtime = request.app.state.runtime
    settings: Settings = request.app.state.settings
    now = clock.now()
    user: User | None = None
    claims: WebClaims | None = None
    clear = False
    shown: ShownUser | None = None
    # The page cache keeps this page for every user of a role (`web.pagecache`).
    ticket: Ticket | None = request.scope.get(TICKET)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        claims = decode_session(runtime.tokens, cookie, now=now)
        if claims is not None:
            # Read before the check: facts kept under it are the check's (see
            # `web.session.facts_generation`).
            generation = await facts_generation(runtime.cache, claims.user_id) if ticket else b""
            user = await signed_in_user(session, claims.user_id, claims.session_id)
            if user is None:
                _internal_tokens.forget(claims.session_id)
                claims = None
            elif ticket is not None:
                facts = SessionFacts.of(user)
                await keep_facts(runtime.cache, claims, generation, facts, now)
                shown = ticket.checked(facts)
        if claims is None:
            clear = True
    # The page's own transaction ends here: its API calls take connections of their own.
    await commit(session)
    token = _internal_tokens.token_for(runtime.tokens, claims, now) if claims is not None else None
    csrf, new_csrf = csrf_token(request)
    chosen = user.locale if user else request.cookies.get(i18n.LANGUAGE_COOKIE)
    locale = i18n.negotiate(chosen, request.headers.get("accept-language"))
    return Page(
        request=request,
        settings=settings,
        runtime=runtime,
        api=Api(request, token),
        user=user,
        claims=claims,
        csrf=csrf,
        new_csrf=new_csrf,
        locale=locale,
        now=now,
        access_token=token,
        clear_session=clear,
        shown_user=shown,
    )


PageDep = Annotated[Page, Depends(page)]


async def signed_in_page(current: PageDep) -> Page:
    if current.user is None:
        request = current.request
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target)
    return current


SignedInPage = Annotated[Page, Depends(signed_in_page)]


async def _submitted_csrf(request: Request) -> str | None:
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


async def form_page(current: PageDep) -> Page:
    if not csrf_valid(current.request, await _submitted_csrf(current.request)):
        raise CsrfRejected()
    return current


FormPage = Annotated[Page, Depends(form_page)]


async def signed_in_form(current: SignedInPage) -> Page:
    if not csrf_valid(current.request, await _submitted_csrf(current.request)):
        raise CsrfRejected()
    return current


SignedInForm = Annotated[Page, Depends(signed_in_form)]
