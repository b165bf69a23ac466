"""Benchmark: building a Study (issue 2 target: < 2 s for 1,200 persons + ~1,500 members × 48 quarters).

Run: .venv/bin/python benchmarks/bench_study.py
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ips_impact.study import Study

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import figure, summary  # noqa: E402


def frames(n: int = 1200, n_members: int = 1500, quarters: int = 48, seed: int = 0):
    rng = np.random.default_rng(seed)
    pids = np.array([f"P{i:07d}" for i in range(n)], dtype=object)
    region = rng.choice(["VL", "WAL", "BXL"], n, p=[0.57, 0.33, 0.10])
    arm = np.zeros(n, dtype=int)
    for r in ("VL", "WAL", "BXL"):
        idx = np.flatnonzero(region == r)
        arm[rng.permutation(idx)[: idx.size // 2]] = 1
    hh = np.array([f"H{i:07d}" for i in range(n)], dtype=object)
    assignment = pd.DataFrame({
        "person_id": pids, "arm": arm, "region": region, "household_id": hh,
        "randomization_date": pd.Timestamp("2018-02-01") + pd.to_timedelta(rng.integers(0, 700, n), "D"),
        **{f"x{j}": rng.normal(size=n) for j in range(8)},
    })
    mids = np.array([f"M{i:07d}" for i in range(n_members)], dtype=object)
    households = pd.DataFrame({
        "household_id": np.r_[hh, hh[rng.integers(0, n, n_members)]],
        "person_id": np.r_[pids, mids],
        "role": np.r_[np.repeat("index", n), rng.choice(["partner", "child"], n_members)],
    })
    everyone = np.r_[pids, mids]
    labels = pd.period_range("2014Q1", periods=quarters, freq="Q").astype(str).to_numpy()
    m = everyone.size * quarters
    panel = pd.DataFrame({
        "person_id": np.repeat(everyone, quarters), "period": np.tile(labels, everyone.size),
        "sep_code": rng.choice([111, 112, 211, 311], m), "on_di": rng.integers(0, 2, m),
        "earnings": rng.gamma(2.0, 1500.0, m), "fte": rng.uniform(0, 1, m), "di_benefit": rng.normal(1160, 300, m).clip(0),
    })
    return assignment, panel, households


def main() -> None:
    a, p, h = frames()
    times = []
    for _ in range(5):
        t = time.perf_counter()
        s = Study.from_frames(a, p, households=h)
        times.append(time.perf_counter() - t)
    figure(f"Study.from_frames: {len(a)} persons + {h.role.ne('index').sum()} members x 48 q "
           f"({len(p):,} rows), median of 5", statistics.median(times), "s", at_most=2.0)
    from ips_impact.synthetic import generate

    trial = generate(n_persons=1200, seed=2018)
    times = []
    for _ in range(3):
        t = time.perf_counter()
        trial.study()
        times.append(time.perf_counter() - t)
    sizes = ", ".join(f"{k} {len(v):,}" for k, v in trial.frames().items())
    print(f"synthetic trial with every table: {sizes} rows")
    figure("Study of the synthetic trial, every table, median of 3", statistics.median(times), "s")
    t = time.perf_counter()
    for _ in range(20):
        s.outcome_matrix("employed", np.arange(-16, 21))
    figure("outcome_matrix(37 event times)", (time.perf_counter() - t) / 20, "s")
    summary()


if __name__ == "__main__":
    main()
