"""Access tokens: what the verified-token cache of `TokenCodec.decode_access` may and may
not remember. Times come from the caller, so an expiry is a changed `now`, not a sleep."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from lyceum.kit.security import InvalidTokenError, TokenCodec

NOW = dt.datetime(2026, 12, 3, 12, 0, tzinfo=dt.UTC)


def codec() -> TokenCodec:
    return TokenCodec("s" * 40, issuer="lyceum", audience="lyceum-api")


def access_token(tokens: TokenCodec, *, lifetime: dt.timedelta, now: dt.datetime = NOW) -> str:
    token, _, _ = tokens.encode(
        subject=uuid.uuid4(),
        role="student",
        token_type="access",
        now=now,
        lifetime=lifetime,
        extra={"sid": str(uuid.uuid4())},
    )
    return token


def test_a_remembered_token_still_expires() -> None:
    tokens = codec()
    token = access_token(tokens, lifetime=dt.timedelta(minutes=5))
    first = tokens.decode_access(token, now=NOW)
    assert tokens.decode_access(token, now=NOW + dt.timedelta(minutes=4)) == first
    with pytest.raises(InvalidTokenError, match="expired"):
        tokens.decode_access(token, now=NOW + dt.timedelta(minutes=5))


def test_a_token_from_the_future_is_refused_even_when_remembered() -> None:
    tokens = codec()
    token = access_token(tokens, lifetime=dt.timedelta(hours=1), now=NOW + dt.timedelta(minutes=5))
    tokens.decode_access(token, now=NOW + dt.timedelta(minutes=5))
    with pytest.raises(InvalidTokenError, match="future"):
        tokens.decode_access(token, now=NOW)


def test_a_tampered_token_is_never_taken_for_a_remembered_one() -> None:
    tokens = codec()
    token = access_token(tokens, lifetime=dt.timedelta(minutes=5))
    tokens.decode_access(token, now=NOW)
    head, payload, signature = token.split(".")
    forged = f"{head}.{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
    with pytest.raises(InvalidTokenError):
        tokens.decode_access(forged, now=NOW)
    other_key = TokenCodec("t" * 40, issuer="lyceum", audience="lyceum-api")
    with pytest.raises(InvalidTokenError):
        other_key.decode_access(token, now=NOW)


def test_refresh_tokens_are_not_access_tokens_cached_or_not() -> None:
    tokens = codec()
    refresh, _, _ = tokens.encode(
        subject=uuid.uuid4(),
        role="student",
        token_type="refresh",
        now=NOW,
        lifetime=dt.timedelta(days=1),
    )
    for _ in range(2):
        with pytest.raises(InvalidTokenError):
            tokens.decode_access(refresh, now=NOW)


def test_the_cache_is_bounded() -> None:
    tokens = codec()
    tokens.verified_capacity = 3
    issued = [access_token(tokens, lifetime=dt.timedelta(minutes=5)) for _ in range(5)]
    for token in issued:
        tokens.decode_access(token, now=NOW)
    assert len(tokens._verified) == 3
    assert list(tokens._verified) == issued[2:]
