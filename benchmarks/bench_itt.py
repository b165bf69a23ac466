"""Benchmark: itt and itt_by_period on the synthetic trial (1,200 persons).

Run: ``.venv/bin/python benchmarks/bench_itt.py [--scale DIR]``

Timed (median of repeated calls, after one warm-up call):
1. ``itt(study, "work_on_di", horizon=6, covariates=<8 baseline covariates>)`` — ANCOVA
   with stratum effects, HC2 — target < 20 ms;
2. the same with ``adjustment="lin"`` and with a stacked window (CR2 by person);
3. ``itt_by_period(study, "work_on_di", periods=range(-15, 21))`` (36 event times, same
   covariates, joint covariance, pre-period test, sup-t band) — target < 0.5 s;
4. the covariance engine alone on 1,200 persons x 48 periods = 57,600 stacked rows
   (arm, 10 covariates, 47 period effects): HC2, CR1 and CR2 clustered by person with
   the Satterthwaite df of the arm (no N x N matrix is formed).

With ``--scale DIR`` (a directory of ``assignment.parquet`` and ``panel.parquet``, e.g. the
250,000 persons × 60 quarters that ``benchmarks/bench_scale.py`` writes to
``/tmp/ips_impact_bench_scale/n250000``) it also loads that study once and times
5. ``itt_by_period(study, "employed", periods=range(1, 25))`` — the first call after
   ``load_study`` and the median of 5 more, wall and CPU time (user + sys) — target ≤ 1 s.

Note: on a machine shared by several processes, OpenBLAS's worker threads can make
small matrix operations 100 times slower; run with ``OPENBLAS_NUM_THREADS=1`` to time
the estimators rather than thread contention.
"""

from __future__ import annotations

import os
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from ips_impact.estimators.dynamic import itt_by_period
from ips_impact.estimators.itt import itt
from ips_impact.inference.covariance import OLSDesign
from ips_impact.synthetic import generate

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import figure, summary  # noqa: E402

COVS = ("age", "female", "education", "diagnosis", "di_phase", "di_months", "household_type",
        "pre_employment_share")


def timed(fn, repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def cpu_seconds() -> float:
    """User + system CPU seconds of this process (all its threads)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def scale(path: str) -> None:
    """itt_by_period over 24 periods on the study at ``path`` (first call and median of 5)."""
    import ips_impact as ii

    t0 = time.perf_counter()
    study = ii.load_study(path)
    print(f"load_study({path!r}): {study.n_persons:,} persons in {time.perf_counter() - t0:.1f} s")
    walls, cpus = [], []
    for _ in range(6):
        c, t = cpu_seconds(), time.perf_counter()
        itt_by_period(study, "employed", periods=range(1, 25))
        walls.append(time.perf_counter() - t)
        cpus.append(cpu_seconds() - c)
    load = os.getloadavg()
    print(f"itt_by_period, 24 periods, {study.n_persons:,} persons: first call {walls[0]:.2f} s wall / "
          f"{cpus[0]:.2f} s CPU; then median {statistics.median(walls[1:]):.2f} s wall / "
          f"{statistics.median(cpus[1:]):.2f} s CPU; load average {load[0]:.2f} on {os.cpu_count()} cores")
    figure(f"itt_by_period 24 periods, {study.n_persons:,} persons, first call", walls[0], "s", at_most=1.0)
    figure(f"itt_by_period 24 periods, {study.n_persons:,} persons, median of 5", statistics.median(walls[1:]),
           "s", at_most=1.0)


def main() -> None:
    if "--scale" in sys.argv:
        scale(sys.argv[sys.argv.index("--scale") + 1])
    study = generate(n_persons=1200, seed=0, tables=("assignment", "panel")).study()
    print(f"study: {study}")
    print(f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', '(unset)')}")
    cases = [
        ("itt ancova, 8 covariates, HC2", lambda: itt(study, "work_on_di", horizon=6, covariates=COVS),
         25, 0.020),
        ("itt lin, 8 covariates, HC2",
         lambda: itt(study, "work_on_di", horizon=6, covariates=COVS, adjustment="lin"), 25, None),
        ("itt stacked k=1..12, CR2",
         lambda: itt(study, "work_on_di", window=(1, 12), aggregate="stack", covariates=COVS), 5, None),
        ("itt_by_period, 36 periods",
         lambda: itt_by_period(study, "work_on_di", periods=range(-15, 21), covariates=COVS), 5, 0.5),
    ]
    rng = np.random.default_rng(0)
    n, T = 1200, 48
    person = np.repeat(np.arange(n), T)
    k = np.tile(np.arange(T), n)
    period_fe = np.zeros((n * T, T - 1))
    period_fe[np.flatnonzero(k > 0), k[k > 0] - 1] = 1.0
    X = np.column_stack([np.ones(n * T), (rng.random(n) < 0.5)[person], rng.normal(size=(n, 10))[person],
                         period_fe])
    y = rng.normal(size=n * T)
    for ct in ("HC2", "CR1", "CR2"):
        cl = person if ct.startswith("CR") else None
        cases.append((f"engine {ct}, 57,600 x {X.shape[1]}",
                      lambda ct=ct, cl=cl: OLSDesign(X, cov_type=ct, clusters=cl).fit(y, df_for=[1]), 3, None))
    for name, fn, repeat, target in cases:
        figure(name, timed(fn, repeat), "s", at_most=target)
    summary()


if __name__ == "__main__":
    main()
