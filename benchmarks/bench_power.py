"""Benchmark: simulation-based power (issue 15).

Run: ``python benchmarks/bench_power.py [--trials 1000]``

1. ``ii.power("itt")`` — 1,000 simulated trials of the primary ITT (work_on_di at 18
   months, 1,200 persons, ANCOVA with strata, HC2) on the local process backend with 2
   workers — target ≤ 30 s;
2. the same on a 2-worker ``dask.distributed.LocalCluster`` (worker processes, one
   thread each) — target: within 1.5x of the process backend;
3. the two give bit-identical results (checked, printed).

Startup costs (process pool, cluster) are included: they are what a user waits for.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import figure, summary  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=1000)
    args = ap.parse_args()

    import distributed

    import ips_impact as ii

    kw = dict(outcome="work_on_di", horizon=6, sample_sizes=[1200], n_replicates=args.trials, seed=1)
    t0 = time.perf_counter()
    proc = ii.power("itt", backend="processes", n_workers=2, **kw)
    t_proc = time.perf_counter() - t0
    figure(f"{args.trials} simulated trials of the primary itt, 2 processes", t_proc, "s",
           at_most=30.0 * args.trials / 1000)

    t0 = time.perf_counter()
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        dask = ii.power("itt", backend=client, **kw)
    t_dask = time.perf_counter() - t0
    figure(f"{args.trials} simulated trials, 2-worker LocalCluster", t_dask, "s")
    figure("  LocalCluster time / process backend time", t_dask / t_proc, "x", at_most=1.5)
    try:
        pd.testing.assert_frame_equal(proc.replicates, dask.replicates, check_exact=True)
        identical = 1.0
    except AssertionError:
        identical = 0.0
    figure("  results bit-identical (1 = yes)", identical, "x", at_least=1.0)
    row = proc.curve.iloc[0]
    print(f"power {100 * row['power']:.1f}% (MC SE {100 * row['power_se']:.1f} pp) at a true effect of "
          f"{row['true_effect']:.2f} pp; analytic MDE {proc.mde['mde_analytic'].iloc[0]:.2f} pp")
    summary()


if __name__ == "__main__":
    main()
