"""Benchmark: randomization inference for 100 statistics with 10,000 draws.

Run: ``.venv/bin/python benchmarks/bench_randomization.py [--draws 10000]``

Setting: 1,200 persons in 3 strata (680/400/120, half treated in each, as in the
Belgian pilot), ANCOVA with 5 baseline covariates and stratum effects, 100 statistics
(5 outcomes x 20 horizons), 10,000 draws of complete randomization within strata.

Timed:
1. the vectorised engine: drawing the assignment matrix once, all 100 x 10,000
   coefficients (one chunked matrix product on residualised outcomes) and the
   p-values — targets: <= 2 s, peak memory <= 2 GB;
2. the usual approach (ritest, ri2): refit an OLS (statsmodels) per draw and per
   statistic, on a subset of draws, extrapolated to 10,000 draws — target ratio >= 500.
Both are checked to give the same coefficients on the subset.
3. end to end through the public API on the synthetic trial (1,200 persons):
   ``randomization_inference(study, results)`` for 5 outcomes x 20 horizons fitted by
   ``itt_by_period`` (ANCOVA with stratum effects) — building the problems from the
   fitted results, drawing once, all p-values.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import statsmodels.api as sm

from ips_impact.inference.permutation import draw_assignments
from ips_impact.inference.randomization import LinearProblem, linear_statistics, ri_pvalues

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import figure, summary  # noqa: E402


def make_trial(n_outcomes: int = 5, n_horizons: int = 20, seed: int = 0):
    rng = np.random.default_rng(seed)
    sizes = np.array([680, 400, 120])
    stratum = np.repeat(np.arange(3), sizes)
    arm = np.zeros(sizes.sum(), dtype=np.int8)
    for s, n_s in enumerate(sizes):
        idx = np.flatnonzero(stratum == s)
        arm[rng.choice(idx, n_s // 2, replace=False)] = 1
    n = arm.size
    x = rng.normal(size=(n, 5))
    w = np.column_stack([np.ones(n), x, np.eye(3)[stratum][:, 1:]])
    # Outcomes by horizon: persistent person effect + covariates + an arm effect.
    person = rng.normal(size=(n, 1))
    y = np.concatenate(
        [
            (person + x[:, :1] + 0.1 * arm[:, None] + rng.normal(size=(n, n_horizons))) * (o + 1)
            for o in range(n_outcomes)
        ],
        axis=1,
    )
    return arm, stratum, w, y


def run_engine(arm, stratum, w, y, n_draws, seed=0):
    draws = draw_assignments(arm, stratum, n_draws, seed)
    prob = LinearProblem(y=y, row_person=np.arange(arm.size), nuisance=w)
    t_obs = linear_statistics(prob, arm[None, :])[0][0]
    t = linear_statistics(prob, draws)[0]
    p, se = ri_pvalues(t_obs, t, exact=False)
    return draws, t, p


def run_refit(draws, w, y, n_sub):
    """Refit per draw and per statistic, as ritest / ri2 do."""
    out = np.empty((n_sub, y.shape[1]))
    for b in range(n_sub):
        x = np.column_stack([draws[b], w])
        for k in range(y.shape[1]):
            out[b, k] = sm.OLS(y[:, k], x).fit().params[0]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=10_000)
    ap.add_argument("--refit-draws", type=int, default=20, help="draws refitted by statsmodels")
    args = ap.parse_args()

    arm, stratum, w, y = make_trial()
    print(f"persons {arm.size}, strata 3, statistics {y.shape[1]}, draws {args.draws}")

    run_engine(arm, stratum, w, y, 200)  # warm-up (imports, BLAS threads)
    tracemalloc.start()
    t0 = time.perf_counter()
    draws, t, p = run_engine(arm, stratum, w, y, args.draws)
    elapsed = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB -> MB on Linux
    figure(f"vectorised engine: {args.draws} draws x {y.shape[1]} statistics", elapsed, "s", at_most=2.0)
    figure("  peak memory (traced or max RSS, the larger)", max(peak / 2**20, rss), "MB", at_most=2048.0)

    n_sub = args.refit_draws
    t0 = time.perf_counter()
    ref = run_refit(draws, w, y, n_sub)
    refit = time.perf_counter() - t0
    err = np.max(np.abs(ref - t[:n_sub]))
    per_draw = refit / n_sub
    extrapolated = per_draw * args.draws
    figure(f"refit per draw (statsmodels OLS, {y.shape[1]} fits), per draw", per_draw, "s")
    figure(f"  refit extrapolated to {args.draws} draws", extrapolated, "s")
    figure("max |difference| of coefficients on the subset", err, "", at_most=1e-8)
    ratio = extrapolated / elapsed
    figure("speed-up of the engine over refitting", ratio, "x", at_least=500.0)
    print(f"smallest p-value {p.min():.4f}, share p <= 0.05: {np.mean(p <= 0.05):.2f}")

    end_to_end(args.draws)
    summary()


def end_to_end(n_draws: int) -> None:
    import warnings

    from ips_impact.estimators.dynamic import itt_by_period
    from ips_impact.inference.randomization import randomization_inference
    from ips_impact.synthetic.trial import generate

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study = generate(n_persons=1200, seed=0, tables=("assignment", "panel")).study()
        outcomes = ["employed", "work_on_di", "earnings", "fte", "di_benefit"]
        results = [itt_by_period(study, o, periods=range(1, 21)) for o in outcomes]
    n_stat = sum(r.n_rows for r in results)
    tracemalloc.start()
    t0 = time.perf_counter()
    out = randomization_inference(study, results, n_permutations=n_draws, seed=0)
    elapsed = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    p = np.concatenate([r.tidy()["ri_p_value"].to_numpy() for r in out])
    figure(f"end to end (itt_by_period, {n_stat} statistics, {n_draws} draws)", elapsed, "s")
    figure("  peak traced memory", peak / 2**20, "MB")
    print(f"share of RI p-values <= 0.05: {np.mean(p <= 0.05):.2f}")


if __name__ == "__main__":
    main()
