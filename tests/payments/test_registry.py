"""PAYMENT_PROVIDERS: the sandbox by default outside production and never in it;
providers built by name, a missing one a configuration error only when enabled."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from lyceum.config import Environment, Settings, SettingsError
from lyceum.payments import registry
from lyceum.payments.providers.sandbox import SandboxProvider

PRODUCTION = {
    "environment": Environment.production,
    "secret_key": "Zq8-rT2vX9pL4mN7bC1kW6yH3jF5dG0sA_eU2iO8uY4tR",
    "public_base_url": "https://learn.example.org",
}


def test_the_sandbox_is_the_default_outside_production_only() -> None:
    assert Settings(database_url=None).enabled_payment_providers() == ["sandbox"]
    production = Settings(database_url=None, **PRODUCTION)  # type: ignore[arg-type]
    assert production.enabled_payment_providers() == []
    with pytest.raises(ValidationError, match="sandbox provider takes no money"):
        Settings(database_url=None, payment_providers="sandbox", **PRODUCTION)  # type: ignore[arg-type]


def test_provider_names_are_checked_and_kept_in_order() -> None:
    settings = Settings(database_url=None, payment_providers=" Sandbox , sandbox")
    assert settings.payment_providers == ["sandbox"]
    with pytest.raises(ValidationError, match="unknown provider"):
        Settings(database_url=None, payment_providers="paypal")


def test_providers_are_built_by_name() -> None:
    built = registry.providers(Settings(database_url=None))
    assert list(built) == ["sandbox"] and isinstance(built["sandbox"], SandboxProvider)
    assert registry.providers(Settings(database_url=None, payment_providers=[])) == {}


def test_an_enabled_provider_that_cannot_be_built_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(
        registry.PROVIDER_CLASSES, "stripe", "lyceum.payments.providers.absent:StripeProvider"
    )
    registry.check(Settings(database_url=None))  # not enabled: nothing to say
    enabled = Settings(database_url=None, payment_providers="stripe")
    with pytest.raises(SettingsError, match=r"no lyceum\.payments\.providers\.absent module"):
        registry.check(enabled)
