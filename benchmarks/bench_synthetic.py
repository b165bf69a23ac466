"""Benchmark of ips_impact.synthetic: prints timings and peak memory.

Targets: 1,200 persons in < 3 s (issue 3); 250,000 persons × 60 quarters with all tables
≤ 30 s (issue 15) and < 8 GB peak memory; fast path (assignment + panel, 1,200 persons,
16 quarters) ≤ 0.2 s. Each figure is printed with its target and PASS / FAIL.

Usage::

    python benchmarks/bench_synthetic.py            # everything (the large run ≈ 1 min)
    python benchmarks/bench_synthetic.py --skip-large

The large run is made in a child process so that its peak resident memory
(``ru_maxrss``) is its own; its CPU time is printed beside the wall time because the
wall time depends on what else the machine is running, with the load average and an
idle wall time (CPU time / 2 cores: the generator builds its chunks on two threads).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

FAST = ("assignment", "panel")


def _best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def _large(n: int, quarters: int, tables: tuple[str, ...]) -> None:
    """Child process: one large generation, prints JSON with seconds and peak MB."""
    from ips_impact.synthetic import SyntheticParams, generate

    p = dataclasses.replace(SyntheticParams(), pre_quarters=16, post_quarters=quarters - 17)
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t = time.perf_counter()
    tr = generate(n_persons=n, seed=1, params=p, tables=tables)
    sec = time.perf_counter() - t
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    peak_mb = r1.ru_maxrss / 1024
    print(json.dumps({
        "seconds": sec, "cpu_seconds": cpu, "peak_mb": peak_mb, "panel_rows": len(tr.panel),
        "benefit_rows": 0 if tr.benefits is None else len(tr.benefits),
    }))


sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import figure, summary  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--skip-large", action="store_true", help="skip the 250,000-person run")
    ap.add_argument("--large-child", nargs=3, metavar=("N", "QUARTERS", "TABLES"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.large_child:
        n, q, tabs = args.large_child
        _large(int(n), int(q), tuple(tabs.split(",")))
        return

    from ips_impact.synthetic import SyntheticParams, generate

    generate(n_persons=50, seed=0)  # warm-up (imports, first-call overheads)
    t_full = _best(lambda: generate(n_persons=1200, seed=1), 3)
    figure("generate 1,200 persons, all tables, 37 quarters", t_full, "s", at_most=3.0)

    short = dataclasses.replace(SyntheticParams(), pre_quarters=4, post_quarters=11)
    t_fast = _best(lambda: generate(n_persons=1200, seed=1, params=short, tables=FAST), 5)
    figure("fast path 1,200 persons, assignment+panel, 16 quarters", t_fast, "s", at_most=0.2)

    tr = generate(n_persons=1200, seed=1, params=short, tables=FAST)
    seeds = iter(range(10_000))
    t_rr = _best(lambda: tr.rerandomize(next(seeds)), 20)
    figure("rerandomize (fast trial, 1,200 persons), per draw", t_rr, "s")
    figure("  500 fresh fast samples (extrapolated)", 500 * t_fast, "s")

    full = generate(n_persons=1200, seed=1)
    with tempfile.TemporaryDirectory() as d:
        t_w = _best(lambda: full.write(d), 3)
    figure("write 1,200-person trial to parquet", t_w, "s")

    from ips_impact.synthetic import population_truth

    t_pt = _best(lambda: population_truth(outcome="work_on_di", k=6, n=200_000, seed=9), 1)
    figure("population_truth(n=200,000, k=6)", t_pt, "s")

    if not args.skip_large:
        for tabs in (FAST, ("assignment", "panel", "households", "benefits", "takeup")):
            out = subprocess.run(
                [sys.executable, __file__, "--large-child", "250000", "60", ",".join(tabs)],
                check=True, capture_output=True, text=True,
            )
            r = json.loads(out.stdout.strip().splitlines()[-1])
            label = "all tables" if len(tabs) == 5 else "+".join(tabs)
            print(f"250,000 persons × 60 quarters, {label}: {r['panel_rows']:,} panel rows, "
                  f"{r['benefit_rows']:,} benefit rows, {r['cpu_seconds']:.1f} s CPU (user+sys, all "
                  f"threads); idle wall ≈ CPU / 2 cores = {r['cpu_seconds'] / 2:.1f} s; load average "
                  f"{os.getloadavg()[0]:.2f}")
            # issue 15: all tables within 30 s; the fast path has no target of its own
            figure(f"  generate 250,000 × 60 q, {label}: wall time", r["seconds"], "s",
                   at_most=30.0 if len(tabs) == 5 else None)
            figure(f"  generate 250,000 × 60 q, {label}: peak memory", r["peak_mb"], "MB",
                   at_most=8192.0 if len(tabs) == 5 else None)
    summary()


if __name__ == "__main__":
    main()
