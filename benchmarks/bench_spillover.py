"""Benchmark: household spillovers, household totals and heterogeneity on a synthetic trial.

Run: ``.venv/bin/python benchmarks/bench_spillover.py [--persons 1200] [--repeat 5]``

Setting: a synthetic trial (``ips_impact.synthetic.generate``) of 1,200 participants
with their partners and children, quarterly panel. Timed (best of ``--repeat``):

1. ``spillover`` on partners and on all members at k = 6 (member level, CR2 by household);
2. ``spillover`` at household level and over a window;
3. ``household_total`` of earnings (index person + all members);
4. ``heterogeneity`` by region (HC2) and by household type, with 2 covariates;
5. ``heterogeneity`` by age (continuous moderator).

Targets: every call under 0.5 s on 1,200 participants (a laptop core). The cost is
mostly pandas selection of the members' panel and one QR / CR2 pass of the OLS engine;
heavy BLAS threading on a loaded machine can multiply the engine's share (set
``OPENBLAS_NUM_THREADS=1``).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

from ips_impact.estimators.heterogeneity import heterogeneity
from ips_impact.estimators.spillover import household_total, spillover

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import figure, summary  # noqa: E402


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=1200)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from ips_impact.synthetic import generate

    t0 = time.perf_counter()
    trial = generate(n_persons=args.persons, seed=args.seed, tables=("assignment", "panel", "households"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study = trial.study()
    print(study)
    figure("setup (generate + Study)", time.perf_counter() - t0, "s")

    covs = tuple(c for c in ("age", "female") if c in study.persons.columns)
    cases = {
        "spillover partner k=6 (CR2)": lambda: spillover(study, "employed", members="partner", horizon=6),
        "spillover all members k=6 (CR2)": lambda: spillover(study, "employed", members="all", horizon=6),
        "spillover household level k=6 (HC2)": lambda: spillover(study, "employed", members="all",
                                                                 horizon=6, level="household"),
        "spillover partner window 1..8": lambda: spillover(study, "earnings", members="partner",
                                                           window=(1, 8)),
        "household_total earnings k=6": lambda: household_total(study, "earnings", horizon=6),
        "heterogeneity region (HC2, covariates)": lambda: heterogeneity(
            study, "work_on_di", by="region", horizon=6, covariates=covs),
        "heterogeneity household_type": lambda: heterogeneity(study, "work_on_di",
                                                              by="household_type", horizon=6),
        "heterogeneity age (continuous)": lambda: heterogeneity(study, "work_on_di", by="age", horizon=6)
        if "age" in study.persons.columns else None,
    }
    worst = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, fn in cases.items():
            t = best_of(fn, args.repeat)
            worst = max(worst, t)
            figure(name, t, "s")
    figure("slowest call", worst, "s", at_most=0.5)
    summary()


if __name__ == "__main__":
    main()
