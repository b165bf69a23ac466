"""CR2 Satterthwaite df: only the reported coefficients are computed, with unchanged values."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from test_itt_simulation import single_threaded_blas

import ips_impact as ii
from ips_impact.estimators._options import resolve_adjustment
from ips_impact.estimators.itt import _prepare, _spec
from ips_impact.inference.covariance import OLSDesign, ols

COVS = ("age", "female", "pre_employment_share")


@pytest.fixture(scope="module", autouse=True)
def _one_blas_thread():
    with single_threaded_blas():
        yield


def _design(seed: int = 0, n: int = 300, k: int = 6) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.Generator(np.random.PCG64(seed))
    clusters = rng.integers(0, 60, n)  # unequal cluster sizes, some larger than K
    X = np.column_stack([np.ones(n), rng.standard_normal((n, k - 1))])
    y = X @ rng.standard_normal(k) + rng.standard_normal(n) + rng.standard_normal(60)[clusters]
    return X, y, clusters


def test_df_of_some_coefficients_equal_those_of_all():
    X, y, clusters = _design()
    full = ols(X, y, cov_type="CR2", clusters=clusters)
    assert np.isfinite(full.df).all() and np.unique(full.df).size == full.df.size
    for js in ([1], [0, 4], [5, 2, 3]):
        part = OLSDesign(X, cov_type="CR2", clusters=clusters).fit(y, df_for=js)
        np.testing.assert_allclose(part.df[js], full.df[js], rtol=1e-13)
        others = np.setdiff1d(np.arange(X.shape[1]), js)
        assert np.isnan(part.df[others]).all()
        # the covariance is still the full one (a Wald test of several coefficients needs it)
        np.testing.assert_array_equal(part.vcov, full.vcov)


@pytest.fixture(scope="module")
def study() -> ii.Study:
    return ii.synthetic.generate(n_persons=400, seed=2, tables=("assignment", "panel")).study()


def test_stacked_itt_computes_the_arm_df_only_and_it_is_the_full_fits(study):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = ii.itt(study, "employed", window=(1, 8), aggregate="stack", covariates=COVS)
        spec = _spec(horizon=None, window=(1, 8), aggregate="stack", covariates=COVS, adjustment=None,
                     strata=True, cov_type=None, cluster=None, level=0.95, subset=None)
        spec["adjustment"], spec["adjustment_reason"] = resolve_adjustment(None, study.design, strata=True)
        prep = _prepare(study, "employed", spec)
    # the same regression with the df of every coefficient
    full = ols(prep.design.X, prep.Y[:, 0], names=prep.design.names, cov_type="CR2", clusters=prep.clusters)
    j = prep.design.arm_index
    assert r.diagnostics["cov_type"] == "CR2" and r.nobs == prep.Y.shape[0]
    assert r.estimate == pytest.approx(full.coef[j], rel=1e-13)
    assert r.std_error == pytest.approx(full.std_error[j], rel=1e-13)
    assert r.df == pytest.approx(full.df[j], rel=1e-12)
    table = r.coefficients
    assert table.loc["arm", "df"] == pytest.approx(full.df[j], rel=1e-12)
    assert np.isfinite(table.loc["arm", ["p_value", "conf_low", "conf_high"]].to_numpy(float)).all()
    # the period effects and covariates: estimates and standard errors, no df
    rest = table.drop(index="arm")
    np.testing.assert_allclose(rest["std_error"].to_numpy(float),
                               np.delete(full.std_error, j), rtol=1e-12)
    assert rest["df"].isna().all()


def test_horizon_itt_keeps_every_coefficients_df(study):
    r = ii.itt(study, "employed", horizon=4, covariates=COVS, cluster="household_id")
    assert r.coefficients["df"].notna().all()
