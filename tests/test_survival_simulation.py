"""Coverage and size of the survival inference on the synthetic IPS trial (slow).

* RMST difference (time to the first job, tau = 20 quarters): persons are drawn with
  replacement from a pool of 12,000 synthetic participants whose two potential paths
  are known, so the pool is the population and its RMST difference the exact truth.
  Each replication draws 1,200 persons, assigns 600 to IPS completely at random and
  censors 40% of them at a random quarter (independent loss to follow-up). The 95%
  interval must cover the truth in 93.5–96.5% of 2,000 replications (Monte-Carlo SE
  0.5 points).
* Design-based check: one sample, 2,000 re-randomizations, truth = the sample's RMST
  difference (``truth_rmst``). The survRM2 variance is then conservative by the
  variance of the individual effects (Neyman), so coverage may exceed 95%; it must be
  at least 93.5% and not absurdly conservative.
* Log-rank size: sharp null (everyone's control path), 10,000 re-randomizations drawn as
  the design did (complete randomization within strata); the stratified log-rank test
  at 5% must reject in 4–6% of them (Monte-Carlo SE 0.2 points).

Seeds are fixed, so the test is deterministic; the bands are those of the issue.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from ips_impact.estimators._survival.randomization import rmst_by_assignment, survival_statistics

pytestmark = pytest.mark.slow

TAU = 20
Z95 = 1.959963984540054


def first_job_times(trial, start: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """First k >= start with employed = 1 in each potential world (persons in assignment order)."""
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


@pytest.fixture(scope="module")
def pool():
    from ips_impact.synthetic import generate

    trial = generate(n_persons=12_000, seed=20_240, tables=("assignment", "panel"))
    return first_job_times(trial)


def test_rmst_difference_interval_covers_population_truth(pool):
    t0, e0, t1, e1 = pool
    # truth: the pool is the population; RMST_a = mean min(T(a), tau)
    truth = np.minimum(t1, TAU).mean() - np.minimum(t0, TAU).mean()
    assert truth < -0.5  # IPS shortens the time to the first job in the calibrated trial
    rng = np.random.Generator(np.random.PCG64(7))
    n, reps = 1200, 2000
    covered = np.zeros(reps, dtype=bool)
    estimates = np.zeros(reps)
    for r in range(reps):
        idx = rng.integers(0, t0.size, n)
        z = np.zeros(n)
        z[rng.permutation(n)[: n // 2]] = 1
        t = np.where(z == 1, t1[idx], t0[idx])
        e = np.where(z == 1, e1[idx], e0[idx])
        # independent loss to follow-up: 40% censored at a uniform quarter 1..19
        lost = rng.random(n) < 0.4
        c = np.where(lost, rng.integers(1, TAU, n), TAU).astype(float)
        e = np.where(t <= c, e, 0.0)
        t = np.minimum(t, c)
        o = rmst_by_assignment(t, e, z, TAU)
        d = o["rmst_treated"][0] - o["rmst_control"][0]
        se = np.hypot(o["se_treated"][0], o["se_control"][0])
        estimates[r] = d
        covered[r] = abs(d - truth) <= Z95 * se
    coverage = covered.mean()
    # unbiased: mean estimate within 4 Monte-Carlo SEs of the truth
    assert abs(estimates.mean() - truth) < 4 * estimates.std() / np.sqrt(reps)
    assert 0.935 <= coverage <= 0.965, coverage


def test_rmst_interval_under_rerandomization_is_valid_and_matches_time_to_event():
    from ips_impact.estimators.survival import time_to_event
    from ips_impact.synthetic import generate

    trial = generate(n_persons=1200, seed=31, tables=("assignment", "panel"))
    t0, e0, t1, e1 = first_job_times(trial)
    truth = trial.truth_rmst.query("event == 'employed' and tau == @TAU and group == 'all'")
    truth = float(truth["difference"].iloc[0])
    assert truth == pytest.approx(np.minimum(t1, TAU).mean() - np.minimum(t0, TAU).mean(), abs=1e-12)
    study = trial.study()
    # the public function on the revealed data = the vectorised core at the actual assignment
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = time_to_event(study, "employed", horizon=TAU, tau=TAU)
    arm = study.design.arm.astype(float)
    pos = {p: i for i, p in enumerate(trial.assignment["person_id"])}
    idx = np.array([pos[p] for p in study.persons["person_id"]])
    t0, e0, t1, e1 = t0[idx], e0[idx], t1[idx], e1[idx]
    o = rmst_by_assignment(np.where(arm == 1, t1, t0), np.where(arm == 1, e1, e0), arm, TAU)
    tidy = res.tidy().set_index("term")
    assert tidy.loc["rmst_difference", "estimate"] == pytest.approx(
        o["rmst_treated"][0] - o["rmst_control"][0], abs=1e-10)
    assert tidy.loc["rmst_difference", "std_error"] == pytest.approx(
        np.hypot(o["se_treated"][0], o["se_control"][0]), abs=1e-10)
    z = study.design.permutations(2000, seed=5).astype(float)
    covered = []
    for zb in z:
        t = np.where(zb == 1, t1, t0)
        e = np.where(zb == 1, e1, e0)
        ob = rmst_by_assignment(t, e, zb, TAU)
        d = ob["rmst_treated"][0] - ob["rmst_control"][0]
        covered.append(abs(d - truth) <= Z95 * np.hypot(ob["se_treated"][0], ob["se_control"][0]))
    coverage = float(np.mean(covered))
    assert 0.935 <= coverage <= 0.99, coverage


def test_logrank_size_under_the_sharp_null():
    from ips_impact.synthetic import generate

    trial = generate(n_persons=1200, seed=47, tables=("assignment", "panel"))
    study = trial.study()
    t0, e0, _, _ = first_job_times(trial)
    pos = {p: i for i, p in enumerate(trial.assignment["person_id"])}
    idx = np.array([pos[p] for p in study.persons["person_id"]])
    t0, e0 = t0[idx], e0[idx]
    z = study.design.permutations(10_000, seed=9)
    stat = survival_statistics(t0, e0, z, strata=study.design.stratum, statistics=("logrank",))["logrank"]
    size = float(np.mean(stat > 3.841458820694124))
    assert 0.04 <= size <= 0.06, size
