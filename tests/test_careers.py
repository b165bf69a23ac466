"""careers(), state_occupation(), recurrent_spells(), transitions(): behaviour, invariants,
errors, randomization statistics and plots (R parity: test_careers_reference.py;
coverage: test_careers_simulation.py)."""

from __future__ import annotations

import json
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

import ips_impact as ii  # noqa: E402
from ips_impact.errors import DataContractError, EstimationError, EstimationWarning  # noqa: E402
from ips_impact.estimators.careers import (  # noqa: E402
    DEFAULT_STATES,
    careers,
    randomization_statistics,
    recurrent_spells,
    state_occupation,
    transitions,
)
from ips_impact.study import Study  # noqa: E402


@pytest.fixture(scope="module")
def trial():
    return ii.synthetic.generate(n_persons=400, seed=4)


@pytest.fixture(scope="module")
def study(trial):
    return trial.study()


def test_spells_tile_each_career(study):
    sp = careers(study)
    assert "person_id" not in sp.columns and list(sp["state"].cat.categories) == list(
        DEFAULT_STATES
    )
    # spells of a person are consecutive: each starts where the previous stopped
    g = sp.groupby("person")
    prev_stop = g["stop"].shift()
    assert (sp["start"][prev_stop.notna()] == prev_stop.dropna()).all()
    assert (g["start"].first() == 0).all()
    # quarters add up to the follow-up (k = 0..20 for everyone here)
    assert (g["quarters"].sum() == 21).all()
    assert (sp["event"] == sp["to_state"].notna()).all()
    assert (
        sp.loc[sp["event"], "state"].astype(str) != sp.loc[sp["event"], "to_state"].astype(str)
    ).all()


def test_default_rule_on_the_panel(study):
    sp = careers(study)
    p = study.panel[study.panel["k"] >= 0]
    # expand spells to person-quarters and compare with the rule applied row by row
    rows = sp.loc[sp.index.repeat(sp["quarters"])].copy()
    rows["k"] = rows["start"] + rows.groupby(level=0).cumcount()
    rule = np.select(
        [
            (p["employed"] == 1) & (p["on_di"] == 0),
            (p["employed"] == 1) & (p["on_di"] == 1),
            (p["employed"] == 0) & (p["on_di"] == 1),
            p["sep_code"].astype(str).str[0] == "2",
        ],
        ["work", "work_on_di", "di_only", "unemployed"],
        default="other",
    )
    pidx = np.searchsorted(study.persons["person_id"].to_numpy(), p["person_id"].to_numpy())
    want = pd.Series(rule, index=pd.MultiIndex.from_arrays([pidx, p["k"].to_numpy()]))
    got = pd.Series(
        rows["state"].astype(str).to_numpy(),
        index=pd.MultiIndex.from_arrays([rows["person"].to_numpy(), rows["k"].to_numpy()]),
    )
    assert (want.sort_index() == got.sort_index()).all()


def test_without_censoring_aj_is_the_share_in_each_state(study):
    so = state_occupation(study, tau=20)
    sp = careers(study)
    rows = sp.loc[sp.index.repeat(sp["quarters"])].copy()
    rows["k"] = rows["start"] + rows.groupby(level=0).cumcount()
    share = rows.groupby(["arm", "k"])["state"].value_counts(normalize=True)
    occ = so.occupation.set_index(["arm", "k", "state"])["probability"]
    for key, v in share.items():
        assert occ.loc[(int(key[0]), int(key[1]), key[2])] == pytest.approx(v, abs=1e-12)
    # probabilities sum to one at every k
    assert np.allclose(so.occupation.groupby(["arm", "k"])["probability"].sum(), 1.0)


def test_row_order_does_not_change_results(trial, study):
    rng = np.random.Generator(np.random.PCG64(3))
    panel = trial.panel.iloc[rng.permutation(len(trial.panel))]
    assignment = trial.assignment.iloc[rng.permutation(len(trial.assignment))]
    st2 = Study.from_frames(
        assignment, panel, households=trial.households, benefits=trial.benefits, takeup=trial.takeup
    )
    for f, kw in (
        (state_occupation, {"tau": 12}),
        (recurrent_spells, {"tau": 12}),
        (transitions, {"from_state": "work_on_di", "to_state": "di_only"}),
    ):
        a, b = f(study, **kw), f(st2, **kw)
        pd.testing.assert_frame_equal(a.tidy(), b.tidy())
    pd.testing.assert_frame_equal(careers(study), careers(st2))


def test_no_person_key_in_results(study):
    keys = set(study.persons["person_id"].head(50))
    for r in (
        state_occupation(study, tau=8),
        recurrent_spells(study, tau=8),
        transitions(study, from_state="di_only", to_state=("work", "work_on_di")),
    ):
        text = r.to_json() + r.summary()
        assert not any(k in text for k in keys)
        json.loads(r.to_json())


def test_horizons_and_by(study):
    so = state_occupation(study, tau=12, horizons=(4, 20))
    t = so.tidy()
    assert sorted(t["horizon"].unique().tolist()) == [4, 12, 20]
    assert len(t) == 3 * len(DEFAULT_STATES)
    sb = state_occupation(study, tau=12, by="region")
    assert "group" in sb.occupation.columns and set(sb.occupation["group"]) == set(
        study.persons["region"]
    )
    assert all(term.startswith("arm:region=") for term in sb.tidy()["term"])


def test_custom_states_and_entry_events(study):
    so = state_occupation(
        study, tau=6, states={"at_work": "employed", "not": lambda p: p["employed"] == 0}
    )
    emp = study.outcome_matrix("employed", [6])[:, 0]
    arm = study.design.arm
    t = so.tidy().set_index("outcome")
    assert t.loc["at_work", "estimate"] == pytest.approx(
        emp[arm == 1].mean() - emp[arm == 0].mean(), abs=1e-12
    )
    rc = recurrent_spells(study, tau=20, event="entry:di_only")
    sp = careers(study)
    entries = sp[(sp["state"] == "di_only") & (sp["start"] >= 1) & (sp["start"] <= 20)]
    n0 = (study.design.arm == 0).sum()
    mcf0 = rc.mcf[(rc.mcf["arm"] == 0) & (rc.mcf["k"] == 20)]["mcf"].iloc[0]
    assert mcf0 == pytest.approx((entries["arm"] == 0).sum() / n0, abs=1e-12)


def test_job_starts_count_zero_to_one_moves(study):
    rc = recurrent_spells(study, tau=20)
    e = study.outcome_matrix("employed", np.arange(0, 21))
    starts = ((e[:, 1:] == 1) & (e[:, :-1] == 0)).sum(axis=1)
    arm = study.design.arm
    row = rc.tidy().set_index("term").loc["mcf_difference"]
    assert row["estimate"] == pytest.approx(
        starts[arm == 1].mean() - starts[arm == 0].mean(), abs=1e-12
    )
    rr = rc.tidy().set_index("term")
    assert rr.loc["rate_ratio", "estimate"] == pytest.approx(
        np.exp(rr.loc["log_rate_ratio", "estimate"])
    )
    assert rr.loc["rate_ratio", "conf_low"] == pytest.approx(
        np.exp(rr.loc["log_rate_ratio", "conf_low"])
    )


def test_errors(trial, study):
    with pytest.raises(EstimationError, match="tau"):
        state_occupation(study, tau=0)
    with pytest.raises(EstimationError, match="tau"):
        recurrent_spells(study, tau=99)
    with pytest.raises(EstimationError, match="none of the states"):
        careers(study, states={"work": "employed"})
    with pytest.raises(EstimationError, match="unknown from_state"):
        transitions(study, from_state="retired", to_state="work")
    with pytest.raises(EstimationError, match="differ"):
        transitions(study, from_state="work", to_state="work")
    with pytest.raises(EstimationError, match="event must be"):
        recurrent_spells(study, tau=4, event="job_end")
    st = Study.from_frames(trial.assignment, trial.panel.drop(columns=["on_di", "work_on_di"]))
    with pytest.raises(DataContractError, match="on_di"):
        careers(st)


def test_missing_state_at_k0_is_set_aside_in_the_ledger(trial):
    panel = trial.panel.copy()
    first = trial.assignment["person_id"].iloc[:5]
    st0 = trial.study()
    k0 = st0.persons.set_index("person_id")["randomization_period"]
    drop = panel["person_id"].isin(first) & (panel["period"] == panel["person_id"].map(k0))
    st = Study.from_frames(trial.assignment, panel[~drop])
    with pytest.warns(EstimationWarning, match="no career state at k = 0"):
        so = state_occupation(st, tau=8)
    assert so.ledger["n_rows"].sum() == 5
    assert int(so.tidy()["nobs"].iloc[0]) == len(trial.assignment) - 5


def test_randomization_statistics_equal_a_refit(trial, study):
    so = state_occupation(study, tau=12)
    rc = recurrent_spells(study, tau=12)
    tr = transitions(study, from_state="work_on_di", to_state="di_only")
    z = study.design.permutations(3, 11)
    a = trial.assignment.set_index("person_id")
    for res, f, kw in (
        (so, state_occupation, {"tau": 12}),
        (rc, recurrent_spells, {"tau": 12}),
        (tr, transitions, {"from_state": "work_on_di", "to_state": "di_only"}),
    ):
        obs = randomization_statistics(study, res, study.design.arm[None, :]).to_numpy()[0]
        est = res.tidy()["estimate"].to_numpy()
        if res is not so:
            est[-1] = np.log(est[-1])  # the rate / hazard ratio row is tested through its log
        np.testing.assert_allclose(obs, est, rtol=0, atol=1e-9)
        draws = randomization_statistics(study, res, z).to_numpy()
        # draw 0 = the estimator refitted on a study whose arms are that assignment
        arm = pd.Series(z[0], index=study.persons["person_id"])
        st2 = Study.from_frames(
            a.assign(arm=arm.reindex(a.index).to_numpy()).reset_index(), trial.panel
        )
        ref = f(st2, **kw).tidy()["estimate"].to_numpy()
        if res is not so:
            ref[-1] = np.log(ref[-1])
        np.testing.assert_allclose(draws[0], ref, rtol=0, atol=1e-9)


def test_randomization_inference_through_the_protocol(study):
    res = [
        state_occupation(study, tau=12),
        recurrent_spells(study, tau=12),
        transitions(study, from_state="work_on_di", to_state="di_only"),
    ]
    out = ii.randomization_inference(study, res, n_permutations=200, seed=1)
    for r in out:
        p = r.tidy()["ri_p_value"].to_numpy()
        assert np.all((p > 0) & (p <= 1))


def test_plots_return_axes_with_labels(study):
    so = state_occupation(study, tau=12)
    ax = so.plot()
    assert ax.get_ylabel() and ax.get_xlabel()
    rc = recurrent_spells(study, tau=12)
    ax = rc.plot(min_cell=10)
    assert "job starts" in ax.get_ylabel()
    tab = rc.risk_table([0, 4, 8])
    m = rc.mcf.set_index(["arm", "k"])["at_risk"]
    assert tab["IPS"].tolist() == [m[(1, 1)], m[(1, 4)], m[(1, 8)]]
    tr = transitions(study, from_state="work_on_di", to_state="di_only")
    assert tr.plot().get_ylabel()
    plt.close("all")


def test_results_are_frozen(study):
    so = state_occupation(study, tau=12)
    with pytest.raises(Exception):
        so.tau = 3
    with pytest.raises(ValueError):
        so.occupation.iloc[0, 3] = 0.5


def test_warning_free_default_path(study):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        state_occupation(study, tau=20)
        recurrent_spells(study, tau=20)


def test_cluster_by_singleton_households_equals_person_clusters(study):
    hh = study.persons["household_id"]
    assert hh.is_unique  # one participant per household in the synthetic trial
    a = recurrent_spells(study, tau=20)
    b = recurrent_spells(study, tau=20, cluster="household_id")
    pd.testing.assert_frame_equal(a.cox, b.cox)
    c = transitions(study, from_state="di_only", to_state="work_on_di", cluster="household_id")
    d = transitions(study, from_state="di_only", to_state="work_on_di")
    pd.testing.assert_frame_equal(c.cox, d.cox)


def test_randomization_statistics_need_custom_states_again(study):
    states = {"at_work": "employed", "not": lambda p: p["employed"] == 0}
    so = state_occupation(study, tau=6, states=states)
    with pytest.raises(EstimationError, match="custom states"):
        randomization_statistics(study, so, study.design.arm[None, :])
    obs = randomization_statistics(study, so, study.design.arm[None, :], states=states)
    np.testing.assert_allclose(obs.to_numpy()[0], so.tidy()["estimate"], atol=1e-12)


def test_randomization_statistic_of_stratified_rate_model_equals_a_refit(trial, study):
    rc = recurrent_spells(study, tau=12, strata=True, ties="breslow")
    z = study.design.permutations(2, 5)
    draws = randomization_statistics(study, rc, z).to_numpy()
    a = trial.assignment.set_index("person_id")
    arm = pd.Series(z[1], index=study.persons["person_id"])
    st2 = Study.from_frames(
        a.assign(arm=arm.reindex(a.index).to_numpy()).reset_index(), trial.panel
    )
    ref = recurrent_spells(st2, tau=12, strata=True, ties="breslow").tidy().set_index("term")
    assert draws[1, 1] == pytest.approx(ref.loc["log_rate_ratio", "estimate"], abs=1e-9)
    assert draws[1, 0] == pytest.approx(ref.loc["mcf_difference", "estimate"], abs=1e-12)


def test_categorical_covariate_in_the_rate_model_follows_the_itt_rule(study):
    rc = recurrent_spells(study, tau=12, covariates=("age", "education"))
    terms = rc.cox["term"].tolist()
    assert terms[0] == "arm" and "age" in terms
    assert sum(t.startswith("education") for t in terms) == study.persons["education"].nunique() - 1


def test_sep_code_as_text_and_without_sep_code(trial, study):
    p = trial.panel.copy()
    p["sep_code"] = p["sep_code"].astype(str)
    pd.testing.assert_frame_equal(careers(Study.from_frames(trial.assignment, p)), careers(study))
    # without sep_code, unemployment_benefit > 0 marks the job-seekers (documented fallback)
    st = Study.from_frames(trial.assignment, trial.panel.drop(columns=["sep_code"]))
    sp = careers(st)
    assert set(sp["state"].astype(str)) == set(DEFAULT_STATES)
    assert "unemployment_benefit > 0" in state_occupation(st, tau=4).spec["state_rule"]
