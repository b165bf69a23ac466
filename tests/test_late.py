"""Tests of late() / two_stage_least_squares: parity with R estimatr::iv_robust and AER::ivreg."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ips_impact.errors import DataContractError, EstimationError, EstimationWarning
from ips_impact.estimators.itt import itt
from ips_impact.estimators.iv import late, two_stage_least_squares
from ips_impact.results import EffectResult
from ips_impact.study import Study

REF = Path(__file__).parent / "reference"
REFERENCE = json.loads((REF / "iv_bounds_reference.json").read_text())
CIG = pd.read_csv(REF / "data" / "iv_cigarettes.csv")
FERT = pd.read_csv(REF / "data" / "iv_fertility.csv")
RTOL = 1e-8


def _arrays(case_id: str):
    """(y, endog, instruments, exog, exog_names, data) of a reference case, as in iv_bounds.R."""
    if case_id.startswith(("cig95", "aer_cig95")):
        d = CIG[CIG["year"] == 1995]
        W = np.column_stack([np.ones(len(d)), d["lrincome"]])
        return d["lpacks"], d["lrprice"], d[["tdiff", "rtax"]], W, ["(Intercept)", "lrincome"], d
    if case_id.startswith("cigpanel"):
        d = CIG
        W = np.column_stack([np.ones(len(d)), d["lrincome"], d["y1995"]])
        return d["lpacks"], d["lrprice"], d[["tdiff", "rtax"]], W, ["(Intercept)", "lrincome", "y1995"], d
    d = FERT
    if case_id == "fert_wald_HC2":
        return d["work"], d["morekids"], d["samesex"], np.ones((len(d), 1)), ["(Intercept)"], d
    cov = ["age", "afam", "hispanic", "other"]
    W = np.column_stack([np.ones(len(d)), d[cov]])
    return d["work"], d["morekids"], d["samesex"], W, ["(Intercept)", *cov], d


def _our_cov_type(se_type: str, clustered: bool) -> str:
    # estimatr's "stata" is CR1 with clusters and HC1 without
    return ("CR1" if clustered else "HC1") if se_type == "stata" else se_type


ARRAY_CASES = [c for c in REFERENCE["iv_cases"] if not c["id"].startswith("star_")]
STAR_CASES = [c for c in REFERENCE["iv_cases"] if c["id"].startswith("star_")]


def test_reference_holds_the_study_cases():
    # the STAR cases are checked through late() below; none may go unchecked
    assert {c["id"] for c in STAR_CASES} == set(STAR_CALLS)
    assert len(ARRAY_CASES) == 14


@pytest.mark.parametrize("case", ARRAY_CASES, ids=lambda c: c["id"])
def test_parity_with_estimatr_iv_robust(case):
    y, d, Z, W, wnames, data = _arrays(case["id"])
    clusters = None if case["clusters"] is None else data[case["clusters"]].to_numpy()
    fit = two_stage_least_squares(y, d, Z, W, endog_name=case["endog"], exog_names=wnames,
                                  cov_type=_our_cov_type(case["se_type"], clusters is not None),
                                  clusters=clusters)
    assert fit.nobs == case["nobs"]
    assert fit.coef[0] == pytest.approx(case["estimate"], rel=RTOL)
    assert fit.std_error[0] == pytest.approx(case["std_error"], rel=RTOL)
    assert fit.df[0] == pytest.approx(case["df"], rel=RTOL)
    # every coefficient, not only the endogenous one
    for name, est in case["coefficients"]["estimate"].items():
        j = fit.names.index(name)
        assert fit.coef[j] == pytest.approx(est, rel=RTOL, abs=1e-12)
        assert fit.std_error[j] == pytest.approx(case["coefficients"]["std_error"][name], rel=RTOL)


@pytest.mark.parametrize("case", REFERENCE["aer_cases"], ids=lambda c: c["id"])
def test_parity_with_aer_ivreg_sandwich(case):
    y, d, Z, W, wnames, _ = _arrays(case["id"])
    fit = two_stage_least_squares(y, d, Z, W, endog_name=case["endog"], exog_names=wnames,
                                  cov_type=case["type"])
    assert fit.coef[0] == pytest.approx(case["estimate"], rel=RTOL)
    assert fit.std_error[0] == pytest.approx(case["std_error"], rel=RTOL)


def test_first_stage_f_matches_r():
    y, d, Z, W, wnames, _ = _arrays("fert_HC2")
    fit = two_stage_least_squares(y, d, Z, W, endog_name="morekids", exog_names=wnames,
                                  instrument_names=["samesex"], cov_type="HC2")
    fs = REFERENCE["first_stage"]
    assert fit.first_stage["coef"]["samesex"] == pytest.approx(fs["estimate"], rel=RTOL)
    assert fit.first_stage["std_error"]["samesex"] == pytest.approx(fs["std_error"], rel=RTOL)
    assert fit.first_stage["f_robust"] == pytest.approx(fs["f_robust"], rel=RTOL)


def test_df_for_limits_the_satterthwaite_df_only():
    y, d, Z, W, wnames, data = _arrays("cigpanel_CR2")
    cl = data["state"].to_numpy()
    full = two_stage_least_squares(y, d, Z, W, cov_type="CR2", clusters=cl)
    one = two_stage_least_squares(y, d, Z, W, cov_type="CR2", clusters=cl, df_for=(0,))
    assert one.df[0] == full.df[0] and np.isnan(one.df[1:]).all() and np.isfinite(full.df).all()
    np.testing.assert_array_equal(one.coef, full.coef)
    np.testing.assert_array_equal(one.vcov, full.vcov)
    assert one.first_stage == full.first_stage


def test_hc0_equals_linearmodels_robust():
    # a third implementation: linearmodels' own heteroskedasticity-robust covariance
    from linearmodels.iv import IV2SLS

    y, d, Z, W, wnames, _ = _arrays("cig95_HC0")
    fit = two_stage_least_squares(y, d, Z, W, endog_name="lrprice", exog_names=wnames, cov_type="HC0")
    lm = IV2SLS(y.to_numpy(), W, d.to_numpy(), Z.to_numpy()).fit(cov_type="robust", debiased=False)
    assert fit.std_error[0] == pytest.approx(float(np.sqrt(lm.cov.to_numpy()[-1, -1])), rel=1e-10)


# --------------------------------------------- late() on STAR, against iv_robust

#: late() options of each STAR reference case (the R call is in the JSON beside it)
# R fits the strata fixed-effects (ANCOVA) model; the STAR design's assignment
# probabilities differ across schools, where the default is "lin", so it is named.
STAR_CALLS = {
    "star_stack_ancova_CR2": dict(window=(0, 3), aggregate="stack", covariates=["female", "cauc"],
                                  adjustment="ancova"),
    "star_stack_ancova_CR1": dict(window=(0, 3), aggregate="stack", covariates=["female", "cauc"],
                                  cov_type="CR1", adjustment="ancova"),
    "star_stack_lin_CR2": dict(window=(0, 3), aggregate="stack", covariates=["female", "cauc"],
                               adjustment="lin", strata="school_type"),
    "star_girls_k3_HC2": dict(horizon=3, covariates=["cauc"], subset="female == 1", adjustment="ancova"),
    "star_k3_none_blocked_HC2": dict(horizon=3, adjustment="none", strata="school_type"),
}


@pytest.fixture(scope="module")
def star():
    """AER::STAR as a trial: assignment = kindergarten small class (within schools),
    take-up = small class in grade 1, outcome = reading score in grades K-3 (k = 0..3)."""
    P = pd.read_csv(REF / "data" / "iv_star_stack.csv")
    a = pd.DataFrame({"person_id": P["id"], "arm": P["small"], "randomization_period": 0,
                      "stratum": P["school"], "school_type": P["school_type"], "female": P["female"],
                      "cauc": P["cauc"], "small1": P["small1"]})
    long = P.melt(id_vars="id", value_vars=["readk", "read1", "read2", "read3"], var_name="v", value_name="read")
    long["period"] = long["v"].map({"readk": 0, "read1": 1, "read2": 2, "read3": 3})
    panel = long[["id", "period", "read"]].rename(columns={"id": "person_id"})
    return Study.from_frames(a, panel, frequency="int")


@pytest.mark.parametrize("case", STAR_CASES, ids=lambda c: c["id"])
def test_late_parity_with_iv_robust_on_star(star, case):
    r = late(star, "read", takeup="small1", **STAR_CALLS[case["id"]])
    assert r.nobs == case["nobs"]
    assert r.estimate == pytest.approx(case["estimate"], rel=RTOL)
    assert r.std_error == pytest.approx(case["std_error"], rel=RTOL)
    assert r.df == pytest.approx(case["df"], rel=RTOL)
    assert r.conf_int() == pytest.approx((case["conf_low"], case["conf_high"]), rel=RTOL)
    assert r.p_value == pytest.approx(case["p_value"], rel=1e-6)
    want = "CR1" if case["se_type"] == "stata" else case["se_type"]
    assert r.spec["cov_type"] == want and r.diagnostics["cov_type"] == want
    assert r.diagnostics["stacked_rows"] == (STAR_CALLS[case["id"]].get("aggregate") == "stack")


def test_blocked_late_is_blocked_itt_over_blocked_first_stage(star):
    """adjustment='none' with strata: the ratio of two estimatr lm_robust coefficients."""
    ref = REFERENCE["star_blocked_ratio"]
    r = late(star, "read", takeup="small1", **STAR_CALLS["star_k3_none_blocked_HC2"])
    d = r.diagnostics
    assert d["itt_estimate"] == pytest.approx(ref["itt"], rel=RTOL)
    assert d["itt_std_error"] == pytest.approx(ref["itt_std_error"], rel=RTOL)
    assert d["complier_share"] == pytest.approx(ref["first_stage"], rel=RTOL)
    assert d["complier_share_se"] == pytest.approx(ref["first_stage_std_error"], rel=RTOL)
    assert r.estimate == pytest.approx(ref["ratio"], rel=RTOL)


@pytest.mark.parametrize("kwargs", [
    dict(horizon=3, adjustment="none", strata=False),
    dict(horizon=3, covariates=["female", "cauc"]),
    dict(horizon=2, covariates=["female", "cauc"], adjustment="lin", strata="school_type"),
    dict(window=(0, 3), aggregate="stack", covariates=["female", "cauc"]),
    dict(window=(0, 3), aggregate="stack", covariates=["female"], adjustment="lin", strata="school_type"),
    dict(window=(1, 3), aggregate="sum", subset="female == 1"),
], ids=["wald", "ancova", "lin", "stack", "stack-lin", "sum-subset"])
def test_late_is_itt_over_first_stage_and_its_itt_is_itt(star, kwargs):
    """One instrument, same exogenous regressors: LATE = ITT / first stage exactly, and the
    ITT of the diagnostics is itt() with the same options; the first stage is itt() of take-up."""
    r = late(star, "read", takeup="small1", **kwargs)
    d = r.diagnostics
    assert r.estimate == pytest.approx(d["itt_estimate"] / d["complier_share"], rel=1e-10)
    i = itt(star, "read", **kwargs)
    assert d["itt_estimate"] == pytest.approx(i.estimate, rel=1e-10)
    assert d["itt_std_error"] == pytest.approx(i.std_error, rel=1e-10)
    assert r.nobs == i.nobs and (r.n_treated, r.n_control) == (i.n_treated, i.n_control)
    assert (r.n_missing_treated, r.n_missing_control) == (i.n_missing_treated, i.n_missing_control)
    assert r.ledger.equals(i.ledger)
    assert r.horizon == i.horizon


def test_star_wald_ratio_by_hand(star):
    r = late(star, "read", takeup="small1", horizon=3, adjustment="none", strata=False)
    y = star.outcome_at("read", 3).to_numpy()
    p = star.persons
    ok = np.isfinite(y)
    z, d = p["arm"].to_numpy()[ok], p["small1"].to_numpy()[ok]
    y = y[ok]
    wald = (y[z == 1].mean() - y[z == 0].mean()) / (d[z == 1].mean() - d[z == 0].mean())
    assert r.estimate == pytest.approx(wald, rel=1e-12)
    assert r.diagnostics["takeup_control"] == pytest.approx(d[z == 0].mean(), rel=1e-12)


@pytest.mark.parametrize("adjustment,covs", [("ancova", ["female"]), ("lin", ["female", "cauc"]), ("none", [])])
def test_stacked_with_one_period_is_the_horizon(star, adjustment, covs):
    strata = "school_type" if adjustment != "ancova" else True
    s = late(star, "read", takeup="small1", window=(2, 2), aggregate="stack", covariates=covs,
             adjustment=adjustment, strata=strata)
    h = late(star, "read", takeup="small1", horizon=2, covariates=covs, adjustment=adjustment,
             strata=strata, cluster="person_id")
    assert s.estimate == pytest.approx(h.estimate, rel=1e-12)
    assert s.std_error == pytest.approx(h.std_error, rel=1e-10)
    assert s.df == pytest.approx(h.df, rel=1e-10)
    assert s.spec["cov_type"] == h.spec["cov_type"] == "CR2"
    assert s.nobs == h.nobs and s.diagnostics["n_persons"] == h.diagnostics["n_persons"]
    # singleton clusters: CR2 is HC2 (the df are Satterthwaite, not N - K)
    hc2 = late(star, "read", takeup="small1", horizon=2, covariates=covs, adjustment=adjustment, strata=strata)
    assert hc2.spec["cov_type"] == "HC2"
    assert s.std_error == pytest.approx(hc2.std_error, rel=1e-10)


def test_sum_is_window_length_times_mean(star):
    m = late(star, "read", takeup="small1", window=(1, 3), aggregate="mean", covariates=["cauc"])
    s = late(star, "read", takeup="small1", window=(1, 3), aggregate="sum", covariates=["cauc"])
    assert s.estimate == pytest.approx(3 * m.estimate, rel=1e-12)
    assert s.std_error == pytest.approx(3 * m.std_error, rel=1e-12)
    assert s.nobs == m.nobs and s.df == m.df


def test_subset_spellings_agree_and_select(star):
    mask = star.persons["female"].to_numpy() == 1
    by_query = late(star, "read", takeup="small1", horizon=3, subset="female == 1")
    by_mask = late(star, "read", takeup="small1", horizon=3, subset=mask)
    by_col = late(star, "read", takeup="small1", horizon=3, subset="female")
    for r in (by_mask, by_col):
        assert r.estimate == pytest.approx(by_query.estimate, rel=1e-14)
        assert r.std_error == pytest.approx(by_query.std_error, rel=1e-14)
    assert by_query.diagnostics["n_persons"] == int((mask & np.isfinite(star.outcome_at("read", 3))).sum())
    full = late(star, "read", takeup="small1", horizon=3)
    assert by_query.nobs < full.nobs and by_query.estimate != pytest.approx(full.estimate, rel=1e-3)


def test_cov_type_defaults_and_refusals(star):
    assert late(star, "read", takeup="small1", horizon=1).spec["cov_type"] == "HC2"
    r = late(star, "read", takeup="small1", window=(0, 1), aggregate="stack")
    assert r.spec["cov_type"] == "CR2" and r.diagnostics["n_clusters"] == r.diagnostics["n_persons"]
    assert late(star, "read", takeup="small1", horizon=1, cluster="stratum").spec["cov_type"] == "CR2"
    with pytest.raises(EstimationError, match="ignores clusters"):
        late(star, "read", takeup="small1", window=(0, 1), aggregate="stack", cov_type="HC2")


def test_option_errors_name_argument_and_allowed_values(star):
    with pytest.raises(EstimationError, match="adjustment must be one of 'none', 'ancova', 'lin'; you passed 'iv'"):
        late(star, "read", takeup="small1", horizon=1, adjustment="iv")
    with pytest.raises(EstimationError, match="aggregate must be one of 'mean', 'sum', 'stack'"):
        late(star, "read", takeup="small1", window=(0, 1), aggregate="median")
    with pytest.raises(EstimationError, match="adjustment='none' takes no covariates"):
        late(star, "read", takeup="small1", horizon=1, adjustment="none", covariates=["cauc"])
    with pytest.raises(EstimationError, match="subset selects no person"):
        late(star, "read", takeup="small1", horizon=1, subset="female == 7")
    with pytest.raises(EstimationError, match="one arm only"):
        # school strata with one arm among girls observed at k = 3 -> no blocked contrast
        late(star, "read", takeup="small1", horizon=3, adjustment="lin", subset="female == 1 and cauc == 0")


def test_missing_takeup_outside_the_sample_is_not_needed():
    a, panel, takeup = trial_frames(seed=5, n=200)
    a["started"] = takeup["ips_started"].astype(float)
    a.loc[:4, "started"] = np.nan
    st = Study.from_frames(a, panel, takeup=takeup)
    keep = st.persons["started"].notna().to_numpy()
    assert (~keep).sum() == 5
    r = late(st, "employed", takeup="started", horizon=4, subset=keep)
    assert r.diagnostics["n_persons"] == int(keep.sum())
    with pytest.raises(DataContractError, match="take-up column 'started' has missing values"):
        late(st, "employed", takeup="started", horizon=4)


def test_result_is_frozen_and_spec_replays(star):
    from ips_impact.estimators.iv import late_components

    r = late(star, "read", takeup="small1", window=(0, 3), aggregate="stack", covariates=["female"],
             adjustment="lin", strata="school_type", subset="cauc == 1")
    with pytest.raises(Exception):
        r.estimate = 0.0  # type: ignore[misc]
    assert r.spec["estimator"] == "late" and r.spec["aggregate"] == "stack" and r.spec["adjustment"] == "lin"
    c = late_components(star, r)
    X = np.hstack([c.nuisance[:, :1], c.arm[:, None], c.nuisance[:, 1:], c.arm[:, None] * c.interact])
    b = np.linalg.lstsq(X, np.column_stack([c.y, c.d]), rcond=None)[0]
    assert b[1, 0] / b[1, 1] == pytest.approx(r.estimate, rel=1e-9)
    assert c.y.size == r.nobs and not c.y.flags.writeable


# ------------------------------------------------------------------ through a Study


def trial_frames(n=600, seed=0, late_effect=0.25, complier_share=0.7, n_periods=12):
    """A 1:1 trial in 2 strata with one-sided non-compliance and a known complier effect."""
    rng = np.random.default_rng(seed)
    stratum = np.repeat(["VL", "WAL"], [n * 2 // 3, n - n * 2 // 3])
    arm = np.zeros(n, dtype=int)
    for s in ("VL", "WAL"):
        idx = np.flatnonzero(stratum == s)
        arm[rng.choice(idx, idx.size // 2, replace=False)] = 1
    complier = rng.random(n) < complier_share
    started = (arm == 1) & complier
    age = rng.normal(40, 9, n)
    a = pd.DataFrame({"person_id": [f"q{i:05d}" for i in range(n)], "arm": arm,
                      "randomization_period": "2018Q1", "stratum": stratum, "age": age,
                      "sex": rng.choice(["f", "m"], n)})
    takeup = pd.DataFrame({"person_id": a["person_id"], "ips_started": started.astype(int)})
    periods = pd.period_range("2017Q1", periods=n_periods, freq="Q").astype(str)
    k = np.tile(np.arange(n_periods) - 4, n)
    base = np.repeat(0.2 + 0.005 * (age - 40) + 0.05 * (stratum == "VL"), n_periods)
    eff = np.repeat(started, n_periods) * late_effect * (k >= 1)
    y = (rng.random(n * n_periods) < np.clip(base + eff, 0, 1)).astype(float)
    panel = pd.DataFrame({"person_id": np.repeat(a["person_id"], n_periods), "period": np.tile(periods, n),
                          "employed": y, "earnings": y * rng.gamma(2, 1500, n * n_periods)})
    return a, panel, takeup


@pytest.fixture(scope="module")
def study():
    a, panel, takeup = trial_frames()
    return Study.from_frames(a, panel, takeup=takeup)


def test_without_covariates_late_is_the_wald_ratio(study):
    r = late(study, "employed", horizon=4, strata=False)
    assert isinstance(r, EffectResult)
    p = study.persons
    y = study.outcome_at("employed", 4).to_numpy()
    z, d = p["arm"].to_numpy(), p["ips_started"].to_numpy()
    itt = y[z == 1].mean() - y[z == 0].mean()
    fs = d[z == 1].mean() - d[z == 0].mean()
    assert r.estimate == pytest.approx(itt / fs, rel=1e-12)
    assert r.diagnostics["complier_share"] == pytest.approx(fs, rel=1e-12)
    assert r.diagnostics["itt_estimate"] == pytest.approx(itt, rel=1e-12)
    assert r.diagnostics["takeup_control"] == 0.0
    assert r.term == "ips_started" and r.estimand == "late" and r.horizon == 4
    t = r.tidy()
    assert t.loc[0, "term"] == "ips_started" and t.loc[0, "estimand"] == "late"
    assert r.control_mean == pytest.approx(y[z == 0].mean())


def test_study_path_equals_the_array_engine(study):
    r = late(study, "employed", window=(1, 6), covariates=["age", "sex"], cov_type="HC3")
    p = study.persons
    Y = study.outcome_matrix("employed", np.arange(1, 7)).mean(axis=1)
    W = np.column_stack([np.ones(len(p)), p["age"], (p["sex"] == "m").astype(float),
                         (p["stratum"] == "WAL").astype(float)])
    fit = two_stage_least_squares(Y, p["ips_started"], p["arm"], W, endog_name="ips_started",
                                  exog_names=["(Intercept)", "age", "sex[m]", "stratum[WAL]"],
                                  cov_type="HC3")
    assert r.estimate == pytest.approx(fit.coef[0], rel=1e-12)
    assert r.std_error == pytest.approx(fit.std_error[0], rel=1e-12)
    assert r.df == len(p) - 5
    assert list(r.coefficients.index) == ["ips_started", "(Intercept)", "age", "sex[m]", "stratum[WAL]"]
    assert r.horizon == "1:6" and r.spec["cov_type"] == "HC3"
    assert r.diagnostics["first_stage_f"] > 100


def test_clustered_late_warns_once_about_few_clusters(study):
    from ips_impact.errors import SmallSampleWarning

    with pytest.warns(SmallSampleWarning) as rec:
        r = late(study, "employed", horizon=4, cov_type="CR2", cluster="stratum")
    assert len([w for w in rec if issubclass(w.category, SmallSampleWarning)]) == 1
    assert r.spec["cluster"] == "stratum" and r.spec["cov_type"] == "CR2"
    assert any("only 2 clusters" in w for w in r.warnings)
    # CR2 of the late equals the array engine with the same clusters
    p = study.persons
    y = study.outcome_at("employed", 4).to_numpy()
    W = np.column_stack([np.ones(len(p)), (p["stratum"] == "WAL").astype(float)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallSampleWarning)
        fit = two_stage_least_squares(y, p["ips_started"], p["arm"], W, cov_type="CR2",
                                      clusters=p["stratum"].to_numpy())
    assert r.std_error == pytest.approx(fit.std_error[0], rel=1e-12)
    assert r.df == pytest.approx(fit.df[0], rel=1e-12)


def test_missing_outcomes_are_counted_and_ledgered():
    a, panel, takeup = trial_frames(seed=2)
    drop = panel["period"].eq("2018Q4") & panel["person_id"].isin(a["person_id"][:30])
    st = Study.from_frames(a, panel[~drop], takeup=takeup)
    r = late(st, "employed", horizon=3)
    arm = a["arm"].to_numpy()[:30]
    assert (r.n_missing_treated, r.n_missing_control) == (int(arm.sum()), int(30 - arm.sum()))
    assert r.nobs == len(a) - 30
    assert r.ledger["n_rows"].tolist() == [30]


def test_weak_instrument_warns():
    a, panel, takeup = trial_frames(seed=3)
    rng = np.random.default_rng(9)
    takeup["ips_started"] = (rng.random(len(a)) < 0.5).astype(int)  # unrelated to assignment
    st = Study.from_frames(a, panel, takeup=takeup)
    with pytest.warns(EstimationWarning, match="weak instrument"):
        r = late(st, "employed", horizon=4)
    assert any("weak instrument" in w for w in r.warnings)


def test_errors(study):
    with pytest.raises(DataContractError, match="take-up column 'started'"):
        late(study, "employed", horizon=4, takeup="started")
    with pytest.raises(EstimationError, match="cov_type must be one of"):
        late(study, "employed", horizon=4, cov_type="HC5")
    with pytest.raises(EstimationError, match="cluster-robust but no cluster"):
        late(study, "employed", horizon=4, cov_type="CR2")
    with pytest.raises(EstimationError, match="exactly one of horizon= or window="):
        late(study, "employed")
    with pytest.raises(EstimationError, match="outside the observed follow-up"):
        late(study, "employed", horizon=50)
    with pytest.raises(DataContractError, match="not in the panel"):
        late(study, "wages", horizon=4)
    with pytest.raises(EstimationError, match="take-up column 'ips_started' cannot also be a covariate"):
        late(study, "employed", horizon=4, covariates=["ips_started"])


def test_takeup_must_be_binary():
    a, panel, takeup = trial_frames(seed=4, n=120)
    a["days_in_ips"] = np.arange(len(a))
    st = Study.from_frames(a, panel, takeup=takeup)
    with pytest.raises(DataContractError, match="must be 0/1"):
        late(st, "employed", horizon=4, takeup="days_in_ips")


@pytest.mark.slow
def test_coverage_and_bias_on_simulated_trials():
    """2,500 trials with a known complier effect: 95% HC2 intervals cover it.

    The band is 95% ± 3 Monte Carlo standard errors (sqrt(.95 × .05 / 2500) = 0.44 pp),
    i.e. 93.7-96.3%: inside the 93.5-96.5% that issue 4 asks of the ITT intervals.
    """
    from scipy import stats

    rng = np.random.default_rng(2024)
    n, reps, tau = 600, 2500, 0.25
    cover, errs, ses = 0, [], []
    for _ in range(reps):
        z = np.zeros(n)
        z[rng.choice(n, n // 2, replace=False)] = 1
        complier = rng.random(n) < 0.6
        d = z * complier
        x = rng.normal(size=n)
        y0 = 0.3 + 0.2 * x + rng.normal(0, 1, n)
        y = y0 + d * (tau + rng.normal(0, 0.5, n))  # complier effects vary around tau
        W = np.column_stack([np.ones(n), x])
        fit = two_stage_least_squares(y, d, z, W, cov_type="HC2")
        c = stats.t.ppf(0.975, fit.df[0])
        est, se = fit.coef[0], fit.std_error[0]
        cover += abs(est - tau) <= c * se
        errs.append(est - tau)
        ses.append(se)
    coverage = cover / reps
    band = 3 * np.sqrt(0.95 * 0.05 / reps)
    assert abs(coverage - 0.95) <= band, coverage
    assert 0.935 <= coverage <= 0.965, coverage
    mc_se = np.std(errs, ddof=1) / np.sqrt(reps)
    assert abs(np.mean(errs)) < 3 * mc_se


@pytest.mark.slow
def test_coverage_of_stacked_late_with_cr2():
    """800 trials, 400 persons x 3 periods, person effects and heteroskedastic errors:
    the stacked LATE (period effects, CR2 by person, Satterthwaite df) covers the
    complier effect in 93-97% of them (issue 4's band for stacked CR2; 95% +- 2.6 Monte
    Carlo SE), is unbiased within 3 Monte Carlo SE, and its mean standard error is
    within 10% of the standard deviation of the estimates (MC error of that ratio ~2.5%)."""
    from scipy import stats

    rng = np.random.default_rng(2026)
    n, T, reps, tau = 400, 3, 800, 0.25
    pid = np.repeat(np.arange(n), T)
    W0 = np.column_stack([np.ones(n * T), np.kron(np.ones((n, 1)), np.eye(T)[:, 1:])])
    trend = np.tile(0.1 * np.arange(T), n)
    cover, errs, ses = 0, [], []
    for _ in range(reps):
        z = np.zeros(n)
        z[rng.choice(n, n // 2, replace=False)] = 1
        d = z * (rng.random(n) < 0.6)  # one-sided non-compliance, 60% compliers
        x = rng.normal(size=n)
        u = rng.normal(0, 1, n)  # person effect: a person's rows are correlated
        eff = tau + rng.normal(0, 0.5, n)  # complier effects vary around tau
        e = rng.normal(0, 1, n * T) * (1 + 0.5 * np.repeat(d, T))
        y = np.repeat(0.3 + 0.2 * x + u + d * eff, T) + trend + e
        W = np.column_stack([W0, np.repeat(x, T)])
        fit = two_stage_least_squares(y, np.repeat(d, T), np.repeat(z, T), W, cov_type="CR2",
                                      clusters=pid, df_for=(0,))
        c = stats.t.ppf(0.975, fit.df[0])
        est, se = fit.coef[0], fit.std_error[0]
        cover += abs(est - tau) <= c * se
        errs.append(est - tau)
        ses.append(se)
    coverage = cover / reps
    print(f"stacked LATE CR2: coverage {coverage:.4f}, bias/MC-SE {np.mean(errs) / (np.std(errs, ddof=1) / np.sqrt(reps)):.2f}, "
          f"mean SE / SD {np.mean(ses) / np.std(errs, ddof=1):.3f}")
    assert 0.93 <= coverage <= 0.97, coverage
    mc_se = np.std(errs, ddof=1) / np.sqrt(reps)
    assert abs(np.mean(errs)) < 3 * mc_se
    assert 0.9 < np.mean(ses) / np.std(errs, ddof=1) < 1.1
