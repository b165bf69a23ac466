"""Benchmark: population-scale linkage (issue 15, item 1) — puts the gap on record.

Run: ``python benchmarks/bench_scale.py [--persons 250000] [--data DIR]``

1. writes a synthetic extract of N persons × 60 quarters (assignment + panel, parquet)
   to DIR (kept between runs: it is made once);
2. in a fresh child process: ``ii.load_study(DIR)`` — targets ≤ 10 s and ≤ 4 GB peak
   resident memory (``ru_maxrss`` of the child) at 250,000 persons;
3. then ``itt_by_period`` over 24 event times — target ≤ 1 s.

The 1,000,000-person run (linkage through DuckDB within 16 GB) is
``--persons 1000000``; it has no time target, only the memory one.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import figure, summary  # noqa: E402


def make(n: int, out: Path) -> None:
    from ips_impact.synthetic import SyntheticParams, generate

    # 60 quarters: k = -20 .. 39
    p = dataclasses.replace(SyntheticParams(), pre_quarters=20, post_quarters=39)
    t = time.perf_counter()
    trial = generate(n_persons=n, seed=15, params=p, tables=("assignment", "panel"), job_details=True)
    out.mkdir(parents=True, exist_ok=True)
    trial.assignment.to_parquet(out / "assignment.parquet", index=False)
    trial.panel.to_parquet(out / "panel.parquet", index=False)
    print(f"wrote {n:,} persons, {len(trial.panel):,} panel rows to {out} in "
          f"{time.perf_counter() - t:.0f} s", flush=True)


def child(path: Path) -> None:
    import warnings

    import ips_impact as ii

    warnings.simplefilter("ignore")
    t = time.perf_counter()
    study = ii.load_study(path)
    t_load = time.perf_counter() - t
    rss_load = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t = time.perf_counter()
    ii.itt_by_period(study, "work_on_di", periods=range(1, 25))
    t_dyn = time.perf_counter() - t
    print(json.dumps({"load": t_load, "peak_mb_load": rss_load, "itt_by_period": t_dyn,
                      "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "rows": len(study.panel)}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--persons", type=int, default=250_000)
    ap.add_argument("--data", type=Path, default=None, help="folder of the extract (default /tmp)")
    ap.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        child(args.child)
        return
    data = args.data or Path(f"/tmp/ips_impact_scale_{args.persons}")
    if not (data / "panel.parquet").exists():
        make(args.persons, data)
    run = subprocess.run([sys.executable, __file__, "--child", str(data)], check=True,
                         capture_output=True, text=True)
    r = json.loads(run.stdout.strip().splitlines()[-1])
    big = args.persons >= 1_000_000
    print(f"{args.persons:,} persons × 60 quarters: {r['rows']:,} panel rows")
    figure("load_study: wall time", r["load"], "s", at_most=None if big else 10.0)
    figure("load_study: peak resident memory", r["peak_mb_load"], "MB",
           at_most=16384.0 if big else 4096.0)
    figure("itt_by_period over 24 event times", r["itt_by_period"], "s", at_most=None if big else 1.0)
    figure("peak resident memory, load + itt_by_period", r["peak_mb"], "MB",
           at_most=16384.0 if big else None)
    summary()


if __name__ == "__main__":
    main()
