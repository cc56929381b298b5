"""What model calls use and cost: tokens in and out, priced per million tokens from the
settings (AI_INPUT_COST_PER_MILLION, AI_OUTPUT_COST_PER_MILLION). No domain knowledge:
the tutor's usage report prices its stored answers with it, and any other caller of a
model (the essay scorer) can price its own the same way."""

from __future__ import annotations

from dataclasses import dataclass

from lyceum.config import Settings
from lyceum.kit.metrics import AI_COST, AI_PROVIDER_ERRORS, AI_TOKENS

# Costs are reported to the micro-dollar: finer digits are noise in an estimate.
COST_DIGITS = 6


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """Tokens one model call (or a sum of them) read and wrote. A call answered without
    a provider (the offline mode, a cached answer) uses none."""

    tokens_in: int = 0
    tokens_out: int = 0

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(self.tokens_in + other.tokens_in, self.tokens_out + other.tokens_out)


@dataclass(frozen=True, slots=True)
class TokenPrices:
    """US dollars per million tokens read and written."""

    input_per_million: float
    output_per_million: float

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenPrices:
        return cls(settings.ai_input_cost_per_million, settings.ai_output_cost_per_million)

    def cost(self, usage: TokenUsage) -> float:
        """The estimated cost in US dollars, rounded to `COST_DIGITS` places."""
        dollars = (
            usage.tokens_in * self.input_per_million + usage.tokens_out * self.output_per_million
        ) / 1_000_000
        return round(dollars, COST_DIGITS)


def estimated_cost(settings: Settings, tokens_in: int | None, tokens_out: int | None) -> float:
    """The estimated cost of `tokens_in` + `tokens_out` at the configured prices (a
    missing count, as from a SUM over no rows, is zero)."""
    return TokenPrices.from_settings(settings).cost(TokenUsage(tokens_in or 0, tokens_out or 0))


def record_usage(
    settings: Settings, *, provider: str, model: str, feature: str, usage: TokenUsage
) -> None:
    """Count one model call's tokens and estimated cost (`lyceum_ai_tokens_total`,
    `lyceum_ai_cost_usd_total`) under `feature` (tutor, scoring)."""
    if usage.tokens_in:
        AI_TOKENS.labels(provider, model, feature, "input").inc(usage.tokens_in)
    if usage.tokens_out:
        AI_TOKENS.labels(provider, model, feature, "output").inc(usage.tokens_out)
    cost = TokenPrices.from_settings(settings).cost(usage)
    if cost:
        AI_COST.labels(provider, model, feature).inc(cost)


def error_kind(error: BaseException) -> str:
    """timeout, rate_limited, server or other: what the provider's failure was, from the
    exception or the one it wraps (pydantic-ai's ModelHTTPError, the SDKs' errors)."""
    seen: BaseException | None = error
    for _ in range(5):
        if seen is None:
            break
        if isinstance(seen, TimeoutError) or "Timeout" in type(seen).__name__:
            return "timeout"
        status = getattr(seen, "status_code", None)
        if isinstance(status, int):
            if status == 429:
                return "rate_limited"
            if status >= 500:
                return "server"
            return "other"
        seen = seen.__cause__ or seen.__context__
    return "other"


def record_provider_error(provider: str, feature: str, error: BaseException) -> None:
    """Count a failed call to the AI provider (`lyceum_ai_provider_errors_total`)."""
    AI_PROVIDER_ERRORS.labels(provider, feature, error_kind(error)).inc()


__all__ = [
    "COST_DIGITS",
    "TokenPrices",
    "TokenUsage",
    "error_kind",
    "estimated_cost",
    "record_provider_error",
    "record_usage",
]
