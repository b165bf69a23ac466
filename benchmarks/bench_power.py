"""Benchmark: simulation-based power (issue 15).

Run: ``python benchmarks/bench_power.py [--trials 1000]``

1. ``ii.power("itt")`` — 1,000 simulated trials of the primary ITT (work_on_di at 18
   months, 1,200 persons, ANCOVA with strata, HC2) on the local process backend with 2
   workers — target ≤ 30 s; the process pool's start-up is included;
2. the same on a 2-worker ``dask.distributed.LocalCluster`` (worker processes, one
   thread each, dask's worker profiler off as docs/power.md advises; ``--no-profile-off``
   keeps dask's default) — target: within 1.5x of the process backend. The cluster's start-up
   (scheduler, nannies, workers, and importing ``ips_impact`` on the workers, which a
   long-lived cluster pays once) is timed and printed on its own line; the ratio is
   that of the run on the started cluster to the whole process-backend call. The
   ratio with the start-up included is printed beside it (information);
3. the two give bit-identical results (checked, printed).

The machine is shared, so each figure is printed with the CPU time (user + sys) of the
whole process tree (this process and the pool's or the cluster's processes, read with
psutil), the load average, and an *idle wall time*: CPU time / 2 cores, what the run
would take on an otherwise idle 2-core machine. The verdicts are on the measured wall
time.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import figure, summary  # noqa: E402

CORES = 2


class CpuMeter:
    """CPU seconds (user + sys) of this process and all its descendants over a block.

    Each process counts its own time plus that of its children that have ended (the
    process pool's workers are children of the forkserver, which reaps them; the
    cluster's workers are alive at the end of the block), read at the start and at the
    end of the block only, so that measuring costs nothing in between.
    """

    def __init__(self) -> None:
        self.me = psutil.Process()

    def _poll(self) -> dict[int, float]:
        seen = {}
        for p in [self.me, *self.me.children(recursive=True)]:
            try:
                t = p.cpu_times()
                seen[p.pid] = t.user + t.system + t.children_user + t.children_system
            except psutil.Error:
                pass
        return seen

    def __enter__(self) -> CpuMeter:
        self.start = self._poll()
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.t0
        end = self._poll()
        self.end = end
        self.cpu = sum(v - self.start.get(pid, 0.0) for pid, v in end.items())


def timed(label: str, fn: Callable[[], Any], *, at_most: float | None = None) -> tuple[Any, CpuMeter]:
    with CpuMeter() as m:
        out = fn()
    figure(label, m.wall, "s", at_most=at_most)
    load = os.getloadavg()[0]
    print(f"    CPU {m.cpu:.1f} s (user+sys, process tree), idle wall ≈ CPU / {CORES} cores = "
          f"{m.cpu / CORES:.1f} s, load average {load:.2f}", flush=True)
    return out, m


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=1000)
    ap.add_argument("--no-profile-off", action="store_true",
                    help="keep dask's worker profiler on (dask's default)")
    args = ap.parse_args()

    import dask
    import distributed

    import ips_impact as ii

    kw = dict(outcome="work_on_di", horizon=6, sample_sizes=[1200], n_replicates=args.trials, seed=1)
    n = args.trials
    proc, m_proc = timed(f"{n} simulated trials of the primary itt, 2 processes",
                         lambda: ii.power("itt", backend="processes", n_workers=2, **kw),
                         at_most=30.0 * n / 1000)
    print(f"    CPU per trial {1000 * m_proc.cpu / n:.1f} ms (pool start-up included)")

    def start() -> tuple[Any, Any]:
        # one thread per worker, and dask's 10 ms statistical profiler off, as
        # docs/power.md advises for power studies (it samples every worker thread)
        with dask.config.set({"distributed.worker.profile.enabled": not args.no_profile_off}):
            cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                               dashboard_address=None)
        client = distributed.Client(cluster)
        client.run(__import__, "ips_impact")  # what a long-lived cluster has done once
        return cluster, client

    print(f"LocalCluster: 2 worker processes, 1 thread each, worker profiler "
          f"{'on (dask default)' if args.no_profile_off else 'off'}")
    (cluster, client), m_start = timed("2-worker LocalCluster start-up (reported apart)", start)
    try:
        on_dask, m_dask = timed(f"{n} simulated trials on the started LocalCluster",
                             lambda: ii.power("itt", backend=client, **kw))
    finally:
        client.close()
        cluster.close()
    figure("  LocalCluster run time / process backend time", m_dask.wall / m_proc.wall, "x",
           at_most=1.5)
    figure("  the same, cluster start-up included", (m_start.wall + m_dask.wall) / m_proc.wall, "x")
    figure("  the same in CPU time (run only)", m_dask.cpu / m_proc.cpu, "x")
    try:
        pd.testing.assert_frame_equal(proc.replicates, on_dask.replicates, check_exact=True)
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
