"""Defaults that target the estimand: unequal assignment probabilities, matched pairs.

R parity against tests/reference/design_estimands_reference.json
(tests/reference/r/design_estimands.R: estimatr difference_in_means(blocks=, clusters=),
difference_in_means(blocks=), lm_lin, lm_robust with strata fixed effects), and a
coverage simulation with known truth on the synthetic generator.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import ips_impact as ii
from ips_impact.errors import EstimationError, EstimationWarning
from ips_impact.estimators._data import dummies, regression_design
from ips_impact.inference.covariance import OLSDesign
from ips_impact.study import Study

REF_DIR = Path(__file__).parent / "reference"
REF = json.loads((REF_DIR / "design_estimands_reference.json").read_text())
RTOL = 1e-8


def _study(frame: pd.DataFrame, stratum: str, extra: tuple[str, ...] = ()) -> Study:
    a = pd.DataFrame({"person_id": frame["person_id"], "arm": frame["z"], "stratum": frame[stratum],
                      "randomization_period": 0, **{c: frame[c] for c in extra}})
    panel = pd.DataFrame({"person_id": frame["person_id"], "period": 1, "y": frame["y"]})
    return Study.from_frames(a, panel, frequency="int")


@pytest.fixture(scope="module")
def pairs_study():
    d = pd.read_csv(REF_DIR / "data" / "design_pairs.csv")
    return _study(d, "pair", ("school", "x"))


@pytest.fixture(scope="module")
def unequal_study():
    d = pd.read_csv(REF_DIR / "data" / "design_unequal.csv")
    return _study(d, "stratum", ("x",))


def _check(r, ref, *, p_rtol=1e-6):
    assert r.nobs == ref["nobs"]
    assert r.estimate == pytest.approx(ref["estimate"], rel=RTOL)
    assert r.std_error == pytest.approx(ref["std_error"], rel=RTOL)
    assert r.df == pytest.approx(ref["df"], rel=RTOL)
    assert (r.conf_low, r.conf_high) == pytest.approx((ref["conf_low"], ref["conf_high"]), rel=RTOL)
    assert r.p_value == pytest.approx(ref["p_value"], rel=p_rtol)


# ------------------------------------------------------------------ matched pairs
def test_matched_pair_clusters_default_is_estimatr_matched_pair_variance(pairs_study):
    r = ii.itt(pairs_study, "y", horizon=1, cluster="school")
    _check(r, REF["pairs"])
    assert r.df == 17  # pairs - 1, not the CR2 df of ~1
    assert r.diagnostics["cov_type"] == "matched-pair" and r.diagnostics["adjustment"] == "none"
    same = ii.itt(pairs_study, "y", horizon=1, cluster="school", adjustment="none")
    assert same.std_error == r.std_error


@pytest.mark.parametrize("adjustment", ["ancova", "lin"])
def test_matched_pair_clusters_with_stratum_effects_are_refused(pairs_study, adjustment):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EstimationWarning)
        with pytest.raises(EstimationError, match="CR2 is undefined; 18 pairs"):
            ii.itt(pairs_study, "y", horizon=1, cluster="school", adjustment=adjustment)
    with pytest.raises(EstimationError, match="matched-pair cluster design"):
        ii.itt(pairs_study, "y", horizon=1, cluster="school", covariates=["x"])


def test_matched_pairs_without_strata_use_cr2(pairs_study):
    r = ii.itt(pairs_study, "y", horizon=1, cluster="school", strata=False)
    assert r.diagnostics["cov_type"] == "CR2" and r.std_error > 0.05


# ------------------------------------------------------------ unequal probabilities
def test_unequal_probabilities_default_is_lin_and_matches_estimatr(unequal_study):
    assert not unequal_study.design.equal_probabilities
    r = ii.itt(unequal_study, "y", horizon=1)
    assert r.diagnostics["adjustment"] == "lin"
    assert "differ across strata" in r.diagnostics["adjustment_reason"]
    _check(r, REF["lin_strata"])
    _check(r, REF["blocked"])  # the blocked difference in means is the same estimator
    _check(ii.itt(unequal_study, "y", horizon=1, adjustment="none"), REF["blocked"])
    _check(ii.itt(unequal_study, "y", horizon=1, covariates=["x"]), REF["lin_strata_x"])


def test_strata_fixed_effects_stay_available_by_name_with_a_warning(unequal_study):
    with pytest.warns(EstimationWarning, match="precision-weighted"):
        r = ii.itt(unequal_study, "y", horizon=1, adjustment="ancova")
    _check(r, REF["strata_fe"])
    with pytest.warns(EstimationWarning, match="precision-weighted"):
        rx = ii.itt(unequal_study, "y", horizon=1, adjustment="ancova", covariates=["x"])
    _check(rx, REF["strata_fe_x"])
    assert r.diagnostics["adjustment_reason"] == "as requested"


def test_equal_probabilities_up_to_rounding():
    from ips_impact.design import Design

    # 29 persons with 14 treated and 30 with 15: the same p = 1/2 up to rounding
    arm = np.r_[np.ones(14), np.zeros(15), np.ones(15), np.zeros(15)].astype(np.int8)
    stratum = np.r_[np.zeros(29), np.ones(30)].astype(int)
    assert Design(arm=arm, stratum=stratum, stratum_labels=("a", "b")).equal_probabilities
    arm2 = np.r_[np.ones(15), np.zeros(15), np.ones(3), np.zeros(27)].astype(np.int8)
    stratum2 = np.r_[np.zeros(30), np.ones(30)].astype(int)
    assert not Design(arm=arm2, stratum=stratum2, stratum_labels=("a", "b")).equal_probabilities


# ------------------------------------------------------------------ simulation
def _blocked_world():
    """The synthetic trial's persons and strata, its control potential earnings at k = 6
    (EUR per quarter), and a known effect: 0 in the Flemish strata (assigned with
    p = 0.5) and +1,500 EUR in the others (p = 0.1)."""
    tr = ii.synthetic.generate(n_persons=1200, seed=3, tables=("assignment", "panel"))
    a0 = tr.assignment[["person_id", "stratum"]].reset_index(drop=True)
    po = tr.potential_outcomes("earnings")
    y0 = po[po["k"] == 6].set_index("person_id").loc[a0["person_id"], "y0"].to_numpy()
    low = ~a0["stratum"].str.startswith("VL").to_numpy()
    tau = np.where(low, 1500.0, 0.0)
    codes, labels = pd.factorize(a0["stratum"], sort=True)
    nb = np.bincount(codes)
    p = np.array([0.5 if str(lab).startswith("VL") else 0.1 for lab in labels])
    n1 = np.maximum(2, np.round(nb * p)).astype(int)
    return a0, y0, tau, codes, list(labels), n1


def _draw(rng, codes, n1):
    z = np.zeros(codes.size, dtype=np.int8)
    for b, m in enumerate(n1):
        z[rng.choice(np.flatnonzero(codes == b), m, replace=False)] = 1
    return z


def _fit(y, z, codes, labels, adjustment):
    S, snames = dummies(codes, labels, "stratum")
    rd = regression_design(z, adjustment=adjustment, strata=S, strata_names=snames)
    fit = OLSDesign(rd.X, rd.names, cov_type="HC2").fit(y)
    lo, hi = fit.conf_int(0.95)[1]
    return fit.coef[1], lo, hi


@pytest.mark.slow
def test_default_covers_the_ate_with_unequal_probabilities_and_strata_fe_does_not():
    """2,000 re-randomizations of one synthetic sample (design-based: the potential
    outcomes are fixed, the assignment is re-drawn with p = 0.5 / 0.1 by stratum). The
    truth is the sample ATE, mean(tau) = 650 EUR per quarter. The first draws go
    through ii.itt end to end (and must equal the array path used for the rest)."""
    a0, y0, tau, codes, labels, n1 = _blocked_world()
    ate = float(tau.mean())
    rng = np.random.Generator(np.random.PCG64(20261201))
    n_rep = 2000
    cover_default = np.zeros(n_rep, dtype=bool)
    cover_fe = np.zeros(n_rep, dtype=bool)
    for i in range(n_rep):
        z = _draw(rng, codes, n1)
        y = np.where(z == 1, y0 + tau, y0)
        est, lo, hi = _fit(y, z, codes, labels, "lin")
        est_fe, lo_fe, hi_fe = _fit(y, z, codes, labels, "ancova")
        if i < 3:
            a = pd.DataFrame({"person_id": a0["person_id"], "arm": z, "stratum": a0["stratum"],
                              "randomization_period": 0})
            st = Study.from_frames(a, pd.DataFrame({"person_id": a0["person_id"], "period": 6,
                                                    "earnings": y}), frequency="int")
            r = ii.itt(st, "earnings", horizon=6)
            assert r.diagnostics["adjustment"] == "lin"
            assert (r.estimate, r.conf_low, r.conf_high) == pytest.approx((est, lo, hi), rel=1e-10)
            with pytest.warns(EstimationWarning):
                f = ii.itt(st, "earnings", horizon=6, adjustment="ancova")
            assert f.estimate == pytest.approx(est_fe, rel=1e-10)
        cover_default[i] = lo <= ate <= hi
        cover_fe[i] = lo_fe <= ate <= hi_fe
    assert 0.935 <= cover_default.mean() <= 0.965, cover_default.mean()
    assert cover_fe.mean() < 0.85, cover_fe.mean()
