"""Benchmark: careers estimators (issue 13 targets: careers and every new estimator on
1,200 persons x 24 quarters in < 1 s each; on 250,000 persons x 60 quarters in < 60 s each).

Run: PYTHONPATH=. .venv/bin/python benchmarks/bench_careers.py [--small]

The panel is a Markov chain over the five default states (IPS raises the move from DI
only to work on DI), 2% loss to follow-up a quarter; the Study is built once (its
time is printed but has no target here: see bench_study.py).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
import warnings

import numpy as np
import pandas as pd

from ips_impact.estimators.careers import (
    careers,
    randomization_statistics,
    recurrent_spells,
    state_occupation,
    transitions,
)
from ips_impact.study import Study

# rows: from work, work_on_di, di_only, unemployed, other (control arm, per quarter)
_P = np.array(
    [
        [0.86, 0.02, 0.06, 0.04, 0.02],
        [0.02, 0.85, 0.11, 0.01, 0.01],
        [0.01, 0.06, 0.90, 0.01, 0.02],
        [0.10, 0.01, 0.04, 0.80, 0.05],
        [0.03, 0.01, 0.04, 0.04, 0.88],
    ]
)


def frames(n: int, quarters: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.Generator(np.random.PCG64(seed))
    pids = np.array([f"P{i:07d}" for i in range(n)], dtype=object)
    region = rng.choice(np.array(["VL", "WAL", "BXL"], dtype=object), n, p=[0.57, 0.33, 0.10])
    arm = np.zeros(n, dtype=np.int8)
    for r in ("VL", "WAL", "BXL"):
        idx = np.flatnonzero(region == r)
        arm[rng.permutation(idx)[: idx.size // 2]] = 1
    p1 = _P.copy()
    p1[2] = [0.01, 0.09, 0.87, 0.01, 0.02]
    cum = np.cumsum(np.stack([_P, p1]), axis=2)
    K = quarters + 1
    s = np.empty((n, K), dtype=np.int8)
    s[:, 0] = np.where(rng.random(n) < 0.2, 1, 2)
    for k in range(1, K):
        u = rng.random(n)
        s[:, k] = (u[:, None] > cum[arm, s[:, k - 1]]).sum(axis=1)
    last = np.minimum(rng.geometric(0.02, n) + 1, quarters)
    pi, kk = np.nonzero(np.arange(K)[None, :] <= last[:, None])
    st = s[pi, kk]
    assignment = pd.DataFrame(
        {
            "person_id": pids,
            "arm": arm,
            "region": region,
            "randomization_period": 0,
            "age": rng.normal(40, 10, n).round(1),
        }
    )
    panel = pd.DataFrame(
        {
            "person_id": pids[pi],
            "period": kk,
            "employed": np.isin(st, (0, 1)).astype(np.int8),
            "on_di": np.isin(st, (1, 2)).astype(np.int8),
            "sep_code": np.select(
                [np.isin(st, (0, 1)), st == 2, st == 3], [111, 311, 211], 321
            ).astype(np.int16),
        }
    )
    return assignment, panel


def timed(fn, repeat: int) -> tuple[float, float]:
    """Median wall-clock and CPU seconds (CPU shows the cost when the machine is shared)."""
    wall, cpu = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return statistics.median(wall), statistics.median(cpu)


def run(n: int, quarters: int, target: float, repeat: int) -> bool:
    t = time.perf_counter()
    a, p = frames(n, quarters)
    study = Study.from_frames(a, p, frequency="int")
    print(
        f"\n{n:,} persons x {quarters} quarters ({len(study.panel):,} panel rows); "
        f"Study built in {time.perf_counter() - t:.1f} s (no target here)"
    )
    so = state_occupation(study, tau=quarters)
    rc = recurrent_spells(study, tau=quarters)
    z = study.design.permutations(100, 1)
    cases = {
        "careers (spells frame)": lambda: careers(study),
        "state_occupation (AJ + IJ SE, 5 states)": lambda: state_occupation(study, tau=quarters),
        "recurrent_spells (MCF + Andersen-Gill)": lambda: recurrent_spells(study, tau=quarters),
        "recurrent_spells (age, strata, breslow)": lambda: recurrent_spells(
            study, tau=quarters, covariates=("age",), strata=True, ties="breslow"
        ),
        "transitions (di_only -> work or work_on_di)": lambda: transitions(
            study, from_state="di_only", to_state=("work", "work_on_di")
        ),
        "RI statistics, 100 draws: state occupation": lambda: randomization_statistics(
            study, so, z
        ),
        "RI statistics, 100 draws: MCF + AG": lambda: randomization_statistics(study, rc, z),
    }
    ok = True
    for name, fn in cases.items():
        sec, cpu = timed(fn, repeat)
        good = sec < target
        ok &= good
        print(
            f"  {name:48s} {sec:8.3f} s (CPU {cpu:7.3f} s)   target < {target:g} s   "
            f"{'PASS' if good else 'FAIL'}"
        )
    return ok


def main() -> None:
    warnings.simplefilter("ignore")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    ok = run(1_200, 24, 1.0, repeat=5)
    if "--small" not in sys.argv:
        ok &= run(250_000, 60, 60.0, repeat=1)
    print("\nALL PASS" if ok else "\nSOME FAIL")


if __name__ == "__main__":
    main()
