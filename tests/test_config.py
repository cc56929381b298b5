"""Settings fail at start with a message naming the variable."""

from __future__ import annotations

import base64
import os
import secrets
import string
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from lyceum.config import Settings, SettingsError, load_settings
from tests.conftest import TEST_SECRET
from tests.support.servers import REPO_ROOT


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ACCESS_TOKEN_EXPIRE_MINUTES", "soon"),
        ("REFRESH_TOKEN_EXPIRE_DAYS", "0"),
        ("DATABASE_URL", "mysql://localhost/lyceum"),
        ("REDIS_URL", "memcached://localhost"),
        ("AI_PROVIDER", "skynet"),
        ("LOG_LEVEL", "LOUD"),
        ("SMTP_PORT", "70000"),
        ("PUBLIC_BASE_URL", "not a url"),
    ],
)
def test_invalid_setting_is_named(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert variable in str(error.value)


def test_production_requires_a_strong_secret_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(SettingsError, match="SECRET_KEY"):
        load_settings()
    monkeypatch.setenv("SECRET_KEY", "short")
    with pytest.raises(SettingsError, match="SECRET_KEY"):
        load_settings()
    monkeypatch.setenv("SECRET_KEY", secrets.token_urlsafe(48))
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://learn.example.org")
    assert load_settings().is_production


def test_production_requires_the_public_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    """Behind a proxy no process can guess the address users reach: links in mails and
    certificates would name an internal one, so production refuses to start without it."""
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("SECRET_KEY", secrets.token_urlsafe(48))
    monkeypatch.delenv("PUBLIC_BASE_URL", raising=False)
    with pytest.raises(SettingsError, match="PUBLIC_BASE_URL: must be set"):
        load_settings()
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://learn.example.org/")
    assert load_settings().base_url() == "https://learn.example.org"


@pytest.mark.parametrize(
    "key",
    [
        "x" * 40,
        "ab" * 20,
        "0123456789abcdefghijklmnopqrstuvwxyz",
        "qwertyuiopasdfghjklzxcvbnm1234567890",
        "passwordpasswordpasswordpassword",
        "Lyceum2026!Lyceum2026!Lyceum2026!",
        "my super secret key for lyceum production 2026",
        "lyceum-production-secret-key-2026-do-not-share",
        "the quick brown fox jumps over the lazy dog again",
        "change-me-to-a-long-random-string-in-production",
        "replace-me-replace-me-replace-me-replace-me",
        TEST_SECRET,
    ],
)
def test_production_refuses_long_but_guessable_keys(
    monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    """Length is not entropy: repeats, sequences, keyboard walks, words and the keys
    printed in our own docs and tests are refused, naming the variable."""
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://learn.example.org")
    monkeypatch.setenv("SECRET_KEY", key)
    with pytest.raises(SettingsError, match="SECRET_KEY") as error:
        load_settings()
    assert "token_urlsafe" in str(error.value)  # how to make a good one


@pytest.mark.parametrize(
    "make",
    [
        lambda: secrets.token_urlsafe(32),
        lambda: secrets.token_urlsafe(64),
        lambda: secrets.token_hex(32),
        lambda: base64.b64encode(secrets.token_bytes(32)).decode(),
        lambda: f"{uuid.uuid4()}{uuid.uuid4()}",
        lambda: "".join(secrets.choice(string.ascii_letters) for _ in range(48)),
    ],
)
def test_production_accepts_generated_keys_of_any_common_alphabet(
    monkeypatch: pytest.MonkeyPatch, make: Callable[[], str]
) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://learn.example.org")
    for _ in range(20):
        monkeypatch.setenv("SECRET_KEY", make())
        assert load_settings().is_production


def test_metrics_token_is_checked_like_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METRICS_TOKEN", "short")
    with pytest.raises(SettingsError, match="METRICS_TOKEN"):
        load_settings()
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://learn.example.org")
    monkeypatch.setenv("SECRET_KEY", secrets.token_urlsafe(48))
    monkeypatch.setenv("METRICS_TOKEN", "prometheus" * 3)
    with pytest.raises(SettingsError, match="METRICS_TOKEN"):
        load_settings()
    monkeypatch.setenv("METRICS_TOKEN", secrets.token_urlsafe(24))
    assert load_settings().metrics_token is not None


def test_development_secret_is_generated_once_and_kept(tmp_path: Path) -> None:
    first = Settings(lyceum_data_dir=tmp_path, secret_key=None).secret_key_value()
    second = Settings(lyceum_data_dir=tmp_path, secret_key=None).secret_key_value()
    assert first == second
    assert len(first) >= 32
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_cors_origins_is_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_ORIGINS", "https://a.example, https://b.example")
    assert load_settings().cors_origins == ["https://a.example", "https://b.example"]


def test_unset_database_url_means_embedded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert load_settings().embedded_database
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@db:5432/lyceum")
    assert not load_settings().embedded_database


def test_cli_refuses_to_start_with_invalid_settings() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "lyceum", "serve"],
        env={**os.environ, "ACCESS_TOKEN_EXPIRE_MINUTES": "soon"},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "ACCESS_TOKEN_EXPIRE_MINUTES" in result.stderr
