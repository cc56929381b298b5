"""Passwords (argon2id, bcrypt verify), JWTs, opaque tokens and secret encryption.

Hashing runs in a thread: argon2id at OWASP's parameters costs tens of milliseconds of
CPU, which would otherwise stall every other request on the event loop.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import datetime as dt
import hashlib
import hmac
import os
import secrets
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import jwt
import structlog
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from pwdlib.hashers.bcrypt import BcryptHasher

from lyceum.kit.errors import Problem, ServiceUnavailable
from lyceum.kit.metrics import PASSWORD_HASH_REJECTED

# OWASP Password Storage Cheat Sheet: argon2id, m=19 MiB, t=2, p=1.
ARGON2_MEMORY_KIB = 19 * 1024
ARGON2_TIME_COST = 2
ARGON2_PARALLELISM = 1

_T = TypeVar("_T")

_password_hash = PasswordHash(
    (
        Argon2Hasher(
            memory_cost=ARGON2_MEMORY_KIB,
            time_cost=ARGON2_TIME_COST,
            parallelism=ARGON2_PARALLELISM,
        ),
        BcryptHasher(),
    )
)
# Verified against when an email is unknown, so a miss costs as much as a hit.
_DUMMY_HASH = _password_hash.hash(secrets.token_urlsafe(16))


# Hashing gets its own pool, one thread per core. With more threads than cores, each
# argon2id run (19 MiB of memory-hard work) evicts the others' memory from the CPU
# caches and they all slow down; measured in bench/login.py.
HASHING_THREADS = os.cpu_count() or 1
_hashing_pool = ThreadPoolExecutor(max_workers=HASHING_THREADS, thread_name_prefix="argon2")

# How long a client refused by the gate is asked to wait before trying again.
HASHING_RETRY_AFTER = 2

logger = structlog.get_logger("lyceum.security")


class HashingOverloaded(ServiceUnavailable):
    """Every hashing thread is busy and the queue in front of them is full (or this
    request waited there past its bound): 503 with Retry-After, and nothing written."""

    def __init__(self, detail: str) -> None:
        super().__init__(
            detail, retry_after=HASHING_RETRY_AFTER, title="Password hashing overloaded"
        )


class HashingGate:
    """The one way into the hashing threads: at most `slots` hashes run (one per
    thread, so the pool itself never queues) and at most `queue_limit` wait, first come
    first served. Beyond that a request is refused at once with `HashingOverloaded`
    (503) instead of piling up: an unbounded backlog answers sign-ins long after their
    clients have given up, and keeps a stopping process busy with them.

    A waiter is dropped before it hashes when its task is cancelled (the request has
    gone) or when it has waited `max_wait` seconds: by then its client has most likely
    given up, and the hash would be work for nobody. A hash that has started always
    runs to the end; its slot is given back when the thread finishes, never earlier, so
    no more than `slots` hashes ever compete for the cores.

    Not thread-safe: used from the event loop of one process."""

    def __init__(self, slots: int, *, queue_limit: int = 64, max_wait: float = 10.0) -> None:
        self.slots = slots
        self.queue_limit = queue_limit
        self.max_wait = max_wait
        self.running = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    def configure(self, *, queue_limit: int, max_wait: float) -> None:
        self.queue_limit = queue_limit
        self.max_wait = max_wait

    @property
    def waiting(self) -> int:
        return sum(1 for waiter in self._waiters if not waiter.done())

    async def run(self, function: Callable[..., _T], *args: Any) -> _T:
        loop = asyncio.get_running_loop()
        if self.running >= self.slots or self._waiters:
            await self._wait_for_slot(loop)
        else:
            self.running += 1
        try:
            work = _hashing_pool.submit(function, *args)
        except BaseException:
            self._release()
            raise
        # The slot is given back when the thread is done, not when the awaiting task is:
        # a cancelled request leaves its hash running to the end.
        work.add_done_callback(lambda _: self._release_from_thread(loop))
        return await asyncio.wrap_future(work, loop=loop)

    async def _wait_for_slot(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.waiting >= self.queue_limit:
            self._reject("queue")
            raise HashingOverloaded(
                "Too many sign-ins and password changes are waiting for the password "
                f"hashing threads ({self.slots} busy, {self.queue_limit} queued); "
                "try again in a moment."
            )
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(self.max_wait):
                await waiter
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled():
                self._release()  # the slot was handed over just as this waiter gave up
            else:
                waiter.cancel()
                self._discard(waiter)
            if isinstance(exc, TimeoutError):
                self._reject("wait")
                raise HashingOverloaded(
                    f"This request waited {self.max_wait:g} s for a password hashing "
                    "thread and was dropped before hashing; try again in a moment."
                ) from None
            raise

    def _discard(self, waiter: asyncio.Future[None]) -> None:
        with contextlib.suppress(ValueError):
            self._waiters.remove(waiter)

    def _release_from_thread(self, loop: asyncio.AbstractEventLoop) -> None:
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is waiting
            loop.call_soon_threadsafe(self._release)

    def _release(self) -> None:
        """A hash ended: hand its slot to the first live waiter, or free it."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.running -= 1

    def _reject(self, reason: str) -> None:
        PASSWORD_HASH_REJECTED.labels(reason=reason).inc()
        logger.warning(
            "password_hash_rejected",
            reason=reason,
            running=self.running,
            waiting=self.waiting,
            queue_limit=self.queue_limit,
        )


hashing_gate = HashingGate(HASHING_THREADS)

# The OpenAPI `responses` of every route that hashes a password.
HASHING_RESPONSES: dict[int | str, dict[str, Any]] = {
    503: {
        "model": Problem,
        "description": "Password hashing is overloaded: every hashing thread is busy and "
        "PASSWORD_HASH_QUEUE requests already wait (or this one waited "
        "PASSWORD_HASH_MAX_WAIT_SECONDS). Nothing was changed; try again after Retry-After.",
        "headers": {
            "Retry-After": {
                "description": "Seconds to wait before trying again.",
                "schema": {"type": "integer"},
            }
        },
    }
}


async def _off_loop(function: Callable[..., _T], *args: Any) -> _T:
    return await hashing_gate.run(function, *args)


async def hash_password(password: str) -> str:
    return await _off_loop(_password_hash.hash, password)


async def verify_password(password: str, stored_hash: str | None) -> tuple[bool, str | None]:
    """(valid, new hash if the stored one should be upgraded, e.g. imported bcrypt)."""
    if stored_hash is None:
        await _off_loop(_password_hash.verify, password, _DUMMY_HASH)
        return False, None
    return await _off_loop(_verify_and_update, password, stored_hash)


def _verify_and_update(password: str, stored_hash: str) -> tuple[bool, str | None]:
    """In the hashing thread. Only the hash's own failures mean "not valid": the gate's
    refusal (503) must reach the caller, not turn into a wrong password (401)."""
    try:
        result: tuple[bool, str | None] = _password_hash.verify_and_update(password, stored_hash)
    except Exception:  # an unrecognised or corrupt hash never authenticates
        return False, None
    return result


def new_token(nbytes: int = 32) -> str:
    """An opaque, URL-safe random token (refresh, verification, reset, MFA)."""
    return secrets.token_urlsafe(nbytes)


def token_digest(token: str) -> str:
    """Tokens are stored only as their SHA-256: a database leak yields nothing usable."""
    return hashlib.sha256(token.encode()).hexdigest()


def constant_time_equal(left: str, right: str) -> bool:
    """Compare a secret with what a caller sent, in constant time. Strings are compared
    as UTF-8 (lone surrogates kept): `hmac.compare_digest` on two `str` raises TypeError
    for any non-ASCII character, which a caller controls (a header, a token, a JSON
    field), so every such comparison in Lyceum goes through here."""
    return hmac.compare_digest(
        left.encode("utf-8", "surrogatepass"), right.encode("utf-8", "surrogatepass")
    )


TokenType = Literal["access", "refresh", "web", "socket"]


class InvalidTokenError(Exception):
    pass


@dataclass(frozen=True)
class AccessClaims:
    user_id: uuid.UUID
    role: str
    jti: str
    # The login session the token was issued for: signing it out ends the token too.
    session_id: uuid.UUID
    expires_at: dt.datetime


class TokenCodec:
    """HS256 JWTs with `sub`, `role`, `exp`, `iat`, `jti`, `typ`, `iss` and `aud` (and
    `sid` in access tokens);
    only the configured algorithm is accepted (so `alg: none` never is)."""

    algorithm = "HS256"

    # Access tokens remembered as verified (see `decode_access`): one per active client.
    verified_capacity = 10_000

    def __init__(self, secret: str, *, issuer: str, audience: str) -> None:
        self._secret = secret
        self.issuer = issuer
        self.audience = audience
        self._verified: dict[str, tuple[AccessClaims, int, int]] = {}

    def encode(
        self,
        *,
        subject: uuid.UUID,
        role: str,
        token_type: TokenType,
        now: dt.datetime,
        lifetime: dt.timedelta,
        extra: dict[str, Any] | None = None,
    ) -> tuple[str, str, dt.datetime]:
        jti = uuid.uuid4().hex
        expires = now + lifetime
        payload = {
            "sub": str(subject),
            "role": role,
            "typ": token_type,
            "jti": jti,
            "iat": int(now.timestamp()),
            "exp": int(expires.timestamp()),
            "iss": self.issuer,
            "aud": self.audience,
            **(extra or {}),
        }
        return jwt.encode(payload, self._secret, algorithm=self.algorithm), jti, expires

    def decode(self, token: str, *, expected_type: TokenType, now: dt.datetime) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._secret,
                algorithms=[self.algorithm],
                audience=self.audience,
                issuer=self.issuer,
                options={
                    "require": ["sub", "exp", "iat", "jti", "typ", "iss", "aud"],
                    # Time claims are checked below against the injected clock.
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.PyJWTError as error:
            raise InvalidTokenError(str(error)) from None
        if claims.get("typ") != expected_type:
            raise InvalidTokenError(f"expected a {expected_type} token")
        if not isinstance(claims["exp"], int) or claims["exp"] <= now.timestamp():
            raise InvalidTokenError("token expired")
        if not isinstance(claims["iat"], int) or claims["iat"] > now.timestamp() + 60:
            raise InvalidTokenError("token issued in the future")
        return claims

    def decode_socket_ticket(self, token: str, *, now: dt.datetime) -> AccessClaims:
        """A socket ticket's claims: the same as an access token's (`sid` required),
        but `typ: socket`, which only the Socket.IO connection accepts: a ticket a page
        script holds is no key to the REST API."""
        claims = self.decode(token, expected_type="socket", now=now)
        try:
            return AccessClaims(
                user_id=uuid.UUID(claims["sub"]),
                role=str(claims["role"]),
                jti=str(claims["jti"]),
                session_id=uuid.UUID(claims["sid"]),
                expires_at=dt.datetime.fromtimestamp(claims["exp"], dt.UTC),
            )
        except (KeyError, ValueError, TypeError) as error:
            raise InvalidTokenError("malformed claims") from error

    def decode_access(self, token: str, *, now: dt.datetime) -> AccessClaims:
        """An access token's claims. `sid` is required: every access token belongs to
        a login session (checked against its `sub` by `identity.permissions`), so a
        sign-out, a password change or a deactivation ends it before it expires.

        Every authenticated request decodes its token, and a client sends the same one
        for its whole lifetime: a token whose signature, issuer, audience, type and claims
        were verified once is remembered (bounded, oldest forgotten first), so the next
        request only compares the times. The cache holds nothing a request must re-check:
        expiry and issue time are compared with `now` on every call, and revocation is
        the caller's deny-list and session checks, which never come from here."""
        cached = self._verified.get(token)
        if cached is None:
            claims = self.decode(token, expected_type="access", now=now)
            try:
                access = AccessClaims(
                    user_id=uuid.UUID(claims["sub"]),
                    role=str(claims["role"]),
                    jti=str(claims["jti"]),
                    session_id=uuid.UUID(claims["sid"]),
                    expires_at=dt.datetime.fromtimestamp(claims["exp"], dt.UTC),
                )
            except (KeyError, ValueError, TypeError) as error:
                raise InvalidTokenError("malformed claims") from error
            if len(self._verified) >= self.verified_capacity:
                del self._verified[next(iter(self._verified))]
            self._verified[token] = cached = (access, claims["exp"], claims["iat"])
            return access
        access, expires, issued = cached
        timestamp = now.timestamp()
        if expires <= timestamp:
            raise InvalidTokenError("token expired")
        if issued > timestamp + 60:
            raise InvalidTokenError("token issued in the future")
        return access


class SecretBox:
    """Symmetric encryption for secrets we must read back (TOTP seeds), keyed from
    SECRET_KEY through HKDF so the JWT key is never used directly for encryption."""

    def __init__(self, secret_key: str) -> None:
        key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=b"lyceum-secret-box", info=b"v1"
        ).derive(secret_key.encode())
        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    def seal(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken as error:
            raise ValueError("cannot decrypt: wrong SECRET_KEY or corrupt value") from error
