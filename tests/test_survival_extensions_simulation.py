"""Size and coverage of the new survival inference on the synthetic IPS trial (slow).

The synthetic generator draws both potential paths of every participant, so the truth
is known exactly. Time to the first job (employed, k >= 1), tau = 20 quarters; each
replication draws 1,200 persons with replacement from a pool of 12,000 synthetic
participants (the pool is the population), assigns half of each region to IPS
completely at random and censors 40% of them at a uniform quarter 1..19 (independent
loss to follow-up).

* Fleming–Harrington size: pool from ``SyntheticParams.null()`` (IPS changes nothing for
  anyone, so every replication is drawn under the null). 4,000 replications; the
  stratified G(0, 1) and G(1, 0) tests at 5% must reject in 4–6% of them (Monte-Carlo
  SE 0.34 points).
* Coverage: pool from the calibrated parameters (IPS shortens the time to the first
  job). 2,000 replications; the 95% intervals of the RMST ratio (delta method on the log
  scale) and of the covariate-adjusted RMST difference (Tian et al. 2014; covariates age,
  female, pre-period employment share) must cover the population truth
  :math:`\\log E\\min(T(1),\\tau) - \\log E\\min(T(0),\\tau)` and
  :math:`E\\min(T(1),\\tau) - E\\min(T(0),\\tau)` in 93.5–96.5% of them (Monte-Carlo SE 0.5).

Seeds are fixed, so the tests are deterministic.
"""

from __future__ import annotations

import numpy as np
import pytest

from ips_impact.estimators._survival.km import kaplan_meier, rmst
from ips_impact.estimators._survival.randomization import survival_statistics
from ips_impact.estimators._survival.rmst import rmst_log_ratio, rmst_regression

pytestmark = pytest.mark.slow

TAU = 20
Z95 = 1.959963984540054
CHI2_95 = 3.841458820694124


def first_job_times(trial, start: int = 1) -> tuple[np.ndarray, ...]:
    """First k >= start with employed = 1 in each potential world (assignment order)."""
    po = trial.potential_outcomes("employed")
    ks = np.sort(po["k"].unique())
    m = po.shape[0] // ks.size
    keep = ks >= start
    ids = po["person_id"].to_numpy().reshape(m, ks.size)[:, 0]
    out = []
    for col in ("y0", "y1"):
        y = po[col].to_numpy().reshape(m, ks.size)[:, keep] > 0
        kk = ks[keep]
        has = y.any(axis=1)
        out.append((np.where(has, kk[np.argmax(y, axis=1)], kk[-1]).astype(float), has.astype(float)))
    order = {p: i for i, p in enumerate(ids)}
    idx = np.array([order[p] for p in trial.assignment["person_id"]])
    (t0, e0), (t1, e1) = out
    return t0[idx], e0[idx], t1[idx], e1[idx]


def replicate(rng, pool, n=1200):
    """One trial: persons drawn from the pool, complete randomization within regions,
    40% independent loss to follow-up. Returns index, arm, time, event, region codes."""
    t0, e0, t1, e1, region = pool
    idx = rng.integers(0, t0.size, n)
    reg = region[idx]
    z = np.zeros(n)
    for r in np.unique(reg):
        members = np.flatnonzero(reg == r)
        z[rng.permutation(members)[: members.size // 2]] = 1
    t = np.where(z == 1, t1[idx], t0[idx])
    e = np.where(z == 1, e1[idx], e0[idx])
    lost = rng.random(n) < 0.4
    c = np.where(lost, rng.integers(1, TAU, n), TAU).astype(float)
    e = np.where(t <= c, e, 0.0)
    t = np.minimum(t, c)
    return idx, z, t, e, reg


def _pool(params, seed):
    from ips_impact.synthetic import generate

    trial = generate(n_persons=12_000, seed=seed, params=params, tables=("assignment", "panel"))
    t0, e0, t1, e1 = first_job_times(trial)
    region = np.unique(trial.assignment["region"].to_numpy(), return_inverse=True)[1].ravel()
    return trial, (t0, e0, t1, e1, region)


def test_fleming_harrington_size_under_the_null():
    from ips_impact.synthetic import SyntheticParams

    _, pool = _pool(SyntheticParams.null(), 20_261)
    t0, e0, t1, e1, _ = pool
    assert np.array_equal(t0, t1) and np.array_equal(e0, e1)  # the sharp null holds
    rng = np.random.Generator(np.random.PCG64(2026))
    reps = 4000
    rej = np.zeros((reps, 2), dtype=bool)
    for r in range(reps):
        _, z, t, e, reg = replicate(rng, pool)
        for j, fh in enumerate(((0.0, 1.0), (1.0, 0.0))):
            stat = survival_statistics(t, e, z, strata=reg, fh=fh, statistics=("logrank_fh",))["logrank_fh"]
            rej[r, j] = stat[0] > CHI2_95
    size = rej.mean(axis=0)
    assert np.all((0.04 <= size) & (size <= 0.06)), size


def test_rmst_ratio_and_adjusted_rmst_difference_cover_the_population_truth():
    trial, pool = _pool(None, 20_240)
    t0, e0, t1, e1, _ = pool
    r1, r0 = np.minimum(t1, TAU).mean(), np.minimum(t0, TAU).mean()
    truth_log_ratio, truth_diff = np.log(r1) - np.log(r0), r1 - r0
    assert truth_diff < -0.5  # IPS shortens the time to the first job in the calibrated trial
    x_pool = trial.assignment[["age", "female", "pre_employment_share"]].to_numpy(dtype=float)
    rng = np.random.Generator(np.random.PCG64(17))
    reps = 2000
    cov = np.zeros((reps, 2), dtype=bool)
    est = np.zeros((reps, 2))
    for r in range(reps):
        idx, z, t, e, _ = replicate(rng, pool)
        kms = kaplan_meier(t, e, z.astype(np.int64), 2)
        lr = rmst_log_ratio(rmst(kms[1], TAU), rmst(kms[0], TAU))
        b, v = rmst_regression(t, e, z, x_pool[idx], TAU, type="difference")
        est[r] = lr.estimate, b[1]
        cov[r, 0] = abs(lr.estimate - truth_log_ratio) <= Z95 * lr.std_error
        cov[r, 1] = abs(b[1] - truth_diff) <= Z95 * np.sqrt(v[1, 1])
    coverage = cov.mean(axis=0)
    # unbiased: mean estimates within 4 Monte-Carlo SEs of the truth
    se_mc = est.std(axis=0) / np.sqrt(reps)
    assert np.all(np.abs(est.mean(axis=0) - [truth_log_ratio, truth_diff]) < 4 * se_mc)
    assert np.all((0.935 <= coverage) & (coverage <= 0.965)), coverage
