"""Passwords (argon2id, bcrypt verify), JWTs, opaque tokens and secret encryption.

Hashing runs in a thread: argon2id at OWASP's parameters costs tens of milliseconds of
CPU, which would otherwise stall every other request on the event loop.
"""

from __future__ import annotations

import asyncio
import base64
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
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from pwdlib.hashers.bcrypt import BcryptHasher

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
_hashing_pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="argon2")


async def _off_loop(function: Callable[..., _T], *args: Any) -> _T:
    return await asyncio.get_running_loop().run_in_executor(_hashing_pool, function, *args)


async def hash_password(password: str) -> str:
    return await _off_loop(_password_hash.hash, password)


async def verify_password(password: str, stored_hash: str | None) -> tuple[bool, str | None]:
    """(valid, new hash if the stored one should be upgraded, e.g. imported bcrypt)."""
    if stored_hash is None:
        await _off_loop(_password_hash.verify, password, _DUMMY_HASH)
        return False, None
    try:
        return await _off_loop(_password_hash.verify_and_update, password, stored_hash)
    except Exception:  # an unrecognised or corrupt hash never authenticates
        return False, None


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
