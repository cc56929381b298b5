"""Token usage priced per million tokens from the settings."""

from __future__ import annotations

from lyceum.config import Settings
from lyceum.kit.ai.usage import TokenPrices, TokenUsage, estimated_cost


def test_tokens_are_priced_per_million_in_and_out() -> None:
    prices = TokenPrices(input_per_million=3.0, output_per_million=15.0)
    assert prices.cost(TokenUsage(1_000_000, 0)) == 3.0
    assert prices.cost(TokenUsage(2_000, 1_000)) == 0.021
    assert prices.cost(TokenUsage()) == 0.0


def test_costs_are_rounded_to_the_micro_dollar_and_sums_add_up() -> None:
    prices = TokenPrices(input_per_million=3.0, output_per_million=15.0)
    assert prices.cost(TokenUsage(1, 1)) == 0.000018
    assert prices.cost(TokenUsage(1, 0)) == 0.000003
    assert TokenUsage(1, 2) + TokenUsage(10, 20) == TokenUsage(11, 22)


def test_the_settings_set_the_prices_and_missing_counts_are_zero() -> None:
    settings = Settings(ai_input_cost_per_million=1.0, ai_output_cost_per_million=2.0)
    assert TokenPrices.from_settings(settings) == TokenPrices(1.0, 2.0)
    assert estimated_cost(settings, None, 500_000) == 1.0
    assert estimated_cost(settings, None, None) == 0.0
