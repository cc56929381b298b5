"""Reading Prometheus samples in tests: a counter's value before and after the code path
that should move it."""

from __future__ import annotations

from lyceum.kit.metrics import REGISTRY


def sample(name: str, **labels: str) -> float:
    """The current value of one sample (0.0 when the series does not exist yet)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0
