"""The chat's settings: read from the environment, refused at start when invalid."""

from __future__ import annotations

import pytest

from lyceum.config import SettingsError, load_settings


def test_blocked_words_are_a_comma_separated_case_folded_list(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CHAT_BLOCKED_WORDS", " Darn, HECK no ,, straße ")
    monkeypatch.setenv("CHAT_RATE_LIMIT", "30/minute")
    settings = load_settings()
    assert settings.chat_blocked_words == ["darn", "heck no", "strasse"]
    assert settings.chat_rate_limit == "30/minute"


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CHAT_BLOCKED_WORDS", "CHAT_RATE_LIMIT", "CHAT_MESSAGE_MAX_CHARS"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert settings.chat_blocked_words == []
    assert settings.chat_rate_limit == "10/10 seconds"
    assert settings.chat_message_max_chars == 2000
    assert settings.chat_presence_ttl_seconds == 60


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("CHAT_RATE_LIMIT", "often"),
        ("CHAT_MESSAGE_MAX_CHARS", "0"),
        ("CHAT_PRESENCE_TTL_SECONDS", "1"),
    ],
)
def test_invalid_chat_settings_are_named(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert variable in str(error.value)
