"""Phone verification codes, derived from a stored nonce and the server's key: the code
itself is never stored, nor put in the job that sends it."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid

from lyceum.kit.security import constant_time_equal

CODE_DIGITS = 6


def new_nonce() -> str:
    return secrets.token_urlsafe(32)


def phone_code(secret_key: str, user_id: uuid.UUID, nonce: str) -> str:
    digest = hmac.new(
        secret_key.encode(), f"phone-code:{user_id}:{nonce}".encode(), hashlib.sha256
    ).digest()
    return f"{int.from_bytes(digest[:8], 'big') % 10**CODE_DIGITS:0{CODE_DIGITS}d}"


def code_matches(secret_key: str, user_id: uuid.UUID, nonce: str, code: str) -> bool:
    return constant_time_equal(phone_code(secret_key, user_id, nonce), code)
