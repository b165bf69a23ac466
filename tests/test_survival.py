"""Study-facing survival estimators: definitions, invariants, errors, warnings, results.

Numbers are checked against R in test_survival_reference.py (core) and here end to end
through a Study built from the same R data set (lung in quarters); everything else is
checked against the definitions on hand-made panels whose answers follow from the
docstrings, or against invariants (one stratum => stratified = unstratified; cumulative
incidences add up to 1 - KM of any exit; permutation statistics at the observed
assignment = the fitted ones).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from survival_helpers import make_study, make_trial

from ips_impact.errors import (
    DataContractError,
    DisclosureError,
    EstimationError,
    EstimationWarning,
    SmallSampleWarning,
)
from ips_impact.estimators._survival.cox import cox_fit
from ips_impact.estimators._survival.km import kaplan_meier
from ips_impact.estimators._survival.logrank import logrank
from ips_impact.estimators.survival import (
    competing_risks,
    discrete_time_hazard,
    event_times,
    randomization_statistics,
    spell_survival,
    time_to_event,
)
from ips_impact.results.base import TIDY_COLUMNS
from ips_impact.results.survival import SurvivalResult
from ips_impact.study import Study

REF = Path(__file__).parent / "reference"


def quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


@pytest.fixture(scope="module")
def study():
    return make_study(n=300, seed=3)


# ------------------------------------------------------------------ a hand-made panel


def tiny_study(rows, arms, strata=None):
    """rows: {person: {k: value or None}}; k = 0 is the randomization period (int periods)."""
    ids = sorted(rows)
    assignment = pd.DataFrame({
        "person_id": ids, "arm": [arms[i] for i in ids],
        "stratum": [strata[i] if strata else "all" for i in ids],
        "randomization_period": 10,
    })
    recs = []
    for i in ids:
        for k, v in rows[i].items():
            recs.append((i, 10 + k, np.nan if v is None else float(v)))
    panel = pd.DataFrame(recs, columns=["person_id", "period", "job"])
    return Study.from_frames(assignment, panel, frequency="int")


TINY = {
    "a": {0: 0, 1: 0, 2: 0, 3: 1, 4: 1},          # event at 3
    "b": {0: 0, 1: 0, 2: 0, 3: 0, 4: 0, 5: 0},    # censored at 5
    "c": {0: 1, 1: 0, 2: 0},                      # employed before start only: censored at 2
    "d": {0: 0, 1: 0, 2: None, 3: 0, 4: 1},       # gap, event at 4
    "e": {0: 0},                                  # never observed from start on: set aside
    "f": {0: 0, 1: 1},                            # event at 1
    "g": {0: 0, 1: 0, 2: 1, 3: 0, 4: 1, 5: 1},    # event at 2 (first), job ends at 3
    "h": {0: 0, 1: 0, 2: 0, 3: 0, 4: 0, 5: 0, 6: 1},  # event at 6
}
TINY_ARMS = {"a": 1, "b": 0, "c": 1, "d": 0, "e": 1, "f": 1, "g": 0, "h": 0}


def test_event_times_follow_the_definition():
    st = tiny_study(TINY, TINY_ARMS)
    et = event_times(st, "job")
    got = et.assign(pid=st.persons["person_id"]).set_index("pid")
    expected_time = {"a": 3, "b": 5, "c": 2, "d": 4, "f": 1, "g": 2, "h": 6}
    expected_event = {"a": 1, "b": 0, "c": 0, "d": 1, "f": 1, "g": 1, "h": 1}
    for p, t in expected_time.items():
        assert got.loc[p, "time"] == t
        assert got.loc[p, "event"] == expected_event[p]
        assert got.loc[p, "usable"]
    assert not got.loc["e", "usable"]
    # horizon caps follow-up: h is censored at 4, b at 4
    capped = event_times(st, "job", horizon=4).assign(pid=st.persons["person_id"]).set_index("pid")
    assert capped.loc["h", "time"] == 4 and capped.loc["h", "event"] == 0
    assert capped.loc["b", "time"] == 4
    # start = 2 ignores f's event at 1; f is then censored at its last observed k (1 < 2: unusable)
    later = event_times(st, "job", start=2).assign(pid=st.persons["person_id"]).set_index("pid")
    assert not later.loc["f", "usable"]
    assert later.loc["a", "time"] == 3


@pytest.mark.filterwarnings("ignore::ips_impact.errors.SmallSampleWarning")
@pytest.mark.filterwarnings("ignore:the median is not reached")
def test_time_to_event_sets_aside_unobserved_persons_in_the_ledger():
    st = tiny_study(TINY, TINY_ARMS)
    with pytest.warns(EstimationWarning):
        res = time_to_event(st, "job", strata=False)
    led = res.ledger
    assert int(led["n_rows"].sum()) == 1 and int(led["n_treated"].sum()) == 1
    tidy = res.tidy()
    assert set(tidy["nobs"]) == {7}
    assert list(tidy.columns[: len(TIDY_COLUMNS)]) == list(TIDY_COLUMNS)


def test_callable_event_equals_column_event():
    st = tiny_study(TINY, TINY_ARMS)
    a = event_times(st, "job")
    b = event_times(st, lambda p: p["job"] > 0.5)
    pd.testing.assert_frame_equal(a, b)


def test_spell_durations_follow_the_definition():
    rows = {
        "a": {0: 0, 1: 1, 2: 1, 3: 0, 4: 0},        # new spell at 1, out at 3 -> event, 2 periods
        "b": {0: 0, 1: 0, 2: 1, 3: 1, 4: 1},        # spell at 2, in state to the end (4) -> censored at 2
        "c": {0: 1, 1: 1, 2: 0, 3: 1, 4: 0},        # running at 0; new spell at 3, out at 4 -> event, 1
        "d": {0: 0, 1: 1, 2: None, 3: 1},           # spell at 1, gap at 2 -> censored at 0
        "e": {0: 0, 1: 0, 2: 0, 3: 0, 4: 0},        # never enters
        "f": {0: 0, 1: 1, 2: 1, 3: 1, 4: 0},        # spell at 1, out at 4 -> event, 3
    }
    arms = {"a": 1, "b": 0, "c": 1, "d": 0, "e": 1, "f": 0}
    st = tiny_study(rows, arms)
    res = quiet(spell_survival, st, "job", horizon=4, strata=False)
    km = res.km
    # IPS arm spells: a (2, event), c (1, event) -> S(1) = 1/2, S(2) = 0
    ips = km[km["arm"] == 1].set_index("time")
    assert ips.loc[1.0, "survival"] == pytest.approx(0.5)
    assert ips.loc[2.0, "survival"] == pytest.approx(0.0)
    # control arm: b censored at 2, d censored at 0, f event at 3
    ctl = km[km["arm"] == 0].set_index("time")
    assert list(ctl.index) == [0.0, 2.0, 3.0]
    assert ctl.loc[3.0, "events"] == 1 and ctl.loc[3.0, "at_risk"] == 1
    assert int(res.ledger["n_rows"].sum()) == 1  # e never enters
    # entry="any" also takes c's spell running at start (k=1) -> out at 2 -> 1 period
    res_any = quiet(spell_survival, st, "job", horizon=4, strata=False, entry="any")
    ips_any = res_any.km[res_any.km["arm"] == 1]
    assert ips_any["events"].sum() == 2 and ips_any["at_risk"].max() == 2


def test_spell_result_says_it_is_not_randomized(study):
    res = quiet(spell_survival, study, "employed", horizon=12)
    assert res.kind == "spell"
    assert res.spec["randomized_comparison"] is False
    assert "not a randomized comparison" in res.notes[0]
    assert "time_to_event" in res.notes[0] and "itt_by_period" in res.notes[0]
    assert "not a randomized comparison" in res.summary()
    assert all(t.endswith("_given_entry") for t in res.tidy()["estimand"])


# ------------------------------------------------------------------ R parity end to end


def lungq_study():
    d = pd.read_csv(REF / "data" / "surv_lungq.csv")
    ids = [f"x{i:04d}" for i in d["id"]]
    assignment = pd.DataFrame({"person_id": ids, "arm": d["arm"], "stratum": d["stratum"],
                               "randomization_period": 0, "age": d["age"],
                               "inst": d["cluster"].astype(str)})
    recs = [(pid, k, float(k == t and e == 1)) for pid, t, e in zip(ids, d["time"], d["event"])
            for k in range(0, t + 1)]
    panel = pd.DataFrame(recs, columns=["person_id", "period", "died"])
    return Study.from_frames(assignment, panel, frequency="int"), d


def test_time_to_event_reproduces_r_on_lung_in_quarters():
    ref = json.loads((REF / "survival_reference.json").read_text())["lungq"]
    st, _ = lungq_study()
    res = quiet(time_to_event, st, "died", tau=8, strata=False, robust=False)
    tidy = res.tidy().set_index("term")
    assert tidy.loc["logrank", "statistic"] == pytest.approx(ref["logrank"]["chisq"], abs=1e-9)
    assert tidy.loc["cox", "estimate"] == pytest.approx(ref["cox_arm_efron"]["coef"], abs=1e-6)
    assert tidy.loc["cox", "std_error"] == pytest.approx(ref["cox_arm_efron"]["se"], abs=1e-6)
    assert tidy.loc["rmst_difference", "estimate"] == pytest.approx(ref["rmst"]["difference"], abs=1e-9)
    assert tidy.loc["rmst_difference", "std_error"] == pytest.approx(ref["rmst"]["difference_se"], abs=1e-9)
    assert tidy.loc["rmst_difference", "p_value"] == pytest.approx(ref["rmst"]["difference_p"], rel=1e-6)
    rm = res.rmst.set_index("arm")
    assert rm.loc[0, "rmst"] == pytest.approx(ref["rmst"]["rmst"][0], abs=1e-9)
    km1 = res.km[res.km["arm"] == 1]
    np.testing.assert_allclose(km1["survival"], ref["km_arm1"]["surv"], atol=1e-12)
    np.testing.assert_array_equal(km1["at_risk"], ref["km_arm1"]["n_risk"])
    med = res.medians.set_index("arm")
    assert med.loc[1, "median"] == ref["median"]["value"]["median"][1]
    assert tidy.loc["median_difference", "estimate"] == (
        ref["median"]["value"]["median"][1] - ref["median"]["value"]["median"][0])
    sd = tidy.loc["survival_difference"]
    st4 = ref["surv_at_tau"]["value"]
    res4 = quiet(time_to_event, st, "died", tau=4, strata=False)
    sd = res4.tidy().set_index("term").loc["survival_difference"]
    assert sd["estimate"] == pytest.approx(st4["surv"][1] - st4["surv"][0], abs=1e-12)
    assert sd["std_error"] == pytest.approx(np.hypot(*st4["std_err"]), abs=1e-12)
    # stratified, with a covariate, Breslow; and clustered by institution
    res_s = quiet(time_to_event, st, "died", strata=True, covariates=("age",), ties="breslow", robust=False)
    cox = res_s.cox.set_index("term")
    assert cox.loc["arm", "estimate"] == pytest.approx(ref["cox_strata_breslow"]["coef"][0], abs=1e-6)
    assert cox.loc["age", "std_error"] == pytest.approx(ref["cox_strata_breslow"]["se"][1], abs=1e-6)
    np.testing.assert_allclose(res_s.ph_test["chisq"], ref["cox_strata_breslow"]["zph_chisq"], atol=1e-6)
    assert res_s.tidy().set_index("term").loc["logrank", "statistic"] == pytest.approx(
        ref["logrank_strata"]["chisq"], abs=1e-9)
    res_c = quiet(time_to_event, st, "died", strata=False, covariates=("age",), cluster="inst")
    assert res_c.cox.set_index("term").loc["arm", "std_error"] == pytest.approx(
        ref["cox_robust_efron"]["se"][0], abs=1e-6)


def test_discrete_time_hazard_reproduces_r_on_lung_in_quarters():
    ref = json.loads((REF / "survival_reference.json").read_text())["lungq"]
    st, _ = lungq_study()
    for link in ("cloglog", "logit"):
        res = quiet(discrete_time_hazard, st, "died", strata=False, link=link)
        r = ref[f"discrete_{link}"]
        assert res.estimate == pytest.approx(r["coef"], abs=1e-6)
        assert res.std_error == pytest.approx(r["se"], abs=1e-6)
        assert res.nobs == r["n_rows"]
        assert res.estimand == ("log_hazard_ratio" if link == "cloglog" else "log_odds_ratio")
        # quarters without events are set aside and counted
        assert "no event" in res.ledger["reason"].iloc[-1]


# ------------------------------------------------------------------ invariants


def test_one_stratum_stratified_equals_unstratified():
    st = make_study(n=200, seed=5, n_strata=1)
    a = quiet(time_to_event, st, "employed", strata=True).tidy()
    b = quiet(time_to_event, st, "employed", strata=False).tidy()
    pd.testing.assert_frame_equal(a, b)


def test_estimator_equals_core_on_event_times(study):
    res = quiet(time_to_event, study, "employed", strata=True, ties="breslow", robust=False)
    et = event_times(study, "employed")
    et = et[et["usable"]]
    lr = logrank(et.time, et.event, et.arm, 2, et.stratum)
    fit = cox_fit(et.time, et.event, et.arm.to_numpy()[:, None], strata=et.stratum.to_numpy(), ties="breslow")
    tidy = res.tidy().set_index("term")
    assert tidy.loc["logrank", "statistic"] == lr.statistic
    assert tidy.loc["cox", "estimate"] == pytest.approx(fit.coef[0], abs=1e-12)
    assert tidy.loc["cox", "std_error"] == pytest.approx(np.sqrt(fit.naive_var[0, 0]), abs=1e-12)


@pytest.mark.parametrize("ties", ["efron", "breslow"])
@pytest.mark.parametrize("strata", [True, False])
def test_randomization_statistics_at_observed_assignment_equal_fitted(study, ties, strata):
    res = quiet(time_to_event, study, "employed", strata=strata, ties=ties, tau=12)
    arm = study.design.arm
    perms = study.design.permutations(5, seed=1)
    z = np.vstack([arm, perms])
    out = randomization_statistics(study, res, z)
    tidy = res.tidy().set_index("term")
    assert out.shape == (6, 3)
    assert out.loc[0, "logrank"] == pytest.approx(tidy.loc["logrank", "statistic"], rel=1e-10)
    assert out.loc[0, "cox"] == pytest.approx(tidy.loc["cox", "estimate"], abs=1e-9)
    assert out.loc[0, "rmst_difference"] == pytest.approx(tidy.loc["rmst_difference", "estimate"], abs=1e-12)
    # and for another assignment: the same as refitting with that arm
    et = event_times(study, "employed")
    use = et["usable"].to_numpy()
    z1 = perms[0][use]
    s = et["stratum"].to_numpy()[use] if strata else None
    lr = logrank(et["time"].to_numpy()[use], et["event"].to_numpy()[use], z1, 2, s)
    fit = cox_fit(et["time"].to_numpy()[use], et["event"].to_numpy()[use], z1[:, None].astype(float),
                  strata=s, ties=ties)
    assert out.loc[1, "logrank"] == pytest.approx(lr.statistic, rel=1e-10)
    assert out.loc[1, "cox"] == pytest.approx(fit.coef[0], abs=1e-9)


def test_cumulative_incidences_add_up_to_one_minus_km_of_any_exit(study):
    res = quiet(competing_risks, study, {"work": "employed", "other": "left_di_other"})
    any_exit = lambda p: (p["employed"] > 0) | (p["left_di_other"] > 0)  # noqa: E731
    et = event_times(study, any_exit)
    et = et[et["usable"]]
    kms = kaplan_meier(et.time, et.event, et.arm, 2)
    for arm in (0, 1):
        cif = res.cif[res.cif["arm"] == arm]
        km = kms[arm]
        for t in km.time[km.events > 0]:
            total = sum(
                cif[(cif["cause"] == c) & (cif["time"] <= t)]["estimate"].max() if
                ((cif["cause"] == c) & (cif["time"] <= t)).any() else 0.0
                for c in ("work", "other")
            )
            s = km.survival[km.time == t][0]
            assert total == pytest.approx(1 - s, abs=1e-12)
    tidy = res.tidy()
    assert list(tidy["term"]) == ["gray", "cif_difference", "gray", "cif_difference"]
    assert list(tidy["outcome"]) == ["work", "work", "other", "other"]


def test_competing_causes_tied_in_a_period_go_to_the_first_listed():
    rows = {"a": {0: 0, 1: 0, 2: 1}, "b": {0: 0, 1: 1}, "c": {0: 0, 1: 0, 2: 0, 3: 0}, "d": {0: 0, 1: 1}}
    arms = {"a": 1, "b": 0, "c": 0, "d": 1}
    st = tiny_study(rows, arms)
    # the same column under two names: every exit is tied between the causes
    res = quiet(competing_risks, st, {"first": "job", "second": "job"}, strata=False)
    assert set(res.cif["cause"]) == {"first"}


# ------------------------------------------------------------------ errors and warnings


def test_absent_event_column_is_a_data_contract_error(study):
    with pytest.raises(DataContractError, match="not in the panel") as exc:
        time_to_event(study, "no_such_column")
    assert "employed" in str(exc.value)  # lists the columns available


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"ties": "exact"}, "'efron', 'breslow'"),
        ({"level": 1.5}, "between 0 and 1"),
        ({"tau": -1}, "positive"),
        ({"start": 1.5}, "integer"),
        ({"strata": "yes"}, "True or False"),
        ({"covariates": ("nope",)}, "is not a column of persons"),
        ({"covariates": ("site",)}, "not a baseline covariate"),
        ({"cluster": "nope"}, "persons table"),
        ({"horizon": 0}, "before start"),
        ({"start": -2}, "k >= 0"),
    ],
)
def test_bad_options_raise_typed_errors(study, kwargs, match):
    with pytest.raises((EstimationError, DataContractError), match=match):
        time_to_event(study, "employed", **kwargs)


def test_bad_callable_and_bad_link(study):
    with pytest.raises(EstimationError, match="panel rows"):
        time_to_event(study, lambda p: p["employed"].iloc[:10])
    with pytest.raises(EstimationError, match="raised KeyError"):
        time_to_event(study, lambda p: p["nope"])
    with pytest.raises(EstimationError, match="'cloglog', 'logit'"):
        discrete_time_hazard(study, "employed", link="probit")
    with pytest.raises(EstimationError, match="'new', 'any'"):
        spell_survival(study, "employed", horizon=8, entry="old")
    with pytest.raises(EstimationError, match="mapping"):
        competing_risks(study, "employed")


@pytest.mark.filterwarnings("ignore::ips_impact.errors.SmallSampleWarning")
@pytest.mark.filterwarnings("ignore:the median is not reached")
def test_no_event_in_one_arm_still_reports_km():
    a, p = make_trial(n=120, seed=2)
    p = p.copy()
    ctl = set(a.loc[a["arm"] == 0, "person_id"])
    p.loc[p["person_id"].isin(ctl), "employed"] = 0
    st = Study.from_frames(a, p)
    with pytest.warns(EstimationWarning, match="no event in the control arm"):
        res = time_to_event(st, "employed")
    tidy = res.tidy().set_index("term")
    assert np.isnan(tidy.loc["cox", "estimate"])
    assert np.isfinite(tidy.loc["logrank", "statistic"])
    assert (res.km[res.km["arm"] == 0]["survival"] == 1).all()
    assert len(res.km[res.km["arm"] == 1]) > 0
    assert any("no event in the control arm" in w for w in res.warnings)


@pytest.mark.filterwarnings("ignore::ips_impact.errors.SmallSampleWarning")
def test_tau_beyond_follow_up_and_few_at_risk_warn(study):
    with pytest.warns(EstimationWarning, match="beyond the follow-up"):
        res = time_to_event(study, "employed", tau=40)
    assert any("beyond the follow-up" in w for w in res.warnings)
    with pytest.warns(SmallSampleWarning, match="still at risk"):
        time_to_event(study, "employed", tau=24, min_at_risk=50)


# ------------------------------------------------------------------ the result object


def test_result_is_frozen_and_keyless(study):
    res = quiet(time_to_event, study, "employed", cluster="site")
    assert isinstance(res, SurvivalResult)
    with pytest.raises(Exception):
        res.tau = 3  # type: ignore[misc]
    with pytest.raises(ValueError):
        res.km.iloc[0, 2] = 0.0
    text = json.dumps(res.to_dict())
    assert "p0" not in text  # no person key (ids are p00000...)
    assert "person_id" not in text
    assert list(res.km.columns[:7]) == ["arm", "time", "survival", "conf_low", "conf_high", "at_risk", "events"]
    assert list(res.rmst.columns) == ["arm", "tau", "rmst", "std_error"]
    assert set(res.tidy()["term"]) == {"logrank", "cox", "hazard_ratio", "rmst_difference",
                                       "survival_difference", "median_difference"}
    t = res.tidy().set_index("term")
    assert t.loc["hazard_ratio", "estimate"] == pytest.approx(np.exp(t.loc["cox", "estimate"]), rel=1e-12)
    assert t.loc["hazard_ratio", "conf_low"] == pytest.approx(np.exp(t.loc["cox", "conf_low"]), rel=1e-12)
    assert t.loc["hazard_ratio", "p_value"] == t.loc["cox", "p_value"]
    assert t.loc["logrank", "estimand"].startswith("logrank_observed_minus_expected")
    with pytest.raises(DisclosureError):
        SurvivalResult(outcome="x", kind="time_to_event", statistics=res.statistics, tau=1.0,
                       km=res.km.assign(person_id="p1"))


def test_plots_and_risk_table(study):
    import matplotlib.axes

    res = quiet(time_to_event, study, "employed")
    ax = res.plot(min_cell=10)
    assert isinstance(ax, matplotlib.axes.Axes)  # the curves' Axes; its figure holds the risk table
    assert len(ax.figure.axes) == 2  # curve + risk table
    rt = res.risk_table([0, 4, 8], min_cell=10)
    assert list(rt.columns) == ["time", "IPS", "control"]
    n1 = int((study.design.arm == 1).sum())
    assert rt.loc[0, "IPS"] == n1
    assert rt.loc[0, "IPS"] >= rt.loc[1, "IPS"] >= rt.loc[2, "IPS"]
    cr = quiet(competing_risks, study, {"work": "employed", "other": "left_di_other"})
    assert isinstance(cr.plot(), matplotlib.axes.Axes)
    import matplotlib.pyplot as plt

    plt.close("all")
    assert res.hazard_ratio == pytest.approx(np.exp(res.tidy().set_index("term").loc["cox", "estimate"]))


def test_competing_risks_gray_rows_equal_core_stratified(study):
    from ips_impact.estimators._survival.competing import gray_test

    res = quiet(competing_risks, study, {"work": "employed", "other": "left_di_other"}, strata=True)
    # rebuild the competing-risk data from the definition: first k >= 1 with any cause
    work = event_times(study, "employed")
    anyx = event_times(study, lambda p: (p["employed"] > 0) | (p["left_di_other"] > 0))
    use = anyx["usable"].to_numpy()
    status = np.where(anyx["event"] == 1,
                      np.where((work["event"] == 1) & (work["time"] == anyx["time"]), 1, 2), 0)[use]
    g = gray_test(anyx["time"].to_numpy()[use], status, anyx["arm"].to_numpy()[use], 2, 1,
                  strata=anyx["stratum"].to_numpy()[use])
    row = res.tidy().query("term == 'gray' and outcome == 'work'").iloc[0]
    assert row["statistic"] == pytest.approx(g.statistic, rel=1e-12)
    assert row["p_value"] == pytest.approx(g.p_value, rel=1e-12)
    assert res.gray.set_index("cause").loc["work", "statistic"] == row["statistic"]


def test_discrete_time_hazard_with_strata_and_covariates(study):
    res = quiet(discrete_time_hazard, study, "employed", covariates=("age",), strata=True, horizon=12)
    terms = list(res.coefficients.index)
    assert terms[0] == "arm" and "age" in terms
    assert any(t.startswith("stratum=") for t in terms)
    assert any(t.startswith("k=") for t in terms)
    assert res.diagnostics["n_clusters"] == res.n_treated + res.n_control
    assert res.spec["link"] == "cloglog"
    # person-period rows: one per person and observed period at risk, up to horizon 12
    et = event_times(study, "employed", horizon=12)
    assert res.nobs <= int(et.loc[et["usable"], "time"].sum())


def test_constant_covariate_is_refused():
    a, p = make_trial(n=100, seed=4)
    a = a.assign(const=1.0)
    st = Study.from_frames(a, p)
    with pytest.raises(EstimationError, match="constant"):
        quiet(time_to_event, st, "employed", covariates=("const",))


def test_summary_flags_non_proportional_hazards_for_the_arm():
    import ips_impact as ii

    study = ii.synthetic.generate(n_persons=1200, seed=2018).study()
    res = quiet(ii.time_to_event, study, "employed", tau=20)
    p_arm = float(res.ph_test.set_index("term").loc["arm", "p_value"])
    flagged = "proportional hazards are rejected for the arm" in res.summary()
    assert flagged == (p_arm < 0.05)
    assert flagged  # on this trial the IPS effect on job finding fades: PH rejected (p = 0.021)
