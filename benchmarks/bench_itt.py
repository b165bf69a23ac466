"""Benchmark: itt and itt_by_period on the synthetic trial (1,200 persons).

Run: ``.venv/bin/python benchmarks/bench_itt.py``

Timed (median of repeated calls, after one warm-up call):
1. ``itt(study, "work_on_di", horizon=6, covariates=<8 baseline covariates>)`` — ANCOVA
   with stratum effects, HC2 — target < 20 ms;
2. the same with ``adjustment="lin"`` and with a stacked window (CR2 by person);
3. ``itt_by_period(study, "work_on_di", periods=range(-15, 21))`` (36 event times, same
   covariates, joint covariance, pre-period test, sup-t band) — target < 0.5 s.

Note: on a machine shared by several processes, OpenBLAS's worker threads can make
small matrix operations 100 times slower; run with ``OPENBLAS_NUM_THREADS=1`` to time
the estimators rather than thread contention.
"""

from __future__ import annotations

import os
import statistics
import time

from ips_impact.estimators.dynamic import itt_by_period
from ips_impact.estimators.itt import itt
from ips_impact.synthetic import generate

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


def main() -> None:
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
    for name, fn, repeat, target in cases:
        t = timed(fn, repeat)
        verdict = "" if target is None else (f"  (target < {target * 1000:.0f} ms: "
                                             f"{'ok' if t < target else 'MISSED'})")
        print(f"{name:34s} {t * 1000:9.1f} ms{verdict}")


if __name__ == "__main__":
    main()
