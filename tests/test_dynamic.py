"""itt_by_period(): per-k effects equal itt(horizon=k), joint covariance, placebo test, sup-t band."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from scipy import stats
from test_itt import make_frames, make_study
from test_itt_simulation import single_threaded_blas

from ips_impact.errors import DataContractError, EstimationError
from ips_impact.estimators.dynamic import itt_by_period, pretest_wald, sup_t_critical_value
from ips_impact.estimators.itt import itt
from ips_impact.inference.covariance import ols
from ips_impact.results.effect import DynamicEffectResult
from ips_impact.study import Study


@pytest.fixture(scope="module", autouse=True)
def _one_blas_thread():
    """Small regressions: OpenBLAS threads only contend on a shared machine."""
    with single_threaded_blas():
        yield


@pytest.fixture(scope="module")
def study() -> Study:
    return make_study(n=400, seed=5, drop_share=0.05)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"covariates": ("age", "sex")},
        {"adjustment": "none", "strata": False},
        {"adjustment": "lin", "covariates": ("age",)},
        {"covariates": ("age",), "cluster": "household_id"},
        {"covariates": ("age",), "cov_type": "HC1"},
    ],
)
def test_each_period_equals_itt_at_that_horizon(study, kwargs):
    r = itt_by_period(study, "score", periods=range(-3, 6), **kwargs)
    assert isinstance(r, DynamicEffectResult)
    assert r.ks == tuple(range(-3, 6))
    for k in (-3, 0, 2, 5):
        h = itt(study, "score", horizon=k, **kwargs)
        e = r.effect_at(k)
        assert e.estimate == pytest.approx(h.estimate, rel=1e-10, abs=1e-12)
        assert e.std_error == pytest.approx(h.std_error, rel=1e-10)
        assert e.df == pytest.approx(h.df, rel=1e-10)
        assert e.nobs == h.nobs and e.n_treated == h.n_treated
        assert e.n_missing_treated == h.n_missing_treated
    np.testing.assert_allclose(np.sqrt(np.diag(r.vcov.to_numpy())), r.std_errors.to_numpy(), rtol=1e-12)
    assert r.tidy()["term"].eq("arm").all()


def test_joint_covariance_is_the_person_clustered_stacked_one():
    """HC0 per period + stacking = a fully interacted stacked regression clustered by person (CR0)."""
    st = make_study(n=200, seed=2)
    ks = [1, 2, 3]
    r = itt_by_period(st, "score", periods=ks, covariates=("age",), cov_type="HC0", strata=False)
    p = st.persons
    Xp = np.column_stack([np.ones(len(p)), p["arm"], p["age"]])
    Y = st.outcome_matrix("score", ks)
    n, K = Xp.shape
    Xs = np.zeros((n * len(ks), K * len(ks)))
    for t in range(len(ks)):
        Xs[t * n:(t + 1) * n, t * K:(t + 1) * K] = Xp
    f = ols(Xs, Y.T.ravel(), cov_type="CR0", clusters=np.tile(np.arange(n), len(ks)))
    arm_cols = [t * K + 1 for t in range(len(ks))]
    np.testing.assert_allclose(r.vcov.to_numpy(), f.vcov[np.ix_(arm_cols, arm_cols)], rtol=1e-10)
    np.testing.assert_allclose(r.estimates.to_numpy(), f.coef[arm_cols], rtol=1e-10)


def test_pretest_and_band(study):
    r = itt_by_period(study, "score", periods=range(-4, 8), covariates=("age",))
    pre = r.pretest
    assert pre["ks"] == (-4, -3, -2, -1) and pre["df_num"] == 4 and pre["test"] == "F"
    est = r.estimates.loc[[-4, -3, -2, -1]].to_numpy()
    V = r.vcov.loc[[-4, -3, -2, -1], [-4, -3, -2, -1]].to_numpy()
    W = est @ np.linalg.solve(V, est)
    assert pre["statistic"] == pytest.approx(W / 4, rel=1e-10)
    assert pre["p_value"] == pytest.approx(stats.f.sf(W / 4, 4, pre["df_denom"]), rel=1e-10)
    b = r.band()
    assert (b["band_low"] <= b["conf_low"] + 1e-12).all() and (b["band_high"] >= b["conf_high"] - 1e-12).all()
    bonf = stats.norm.ppf(1 - 0.05 / (2 * 12))
    assert stats.norm.ppf(0.975) < r.sup_t_crit < bonf
    # deterministic given the seed
    r2 = itt_by_period(study, "score", periods=range(-4, 8), covariates=("age",))
    assert r2.sup_t_crit == r.sup_t_crit
    assert r.spec["band_method"] == "sup-t"


def test_pretest_detects_a_pre_period_difference():
    a, p = make_frames(n=400, seed=9)
    treated = set(a.loc[a.arm == 1, "person_id"])
    k = p["period"].to_numpy() - a.set_index("person_id").loc[p["person_id"], "randomization_period"].to_numpy()
    p.loc[p["person_id"].isin(treated) & (k < 0), "score"] += 1.0  # an imbalance before randomization
    st = Study.from_frames(a, p, frequency="int")
    r = itt_by_period(st, "score", periods=range(-4, 3))
    assert r.pretest["p_value"] < 1e-4


def test_sup_t_critical_value_independent_case():
    """Independent estimates: c solves (2Φ(c) − 1)^K = level."""
    K = 10
    c, method = sup_t_critical_value(np.eye(K) * 4.0, 0.95, n_sim=200_000, seed=1)
    exact = stats.norm.ppf((1 + 0.95 ** (1 / K)) / 2)
    assert method == "sup-t"
    assert c == pytest.approx(exact, abs=0.02)
    # perfectly correlated: the pointwise value
    c1, _ = sup_t_critical_value(np.ones((K, K)), 0.95, n_sim=50_000, seed=1)
    assert c1 == pytest.approx(stats.norm.ppf(0.975), abs=0.02)
    cb, m = sup_t_critical_value(np.diag([1.0, 0.0, 1.0]), 0.95)
    assert m == "bonferroni" and cb == pytest.approx(stats.norm.ppf(1 - 0.05 / 6))


def test_pretest_wald_chi2_reference():
    out = pretest_wald(np.array([1.0, 2.0]), np.eye(2), np.inf)
    assert out["test"] == "chi2" and out["wald"] == pytest.approx(5.0)
    assert out["p_value"] == pytest.approx(stats.chi2.sf(5.0, 2))


def test_plot_returns_axes(study):
    r = itt_by_period(study, "score", periods=range(-2, 4))
    ax = r.plot()
    assert ax.get_xlabel().startswith("event time")
    import matplotlib.pyplot as plt

    plt.close("all")


def test_missing_ledger(study):
    r = itt_by_period(study, "score", periods=range(0, 4))
    Y = study.outcome_matrix("score", range(0, 4))
    assert int(r.ledger["n_rows"].sum()) == int((~np.isfinite(Y)).sum())


@pytest.mark.parametrize(
    "periods, match",
    [([], "non-empty"), ([1.5, 2], "integer"), (range(-2, 90), "outside the observed"), ("1:3", "sequence"),
     ([1, 1], "twice")],
)
def test_period_errors(study, periods, match):
    with pytest.raises(EstimationError, match=match):
        itt_by_period(study, "score", periods=periods)


def test_other_errors(study):
    with pytest.raises(DataContractError):
        itt_by_period(study, "nace", periods=[1, 2])
    with pytest.raises(EstimationError, match="cov_type must be one of"):
        itt_by_period(study, "score", periods=[1, 2], cov_type="HC5")
    a, p = make_frames(n=60)
    p["flat"] = np.where(p["period"] - 0 > 100, 1.0, 0.0)
    st = Study.from_frames(a, p, frequency="int")
    with pytest.raises(EstimationError, match="does not vary"):
        itt_by_period(st, "flat", periods=[0, 1])
