"""Size of the randomization tests under the sharp null, by simulation.

Each replication is a new trial: a fresh observed assignment drawn from the design
(complete randomization within 3 strata), fresh outcomes that do not depend on it
(sharp null), fresh re-randomization draws. To keep this fast, replications are
batched: in one batch the observed assignment and the B draws are shared by a few
independent outcome columns (conditionally independent replications).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from ips_impact.inference.multiple import stepdown_maxt, stepdown_minp
from ips_impact.inference.permutation import draw_assignments
from ips_impact.inference.randomization import LinearProblem, linear_statistics, ri_pvalues

pytestmark = pytest.mark.slow

N_STRATA = (14, 10, 6)  # 30 persons, unequal strata
TREATED = (7, 4, 3)     # unequal assignment probabilities


def _design():
    stratum = np.repeat(np.arange(3), N_STRATA)
    arm = np.concatenate([np.r_[np.ones(m), np.zeros(n - m)] for n, m in zip(N_STRATA, TREATED)]).astype(np.int8)
    return arm, stratum


def _problem(kind, y, x, stratum, person_periods=None):
    n = stratum.size
    d = np.eye(3)[stratum][:, 1:]
    if kind == "none":
        return LinearProblem(y=y, row_person=np.arange(n))
    if kind == "ancova":
        return LinearProblem(y=y, row_person=np.arange(n), nuisance=np.column_stack([np.ones(n), x, d]))
    if kind == "lin":
        c = np.column_stack([x, d])
        c = c - c.mean(axis=0)
        return LinearProblem(y=y, row_person=np.arange(n), nuisance=np.column_stack([np.ones(n), c]),
                             interact=np.column_stack([np.ones(n), c]))
    # "stack": 3 periods per person, period effects, rows follow their person.
    rows = np.repeat(np.arange(n), 3)
    period = np.tile(np.arange(3), n)
    w = np.column_stack([np.eye(3)[period], d[rows], x[rows]])
    return LinearProblem(y=y, row_person=rows, nuisance=w)


def _simulate_pvalues(n_batches, per_batch, n_draws, seed):
    rng = np.random.default_rng(seed)
    arm0, stratum = _design()
    kinds = ("none", "ancova", "lin", "stack")
    p_all = []
    for i in range(n_batches):
        kind = kinds[i % 4]
        obs = draw_assignments(arm0, stratum, 1, seed=int(rng.integers(2**32)))[0]
        draws = draw_assignments(arm0, stratum, n_draws, seed=int(rng.integers(2**32)))
        x = rng.normal(size=(30, 2))
        n_rows = 90 if kind == "stack" else 30
        # Skewed outcomes correlated with the covariates, independent of the arm.
        base = x[:, :1] if kind != "stack" else np.repeat(x[:, :1], 3, axis=0)
        y = np.exp(rng.normal(size=(n_rows, per_batch))) + base
        prob = _problem(kind, y, x, stratum)
        t_obs = linear_statistics(prob, obs[None, :])[0][0]
        t = linear_statistics(prob, draws)[0]
        p, _ = ri_pvalues(t_obs, t, exact=False)
        p_all.append(p)
    return np.concatenate(p_all)


def test_size_and_uniformity_under_the_sharp_null():
    p = _simulate_pvalues(n_batches=1000, per_batch=4, n_draws=399, seed=20240501)
    assert p.size == 4000
    reject = np.mean(p <= 0.05)
    ks = stats.kstest(p, "uniform")
    print(f"rejection at 5%: {reject:.4f}; KS D = {ks.statistic:.4f}, p = {ks.pvalue:.3f}")
    assert 0.04 <= reject <= 0.06
    # Monte Carlo p-values sit on the grid k / 400; the KS distance to U(0, 1) of a
    # valid test is then at most 1/400 beyond sampling noise.
    assert ks.pvalue > 0.01


def test_family_wise_error_of_stepdown_methods():
    """1,000 families of 5 correlated outcomes under the sharp null (complete null):
    Westfall-Young minP and Romano-Wolf max-T reject at least one at 5% in about 5%."""
    rng = np.random.default_rng(7)
    arm0, stratum = _design()
    n, m, per_batch, n_draws = 30, 5, 4, 399
    fwer = {"westfall-young": 0, "romano-wolf": 0, "unadjusted": 0}
    n_families = 0
    for _ in range(250):
        obs = draw_assignments(arm0, stratum, 1, seed=int(rng.integers(2**32)))[0]
        draws = draw_assignments(arm0, stratum, n_draws, seed=int(rng.integers(2**32)))
        x = rng.normal(size=(n, 2))
        common = rng.normal(size=(n, per_batch))
        # m outcomes per family sharing a common factor (correlation ~0.5), different scales.
        y = np.concatenate([(common + rng.normal(size=(n, per_batch))) * (j + 1) for j in range(m)], axis=1)
        prob = _problem("ancova", y, x, stratum)
        t_obs = linear_statistics(prob, obs[None, :])[0][0].reshape(m, per_batch)
        t = linear_statistics(prob, draws)[0].reshape(n_draws, m, per_batch)
        for f in range(per_batch):
            n_families += 1
            wy = stepdown_minp(t_obs[:, f], t[:, :, f])
            rw = stepdown_maxt(t_obs[:, f], t[:, :, f])
            raw, _ = ri_pvalues(t_obs[:, f], t[:, :, f], exact=False)
            fwer["westfall-young"] += bool(np.any(wy <= 0.05))
            fwer["romano-wolf"] += bool(np.any(rw <= 0.05))
            fwer["unadjusted"] += bool(np.any(raw <= 0.05))
    rates = {k: v / n_families for k, v in fwer.items()}
    print(f"FWER over {n_families} families: {rates}")
    assert n_families == 1000
    se = np.sqrt(0.05 * 0.95 / n_families)
    for method in ("westfall-young", "romano-wolf"):
        assert rates[method] <= 0.05 + 2.5 * se
        assert rates[method] >= 0.05 - 3.5 * se  # not needlessly conservative
    assert rates["unadjusted"] > 0.10  # the family really needs adjusting


def test_size_with_exact_enumeration():
    """C(6,3) * C(4,2) = 120 assignments, all enumerated: with continuous outcomes the
    exact test rejects at 5% with probability floor(0.05 * 120) / 120 = 0.05."""
    from ips_impact.inference.permutation import assignment_matrix

    stratum = np.repeat([0, 1], [6, 4])
    arm0 = np.r_[np.ones(3), np.zeros(3), np.ones(2), np.zeros(2)].astype(np.int8)
    am = assignment_matrix(arm0, stratum, 10_000, seed=0)
    assert am.exact and am.n_draws == 120
    rng = np.random.default_rng(11)
    n_rep = 4000
    obs_idx = rng.integers(0, 120, n_rep)  # observed assignment drawn from the design
    y = rng.standard_t(3, size=(10, n_rep))  # heavy tails, no effect
    prob = LinearProblem(y=y, row_person=np.arange(10), nuisance=np.column_stack([np.ones(10), stratum]))
    t = linear_statistics(prob, am.draws)[0]  # (120, n_rep): every assignment x replication
    t_obs = t[obs_idx, np.arange(n_rep)]
    p, se = ri_pvalues(t_obs, t, exact=True)
    assert np.all(se == 0)
    reject = np.mean(p <= 0.05)
    print(f"exact enumeration: rejection at 5% {reject:.4f}")
    assert 0.04 <= reject <= 0.06
    # The exact p-value is uniform on its support {k/120}: P(p <= k/120) = k/120.
    for k in (6, 12, 30, 60):
        assert abs(np.mean(p <= k / 120) - k / 120) < 4 * np.sqrt(k / 120 * (1 - k / 120) / n_rep)
