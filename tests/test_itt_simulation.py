"""Coverage and bias of itt() on the synthetic trial (issue 4, "Correctness").

Design of the simulation
------------------------
* A pool of 10,000 synthetic participants with both potential paths
  (``ips_impact.synthetic.generate`` fast path + ``potential_outcomes``); the truth is the
  pool's average effect on ``work_on_di`` (exact, no Monte-Carlo error): at k = 6 for the
  horizon estimators, the mean over k = 5..8 for the stacked one.
* Each replication draws 1,200 persons from the pool with replacement (so the pool is
  the super-population and the robust standard errors target the right variance),
  randomizes completely within the 12 strata (half of each stratum treated), reveals
  the outcome of the assigned arm, and fits the four estimators. Replications come in
  antithetic pairs (assignment z and 1 − z on the same persons): same distribution,
  less Monte-Carlo noise.
* 300 samples × 2 assignments = 600 replications. Coverage must lie in 93.5–96.5% for
  "none", "ancova", "lin" with HC2, and in 93–97% for stacked CR2 (Monte-Carlo sd of a
  coverage rate of 95% with 600 independent replications: 0.9 points).
* Bias is measured against each sample's own average effect (its expectation is the
  pool effect), averaged over the antithetic pair — same expectation as the bias
  against the pool truth, much less noise — and must be below 0.05 mean standard errors.

The replications use the estimator core that :func:`itt` runs after its data step
(:func:`regression_design` and :class:`OLSDesign`); ``test_replication_equals_itt``
checks on one replication that :func:`itt` on a real Study gives the same numbers.
"""

from __future__ import annotations

import contextlib
import ctypes

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ips_impact.estimators._data import covariate_matrix, dummies, regression_design
from ips_impact.estimators.itt import itt
from ips_impact.inference.covariance import OLSDesign
from ips_impact.study import Study
from ips_impact.synthetic import generate

N_POOL, N, N_SAMPLES, SEED = 10_000, 1_200, 300, 20_240_601


@contextlib.contextmanager
def single_threaded_blas():
    """Run OpenBLAS with one thread, then restore the previous setting.

    With several processes on two cores, OpenBLAS worker threads spin against each
    other and the small regressions of a simulation run ~15 times slower (measured:
    187 s instead of 12 s). Only the OpenBLAS copies already loaded by numpy/scipy are
    touched (found in /proc/self/maps, as threadpoolctl does); elsewhere this is a no-op.
    """
    handles = []
    try:
        with open("/proc/self/maps", encoding="utf-8") as fh:
            paths = {line.split()[-1] for line in fh if "openblas" in line.lower() and "/" in line}
    except OSError:
        paths = set()
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for suffix in ("64_", ""):
            get = getattr(lib, f"scipy_openblas_get_num_threads{suffix}", None)
            put = getattr(lib, f"scipy_openblas_set_num_threads{suffix}", None)
            if get is not None and put is not None:
                handles.append((put, get()))
                put(1)
                break
    try:
        yield
    finally:
        for put, n in handles:
            put(n)


@pytest.fixture(scope="module", autouse=True)
def _one_blas_thread():
    with single_threaded_blas():
        yield
K_H, WINDOW = 6, (5, 8)
COVS = ("age", "female", "pre_employment_share", "di_months", "education")


@pytest.fixture(scope="module")
def pool():
    trial = generate(n_persons=N_POOL, seed=SEED, tables=("assignment", "panel"))
    a = trial.assignment.reset_index(drop=True)
    po = trial.potential_outcomes("work_on_di")
    ks = np.arange(WINDOW[0], WINDOW[1] + 1)
    wide0 = po.pivot(index="person_id", columns="k", values="y0").loc[a["person_id"]]
    wide1 = po.pivot(index="person_id", columns="k", values="y1").loc[a["person_id"]]
    y0 = wide0[list(ks)].to_numpy()
    y1 = wide1[list(ks)].to_numpy()
    Z, znames = covariate_matrix(a, COVS)
    s_codes, s_labels = pd.factorize(a["stratum"], sort=True)
    return {
        "assignment": a, "y0": y0, "y1": y1, "ks": ks, "h": int(np.flatnonzero(ks == K_H)[0]),
        "Z": Z, "znames": znames, "strata": s_codes, "slabels": list(s_labels),
        "truth_h": float((y1 - y0)[:, np.flatnonzero(ks == K_H)[0]].mean()),
        "truth_w": float((y1 - y0).mean()),
    }


def _draw(pool, rng):
    idx = rng.integers(0, N_POOL, N)
    s = pool["strata"][idx]
    u = rng.random(N)
    order = np.lexsort((u, s))
    sizes = np.bincount(s, minlength=len(pool["slabels"]))
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    rank = np.empty(N, dtype=np.int64)
    rank[order] = np.arange(N) - np.repeat(starts, sizes)
    z = (rank < (sizes // 2)[s]).astype(np.float64)  # complete randomization within strata
    return idx, s, z


def _fit(pool, idx, s, z):
    """(estimate, se, df) of none / ancova / lin (HC2, k = 6) and stacked ancova (CR2, k = 5..8)."""
    y0, y1 = pool["y0"][idx], pool["y1"][idx]
    Y = z[:, None] * y1 + (1 - z[:, None]) * y0
    y = Y[:, pool["h"]]
    S, snames = dummies(s, pool["slabels"], "stratum")
    Z, zn = pool["Z"][idx], pool["znames"]
    out = {}
    for adj, covs in (("none", None), ("ancova", Z), ("lin", Z)):
        rd = regression_design(z, adjustment=adj, covariates=covs, covariate_names=zn if covs is not None else (),
                               strata=S, strata_names=snames)
        f = OLSDesign(rd.X, rd.names, cov_type="HC2").fit(y, df_for=[1])
        out[adj] = (f.coef[1], f.std_error[1], f.df[1])
    T = Y.shape[1]
    rows = np.repeat(np.arange(N), T)
    kk = np.tile(np.arange(T), N)
    E, en = dummies(kk, list(pool["ks"]), "k")
    rd = regression_design(z[rows], adjustment="ancova", covariates=Z[rows], covariate_names=zn,
                           strata=S[rows], strata_names=snames, extra=E, extra_names=en)
    f = OLSDesign(rd.X, rd.names, cov_type="CR2", clusters=rows).fit(Y.ravel(), df_for=[1])
    out["stack"] = (f.coef[1], f.std_error[1], f.df[1])
    sate = {"h": float((y1 - y0)[:, pool["h"]].mean()), "w": float((y1 - y0).mean())}
    return out, sate


@pytest.mark.slow
def test_coverage_and_bias(pool):
    rng = np.random.Generator(np.random.PCG64(SEED))
    names = ("none", "ancova", "lin", "stack")
    est = {m: np.empty((N_SAMPLES, 2)) for m in names}
    se = {m: np.empty((N_SAMPLES, 2)) for m in names}
    df = {m: np.empty((N_SAMPLES, 2)) for m in names}
    sate = {m: np.empty(N_SAMPLES) for m in names}
    for r in range(N_SAMPLES):  # one iteration = one sample and its antithetic pair of assignments
        idx, s, z = _draw(pool, rng)
        for a, zz in enumerate((z, 1.0 - z)):
            out, sa = _fit(pool, idx, s, zz)
            for m in names:
                est[m][r, a], se[m][r, a], df[m][r, a] = out[m]
        for m in names:
            sate[m][r] = sa["w"] if m == "stack" else sa["h"]
    report = {}
    for m in names:
        truth = pool["truth_w"] if m == "stack" else pool["truth_h"]
        q = stats.t.ppf(0.975, df[m])
        cover = (np.abs(est[m] - truth) <= q * se[m]).mean()
        bias_se = (est[m].mean(axis=1) - sate[m]).mean() / se[m].mean()
        report[m] = (cover, bias_se, est[m].mean() - truth, se[m].mean(), est[m].std())
    print("\nmethod  coverage  bias/SE  bias  mean SE  sd(estimate)")
    for m, (c, b, braw, s_, sd) in report.items():
        print(f"{m:7s} {c:8.4f} {b:8.4f} {braw:8.5f} {s_:8.5f} {sd:8.5f}")
    for m in ("none", "ancova", "lin"):
        assert 0.935 <= report[m][0] <= 0.965, (m, report[m])
    assert 0.93 <= report["stack"][0] <= 0.97, report["stack"]
    for m in names:
        assert abs(report[m][1]) < 0.05, (m, report[m])


def test_replication_equals_itt(pool):
    """The simulation's fast path is itt(): same numbers on a Study built from one replication."""
    rng = np.random.Generator(np.random.PCG64(1))
    idx, s, z = _draw(pool, rng)
    out, _ = _fit(pool, idx, s, z)
    a = pool["assignment"].iloc[idx].reset_index(drop=True)
    a = a.assign(person_id=[f"r{i:05d}" for i in range(N)], arm=z.astype(int), randomization_period=0)
    a = a[["person_id", "arm", "randomization_period", "stratum", *COVS]]
    Y = z[:, None] * pool["y1"][idx] + (1 - z[:, None]) * pool["y0"][idx]
    ks = pool["ks"]
    panel = pd.DataFrame({"person_id": np.repeat(a["person_id"], ks.size), "period": np.tile(ks, N),
                          "work_on_di": Y.ravel()})
    st = Study.from_frames(a, panel, frequency="int")
    for adj in ("none", "ancova", "lin"):
        r = itt(st, "work_on_di", horizon=K_H, adjustment=adj, covariates=() if adj == "none" else COVS)
        assert r.spec["cov_type"] == "HC2"
        assert r.estimate == pytest.approx(out[adj][0], rel=1e-9)
        assert r.std_error == pytest.approx(out[adj][1], rel=1e-9)
    r = itt(st, "work_on_di", window=WINDOW, aggregate="stack", covariates=COVS)
    assert r.spec["cov_type"] == "CR2"
    assert r.estimate == pytest.approx(out["stack"][0], rel=1e-9)
    assert r.std_error == pytest.approx(out["stack"][1], rel=1e-9)
    assert r.df == pytest.approx(out["stack"][2], rel=1e-9)
