"""Multiple-testing adjustments: R p.adjust parity, Anderson (2008) sharpened q-values,
step-down resampling methods."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ips_impact.errors import EstimationError
from ips_impact.inference.multiple import (
    adjust_pvalues,
    p_adjust,
    sharpened_qvalues,
    stepdown_maxt,
    stepdown_minp,
)

REFERENCE = Path(__file__).parent / "reference" / "padjust_reference.json"
_CASES = json.loads(REFERENCE.read_text())["cases"]


@pytest.mark.parametrize("method", ["bonferroni", "holm", "bh", "by"])
@pytest.mark.parametrize("case", _CASES, ids=[c["name"] for c in _CASES])
def test_matches_r_p_adjust(case, method):
    # Reference: tests/reference/r/padjust.R, stats::p.adjust(p, method) in R 4.2.2,
    # written with 15 significant digits.
    p = np.atleast_1d(np.asarray(case["p"], dtype=float))
    expected = np.atleast_1d(np.asarray(case["adjusted"][method], dtype=float))
    np.testing.assert_allclose(p_adjust(p, method), expected, rtol=1e-13, atol=1e-15)


def test_missing_pvalues_stay_missing_and_are_not_counted():
    out = p_adjust([0.01, np.nan, 0.04], "bonferroni")
    np.testing.assert_allclose(out, [0.02, np.nan, 0.08])


def test_sharpened_q_hand_worked_example():
    """p = (0.01, 0.02, 0.45), m = 3, worked by hand on Anderson's grid.

    q = 0.030: q' = 0.030/1.030 = 0.029126; BH needs p_(1) <= q'/3 = 0.009709 (no) or
        p_(2) <= 2q'/3 = 0.019417 (no): r1 = 0, q2 = q', stage 2 rejects nothing.
    q = 0.031: q' = 0.030068; p_(1) = 0.01 <= 0.010023 and p_(2) = 0.02 <= 0.020045:
        r1 = 2, q2 = 3 q' = 0.0902; p_(3) = 0.45 > 0.0902: ranks 1, 2 rejected -> q = 0.031.
    p_(3) needs p_(3) <= q2 = 3 q / (1 + q) (r1 = 2), i.e. q >= 0.45/2.55 = 0.17647:
        q = 0.176 gives 0.44898 (no), q = 0.177 gives 0.45115 (yes) -> q = 0.177.
    BH would give 0.03, 0.03, 0.45.
    """
    np.testing.assert_allclose(sharpened_qvalues([0.01, 0.02, 0.45]), [0.031, 0.031, 0.177])
    np.testing.assert_allclose(p_adjust([0.45, 0.01, 0.02], "sharpened-q"), [0.177, 0.031, 0.031])


def _anderson_loop(p):
    """Line-by-line transcription of Anderson's (2008) Stata loop (fdr_sharpened_qvalues.do)."""
    p = np.asarray(p, dtype=float)
    m = p.size
    order = np.argsort(p, kind="stable")
    rank = np.empty(m, dtype=int)
    rank[order] = np.arange(1, m + 1)
    qval_out = np.ones(m)
    for i in range(1000, 0, -1):
        qval = i / 1000
        qval_adj = qval / (1 + qval)
        total_rejected1 = max([rank[j] for j in range(m) if qval_adj * rank[j] / m >= p[j]], default=0)
        if total_rejected1 == m:
            total_rejected2 = m  # q_2st is missing (= +inf) in Stata: everything passes
        else:
            qval_2st = qval_adj * (m / (m - total_rejected1))
            total_rejected2 = max([rank[j] for j in range(m) if qval_2st * rank[j] / m >= p[j]], default=0)
        for j in range(m):
            if rank[j] <= total_rejected2:
                qval_out[j] = qval
    return qval_out


@pytest.mark.parametrize("seed", range(4))
def test_sharpened_q_equals_anderson_loop(seed):
    rng = np.random.default_rng(seed)
    p = np.concatenate([rng.uniform(size=12), rng.beta(0.2, 6, size=8)])
    p[3] = p[5]  # a tie
    np.testing.assert_allclose(sharpened_qvalues(p), _anderson_loop(p), rtol=0, atol=1e-12)


def test_sharpened_q_between_bh_and_bounded():
    rng = np.random.default_rng(9)
    p = rng.beta(0.3, 3, size=30)
    q = sharpened_qvalues(p)
    assert np.all((q > 0) & (q <= 1))
    # Sharpened q-values are no larger than BH's (up to the 0.001 grid).
    assert np.all(q <= p_adjust(p, "bh") + 0.001 + 1e-12)


def test_unknown_method_lists_allowed():
    with pytest.raises(EstimationError, match="'bonferroni', 'holm'"):
        p_adjust([0.1], "hochberg")
    with pytest.raises(EstimationError, match="\\[0, 1\\]"):
        p_adjust([0.1, 1.5], "holm")


# ------------------------------------------------------------------ step-down
def _brute_stepdown_maxt(t_obs, t_draws, exact):
    """Romano-Wolf step-down by explicit loops (successive maxima over remaining set)."""
    a_obs, a = np.abs(t_obs), np.abs(t_draws)
    order = list(np.argsort(-a_obs, kind="stable"))
    b = a.shape[0]
    out = np.empty(len(order))
    prev = 0.0
    for j, h in enumerate(order):
        remaining = order[j:]
        mx = a[:, remaining].max(axis=1)
        c = np.sum(mx >= a_obs[h] * (1 - 1e-9))
        p = c / b if exact else (1 + c) / (1 + b)
        prev = max(prev, p)
        out[h] = prev
    return out


def test_stepdown_maxt_equals_loop():
    rng = np.random.default_rng(1)
    t_draws = rng.normal(size=(300, 6)) * np.array([1, 2, 1, 5, 1, 1])
    t_obs = np.array([2.5, 1.0, -3.2, 4.0, 0.1, 2.0])
    for exact in (False, True):
        got = stepdown_maxt(t_obs, t_draws, exact=exact, standardize=False)
        np.testing.assert_allclose(got, _brute_stepdown_maxt(t_obs, t_draws, exact))


def test_stepdown_properties():
    rng = np.random.default_rng(2)
    cov = 0.6 + 0.4 * np.eye(5)
    t_draws = rng.multivariate_normal(np.zeros(5), cov, size=2000)
    t_obs = np.array([3.0, 2.2, 0.5, -2.8, 1.0])
    marginal = (1 + (np.abs(t_draws) >= np.abs(t_obs)).sum(axis=0)) / 2001
    for fn in (stepdown_maxt, stepdown_minp):
        adj = fn(t_obs, t_draws)
        assert np.all(adj >= marginal - 1e-12)  # never below the marginal p-value
        assert np.all(adj <= np.minimum(1, 5 * marginal) + 1e-12)  # never above Bonferroni
        # Monotone in the strength of the evidence.
        order = np.argsort(-np.abs(t_obs))
        assert np.all(np.diff(adj[order]) >= -1e-12)
    # Positive dependence: step-down beats Bonferroni for the strongest hypothesis.
    assert stepdown_maxt(t_obs, t_draws)[0] < min(1, 5 * marginal[0])


def test_stepdown_minp_single_hypothesis_is_marginal():
    rng = np.random.default_rng(3)
    t_draws = rng.normal(size=(999, 1))
    p = (1 + np.sum(np.abs(t_draws[:, 0]) >= 1.7)) / 1000
    assert stepdown_minp(np.array([1.7]), t_draws)[0] == pytest.approx(p)
    assert stepdown_maxt(np.array([1.7]), t_draws)[0] == pytest.approx(p)


def test_minp_is_scale_free_maxt_standardized():
    rng = np.random.default_rng(4)
    t_draws = rng.normal(size=(500, 3))
    t_obs = np.array([2.0, 1.0, 2.5])
    scale = np.array([1.0, 100.0, 0.01])
    np.testing.assert_allclose(stepdown_minp(t_obs * scale, t_draws * scale), stepdown_minp(t_obs, t_draws))
    np.testing.assert_allclose(stepdown_maxt(t_obs * scale, t_draws * scale), stepdown_maxt(t_obs, t_draws))


def test_stepdown_shape_errors():
    with pytest.raises(EstimationError, match="shape"):
        stepdown_maxt(np.ones(3), np.ones((10, 2)))


def test_adjust_pvalues_on_results_needs_study_for_resampling():
    from ips_impact.results import EffectResult

    r = EffectResult(outcome="y", estimate=1.0, std_error=0.5, nobs=100, n_treated=50, n_control=50)
    with pytest.raises(EstimationError, match="needs the study"):
        adjust_pvalues([r], method="romano-wolf")
    with pytest.raises(EstimationError, match="method must be one of"):
        adjust_pvalues([r], method="fdr")


def test_adjust_pvalues_on_results_returns_new_results():
    from ips_impact.results import EffectResult

    rs = [
        EffectResult(outcome=f"y{i}", estimate=e, std_error=0.5, nobs=100, n_treated=50, n_control=50)
        for i, e in enumerate([1.5, 0.2, -1.2])
    ]
    out = adjust_pvalues(rs, method="holm", family="primary")
    p = np.array([r.p_value for r in rs])
    np.testing.assert_allclose([r.adj_p_value for r in out], p_adjust(p, "holm"))
    assert all(r.annotations.get("adj_p_value") is None for r in rs)  # originals untouched
    tidy = out[0].tidy()
    assert tidy.loc[0, "family"] == "primary"
    single = adjust_pvalues(rs[0], method="bonferroni")
    assert single.adj_p_value == pytest.approx(rs[0].p_value)


# ---------------------------------------------------------------- properties
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_pvals = st.lists(st.floats(min_value=0.0, max_value=1.0, allow_nan=False), min_size=1, max_size=30)


@settings(max_examples=200, deadline=None)
@given(_pvals)
def test_adjusted_pvalues_properties(p):
    p = np.asarray(p)
    bonf, holm, bh, by, sq = (p_adjust(p, m) for m in ("bonferroni", "holm", "bh", "by", "sharpened-q"))
    for adj in (bonf, holm, bh, by):
        assert np.all(adj >= p - 1e-15) and np.all(adj <= 1.0)
        # Adjustment keeps the order of the evidence.
        order = np.argsort(p, kind="stable")
        assert np.all(np.diff(adj[order]) >= -1e-15)
    assert np.all(holm <= bonf + 1e-15)  # Holm is uniformly more powerful
    assert np.all(bh <= holm + 1e-15)  # FDR control is weaker than FWER control
    assert np.all(by >= bh - 1e-15)
    assert np.all((sq > 0) & (sq <= 1))
