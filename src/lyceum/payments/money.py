"""Money as integers in each currency's minor units. The exponent (how many decimals a
currency has: KWD, BHD, OMR and JOD three, JPY none) comes from the ISO 4217 list as
published by its maintenance agency, shipped in the `iso4217` package, not a hand table."""

from __future__ import annotations

import functools
from decimal import Decimal

from iso4217 import Currency


@functools.cache
def _exponents() -> dict[str, int]:
    # Funds codes and metals (XAU, XDR, ...) have no minor unit: not sellable in.
    return {c.code: c.exponent for c in Currency if c.exponent is not None}


def currencies() -> frozenset[str]:
    """Every ISO 4217 code a price can be in."""
    return frozenset(_exponents())


def is_currency(code: str) -> bool:
    return code in _exponents()


def exponent(currency: str) -> int:
    """Decimal places of `currency`; KeyError for a code that is not ISO 4217."""
    return _exponents()[currency]


def to_decimal(amount: int, currency: str) -> Decimal:
    """Minor units to the amount as written: 12345 KWD -> 12.345, 500 JPY -> 500."""
    return Decimal(amount).scaleb(-exponent(currency))


def from_decimal(value: Decimal | str, currency: str) -> int:
    """An amount as written to minor units; ValueError if it has more decimals than the
    currency does (a provider reporting 10.005 USD is not rounded into agreement)."""
    scaled = Decimal(value).scaleb(exponent(currency))
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{value} has more decimals than {currency} allows")
    return int(scaled)


def format_amount(amount: int, currency: str) -> str:
    """`12.345 KWD`, `500 JPY`, `19.99 USD`: the amount with the currency's decimals."""
    places = exponent(currency)
    return f"{to_decimal(amount, currency):.{places}f} {currency}"
