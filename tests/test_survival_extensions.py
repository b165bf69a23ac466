"""The extended survival options end to end: Fine–Gray, Fleming–Harrington, delayed
entry, stratified Kaplan–Meier, RMST ratio and adjusted RMST, and their randomization
statistics.

Numbers of the numerical core are checked against R in
test_survival_extra_reference.py; here the Study-facing functions are checked against
that core on the arrays they build (event times, entry times, causes), against the
definitions on hand-made panels, and against invariants (ratio rows = exp of log rows;
the vectorised randomization statistics = the core refitted draw by draw).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from survival_helpers import make_study, make_trial

import ips_impact as ii
from ips_impact.errors import EstimationError
from ips_impact.estimators._survival.cox import cox_fit
from ips_impact.estimators._survival.finegray import fine_gray_fit
from ips_impact.estimators._survival.km import kaplan_meier, rmst
from ips_impact.estimators._survival.logrank import logrank
from ips_impact.estimators._survival.randomization import (
    fine_gray_statistics,
    rmst_by_assignment,
    survival_statistics,
)
from ips_impact.estimators._survival.rmst import rmst_log_ratio, rmst_regression
from ips_impact.estimators.survival import (
    competing_risks,
    event_times,
    fine_gray,
    randomization_statistics,
    time_to_event,
)
from ips_impact.study import Study


def quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


@pytest.fixture(scope="module")
def study():
    return make_study(n=300, seed=3)


@pytest.fixture(scope="module")
def late_study():
    """Every fifth person's panel starts at k = 4 (a late extract): delayed entry."""
    a, p = make_trial(n=300, seed=5)
    pos = {pid: i for i, pid in enumerate(a["person_id"])}
    idx = p["person_id"].map(pos).to_numpy()
    k = np.array([(q - r).n for q, r in zip(p["period"], a["randomization_period"].to_numpy()[idx])])
    p = p[~((idx % 5 == 0) & (k < 4))].reset_index(drop=True)
    return quiet(Study.from_frames, a, p)


# ---------------------------------------------------------------- tidy rows
def test_ratio_rows_are_exp_of_their_log_rows(study):
    res = quiet(time_to_event, study, "employed", horizon=20, tau=20, covariates=("age",))
    t = res.tidy().set_index("term")
    for log_term, ratio in (("cox", "hazard_ratio"), ("rmst_log_ratio", "rmst_ratio"),
                            ("rmst_log_ratio_adjusted", "rmst_ratio_adjusted")):
        lo, ra = t.loc[log_term], t.loc[ratio]
        assert ra["estimate"] == pytest.approx(np.exp(lo["estimate"]), rel=1e-12)
        assert ra["conf_low"] == pytest.approx(np.exp(lo["conf_low"]), rel=1e-12)
        assert ra["conf_high"] == pytest.approx(np.exp(lo["conf_high"]), rel=1e-12)
        assert ra["p_value"] == lo["p_value"]
        assert ra["std_error"] == pytest.approx(ra["estimate"] * lo["std_error"], rel=1e-12)  # delta method
    assert res.hazard_ratio == pytest.approx(t.loc["hazard_ratio", "estimate"])
    assert res.spec["time_unit"] == "quarters"


def test_rmst_ratio_and_adjusted_rmst_equal_the_core(study):
    res = quiet(time_to_event, study, "employed", horizon=20, tau=16, covariates=("age", "female"))
    et = event_times(study, "employed", horizon=20)
    t, e, a = et["time"].to_numpy(), et["event"].to_numpy(), et["arm"].to_numpy()
    kms = kaplan_meier(t, e, a, 2)
    lr = rmst_log_ratio(rmst(kms[1], 16), rmst(kms[0], 16))
    tidy = res.tidy().set_index("term")
    assert tidy.loc["rmst_log_ratio", "estimate"] == pytest.approx(lr.estimate, abs=1e-12)
    assert tidy.loc["rmst_log_ratio", "std_error"] == pytest.approx(lr.std_error, abs=1e-12)
    x = study.persons[["age", "female"]].to_numpy(dtype=float)
    b, v = rmst_regression(t, e, a, x, 16, type="difference")
    assert tidy.loc["rmst_difference_adjusted", "estimate"] == pytest.approx(b[1], abs=1e-12)
    assert tidy.loc["rmst_difference_adjusted", "std_error"] == pytest.approx(np.sqrt(v[1, 1]), abs=1e-12)
    assert tidy.loc["rmst_difference_adjusted", "horizon"] == 16


def test_adjusting_for_a_covariate_unrelated_to_anything_barely_moves_the_rmst_difference(study):
    # Tian's estimator with a pure-noise covariate: same estimand, estimate within a few % of an SE
    res = quiet(time_to_event, study, "employed", horizon=20, tau=16, covariates=("age",))
    t = res.tidy().set_index("term")
    gap = abs(t.loc["rmst_difference_adjusted", "estimate"] - t.loc["rmst_difference", "estimate"])
    assert gap < 0.25 * t.loc["rmst_difference", "std_error"]


def test_fleming_harrington_row_equals_core_and_fh00_is_the_logrank(study):
    res = quiet(time_to_event, study, "employed", horizon=20, fh=(0, 1))
    et = event_times(study, "employed", horizon=20)
    lr = logrank(et["time"], et["event"], et["arm"], 2, et["stratum"].to_numpy(), rho=0, gamma=1)
    row = res.tidy().set_index("term").loc["logrank_fh"]
    assert row["statistic"] == pytest.approx(lr.statistic, rel=1e-12)
    assert row["estimand"] == "logrank_fh_observed_minus_expected_ips(rho=0,gamma=1)"
    r00 = quiet(time_to_event, study, "employed", horizon=20, fh=(0, 0)).tidy().set_index("term")
    assert r00.loc["logrank_fh", "statistic"] == pytest.approx(r00.loc["logrank", "statistic"], rel=1e-12)


@pytest.mark.parametrize("fh", [(1,), (-1, 0), ("a", 1), (np.nan, 0), True])
def test_bad_fh_is_refused(study, fh):
    with pytest.raises(EstimationError, match="fh must be a pair"):
        time_to_event(study, "employed", fh=fh)


# ---------------------------------------------------------------- stratified KM
def test_km_strata_are_the_curves_within_arm_and_stratum(study):
    res = quiet(time_to_event, study, "employed", horizon=20)
    ks = res.km_strata
    assert list(ks.columns) == list(ii.results.survival.KM_STRATA_COLUMNS)
    assert set(ks["stratum"]) == set(study.design.stratum_labels)
    et = event_times(study, "employed", horizon=20)
    for a in (0, 1):
        for j, lab in enumerate(study.design.stratum_labels):
            sel = (et["arm"] == a) & (et["stratum"] == j)
            km = kaplan_meier(et["time"][sel], et["event"][sel], np.zeros(sel.sum(), int), 1)[0]
            got = ks[(ks["arm"] == a) & (ks["stratum"] == lab)]
            np.testing.assert_allclose(got["time"], km.time)
            np.testing.assert_allclose(got["survival"], km.survival, atol=1e-14)
            np.testing.assert_array_equal(got["at_risk"], km.at_risk)
    # the pooled curve is not a stratum curve: one stratum => km_strata = km
    one = make_study(n=120, seed=1, n_strata=1)
    r1 = quiet(time_to_event, one, "employed", horizon=20)
    np.testing.assert_allclose(r1.km_strata["survival"], r1.km["survival"])


def test_plot_strata_draws_one_panel_per_stratum(study):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res = quiet(time_to_event, study, "employed", horizon=20)
    axes = res.plot_strata()
    assert [ax.get_title() for ax in axes] == list(study.design.stratum_labels)
    assert len(axes[0].get_lines()) == 2  # IPS and control
    plt.close("all")
    with pytest.raises(EstimationError, match="no curves by stratum"):
        quiet(time_to_event, study, "employed", km_by=None).plot_strata()


def test_km_by_a_baseline_column_and_refusals(study):
    res = quiet(time_to_event, study, "employed", horizon=20, km_by="female")
    assert set(res.km_strata["stratum"]) == {"0", "1"}
    assert quiet(time_to_event, study, "employed", km_by=None).km_strata.empty
    for bad in ("nope", "person_id", 3):
        with pytest.raises(EstimationError, match="km_by must be"):
            time_to_event(study, "employed", km_by=bad)


# ---------------------------------------------------------------- delayed entry
def test_delayed_entry_uses_entry_times_and_sets_left_censored_aside(late_study):
    et = event_times(late_study, "employed", horizon=20, delayed_entry=True)
    plain = event_times(late_study, "employed", horizon=20)
    late = et["entry"] > 0
    assert late.sum() > 0 and (et.loc[late, "entry"] == 3).all()  # first seen at k = 4
    left = plain["usable"] & ~et["usable"]
    assert left.sum() > 0  # employed when first seen at k = 4: time of the first job unknown
    res = quiet(time_to_event, late_study, "employed", horizon=20, delayed_entry=True)
    led = res.ledger.set_index("reason")
    row = [r for r in led.index if "left-censored" in r]
    assert led.loc[row[0], "n_rows"] == int(left.sum())
    use = et["usable"].to_numpy()
    t, e, a, en = (et[c].to_numpy()[use] for c in ("time", "event", "arm", "entry"))
    kms = kaplan_meier(t, e, a, 2, entry=en)
    np.testing.assert_allclose(res.km.loc[res.km["arm"] == 1, "survival"], kms[1].survival, atol=1e-14)
    s = et["stratum"].to_numpy()[use]
    lr = logrank(t, e, a, 2, s, entry=en)
    assert res.tidy().set_index("term").loc["logrank", "statistic"] == pytest.approx(lr.statistic)
    fit = cox_fit(t, e, a.astype(float), strata=s, entry=en, robust=True)
    assert res.tidy().set_index("term").loc["cox", "estimate"] == pytest.approx(fit.coef[0], abs=1e-10)
    assert res.ph_test.empty and any("delayed entry" in n for n in res.warnings)
    # ignoring the late start counts the unobserved quarters as event-free: a different answer
    naive = quiet(time_to_event, late_study, "employed", horizon=20)
    assert naive.tidy().set_index("term").loc["cox", "estimate"] != pytest.approx(fit.coef[0], abs=1e-6)


def test_delayed_entry_without_late_starts_changes_nothing(study):
    a = quiet(time_to_event, study, "employed", horizon=20).tidy()
    b = quiet(time_to_event, study, "employed", horizon=20, delayed_entry=True).tidy()
    pd.testing.assert_series_equal(a["estimate"], b["estimate"], rtol=1e-12)


# ---------------------------------------------------------------- Fine–Gray
def test_fine_gray_equals_core_with_stratum_effects(study):
    res = quiet(fine_gray, study, "employed", competing=["left_di_other"], horizon=20, covariates=("age",))
    assert res.kind == "competing_risks"
    tidy = res.tidy()
    fg = tidy[tidy["term"] == "fine_gray"]
    assert list(fg["outcome"]) == ["employed"]  # only the cause of interest
    assert fg["estimand"].iloc[0] == "log_subdistribution_hazard_ratio"
    # rebuild the first exit and its cause
    ks = np.arange(1, 21)
    emp = study.outcome_matrix("employed", ks)
    oth = study.outcome_matrix("left_di_other", ks)
    hit = (emp == 1) | (oth == 1)
    has = hit.any(axis=1)
    first = np.argmax(hit, axis=1)
    last = ks.size - 1 - np.argmax(~np.isnan(emp)[:, ::-1], axis=1)
    time = np.where(has, ks[first], ks[last]).astype(float)
    rows = np.arange(len(time))
    status = np.where(has, np.where(emp[rows, first] == 1, 1, 2), 0)
    arm = study.design.arm.astype(float)
    st = study.design.stratum
    x = np.column_stack([arm, study.persons["age"].to_numpy(float)] +
                        [(st == s).astype(float) for s in range(1, 3)])
    fit = fine_gray_fit(time, status, x, cause=1)
    np.testing.assert_allclose(res.fine_gray["estimate"], fit.coef, atol=1e-10)
    np.testing.assert_allclose(res.fine_gray["std_error"], fit.std_error, atol=1e-10)
    assert list(res.fine_gray["term"]) == ["arm", "age", "stratum=S1", "stratum=S2"]
    shr = tidy[tidy["term"] == "subdistribution_hazard_ratio"]
    assert shr["estimate"].iloc[0] == pytest.approx(np.exp(fit.coef[0]))


def test_competing_risks_fine_gray_for_every_cause_and_refusals(study):
    res = quiet(competing_risks, study, {"work": "employed", "other": "left_di_other"}, horizon=20,
                fine_gray=True, strata=False)
    fg = res.tidy()[lambda d: d["term"] == "fine_gray"]
    assert list(fg["outcome"]) == ["work", "other"]
    with pytest.raises(EstimationError, match="fine_gray must be"):
        competing_risks(study, ["employed", "left_di_other"], fine_gray=["nope"])
    with pytest.raises(EstimationError, match="covariates are used by the Fine"):
        competing_risks(study, ["employed", "left_di_other"], covariates=("age",))
    with pytest.raises(EstimationError, match="competing must name"):
        fine_gray(study, "employed", competing=["employed"])
    with pytest.raises(EstimationError, match="variance"):
        fine_gray(study, "employed", competing=["left_di_other"], variance="HC1")


# ---------------------------------------------------------------- randomization statistics
def test_randomization_statistics_at_the_observed_assignment_equal_the_fitted(late_study):
    res = quiet(time_to_event, late_study, "employed", horizon=20, tau=12, fh=(1, 1), delayed_entry=True)
    obs = randomization_statistics(late_study, res, late_study.design.arm[None, :]).iloc[0]
    t = res.tidy().set_index("term")
    assert obs["logrank"] == pytest.approx(t.loc["logrank", "statistic"], rel=1e-10)  # chi-square
    assert obs["logrank_fh"] == pytest.approx(t.loc["logrank_fh", "statistic"], rel=1e-10)
    for term in ("cox", "rmst_difference", "rmst_log_ratio"):
        assert obs[term] == pytest.approx(t.loc[term, "estimate"], rel=1e-9), term
    # ratio rows are re-randomized on their log scale
    assert obs["hazard_ratio"] == obs["cox"] and obs["rmst_ratio"] == obs["rmst_log_ratio"]
    fg = quiet(fine_gray, late_study, "employed", competing=["left_di_other"], horizon=20, strata=False)
    o = randomization_statistics(late_study, fg, late_study.design.arm[None, :]).iloc[0]
    tf = fg.tidy().set_index("term")
    assert o["fine_gray:employed"] == pytest.approx(tf.loc["fine_gray", "estimate"], abs=1e-9)


def test_vectorised_statistics_equal_the_core_refitted_per_draw(late_study):
    et = event_times(late_study, "employed", horizon=20, delayed_entry=True)
    use = et["usable"].to_numpy()
    t, e, en, s = (et[c].to_numpy()[use] for c in ("time", "event", "entry", "stratum"))
    z = late_study.design.permutations(5, seed=11)[:, use]
    out = survival_statistics(t, e, z, strata=s, tau=12, entry=en, fh=(0.5, 1),
                              statistics=("logrank_fh", "rmst_log_ratio", "cox"))
    status = np.where(e == 1, 1, np.where(np.arange(e.size) % 4 == 0, 2, 0))  # a competing cause
    fgs = fine_gray_statistics(t, status, 1, z)
    for b in range(z.shape[0]):
        zb = z[b].astype(np.int64)
        lr = logrank(t, e, zb, 2, s, rho=0.5, gamma=1, entry=en)
        assert out["logrank_fh"][b] == pytest.approx(lr.statistic, rel=1e-10)
        kms = kaplan_meier(t, e, zb, 2, entry=en)
        lrat = rmst_log_ratio(rmst(kms[1], 12), rmst(kms[0], 12))
        assert out["rmst_log_ratio"][b] == pytest.approx(lrat.estimate, abs=1e-12)
        fit = cox_fit(t, e, zb.astype(float), strata=s, entry=en)
        assert out["cox"][b] == pytest.approx(fit.coef[0], abs=1e-8)
        assert fgs[b] == pytest.approx(fine_gray_fit(t, status, zb.astype(float)).coef[0], abs=1e-8)
    o = rmst_by_assignment(t, e, z, 12, entry=en)
    assert np.allclose(np.log(o["rmst_treated"]) - np.log(o["rmst_control"]), out["rmst_log_ratio"])


def test_randomization_inference_reaches_the_new_statistics(study):
    res = quiet(time_to_event, study, "employed", horizon=20, tau=16, fh=(0, 1))
    fg = quiet(fine_gray, study, "employed", competing=["left_di_other"], horizon=20)
    out = ii.randomization_inference(study, [res, fg], n_permutations=200, seed=4)
    t = out[0].tidy().set_index("term")
    for term in ("logrank_fh", "hazard_ratio", "rmst_log_ratio", "rmst_ratio"):
        assert 0 < t.loc[term, "ri_p_value"] <= 1
    assert t.loc["rmst_ratio", "ri_p_value"] == t.loc["rmst_log_ratio", "ri_p_value"]
    assert t.loc["hazard_ratio", "ri_p_value"] == t.loc["cox", "ri_p_value"]
    f = out[1].tidy().set_index("term")
    assert 0 < f.loc["fine_gray", "ri_p_value"] <= 1
    assert f.loc["subdistribution_hazard_ratio", "ri_p_value"] == f.loc["fine_gray", "ri_p_value"]
    assert np.isnan(f.loc["cif_difference", "ri_p_value"]).all()
    plain = quiet(competing_risks, study, ["employed", "left_di_other"], horizon=20)
    with pytest.raises(EstimationError, match="no Fine"):
        ii.randomization_inference(study, [plain], n_permutations=50, seed=1)


def test_collinear_covariates_are_refused_by_the_covariate_rule_and_the_core_guards_too():
    a, p = make_trial(n=200, seed=9)
    a["age_months"] = a["age"] * 12
    st = quiet(Study.from_frames, a, p)
    with pytest.raises(EstimationError, match="age_months"):
        time_to_event(st, "employed", horizon=20, covariates=("age", "age_months"))
    et = event_times(st, "employed", horizon=20)
    x = st.persons[["age", "age_months"]].to_numpy(float)
    with pytest.raises(np.linalg.LinAlgError):
        rmst_regression(et["time"], et["event"], et["arm"], x, 12)


def test_fine_gray_takes_a_categorical_covariate_as_dummies():
    a, p = make_trial(n=300, seed=12)
    a["edu"] = np.array(["low", "mid", "high"])[np.arange(len(a)) % 3]
    st = quiet(Study.from_frames, a, p)
    res = quiet(fine_gray, st, "employed", competing=["left_di_other"], horizon=20, covariates=("edu",),
                strata=False)
    terms = list(res.fine_gray["term"])
    assert terms[0] == "arm" and len(terms) == 3  # arm + two dummies of three levels
    assert all(t.startswith("edu") for t in terms[1:])
    assert np.isfinite(res.fine_gray["std_error"]).all()
