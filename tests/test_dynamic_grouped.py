"""itt_by_period's grouped path (one factorisation per sample) equals itt at every horizon.

The synthetic trial gets attrition (each person leaves the panel after a random
quarter, some never leave), so the persons observed differ by event time and
itt_by_period fits several groups of periods, each on its own design. Every per-period
number must be that of ``itt(horizon=k)`` within 1e-12.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from test_itt_simulation import single_threaded_blas

import ips_impact as ii
from ips_impact.inference.covariance import joint_covariance

PERIODS = range(-3, 11)
COVS = ("age", "female", "pre_employment_share")


@pytest.fixture(scope="module", autouse=True)
def _one_blas_thread():
    with single_threaded_blas():
        yield


def _with_attrition(trial: ii.synthetic.SyntheticTrial, seed: int) -> ii.Study:
    """The trial's study after every person leaves the panel at a random quarter (or never)."""
    rng = np.random.Generator(np.random.PCG64(seed))
    a, panel = trial.assignment, trial.panel
    pids = a["person_id"].to_numpy()
    # a third stay to the end; the others leave after a quarter between 1 and 11
    last = np.where(rng.random(pids.size) < 1 / 3, 10**6, rng.integers(1, 12, pids.size))
    last_k = dict(zip(pids, last))
    k = _event_time(trial)
    keep = k <= panel["person_id"].map(last_k).to_numpy()
    return ii.Study.from_frames(a, panel[keep].reset_index(drop=True))


def _event_time(trial: ii.synthetic.SyntheticTrial) -> np.ndarray:
    """Quarters since the randomization quarter (k) of every panel row."""
    st = trial.study()
    k0 = st.persons.set_index("person_id")["randomization_period"].astype(str)
    rand_q = pd.PeriodIndex(trial.panel["person_id"].map(k0), freq="Q")
    row_q = pd.PeriodIndex(trial.panel["period"], freq="Q")
    return np.asarray((row_q - rand_q).map(lambda d: d.n), dtype=np.int64)


@pytest.fixture(scope="module")
def study() -> ii.Study:
    trial = ii.synthetic.generate(n_persons=1200, seed=11, tables=("assignment", "panel"))
    return _with_attrition(trial, seed=4)


def test_the_samples_differ_by_period(study):
    r = ii.itt_by_period(study, "employed", periods=PERIODS, covariates=COVS)
    nobs = r.tidy()["nobs"].to_numpy()
    # several groups of periods, so several designs: the test below is about them
    assert np.unique(nobs).size >= 8
    assert nobs[0] == study.n_persons and nobs[-1] < 0.6 * study.n_persons


@pytest.mark.parametrize(
    "kwargs",
    [
        {"covariates": COVS},
        {"adjustment": "none", "strata": False},  # Welch df
        {"adjustment": "lin", "covariates": ("age",)},
        {"covariates": ("age",), "cluster": "household_id"},  # CR2, Satterthwaite df
        {"covariates": COVS, "cov_type": "HC1"},
    ],
)
def test_each_period_equals_itt_within_1e_12(study, kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = ii.itt_by_period(study, "employed", periods=PERIODS, **kwargs)
        for k in PERIODS:
            h = ii.itt(study, "employed", horizon=k, **kwargs)
            e = r.effect_at(k)
            assert (e.nobs, e.n_treated, e.n_control) == (h.nobs, h.n_treated, h.n_control)
            assert (e.n_missing_treated, e.n_missing_control) == (h.n_missing_treated, h.n_missing_control)
            assert e.estimate == pytest.approx(h.estimate, rel=1e-12, abs=1e-12)
            assert e.std_error == pytest.approx(h.std_error, rel=1e-12, abs=1e-12)
            assert e.df == pytest.approx(h.df, rel=1e-12)
            assert e.control_mean == pytest.approx(h.control_mean, rel=1e-12, abs=1e-12)
    np.testing.assert_allclose(np.sqrt(np.diag(r.vcov.to_numpy())), r.std_errors.to_numpy(), rtol=1e-12)


def test_without_attrition_one_group_equals_itt(study):
    """Pre-periods: everyone observed, one design for all of them (the single-group path)."""
    ks = range(-3, 1)
    r = ii.itt_by_period(study, "employed", periods=ks, covariates=COVS)
    assert r.tidy()["nobs"].eq(study.n_persons).all()
    for k in ks:
        h = ii.itt(study, "employed", horizon=k, covariates=COVS)
        e = r.effect_at(k)
        assert e.estimate == pytest.approx(h.estimate, rel=1e-12, abs=1e-12)
        assert e.std_error == pytest.approx(h.std_error, rel=1e-12, abs=1e-12)
        assert e.control_mean == pytest.approx(h.control_mean, rel=1e-12, abs=1e-12)


def test_joint_covariance_one_sorted_fit_equals_the_matched_one():
    """The shortcut for one fit with sorted labels gives the general path's numbers to the bit."""
    rng = np.random.Generator(np.random.PCG64(0))
    S = rng.standard_normal((50, 4))
    labels = np.arange(50) * 3
    fast = joint_covariance([S], [labels], [1.3])
    perm = rng.permutation(50)  # unsorted labels take the general path
    general = joint_covariance([S[perm]], [labels[perm]], [1.3])
    np.testing.assert_array_equal(fast, general)
    # two fits are matched by label, one of them with a cluster the other lacks
    two = joint_covariance([S[:, :2], S[1:, 2:]], [labels, labels[1:]], [1.0, 1.0])
    np.testing.assert_allclose(two, S.T @ S - np.outer(np.r_[0, 0, S[0, 2:]], np.r_[0, 0, S[0, 2:]])
                               - _cross(S), rtol=1e-12)


def _cross(S: np.ndarray) -> np.ndarray:
    # the first row of S enters the cross terms of fits 1 and 2 only through fit 1
    out = np.zeros((4, 4))
    out[:2, 2:] = np.outer(S[0, :2], S[0, 2:])
    out[2:, :2] = out[:2, 2:].T
    return out
