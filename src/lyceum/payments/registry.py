"""Which payment providers this deployment offers, built by name from PAYMENT_PROVIDERS.

Each provider's module is imported only when the provider is enabled, so a deployment
pays for (and needs the dependencies of) the providers it uses and no other; a provider
named in the setting whose module or keys are missing is a configuration error, said at
start-up (`check`) rather than on the first checkout."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

import httpx

from lyceum.config import Settings, SettingsError
from lyceum.payments.providers.base import PaymentProvider

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

# name -> "module:Class"; the module may also define `<name>_configured(settings)`.
PROVIDER_CLASSES: dict[str, str] = {
    "sandbox": "lyceum.payments.providers.sandbox:SandboxProvider",
    "stripe": "lyceum.payments.providers.stripe:StripeProvider",
    "paymob": "lyceum.payments.providers.paymob:PaymobProvider",
    "myfatoorah": "lyceum.payments.providers.myfatoorah:MyFatoorahProvider",
}


def _load(name: str) -> tuple[Any, Any]:
    """The provider's class and its module (SettingsError when it cannot be imported)."""
    target = PROVIDER_CLASSES.get(name)
    if target is None:
        raise SettingsError(f"PAYMENT_PROVIDERS: unknown provider {name!r}")
    module_name, class_name = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name != module_name:
            raise
        raise SettingsError(
            f"PAYMENT_PROVIDERS names {name!r}, but this build of Lyceum has no "
            f"{module_name} module"
        ) from None
    return getattr(module, class_name), module


def check(settings: Settings) -> None:
    """Raise SettingsError unless every enabled provider can be built: its module is
    there and its keys are set."""
    for name in settings.enabled_payment_providers():
        _, module = _load(name)
        configured = getattr(module, f"{name}_configured", None)
        if configured is not None and not configured(settings):
            raise SettingsError(
                f"PAYMENT_PROVIDERS names {name!r}, but its keys are not set (see the "
                "README's Paid courses section)"
            )


def providers(
    settings: Settings,
    *,
    http: httpx.AsyncClient | None = None,
    session: AsyncSession | None = None,
) -> dict[str, PaymentProvider]:
    """The enabled providers by name, in order of preference. `http` is the client the
    remote providers call through; `session` is where the sandbox keeps its state."""
    built: dict[str, PaymentProvider] = {}
    for name in settings.enabled_payment_providers():
        cls, _ = _load(name)
        if name == "sandbox":
            built[name] = cls(settings, http, session=session)
        else:
            built[name] = cls(settings, http)
    return built
