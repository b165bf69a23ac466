"""did(): PanelOLS with person and period effects, arm × post, clustered by person."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_itt import make_study
from test_itt_simulation import single_threaded_blas

from ips_impact.errors import DataContractError, EstimationError
from ips_impact.estimators._data import dummies
from ips_impact.estimators.did import did
from ips_impact.inference.covariance import ols


@pytest.fixture(scope="module", autouse=True)
def _one_blas_thread():
    """Small regressions: OpenBLAS threads only contend on a shared machine."""
    with single_threaded_blas():
        yield


@pytest.fixture(scope="module")
def study():
    return make_study(n=300, seed=1)


def test_two_periods_is_difference_in_means_of_changes(study):
    r = did(study, "score", pre=(-1, -1), post=(2, 2), cov_type="CR0")
    Y = study.outcome_matrix("score", [-1, 2])
    arm = study.persons["arm"].to_numpy()
    f = ols(np.column_stack([np.ones(arm.size), arm]), Y[:, 1] - Y[:, 0], cov_type="HC0")
    assert r.estimate == pytest.approx(f.coef[1], rel=1e-10)
    assert r.std_error == pytest.approx(f.std_error[1], rel=1e-10)
    assert r.df == arm.size - 1 and r.term == "arm" and r.horizon == "2:2"


def test_rows_are_labelled_did_not_itt(study):
    r = did(study, "score", pre=(-4, -1), post=(1, 6))
    assert r.estimand == "did"
    t = r.tidy()
    assert t["estimand"].tolist() == ["did"] and t["term"].tolist() == ["arm"]
    title = r.summary().splitlines()[0]
    assert title == "DiD (arm × post) on score: post k 1:6 vs pre k -4:-1" and "ITT" not in title
    assert r.spec["estimator"] == "did"


def test_balanced_windows_give_the_difference_of_mean_changes(study):
    r = did(study, "score", pre=(-4, -1), post=(1, 6))
    pre = study.outcome_matrix("score", range(-4, 0)).mean(axis=1)
    post = study.outcome_matrix("score", range(1, 7)).mean(axis=1)
    arm = study.persons["arm"].to_numpy() == 1
    manual = (post[arm].mean() - pre[arm].mean()) - (post[~arm].mean() - pre[~arm].mean())
    assert r.estimate == pytest.approx(manual, rel=1e-10)
    assert r.nobs == 10 * arm.size and r.diagnostics["n_persons"] == arm.size


def test_cr1_scaling(study):
    r0 = did(study, "score", pre=(-4, -1), post=(1, 6), cov_type="CR0")
    r1 = did(study, "score", pre=(-4, -1), post=(1, 6), cov_type="CR1")
    G, N, K = 300, r0.nobs, 1  # Stata: G/(G-1) (N-1)/(N-K), absorbed effects not counted
    assert r1.std_error == pytest.approx(r0.std_error * np.sqrt(G / (G - 1) * (N - 1) / (N - K)), rel=1e-10)


@pytest.mark.parametrize("time", ["k", "period"])
def test_unbalanced_cr0_equals_dummy_variable_regression(time):
    """Within estimator = LSDV (Frisch–Waugh–Lovell); CR0 sandwich identical, clustered by household."""
    st = make_study(n=120, seed=4, drop_share=0.2)
    r = did(st, "score", pre=(-3, -1), post=(1, 4), time=time, cov_type="CR0", cluster="household_id")
    ks = np.r_[-3:0, 1:5]
    Y = st.outcome_matrix("score", ks)
    pi, ti = np.nonzero(np.isfinite(Y))
    arm = st.persons["arm"].to_numpy()[pi]
    post = ks[ti] > 0
    t = ks[ti] if time == "k" else st.persons["randomization_period"].to_numpy()[pi] + ks[ti]
    P, _ = dummies(pi, list(range(st.n_persons)), "p")
    tc, tl = pd.factorize(t, sort=True)
    Tm, _ = dummies(tc, list(tl), "t")
    X = np.column_stack([np.ones(pi.size), arm * post, P, Tm])
    hh = st.persons["household_id"].to_numpy()[pi]
    f = ols(X, Y[pi, ti], cov_type="CR0", clusters=hh)
    assert r.estimate == pytest.approx(f.coef[1], rel=1e-9)
    assert r.std_error == pytest.approx(f.std_error[1], rel=1e-9)
    assert r.diagnostics["n_clusters"] == len(np.unique(hh))
    assert int(r.ledger["n_rows"].sum()) == int((~np.isfinite(Y)).sum())


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"pre": (-4, 1), "post": (1, 4)}, "overlap"),
        ({"pre": (-4, -1), "post": (1, 90)}, "outside the observed"),
        ({"pre": (-1, -4), "post": (1, 4)}, "empty"),
        ({"pre": "x", "post": (1, 4)}, "pair of integer"),
        ({"pre": (-4, -1), "post": (1, 4), "cov_type": "HC2"}, "cov_type must be one of 'CR1', 'CR0'"),
        ({"pre": (-4, -1), "post": (1, 4), "time": "month"}, "time must be one of"),
        ({"pre": (-4, -1), "post": (1, 4), "cluster": "nope"}, "cluster must be a column"),
    ],
)
def test_errors(study, kwargs, match):
    with pytest.raises(EstimationError, match=match):
        did(study, "score", **kwargs)


def test_outcome_errors(study):
    with pytest.raises(DataContractError):
        did(study, "nace", pre=(-2, -1), post=(1, 2))
