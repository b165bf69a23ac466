"""Parity of the OLS / covariance engine and the ITT design builder with R.

Reference numbers: tests/reference/regression_reference.json, produced by
``Rscript tests/reference/r/regression.R`` (estimatr 1.0.0, sandwich 3.0-2); each case
carries the R call that produced it. Tolerance: 1e-8 relative for estimate and
standard error (and degrees of freedom).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_itt_simulation import single_threaded_blas

from ips_impact.errors import SmallSampleWarning
from ips_impact.estimators._data import covariate_matrix, dummies, regression_design
from ips_impact.inference.covariance import OLSDesign, ols

REF = Path(__file__).parent / "reference"
CASES = json.loads((REF / "regression_reference.json").read_text())["cases"]
RTOL = 1e-8


@pytest.fixture(scope="module", autouse=True)
def _one_blas_thread():
    """Small regressions: OpenBLAS threads only contend on a shared machine."""
    with single_threaded_blas():
        yield


def _data(name: str) -> pd.DataFrame:
    return pd.read_csv(REF / "data" / name)


def _design_from_spec(spec: dict):
    d = _data(spec["dataset"])
    if spec["adjustment"] == "engine":  # y ~ x with an intercept
        X = np.column_stack([np.ones(len(d)), d[spec["treatment"]]])
        names = ("(Intercept)", spec["treatment"])
        return d, X, names, 1
    Z, znames = covariate_matrix(d, spec["covariates"])
    S = None
    snames: tuple[str, ...] = ()
    if spec["strata"]:
        codes, labels = pd.factorize(d[spec["strata"]], sort=True)
        S, snames = dummies(codes, list(labels), spec["strata"])
    rd = regression_design(
        d[spec["treatment"]].to_numpy(), adjustment=spec["adjustment"],
        covariates=Z if Z.shape[1] else None, covariate_names=znames,
        strata=S, strata_names=snames,
    )
    return d, rd.X, rd.names, rd.arm_index


def _fit(spec: dict):
    d, X, names, j = _design_from_spec(spec)
    clusters = d[spec["cluster"]].to_numpy() if spec["cluster"] else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallSampleWarning)
        fit = ols(X, d[spec["outcome"]].to_numpy(), names=names, cov_type=spec["cov_type"],
                  clusters=clusters, df_for=[j])
    return fit, j


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_effect_matches_r(case):
    fit, j = _fit(case["spec"])
    ref = case["terms"][case["treatment"]]
    assert fit.coef[j] == pytest.approx(ref["estimate"], rel=RTOL), case["call"]
    assert fit.std_error[j] == pytest.approx(ref["std_error"], rel=RTOL), case["call"]
    if ref["df"] is not None and case["id"] not in ("star_dim", "npk_dim"):
        # difference_in_means without blocks uses Welch df (checked in test_itt_reference)
        assert fit.df[j] == pytest.approx(ref["df"], rel=RTOL), case["call"]


ENGINE_CASES = [c for c in CASES if c["spec"]["adjustment"] == "engine"]


@pytest.mark.parametrize("case", ENGINE_CASES, ids=[c["id"] for c in ENGINE_CASES])
def test_every_coefficient_matches_r(case):
    """All coefficients (intercept too) and, for CR2, each coefficient's own Satterthwaite df."""
    spec = case["spec"]
    d, X, names, _ = _design_from_spec(spec)
    clusters = d[spec["cluster"]].to_numpy() if spec["cluster"] else None
    fit = ols(X, d[spec["outcome"]].to_numpy(), names=names, cov_type=spec["cov_type"], clusters=clusters)
    for j, nm in enumerate(names):
        ref = case["terms"][nm]
        assert fit.coef[j] == pytest.approx(ref["estimate"], rel=RTOL)
        assert fit.std_error[j] == pytest.approx(ref["std_error"], rel=RTOL)
        if ref["df"] is not None:
            assert fit.df[j] == pytest.approx(ref["df"], rel=RTOL)
            assert fit.p_value[j] == pytest.approx(ref["p_value"], rel=1e-6, abs=1e-300)
            ci = fit.conf_int(0.95)[j]
            assert ci[0] == pytest.approx(ref["conf_low"], rel=RTOL)
            assert ci[1] == pytest.approx(ref["conf_high"], rel=RTOL)


def test_cr2_df_differ_across_coefficients():
    """The Satterthwaite df are per coefficient (here 498.7 for the intercept, 308.8 for x)."""
    case = next(c for c in CASES if c["id"] == "pet_x_CR2")
    assert case["terms"]["x"]["df"] < case["terms"]["(Intercept)"]["df"] - 100
    spec = case["spec"]
    d, X, names, _ = _design_from_spec(spec)
    fit = ols(X, d["y"], names=names, cov_type="CR2", clusters=d["firm"])
    assert fit.df[1] == pytest.approx(case["terms"]["x"]["df"], rel=RTOL)


def test_shared_design_fits_many_outcomes_like_separate_fits():
    d = _data("reg_petersen.csv")
    X = np.column_stack([np.ones(len(d)), d["x"]])
    design = OLSDesign(X, ("c", "x"), cov_type="CR2", clusters=d["firm"])
    rng = np.random.default_rng(1)
    Y = np.column_stack([d["y"], d["y"] + rng.normal(size=len(d))])
    B = design.coef(Y)
    for m in range(2):
        single = ols(X, Y[:, m], cov_type="CR2", clusters=d["firm"])
        np.testing.assert_allclose(B[:, m], single.coef, rtol=1e-12)
        E = Y[:, m] - X @ B[:, m]
        S = design.scores(E[:, None], 1)
        np.testing.assert_allclose(design.scale * (S.T @ S)[0, 0], single.vcov[1, 1], rtol=1e-10)
