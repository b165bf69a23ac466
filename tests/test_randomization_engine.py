"""The vectorised randomization engine against a refit per draw (statsmodels OLS),
exact enumeration against a brute-force loop, and the p-value conventions."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm

from ips_impact.errors import EstimationError
from ips_impact.inference.permutation import (
    assignment_matrix,
    draw_assignments,
    enumerate_assignments,
)
from ips_impact.inference.randomization import (
    LinearProblem,
    linear_statistics,
    randomization_distribution,
    ri_confidence_interval,
    ri_pvalues,
)


def _trial(n=60, seed=0, n_strata=3):
    rng = np.random.default_rng(seed)
    stratum = rng.integers(0, n_strata, n)
    arm = np.zeros(n, dtype=np.int8)
    for s in range(n_strata):
        idx = np.flatnonzero(stratum == s)
        arm[rng.choice(idx, size=idx.size // 2, replace=False)] = 1
    x = rng.normal(size=(n, 2))
    d = np.eye(n_strata)[stratum][:, 1:]
    return rng, stratum, arm, x, d


def test_ancova_equals_ols_refit_per_draw():
    rng, stratum, arm, x, d = _trial()
    n = arm.size
    y = rng.normal(size=(n, 3)) + x[:, :1]
    w = np.column_stack([np.ones(n), x, d])
    draws = draw_assignments(arm, stratum, 25, seed=1)
    t = linear_statistics(LinearProblem(y=y, row_person=np.arange(n), nuisance=w), draws)[0]
    assert t.shape == (25, 3)
    for b in range(25):
        for k in range(3):
            fit = sm.OLS(y[:, k], np.column_stack([draws[b], w])).fit()
            assert t[b, k] == pytest.approx(fit.params[0], rel=1e-10, abs=1e-12)


def test_difference_in_means_without_nuisance():
    rng, stratum, arm, _, _ = _trial(n=40, seed=3)
    y = rng.normal(size=40)
    draws = draw_assignments(arm, stratum, 10, seed=2)
    t = linear_statistics(LinearProblem(y=y, row_person=np.arange(40)), draws)[0][:, 0]
    expected = [y[z == 1].mean() - y[z == 0].mean() for z in draws]
    np.testing.assert_allclose(t, expected, rtol=1e-12)


def test_lin_equals_interacted_ols_refit():
    rng, stratum, arm, x, d = _trial(n=80, seed=4)
    n = arm.size
    y = rng.normal(size=(n, 2)) + 2 * x[:, :1] * arm[:, None]
    xc = np.column_stack([x, d])
    xc = xc - xc.mean(axis=0)
    v = np.column_stack([np.ones(n), xc])
    prob = LinearProblem(y=y, row_person=np.arange(n), nuisance=v, interact=v)
    draws = draw_assignments(arm, stratum, 15, seed=5)
    t = linear_statistics(prob, draws)[0]
    for b in range(15):
        z = draws[b].astype(float)
        fit = sm.OLS(y[:, 1], np.column_stack([z, np.ones(n), xc, z[:, None] * xc])).fit()
        assert t[b, 1] == pytest.approx(fit.params[0], rel=1e-9, abs=1e-12)


def test_stacked_rows_follow_their_person():
    rng, stratum, arm, x, d = _trial(n=50, seed=6)
    n = arm.size
    person = np.repeat(np.arange(n), 4)
    period = np.tile(np.arange(4), n)
    keep = rng.random(person.size) < 0.8  # unbalanced panel
    person, period = person[keep], period[keep]
    y = rng.normal(size=person.size)
    w = np.column_stack([np.eye(4)[period], d[person], x[person]])
    draws = draw_assignments(arm, stratum, 10, seed=7)
    t = linear_statistics(LinearProblem(y=y, row_person=person, nuisance=w), draws)[0][:, 0]
    for b in range(10):
        fit = sm.OLS(y, np.column_stack([draws[b][person], w])).fit()
        assert t[b] == pytest.approx(fit.params[0], rel=1e-10, abs=1e-12)


def test_subgroup_effects_several_coefficients():
    rng, stratum, arm, x, d = _trial(n=90, seed=8)
    n = arm.size
    g = np.eye(3)[stratum]  # effects by stratum
    y = rng.normal(size=n)
    prob = LinearProblem(y=y, row_person=np.arange(n), nuisance=g, interact=g, coef=(0, 1, 2))
    draws = draw_assignments(arm, stratum, 5, seed=9)
    t = linear_statistics(prob, draws)[0]
    assert t.shape == (5, 3)
    for b in range(5):
        z = draws[b]
        expected = [y[(stratum == s) & (z == 1)].mean() - y[(stratum == s) & (z == 0)].mean() for s in range(3)]
        np.testing.assert_allclose(t[b], expected, rtol=1e-10)


def test_chunking_does_not_change_statistics():
    rng, stratum, arm, x, d = _trial(n=70, seed=10)
    y = rng.normal(size=(70, 4))
    prob = LinearProblem(y=y, row_person=np.arange(70), nuisance=np.column_stack([np.ones(70), x]))
    draws = draw_assignments(arm, stratum, 500, seed=11)
    big = linear_statistics(prob, draws)[0]
    small = linear_statistics(prob, draws, memory=8 * 1000)[0]  # a few draws per chunk
    # BLAS blocks a product differently with the number of rows: equal up to rounding.
    np.testing.assert_allclose(big, small, rtol=1e-12, atol=1e-15)


def _brute_force_p(y, w, arm, stratum):
    """Exact p-value by a loop over every assignment, each refitted by OLS."""
    t_obs = sm.OLS(y, np.column_stack([arm, w])).fit().params[0]
    ts = []
    for z in enumerate_assignments(arm, stratum):
        ts.append(sm.OLS(y, np.column_stack([z, w])).fit().params[0])
    ts = np.abs(np.array(ts))
    return np.mean(ts >= abs(t_obs) * (1 - 1e-9)), len(ts)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exact_enumeration_matches_brute_force_loop(seed):
    rng = np.random.default_rng(100 + seed)
    stratum = np.repeat([0, 1], [7, 5])
    arm = np.r_[np.ones(3), np.zeros(4), np.ones(2), np.zeros(3)].astype(np.int8)
    x = rng.normal(size=12)
    y = rng.normal(size=12) + 0.8 * arm + x
    w = np.column_stack([np.ones(12), stratum, x])
    am = assignment_matrix(arm, stratum, 10_000, seed=0)
    assert am.exact and am.n_draws == 35 * 10
    dist = randomization_distribution(LinearProblem(y=y, row_person=np.arange(12), nuisance=w), arm, am)
    p_brute, n_brute = _brute_force_p(y, w, arm, stratum)
    assert n_brute == 350
    assert dist.p_value[0] == pytest.approx(p_brute, abs=1e-15)
    assert dist.se[0] == 0.0


def test_pvalue_formulas():
    t_draws = np.array([[0.5], [-2.0], [1.0], [3.0]])
    p, se = ri_pvalues(np.array([1.0]), t_draws, exact=False)
    # (1 + #{|T_b| >= 1}) / (1 + B) = (1 + 3) / 5
    assert p[0] == pytest.approx(4 / 5)
    assert se[0] == pytest.approx(np.sqrt(0.8 * 0.2 / 4))
    p, se = ri_pvalues(np.array([1.0]), t_draws, exact=True)
    assert p[0] == pytest.approx(3 / 4) and se[0] == 0.0
    # Draws with an undefined statistic count as extreme; a missing observed gives NaN.
    p, _ = ri_pvalues(np.array([2.5, np.nan]), np.array([[np.nan, 1.0], [0.1, 1.0]]), exact=True)
    assert p[0] == pytest.approx(1 / 2) and np.isnan(p[1])


def test_same_seed_same_pvalues():
    rng, stratum, arm, x, d = _trial(n=100, seed=12)
    y = rng.normal(size=(100, 3)) + 0.3 * arm[:, None]
    prob = LinearProblem(y=y, row_person=np.arange(100), nuisance=np.column_stack([np.ones(100), d]))
    p1 = randomization_distribution(prob, arm, assignment_matrix(arm, stratum, 999, 5)).p_value
    p2 = randomization_distribution(prob, arm, assignment_matrix(arm, stratum, 999, 5)).p_value
    p3 = randomization_distribution(prob, arm, assignment_matrix(arm, stratum, 999, 6)).p_value
    np.testing.assert_array_equal(p1, p2)
    assert not np.array_equal(p1, p3)


def test_confidence_interval_by_test_inversion_brute_force():
    """The interval equals the set of tau whose test (refit on y - tau z, per tau) is
    not rejected, located on a fine grid."""
    rng, stratum, arm, x, d = _trial(n=40, seed=13, n_strata=2)
    n = arm.size
    y = rng.normal(size=n) + 1.0 * arm + x[:, 0]
    w = np.column_stack([np.ones(n), d, x[:, 0]])
    am = assignment_matrix(arm, stratum, 400, seed=3)
    prob = LinearProblem(y=np.column_stack([y, arm]), row_person=np.arange(n), nuisance=w)
    dist = randomization_distribution(prob, arm, am)
    est = dist.observed[0]
    lo, hi = ri_confidence_interval(est, dist.draws[:, 0], dist.draws[:, 1], exact=am.exact, level=0.9)
    assert lo < est < hi

    def p_tau(tau):
        y0 = y - tau * arm
        single = LinearProblem(y=y0, row_person=np.arange(n), nuisance=w)
        t_obs = linear_statistics(single, arm[None, :])[0][0, 0]
        t = linear_statistics(single, am.draws)[0][:, 0]
        return ri_pvalues(np.array([t_obs]), t[:, None], exact=am.exact)[0][0]

    eps = 1e-6 * (hi - lo)
    assert p_tau(lo + eps) > 0.1 and p_tau(hi - eps) > 0.1
    assert p_tau(lo - eps) <= 0.1 and p_tau(hi + eps) <= 0.1


def test_problem_validation():
    with pytest.raises(EstimationError, match="missing or infinite"):
        LinearProblem(y=np.array([1.0, np.nan]), row_person=np.array([0, 1]))
    with pytest.raises(EstimationError, match="nuisance has 3 rows"):
        LinearProblem(y=np.ones(2), row_person=np.array([0, 1]), nuisance=np.ones((3, 1)))
    with pytest.raises(EstimationError, match="outside"):
        linear_statistics(LinearProblem(y=np.ones(2), row_person=np.array([0, 5])), np.ones((1, 3), np.int8))


def test_absorbed_person_effects_equal_dummy_regression():
    """DiD form: y on z_i * post_t with person effects absorbed and period effects in
    the nuisance, unbalanced panel; equals OLS with person and period dummies."""
    rng = np.random.default_rng(14)
    n, t = 30, 6
    stratum = rng.integers(0, 2, n)
    arm = (np.arange(n) % 2).astype(np.int8)
    person = np.repeat(np.arange(n), t)
    period = np.tile(np.arange(t), n)
    keep = rng.random(person.size) < 0.85
    person, period = person[keep], period[keep]
    post = (period >= 3).astype(float)
    y = rng.normal(size=person.size) + 0.2 * person
    prob = LinearProblem(y=y, row_person=person, nuisance=np.eye(t)[period], interact=post, absorb=person)
    draws = draw_assignments(arm, stratum, 8, seed=1)
    got = linear_statistics(prob, draws)[0][:, 0]
    for b in range(8):
        x = np.column_stack([draws[b][person] * post, np.eye(n)[person], np.eye(t)[period][:, 1:]])
        assert got[b] == pytest.approx(sm.OLS(y, x).fit().params[0], rel=1e-9, abs=1e-12)


def test_absorb_must_nest_within_persons():
    with pytest.raises(EstimationError, match="spans several"):
        LinearProblem(y=np.ones(4), row_person=np.array([0, 0, 1, 1]), absorb=np.array([0, 0, 0, 1]))


def test_problems_sharing_a_design_are_merged_without_changing_statistics():
    from ips_impact.inference.randomization import _merge_problems

    rng, stratum, arm, x, d = _trial(n=50, seed=15)
    w = np.column_stack([np.ones(50), x])
    p1 = LinearProblem(y=rng.normal(size=(50, 2)), row_person=np.arange(50), nuisance=w)
    p2 = LinearProblem(y=rng.normal(size=50), row_person=np.arange(50), nuisance=d)  # other design
    p3 = LinearProblem(y=rng.normal(size=(50, 3)), row_person=np.arange(50), nuisance=w.copy())
    merged, where = _merge_problems([p1, p2, p3])
    assert len(merged) == 2 and where[0][0] == where[2][0] != where[1][0]
    draws = draw_assignments(arm, stratum, 40, seed=2)
    together = linear_statistics(merged, draws)
    for p, (m, cols) in zip([p1, p2, p3], where):
        np.testing.assert_allclose(together[m][:, cols], linear_statistics(p, draws)[0], rtol=1e-10, atol=1e-13)
