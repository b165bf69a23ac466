"""Summary indices (Anderson 2008; Kling, Liebman & Katz 2007)."""

from __future__ import annotations

import importlib
import warnings

import numpy as np
import pytest
from conftest import make_frames

from ips_impact.errors import DataContractError, EstimationError
from ips_impact.inference.index import summary_index, summary_index_components
from ips_impact.study import Study


@pytest.fixture(scope="module")
def study():
    f = make_frames(n=60, seed=5)
    rng = np.random.default_rng(5)
    # A correlated pair: earnings and a noisy copy of it; fte independent noise.
    f["panel"]["earnings_copy"] = f["panel"]["earnings"] + rng.normal(0, 300, len(f["panel"]))
    # A few missing values in one component.
    miss = rng.random(len(f["panel"])) < 0.05
    f["panel"].loc[miss, "fte"] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Study.from_frames(f["assignment"], f["panel"], households=f["households"])


def _standardized_at(study, outcomes, k, reverse=()):
    panel = study.panel
    arm = panel["person_id"].map(dict(zip(study.persons.person_id, study.persons.arm))).to_numpy()
    at = panel["k"].to_numpy() == k
    y = panel.loc[at, outcomes].to_numpy(dtype=float)
    y = y * np.array([-1.0 if o in reverse else 1.0 for o in outcomes])
    ctrl = arm[at] == 0
    mean = np.nanmean(y[ctrl], axis=0)
    sd = np.nanstd(y[ctrl], axis=0, ddof=1)
    return (y - mean) / sd, ctrl, np.flatnonzero(at)


def test_klk_is_mean_of_control_standardized_outcomes(study):
    outs = ["employed", "earnings", "fte"]
    idx, weights = summary_index_components(study, outs, horizon=2, method="klk")
    z, _, rows = _standardized_at(study, outs, 2)
    expected = np.nanmean(z, axis=1)
    np.testing.assert_allclose(idx.iloc[rows].to_numpy(), expected, rtol=1e-12)
    assert idx.drop(idx.index[rows]).isna().all()  # other k: not computed
    np.testing.assert_allclose(weights["weight"], 1 / 3)


def test_anderson_weights_are_inverse_covariance_row_sums(study):
    outs = ["employed", "earnings", "earnings_copy"]
    idx, weights = summary_index_components(study, outs, horizon=3, method="anderson")
    z, ctrl, rows = _standardized_at(study, outs, 3)
    cov = np.cov(z[ctrl], rowvar=False)
    w = np.linalg.inv(cov).sum(axis=1)
    np.testing.assert_allclose(weights["weight"], w / w.sum(), rtol=1e-10)
    np.testing.assert_allclose(idx.iloc[rows].to_numpy(), z @ w / w.sum(), rtol=1e-10)
    # The two near-copies share weight: together they weigh about what one would alone.
    wn = weights.set_index("outcome")["weight"]
    assert wn["earnings"] + wn["earnings_copy"] < 2 * wn["employed"]


def test_anderson_with_uncorrelated_equal_variance_components_is_klk():
    """Two outcomes with identical control covariance structure and zero control
    correlation get equal Anderson weights, so Anderson = KLK."""
    f = make_frames(n=40, seed=1)
    panel = f["panel"]
    # Build, at every period, two outcomes that are exactly uncorrelated among controls.
    rng = np.random.default_rng(0)
    panel["a"] = rng.normal(size=len(panel))
    panel["b"] = rng.normal(size=len(panel))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = Study.from_frames(f["assignment"], panel, households=f["households"])
    at = s.panel["k"].to_numpy() == 1
    arm = s.panel["person_id"].map(dict(zip(s.persons.person_id, s.persons.arm))).to_numpy()
    ctrl = np.flatnonzero(at & (arm == 0))
    # Orthogonalise b against a among controls at k = 1 (and give it the same variance).
    p2 = s.panel.copy()
    a_c = p2.loc[ctrl, "a"] - p2.loc[ctrl, "a"].mean()
    b_c = p2.loc[ctrl, "b"] - p2.loc[ctrl, "b"].mean()
    b_c = b_c - a_c * (a_c @ b_c) / (a_c @ a_c)
    p2.loc[ctrl, "b"] = b_c * a_c.std() / b_c.std()
    s2 = s.with_outcome("b2", p2["b"].to_numpy())
    ia, wa = summary_index_components(s2, ["a", "b2"], horizon=1, method="anderson")
    ik, _ = summary_index_components(s2, ["a", "b2"], horizon=1, method="klk")
    np.testing.assert_allclose(wa["weight"], [0.5, 0.5], atol=1e-10)
    np.testing.assert_allclose(ia.dropna(), ik.dropna(), rtol=1e-9)


def test_control_mean_is_zero_and_reverse_flips(study):
    outs = ["employed", "earnings"]
    idx, _ = summary_index_components(study, outs, window=(1, 4), method="anderson")
    rev, _ = summary_index_components(study, outs, window=(1, 4), method="anderson",
                                      reverse=["employed", "earnings"])
    panel = study.panel
    arm = panel["person_id"].map(dict(zip(study.persons.person_id, study.persons.arm)))
    for k in range(1, 5):
        at = (panel["k"] == k) & (arm == 0)
        assert abs(idx[at].mean()) < 1e-12
    np.testing.assert_allclose(rev.dropna(), -idx.dropna(), rtol=1e-12)


def test_missing_component_uses_the_others(study):
    outs = ["employed", "earnings", "fte"]
    idx, weights = summary_index_components(study, outs, horizon=2, method="anderson")
    z, _, rows = _standardized_at(study, outs, 2)
    w = weights["weight"].to_numpy()
    missing = np.isnan(z[:, 2])
    assert missing.any()
    r = np.flatnonzero(missing)[0]
    expected = (z[r, :2] @ w[:2]) / w[:2].sum()
    assert idx.iloc[rows[r]] == pytest.approx(expected, rel=1e-10)


def test_summary_index_returns_a_study_usable_by_itt(study):
    itt_mod = importlib.import_module("ips_impact.estimators.itt")
    s2 = summary_index(study, ["employed", "earnings", "fte"], method="klk")
    assert "index_klk" in s2.outcomes and "index_klk" not in study.outcomes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = itt_mod.itt(s2, "index_klk", horizon=2, adjustment="none")
    assert np.isfinite(r.estimate) and r.outcome == "index_klk"
    from ips_impact.inference.randomization import randomization_inference

    ri = randomization_inference(s2, r, n_permutations=200, seed=0)
    assert 0 < ri.ri_p_value <= 1


def test_errors(study):
    with pytest.raises(EstimationError, match="'anderson', 'klk'"):
        summary_index(study, ["employed", "earnings"], method="pca")
    with pytest.raises(EstimationError, match="at least two"):
        summary_index(study, ["employed"])
    with pytest.raises(DataContractError):
        summary_index(study, ["employed", "no_such_column"])
    with pytest.raises(EstimationError, match="reverse"):
        summary_index(study, ["employed", "earnings"], reverse=["fte"])
    with pytest.raises(EstimationError, match="collinear"):
        s2 = study.with_outcome("earnings_x2", study.panel["earnings"].to_numpy() * 2)
        summary_index(s2, ["earnings", "earnings_x2"], horizon=2)
    with pytest.raises(EstimationError, match="no panel row"):
        summary_index(study, ["employed", "earnings"], horizon=500)
