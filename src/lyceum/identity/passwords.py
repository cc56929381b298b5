"""Password policy (NIST SP 800-63B): at least 8 characters, long passphrases welcome,
no composition rules, and never one of the 10,000 most common passwords."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

MIN_LENGTH = 8
MAX_LENGTH = 128  # long enough for passphrases; bounds the hashing work per request


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    text = (resources.files("lyceum.identity") / "data" / "common_passwords.txt").read_text(
        encoding="utf-8"
    )
    return frozenset(
        line.strip().lower() for line in text.splitlines() if line and not line.startswith("#")
    )


def password_problem(password: str) -> str | None:
    """Why `password` is refused, or None when it is acceptable."""
    if len(password) < MIN_LENGTH:
        return f"must be at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"must be at most {MAX_LENGTH} characters"
    if password.lower() in common_passwords():
        return "is one of the most common passwords; choose another"
    return None
