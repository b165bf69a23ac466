"""Benchmark: default BLAS threads vs one thread (issue 15).

Run: ``python benchmarks/bench_threads.py``

Each case is timed in two child processes, one started with the machine's default
OpenBLAS threads (``OPENBLAS_NUM_THREADS`` removed from its environment) and one with
``OPENBLAS_NUM_THREADS=1``. The library chooses its own threading on its hot paths
(``ips_impact._threads``), so the ratio default / single must be at most 1.0:

1. ``itt`` (1,200 persons, 8 covariates, ANCOVA, HC2);
2. stacked ``itt`` over k = 1..12 (CR2 by person, Satterthwaite df);
3. ``itt_by_period`` over 36 event times;
4. the randomization engine: ``randomization_inference`` of an itt_by_period result
   (20 event times) with 2,000 draws.

Times are medians of repeated calls after a warm-up, in each of 3 rounds that alternate
the two kinds of child; the best round of each is kept. ``OPENBLAS_CORETYPE`` is left as it
is (see the environment notes): both children run the same kernel.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import figure, summary  # noqa: E402

ROUNDS = 3
COVS = ("age", "female", "education", "diagnosis", "di_phase", "di_months", "household_type",
        "pre_employment_share")


def _median(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def child() -> None:
    import warnings

    import ips_impact as ii
    from ips_impact import _threads

    warnings.simplefilter("ignore")
    study = ii.synthetic.generate(n_persons=1200, seed=0, tables=("assignment", "panel")).study()
    dyn = ii.itt_by_period(study, "work_on_di", periods=range(1, 21))
    cases = {
        "itt": (lambda: ii.itt(study, "work_on_di", horizon=6, covariates=COVS), 25),
        "stacked CR2": (lambda: ii.itt(study, "work_on_di", window=(1, 12), aggregate="stack",
                                       covariates=COVS), 5),
        "itt_by_period": (lambda: ii.itt_by_period(study, "work_on_di", periods=range(-15, 21),
                                                   covariates=COVS), 5),
        "RI engine": (lambda: ii.randomization_inference(study, dyn, n_permutations=2000, seed=0), 3),
    }
    out = {name: _median(fn, rep) for name, (fn, rep) in cases.items()}
    out["_threads"] = _threads.blas_threads()
    print(json.dumps(out))


def main() -> None:
    if "--child" in sys.argv:
        child()
        return
    # alternate the two kinds of child and keep each case's best time, so that a change
    # in what else the machine runs does not favour one of them
    results: dict[str, dict[str, float]] = {}
    for _ in range(ROUNDS):
        for mode in ("default", "single"):
            env = dict(os.environ)
            env.pop("OPENBLAS_NUM_THREADS", None)
            if mode == "single":
                env["OPENBLAS_NUM_THREADS"] = "1"
            run = subprocess.run([sys.executable, __file__, "--child"], env=env, check=True,
                                 capture_output=True, text=True)
            got = json.loads(run.stdout.strip().splitlines()[-1])
            best = results.setdefault(mode, got)
            for k, v in got.items():
                best[k] = min(best[k], v)
    print(f"BLAS threads outside the hot paths: default {results['default']['_threads']}, "
          f"single {results['single']['_threads']}; load average {os.getloadavg()[0]:.1f}")
    for name in ("itt", "stacked CR2", "itt_by_period", "RI engine"):
        d, s = results["default"][name], results["single"][name]
        figure(f"{name}: default threads", d, "s")
        figure(f"{name}: one thread", s, "s")
        figure(f"{name}: ratio default / one thread", d / s, "x", at_most=1.0)
    summary()


if __name__ == "__main__":
    main()
