"""The pure parts of bench/load.py: when a step counts as held, and the CPU per process
group between two moments from the sampler's samples."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


@pytest.fixture(scope="module")
def load() -> ModuleType:
    sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location("bench_load", BENCH / "load.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def step(**changes: float) -> dict[str, float]:
    return {"rate": 100, "achieved_rps": 99.0, "failures": 0, "p99_ms": 320.0} | changes


def test_a_step_is_held_with_no_error_p99_under_500_ms_and_the_rate_delivered(
    load: ModuleType,
) -> None:
    assert load.held(step())
    assert not load.held(step(failures=1))
    assert not load.held(step(p99_ms=500.0))
    assert not load.held(step(achieved_rps=94.0))  # the generator could not keep up
    assert load.held(step(achieved_rps=95.0))


def test_cpu_between_two_moments_uses_the_samples_around_them(load: ModuleType) -> None:
    sampler = load.CpuSampler({})
    sampler.samples = [
        (10.0, {"api": 1.0, "postgres": 0.5}),
        (11.0, {"api": 1.5, "postgres": 0.6}),
        (20.0, {"api": 6.0, "postgres": 2.0}),
        (21.0, {"api": 6.4, "postgres": 2.1}),
    ]
    # From the last sample at or before 10.5 (t=10) to the first at or after 20 (t=20).
    cores = sampler.between(10.5, 20.0)
    assert cores == pytest.approx({"api": 0.5, "postgres": 0.15})
    assert sampler.between(5.0, 20.0) == {}  # no sample before the window
    assert sampler.between(10.0, 25.0) == {}  # nor after it


def test_event_loop_lag_over_a_window_from_the_histograms_around_it(load: ModuleType) -> None:
    sampler = load.LagSampler({"api-a": "unused"})
    bounds = (0.001, 0.01, 0.1, 1.0, float("inf"))

    def cumulative(*counts: float) -> dict[float, float]:
        return dict(zip(bounds, counts, strict=True))

    sampler.samples = [
        (0.0, {"api-a": cumulative(10, 10, 10, 10, 10)}),
        # 100 probes in the window: 90 under 1 ms, 9 under 10 ms, 1 under 1 s.
        (10.0, {"api-a": cumulative(100, 109, 109, 110, 110)}),
    ]
    lag = sampler.between(0.0, 10.0)["api-a"]
    assert lag == {"probes": 100, "p50_s": 0.001, "p99_s": 0.01, "max_bucket_s": 1.0}
    assert sampler.between(-1.0, 10.0) == {}  # no sample before the window
    assert "p99 <= 10 ms" in load.lag_line({"event_loop_lag": {"api-a": lag}})


def test_cpu_per_request_and_the_rate_the_cores_would_serve(
    load: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(load.psutil, "cpu_count", lambda: 2)
    sampler = load.CpuSampler({})
    sampler.samples = [(0.0, {"api": 0.0, "postgres": 0.0}), (10.0, {"api": 8.0, "postgres": 2.0})]
    step = {"started": 0.0, "ended": 10.0, "seconds": 10.0, "requests": 1000}
    load.cpu_figures(step, sampler)
    # 100 requests/s; the API used 0.8 cores (8 ms a request), PostgreSQL 0.2 (2 ms).
    assert step["cpu_ms_per_request"] == pytest.approx({"api": 8.0, "postgres": 2.0})
    assert step["cpu_bound_rps"] == pytest.approx(200.0)  # 2 cores / 10 ms
    assert "10.0 -> 200 requests/s" in load.cpu_line(step)
