"""Browser sessions: a cookie tied to a server-side login session, and CSRF tokens.

Signing in from the browser goes through the API's own login (rate limits, MFA, the
login session row): the `lyceum_session` cookie then holds a signed token (`typ: web`)
naming the user and that login session, valid until the login session's own expiry.
It is HttpOnly, SameSite=Lax, and Secure in production. Each request checks the login
session is still open (one query, the same one the API's bearer check makes), so
signing out, "sign out everywhere", a password change or a deactivation ends browser
sessions exactly as they end API tokens. (The one exception: the public pages the page
cache answers a signed-in browser (`web.pagecache`) rely on the session facts a page
kept after that check, for at most a few minutes, which every one of those changes
deletes; see `SessionFacts`.)

For its calls to the API the web app mints a short access token for the same login
session, kept per session until shortly before it expires.

CSRF: every form carries a token and every htmx request sends it in `X-CSRF-Token`; it
must equal the `lyceum_csrf` cookie (double submit; the cookie is HttpOnly and random
per browser). Requests whose `Origin` names another site are refused as well.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import secrets
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

import orjson
from starlette.requests import Request
from starlette.responses import Response

from lyceum.config import Settings
from lyceum.identity.service import web_facts_generation_key
from lyceum.kit.cache import Cache
from lyceum.kit.security import InvalidTokenError, TokenCodec, constant_time_equal
from lyceum.models.identity import Role, User

SESSION_COOKIE = "lyceum_session"
CSRF_COOKIE = "lyceum_csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
# Minted for the web app's own API calls; renewed when less than a minute is left.
INTERNAL_ACCESS_LIFETIME = dt.timedelta(minutes=5)
_RENEW_BEFORE = dt.timedelta(minutes=1)


@dataclass(frozen=True)
class WebClaims:
    user_id: uuid.UUID
    session_id: uuid.UUID
    role: str
    expires_at: dt.datetime

    # Worked out once per (remembered) cookie: the page cache asks on every answer.
    @functools.cached_property
    def facts_generation_key(self) -> str:
        return web_facts_generation_key(self.user_id)

    @functools.cached_property
    def facts_key_prefix(self) -> str:
        return f"{_FACTS_PREFIX}{self.session_id}:"


def encode_session(
    tokens: TokenCodec,
    *,
    user_id: uuid.UUID,
    role: str,
    session_id: uuid.UUID,
    now: dt.datetime,
    lifetime: dt.timedelta,
) -> str:
    token, _, _ = tokens.encode(
        subject=user_id,
        role=role,
        token_type="web",  # noqa: S106 (a JWT type, not a secret)
        now=now,
        lifetime=lifetime,
        extra={"sid": str(session_id)},
    )
    return token


def decode_session(tokens: TokenCodec, value: str, *, now: dt.datetime) -> WebClaims | None:
    try:
        claims = tokens.decode(value, expected_type="web", now=now)
        return WebClaims(
            user_id=uuid.UUID(claims["sub"]),
            session_id=uuid.UUID(claims["sid"]),
            role=str(claims["role"]),
            expires_at=dt.datetime.fromtimestamp(claims["exp"], dt.UTC),
        )
    except (InvalidTokenError, KeyError, ValueError, TypeError):
        return None


class SessionClaimsMemo:
    """The claims of session cookies seen before, by the cookie's exact text (bounded;
    oldest forgotten first), so a repeated cookie is not verified again. Only valid
    cookies are kept, and expiry is checked on every use."""

    capacity = 10_000

    def __init__(self) -> None:
        self._claims: dict[str, WebClaims] = {}

    def decode(self, tokens: TokenCodec, value: str, *, now: dt.datetime) -> WebClaims | None:
        claims = self._claims.get(value)
        if claims is None:
            claims = decode_session(tokens, value, now=now)
            if claims is None:
                return None
            if len(self._claims) >= self.capacity:
                del self._claims[next(iter(self._claims))]
            self._claims[value] = claims
        return claims if claims.expires_at > now else None


# Session facts: what the layout shows of a signed-in user ---------------------------------
#
# A page that has checked a login session in the database keeps, for a few minutes (never
# past the session's expiry), what the layout shows of its user, under the login session
# and the user's current generation (`identity.service.web_facts_generation_key`), which
# anything that ends the user's sessions or changes these facts deletes. The page cache
# (`web.pagecache`) answers a signed-in browser's public page from them without the
# database; without them (expired, evicted, deleted, another process's memory) the page
# checks the database again.
FACTS_TTL = dt.timedelta(minutes=5)
_GENERATION_TTL = 3600.0  # seconds; a lost generation only costs a database check
_FACTS_PREFIX = "web-facts:"


@dataclass(frozen=True)
class SessionFacts:
    user_id: uuid.UUID
    role: Role
    full_name: str
    locale: str | None

    @classmethod
    def of(cls, user: User) -> SessionFacts:
        return cls(user_id=user.id, role=user.role, full_name=user.full_name, locale=user.locale)

    def encode(self) -> bytes:
        return orjson.dumps(
            {
                "user_id": str(self.user_id),
                "role": self.role.value,
                "full_name": self.full_name,
                "locale": self.locale,
            }
        )

    @classmethod
    def decode(cls, raw: bytes) -> SessionFacts | None:
        return _decoded_facts(raw)

    @classmethod
    def _decode(cls, raw: bytes) -> SessionFacts | None:
        try:
            data = orjson.loads(raw)
            return cls(
                user_id=uuid.UUID(data["user_id"]),
                role=Role(data["role"]),
                full_name=str(data["full_name"]),
                locale=None if data["locale"] is None else str(data["locale"]),
            )
        except (orjson.JSONDecodeError, KeyError, ValueError, TypeError):
            return None


# The same few facts are read again and again (immutable: kept, bounded, by their bytes).
@functools.lru_cache(maxsize=4096)
def _decoded_facts(raw: bytes) -> SessionFacts | None:
    return SessionFacts._decode(raw)


def _facts_key(claims: WebClaims, generation: bytes) -> str:
    return claims.facts_key_prefix + generation.decode("ascii", "replace")


async def facts_generation(cache: Cache, user_id: uuid.UUID) -> bytes:
    """The user's current generation, a new one if there is none: to be read BEFORE the
    database check whose result is kept under it (an invalidation that commits after the
    read deletes it, so what is kept under it is never read)."""
    key = web_facts_generation_key(user_id)
    current = await cache.get(key)
    if current is None:
        await cache.add(key, secrets.token_hex(8).encode(), _GENERATION_TTL)
        current = await cache.get(key)
    return current or b""


async def keep_facts(
    cache: Cache,
    claims: WebClaims,
    generation: bytes,
    facts: SessionFacts,
    now: dt.datetime,
) -> None:
    ttl = min(FACTS_TTL, claims.expires_at - now).total_seconds()
    if generation and ttl > 0 and facts.user_id == claims.user_id:
        await cache.set(_facts_key(claims, generation), facts.encode(), ttl)


async def kept_facts(cache: Cache, claims: WebClaims) -> SessionFacts | None:
    """The facts kept for this session under the user's current generation, or None."""
    generation = await cache.get(claims.facts_generation_key)
    if not generation:
        return None
    raw = await cache.get(_facts_key(claims, generation))
    facts = None if raw is None else SessionFacts.decode(raw)
    return facts if facts is not None and facts.user_id == claims.user_id else None


class InternalTokens:
    """Access tokens the web app mints for its in-process API calls, one per login
    session, reused until a minute before expiry (bounded; oldest forgotten first)."""

    capacity = 10_000

    def __init__(self) -> None:
        self._tokens: dict[uuid.UUID, tuple[str, dt.datetime]] = {}

    def token_for(self, tokens: TokenCodec, claims: WebClaims, now: dt.datetime) -> str:
        held = self._tokens.get(claims.session_id)
        if held is not None and held[1] - _RENEW_BEFORE > now:
            return held[0]
        lifetime = min(INTERNAL_ACCESS_LIFETIME, claims.expires_at - now)
        token, _, expires = tokens.encode(
            subject=claims.user_id,
            role=claims.role,
            token_type="access",  # noqa: S106 (a JWT type, not a secret)
            now=now,
            lifetime=lifetime,
            extra={"sid": str(claims.session_id)},
        )
        if len(self._tokens) >= self.capacity:
            del self._tokens[next(iter(self._tokens))]
        self._tokens[claims.session_id] = (token, expires)
        return token

    def forget(self, session_id: uuid.UUID) -> None:
        self._tokens.pop(session_id, None)


def secure_cookies(settings: Settings, request: Request | None = None) -> bool:
    """Cookies are Secure in production, and wherever the site is served over https
    (PUBLIC_BASE_URL, or the request itself) even when ENVIRONMENT was left alone."""
    if settings.is_production:
        return True
    base = settings.public_base_url
    if base is not None and str(base).startswith("https:"):
        return True
    return request is not None and request.url.scheme == "https"


def set_session_cookie(response: Response, value: str, *, max_age: int, secure: bool) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=secure,
    )


def clear_session_cookie(response: Response, secure: bool) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=secure)


_CSRF_SHAPE = re.compile(r"^[A-Za-z0-9_-]{43}$")


def csrf_shape_ok(value: str) -> bool:
    """`value` has the shape of a CSRF token this code makes."""
    return _CSRF_SHAPE.match(value) is not None


def csrf_token(request: Request) -> tuple[str, bool]:
    """This browser's CSRF token, and whether it is new (to be set as a cookie). Only
    a value of the shape this code makes is taken from the cookie."""
    existing = request.cookies.get(CSRF_COOKIE)
    if existing and _CSRF_SHAPE.match(existing):
        return existing, False
    return secrets.token_urlsafe(32), True


def set_csrf_cookie(response: Response, token: str, secure: bool) -> None:
    response.set_cookie(
        CSRF_COOKIE,
        token,
        path="/",
        httponly=True,
        samesite="lax",
        secure=secure,
    )


def csrf_valid(request: Request, submitted: str | None) -> bool:
    """The submitted token equals this browser's cookie, and the request (if it says
    where it comes from) comes from this site."""
    origin = request.headers.get("origin")
    # The host only: behind a TLS-terminating proxy the scheme seen here is http. An
    # opaque origin ("null", from a sandboxed frame or a redirect chain) is refused.
    if origin is not None and urlsplit(origin).netloc != request.url.netloc:
        return False
    # Without Origin (some extensions strip it), the browser's own Fetch Metadata.
    if origin is None and request.headers.get("sec-fetch-site") == "cross-site":
        return False
    expected = request.cookies.get(CSRF_COOKIE)
    if not expected or not submitted or not _CSRF_SHAPE.match(expected):
        return False
    return constant_time_equal(expected, submitted)
