"""The verdicts of the benchmarks' reporter (``benchmarks/_report.py``).

A noisy ratio whose true value equals its target (two processes running the same code)
is judged by its 95% interval, not by its point estimate: these tests pin the rule so
that the verdict can fail.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", ROOT / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(ROOT))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(ROOT))
    return module


@pytest.fixture(scope="module")
def report():
    return _load("_report")


@pytest.mark.parametrize(
    ("value", "low", "high", "verdict"),
    [
        (1.00, 0.98, 1.02, "PASS"),  # reaches the target, narrow: no evidence of a cost
        (0.70, 0.65, 0.72, "PASS"),  # below the target
        (1.04, 1.01, 1.06, "FAIL"),  # above the target beyond noise
        (1.30, 1.05, 1.87, "FAIL"),  # above beyond noise, however wide
        (1.00, 0.80, 1.20, "INCONCLUSIVE"),  # too wide to have found a 5% cost
        (float("nan"), float("nan"), float("nan"), "INCONCLUSIVE"),
    ],
)
def test_figure_ci_verdict(report, capsys, value, low, high, verdict):
    ok = report.figure_ci("ratio", value, low, high, "x", at_most=1.0, resolution=0.05)
    line = capsys.readouterr().out.strip()
    assert line.endswith(verdict)
    assert ok is (verdict == "PASS")
    assert "95% CI" in line


def test_bootstrap_median_covers_and_resamples_rounds():
    bench = _load("bench_threads")
    rng = np.random.default_rng(3)
    # rounds that differ by a shared shift (a child's layout): the interval must be
    # wider than the one of the same calls pooled as if independent
    shifts = rng.normal(0.0, 0.05, 20)
    rounds = [list(1.0 + s + rng.normal(0.0, 0.01, 11)) for s in shifts]
    lo, hi = bench._bootstrap_median(rounds, n_boot=500, seed=0)
    pooled = [[x] for r in rounds for x in r]
    plo, phi = bench._bootstrap_median(pooled, n_boot=500, seed=0)
    assert lo < float(np.median(np.concatenate(rounds))) < hi
    assert hi - lo > phi - plo
    assert bench._bootstrap_median(rounds, n_boot=500, seed=0) == (lo, hi)  # seeded
