"""Benchmark: survival estimators (issue 6 target: time_to_event with Cox and RMST on
1,200 persons x 24 quarters in < 0.5 s; issue 13 targets: the Fleming–Harrington test,
delayed entry, the RMST ratio and adjusted RMST, and Fine–Gray, each well under 0.5 s on
the same data, and their randomization statistics vectorised over 10,000 draws).

Run: .venv/bin/python benchmarks/bench_survival.py
"""

from __future__ import annotations

import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ips_impact.estimators.survival import (
    competing_risks,
    discrete_time_hazard,
    event_times,
    fine_gray,
    randomization_statistics,
    spell_survival,
    survival_statistics,
    time_to_event,
)
from ips_impact.study import Study

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import figure, summary  # noqa: E402


def frames(n: int = 1200, quarters: int = 24, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """1,200 persons in 3 regional strata, quarters k = 0..24 after randomization; job entry
    at 8% a quarter (x1.5 in IPS), job exit at 12%, 2% loss to follow-up a quarter."""
    rng = np.random.default_rng(seed)
    pids = np.array([f"P{i:07d}" for i in range(n)], dtype=object)
    region = rng.choice(["VL", "WAL", "BXL"], n, p=[0.57, 0.33, 0.10])
    arm = np.zeros(n, dtype=int)
    for r in ("VL", "WAL", "BXL"):
        idx = np.flatnonzero(region == r)
        arm[rng.permutation(idx)[: idx.size // 2]] = 1
    rand = pd.Period("2018Q1", "Q") + rng.integers(0, 8, n)
    assignment = pd.DataFrame({
        "person_id": pids, "arm": arm, "region": region, "randomization_period": rand,
        "age": rng.normal(40, 10, n), "household_id": [f"H{i:07d}" for i in range(n)],
    })
    k = np.arange(quarters + 1)
    entry = np.where(arm == 1, 1 - 0.92 ** 1.5, 0.08)[:, None]
    u_in, u_out = rng.random((n, k.size)), rng.random((n, k.size))
    emp = np.zeros((n, k.size), dtype=int)
    for j in range(1, k.size):  # a Markov chain over quarters (vectorised over persons)
        emp[:, j] = np.where(emp[:, j - 1] == 1, (u_out[:, j] >= 0.12), (u_in[:, j] < entry[:, 0]))
    last = np.minimum(rng.geometric(0.02, n), quarters)
    seen = k[None, :] <= last[:, None]
    rows = np.nonzero(seen)
    panel = pd.DataFrame({
        "person_id": pids[rows[0]],
        "period": [str(rand[i] + j) for i, j in zip(*rows)],
        "employed": emp[rows],
        "left_di_other": (rng.random(rows[0].size) < 0.02).astype(int),
    })
    return assignment, panel


def timed(fn, repeat: int = 7) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), min(times)


def main() -> None:
    a, p = frames()
    study = Study.from_frames(a, p)
    warnings.simplefilter("ignore")
    print(f"study: {study.n_persons} persons, {len(study.panel):,} panel rows, k {study.k_range}")
    cases = {
        "time_to_event (Cox efron, robust, strata, RMST)": lambda: time_to_event(study, "employed", horizon=24),
        "time_to_event (Cox breslow, cluster=household_id, age)": lambda: time_to_event(
            study, "employed", horizon=24, ties="breslow", cluster="household_id", covariates=("age",)),
        "spell_survival (employed)": lambda: spell_survival(study, "employed", horizon=24),
        "competing_risks (2 causes, Gray)": lambda: competing_risks(
            study, {"work": "employed", "other": "left_di_other"}, horizon=24),
        "discrete_time_hazard (cloglog, clustered)": lambda: discrete_time_hazard(study, "employed", horizon=24),
    }
    for name, fn in cases.items():
        med, best = timed(fn)
        figure(f"{name}, median", med, "s", at_most=0.5 if name.startswith("time_to_event (Cox efron") else None)
    res = time_to_event(study, "employed", horizon=24)
    z = study.design.permutations(10_000, seed=1)
    med, best = timed(lambda: randomization_statistics(study, res, z), repeat=3)
    figure("randomization_statistics: 10,000 assignments (log-rank, Cox, RMST), median", med, "s")
    # issue 13: the new statistics, each with its target
    new_cases = {
        "time_to_event + fh=(0, 1) + km_strata": (
            lambda: time_to_event(study, "employed", horizon=24, fh=(0, 1)), 0.5),
        "time_to_event delayed_entry=True": (
            lambda: time_to_event(study, "employed", horizon=24, delayed_entry=True), 0.5),
        "time_to_event + adjusted RMST (covariates=age)": (
            lambda: time_to_event(study, "employed", horizon=24, covariates=("age",)), 0.5),
        "fine_gray (employed vs left_di_other, age, strata)": (
            lambda: fine_gray(study, "employed", competing=["left_di_other"], horizon=24,
                              covariates=("age",)), 0.5),
    }
    for name, (fn, target) in new_cases.items():
        med, best = timed(fn)
        figure(f"{name}, median", med, "s", at_most=target)
    et = event_times(study, "employed", horizon=24, delayed_entry=True)
    use = et["usable"].to_numpy()
    args = (et["time"].to_numpy()[use], et["event"].to_numpy()[use], z[:, use])
    med, best = timed(lambda: survival_statistics(
        *args, strata=et["stratum"].to_numpy()[use], tau=24, entry=et["entry"].to_numpy()[use],
        fh=(0, 1), statistics=("logrank_fh", "rmst_log_ratio")), repeat=3)
    figure("survival_statistics: 10,000 assignments (FH G(0,1) + RMST log ratio, delayed entry), median",
           med, "s", at_most=2)
    fg = fine_gray(study, "employed", competing=["left_di_other"], horizon=24)
    med, best = timed(lambda: randomization_statistics(study, fg, z), repeat=3)
    figure("randomization_statistics: 10,000 assignments (Fine–Gray arm coefficient), median", med, "s",
           at_most=2)
    summary()


if __name__ == "__main__":
    main()
