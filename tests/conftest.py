"""Shared fixtures: a tiny hand-made trial in the data contract."""

from __future__ import annotations

import os

# Small regressions on a shared 2-core machine: BLAS threads only fight each other
# (15-100x slower). `make test` sets this too; this covers a direct `pytest` run.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402


def make_frames(n: int = 40, periods: int = 12, seed: int = 0, freq: str = "Q") -> dict[str, pd.DataFrame]:
    """A small trial: n persons in 2 strata, one partner each, `periods` periods from 2017."""
    rng = np.random.default_rng(seed)
    pids = [f"P{i:04d}A" for i in range(n)]
    stratum = np.where(np.arange(n) < n // 2, "VL", "WAL")
    arm = np.zeros(n, dtype=int)
    for s in ("VL", "WAL"):
        idx = np.flatnonzero(stratum == s)
        arm[rng.permutation(idx)[: len(idx) // 2]] = 1
    dates = pd.Timestamp("2018-02-01") + pd.to_timedelta(rng.integers(0, 300, n), "D")
    assignment = pd.DataFrame({
        "person_id": pids, "arm": arm, "randomization_date": dates, "region": stratum,
        "household_id": [f"H{i:04d}" for i in range(n)], "age": rng.integers(20, 60, n),
    })
    partners = [f"Q{i:04d}B" for i in range(n)]
    households = pd.DataFrame({
        "household_id": np.r_[assignment.household_id, assignment.household_id],
        "person_id": pids + partners, "role": ["index"] * n + ["partner"] * n,
    })
    if freq == "Q":
        labels = pd.period_range("2017Q1", periods=periods, freq="Q").astype(str)
    elif freq == "M":
        labels = pd.period_range("2017-01", periods=periods, freq="M").astype(str)
    elif freq == "W":  # ISO weeks written as 2018-W05, around the randomization dates
        mondays = pd.date_range("2018-01-01", periods=periods, freq="W-MON")
        labels = pd.Index([f"{d.isocalendar()[0]}-W{d.isocalendar()[1]:02d}" for d in mondays])
    else:
        labels = pd.period_range("2017", periods=periods, freq="Y").astype(str)
    everyone = pids + partners
    panel = pd.DataFrame({"person_id": np.repeat(everyone, periods), "period": np.tile(labels, len(everyone))})
    panel["employed"] = rng.integers(0, 2, len(panel))
    panel["on_di"] = rng.integers(0, 2, len(panel))
    panel["earnings"] = rng.gamma(2.0, 1000.0, len(panel)) * panel["employed"]
    panel["fte"] = rng.uniform(0, 1, len(panel)) * panel["employed"]
    return {"assignment": assignment, "panel": panel, "households": households}


@pytest.fixture
def frames() -> dict[str, pd.DataFrame]:
    return make_frames()


# A parity test says in its name which R function (or R computation) it matches; such
# tests are marked `parity`, so that `pytest -m parity` runs exactly them and the
# validation report (ips_impact.validation.parity) lists them with their tolerances.
PARITY_PATTERN = (
    r"matches_r\b|matches_r_|_r_|parity|reproduces_r|estimatr|clubsandwich|survfit|coxph|"
    r"survdiff|cuminc|survrm2|vcovcl|iv_robust|ivreg|p_adjust|first_stage_f_matches_r|"
    r"crr\b|finegray|matches_glm"
)


def pytest_collection_modifyitems(config, items):
    import re

    rx = re.compile(PARITY_PATTERN)
    for item in items:
        if rx.search(item.originalname if hasattr(item, "originalname") else item.name):
            item.add_marker(pytest.mark.parity)
