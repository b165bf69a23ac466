"""Benchmark: `ips-impact run` of the registered plan on the committed sample.

Run: ``.venv/bin/python benchmarks/bench_plan.py [--draws 2000] [--jobs 2]``

Setting: the committed synthetic sample (``synthetic_data/``: 1,200 persons, quarterly
panel k = -16..20, households), the default plan (``AnalysisPlan.default()``: 35
estimands of 7 estimators, 4 families, one of them Romano–Wolf), 2,000 randomization
draws per estimand.

Timed:
1. ``ips-impact run synthetic_data --out DIR --n-permutations 2000 --jobs J`` as a user
   runs it (a fresh process: imports, reading and validating the delivery, the plan,
   saving the Analysis) — target: under 20 s wall on 2 cores;
2. the same plan in-process through ``run_plan(..., timings=...)``, printing the seconds
   spent per estimator family (fit + randomization inference; CPU seconds summed over
   workers) and in the family adjustments.
The load of the machine is printed with the figures: the target is for an otherwise
idle 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "synthetic_data"
TARGET_S = 20.0


def _cli(out: Path, draws: int, jobs: int) -> tuple[float, float]:
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "ips_impact.cli", "--quiet", "run", str(SAMPLE), "--out", str(out),
         "--n-permutations", str(draws), "--jobs", str(jobs)],
        env=env, capture_output=True, text=True, check=False,
    )
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        print(proc.stdout[-2000:], proc.stderr[-2000:], sep="\n")
        raise SystemExit(f"ips-impact run failed with exit code {proc.returncode}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def _families(draws: int, jobs: int) -> None:
    import ips_impact as ii

    study = ii.load_study(SAMPLE)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    analysis = ii.run_plan(study, ii.AnalysisPlan.default(), n_permutations=draws, progress=False,
                           timings=timings, n_jobs=jobs)
    wall = time.perf_counter() - t0
    counts: dict[str, int] = {}
    for e in analysis.entries:
        counts[e.estimator] = counts.get(e.estimator, 0) + 1
    print(f"\nrun_plan in-process: {wall:.2f} s wall ({len(analysis.entries)} estimands, {jobs} job(s))")
    print(f"{'estimator family':<18}{'estimands':>10}{'fit s':>9}{'RI s':>9}{'total s':>9}")
    for est in counts:
        fit, ri = timings.get(est, 0.0), timings.get(f"{est} RI", 0.0)
        print(f"{est:<18}{counts[est]:>10}{fit:>9.2f}{ri:>9.2f}{fit + ri:>9.2f}")
    print(f"{'families (adjust)':<18}{len(analysis.plan.families):>10}{'':>9}{'':>9}"
          f"{timings.get('families', 0.0):>9.2f}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--draws", type=int, default=2000)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    # One BLAS thread per process, set before numpy is imported (in _families): the
    # machine has 2 cores and the workers share them.
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    load = os.getloadavg()[0]
    print(f"machine: {os.cpu_count()} cores, load average {load:.1f} (1 min)")
    with tempfile.TemporaryDirectory() as tmp:
        for jobs in sorted({1, args.jobs}):
            wall, cpu = _cli(Path(tmp) / f"jobs{jobs}", args.draws, jobs)
            verdict = "PASS" if wall < TARGET_S else "FAIL"
            print(f"ips-impact run, default plan, {args.draws:,} draws, --jobs {jobs}: {wall:.1f} s wall "
                  f"({cpu:.1f} s CPU); target < {TARGET_S:.0f} s on 2 cores: {verdict}")
        same = all((Path(tmp) / "jobs1" / n).read_bytes() == (Path(tmp) / f"jobs{args.jobs}" / n).read_bytes()
                   for n in ("manifest.json", "tidy.parquet"))
        print(f"same files with 1 and {args.jobs} jobs: {'PASS' if same else 'FAIL'}")
    _families(args.draws, args.jobs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
