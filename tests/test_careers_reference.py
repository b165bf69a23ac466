"""Careers estimators against R survival 3.5 (tests/reference/r/careers.R, its JSON).

The data (tests/reference/data/careers_panel.csv, written by careers_data.py) is a
synthetic trial with censoring and gaps added; R builds the states, spells and
counting-process rows itself from the documented rule. Tolerance 1e-6 (absolute, on
probabilities, mean counts, coefficients and standard errors).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ips_impact.errors import EstimationWarning
from ips_impact.estimators.careers import careers, recurrent_spells, state_occupation, transitions
from ips_impact.study import Study

REF = Path(__file__).parent / "reference"
TOL = 1e-6


@pytest.fixture(scope="module")
def ref():
    return json.loads((REF / "careers_reference.json").read_text())


@pytest.fixture(scope="module")
def study():
    pan = pd.read_csv(REF / "data" / "careers_panel.csv")
    key = pan["id"].map(lambda i: f"p{i:04d}")
    a = (
        pan.drop_duplicates("id")[["id", "arm", "stratum", "age"]]
        .assign(person_id=lambda d: d["id"].map(lambda i: f"p{i:04d}"), randomization_period=0)
        .drop(columns="id")
    )
    panel = (
        pan[["k", "employed", "on_di", "sep_code", "unemployment_benefit"]]
        .assign(person_id=key)
        .rename(columns={"k": "period"})
    )
    return Study.from_frames(a, panel, frequency="int")


def _quiet(f, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EstimationWarning)
        return f(*args, **kwargs)


def test_spells_match_r(study, ref):
    sp = _quiet(careers, study)
    r = ref["spells"]
    assert len(sp) == r["n"]["value"]
    assert int(sp["event"].sum()) == r["n_transitions"]["value"]
    assert int(sp["quarters"].sum()) == r["quarters"]["value"]
    counts = (
        sp["state"].value_counts().reindex(["work", "work_on_di", "di_only", "unemployed", "other"])
    )
    assert counts.tolist() == r["state_counts"]["value"]


def test_gaps_are_censored_with_a_warning(study):
    with pytest.warns(EstimationWarning, match="gap in the panel"):
        sp = careers(study)
    assert set(sp["reason"]) == {"transition", "end_of_follow_up", "gap"}


@pytest.mark.parametrize("initial_variance,key", [(False, "std_err"), (True, "std_err_full")])
def test_aalen_johansen_matches_survfit(study, ref, initial_variance, key):
    so = _quiet(state_occupation, study, tau=20, initial_variance=initial_variance)
    for arm in (0, 1):
        o = so.occupation[so.occupation["arm"] == arm]
        p = o.pivot(index="k", columns="state", values="probability")[list(so.states)].to_numpy()
        se = o.pivot(index="k", columns="state", values="std_error")[list(so.states)].to_numpy()
        r = ref["aalen_johansen"][f"arm{arm}"]
        np.testing.assert_allclose(p, np.array(r["pstate"]["value"]), atol=TOL, rtol=0)
        np.testing.assert_allclose(se, np.array(r[key]["value"]), atol=TOL, rtol=0)
        risk = so.at_risk[so.at_risk["arm"] == arm]["at_risk"].to_numpy()
        assert risk.tolist() == r["n_risk"]["value"]


def test_mcf_matches_survfit_and_lawless_nadeau(study, ref):
    rc = _quiet(recurrent_spells, study, tau=20)
    for arm in (0, 1):
        m = rc.mcf[rc.mcf["arm"] == arm].set_index("k").loc[1:20]
        r = ref["recurrent"][f"arm{arm}"]
        np.testing.assert_allclose(m["mcf"], r["mcf"]["value"], atol=TOL, rtol=0)
        np.testing.assert_allclose(m["mcf"], r["mcf_hand"]["value"], atol=TOL, rtol=0)
        np.testing.assert_allclose(m["std_error"], r["std_chaz"]["value"], atol=TOL, rtol=0)
        np.testing.assert_allclose(
            m["std_error"], r["se_lawless_nadeau"]["value"], atol=TOL, rtol=0
        )
        assert m["at_risk"].tolist() == r["n_risk"]["value"]
    assert rc.spec["n_rows"] == ref["recurrent"]["n_rows"]["value"]
    assert rc.spec["n_events"] == ref["recurrent"]["n_events"]["value"]
    t = rc.tidy().set_index("term")
    d = ref["recurrent"]["arm1"]["mcf"]["value"][-1] - ref["recurrent"]["arm0"]["mcf"]["value"][-1]
    assert t.loc["mcf_difference", "estimate"] == pytest.approx(d, abs=TOL)


@pytest.mark.parametrize(
    "case,kwargs",
    [
        ("efron", {}),
        ("breslow", {"ties": "breslow"}),
        ("age_strata", {"covariates": ("age",), "strata": True}),
    ],
)
def test_andersen_gill_matches_coxph(study, ref, case, kwargs):
    rc = _quiet(recurrent_spells, study, tau=20, **kwargs)
    r = ref["andersen_gill"][case]["value"]
    np.testing.assert_allclose(rc.cox["estimate"], np.atleast_1d(r["coef"]), atol=TOL, rtol=0)
    np.testing.assert_allclose(rc.cox["std_error"], np.atleast_1d(r["robust_se"]), atol=TOL, rtol=0)
    t = rc.tidy().set_index("term")
    assert t.loc["log_rate_ratio", "estimate"] == pytest.approx(
        np.atleast_1d(r["coef"])[0], abs=TOL
    )
    assert t.loc["rate_ratio", "estimate"] == pytest.approx(
        np.exp(np.atleast_1d(r["coef"])[0]), rel=TOL
    )
    assert t.loc["rate_ratio", "p_value"] == t.loc["log_rate_ratio", "p_value"]


@pytest.mark.parametrize(
    "key,from_state,to_state",
    [
        ("work_on_di__di_only", "work_on_di", "di_only"),
        ("di_only__work", "di_only", ("work", "work_on_di")),
    ],
)
def test_transition_cox_and_cumulative_hazard_match_r(study, ref, key, from_state, to_state):
    tr = _quiet(transitions, study, from_state=from_state, to_state=to_state)
    r = ref["transitions"][key]["value"]
    assert tr.spec["n_spells"] == r["n_spells"] and tr.spec["n_events"] == r["n_events"]
    assert tr.cox["estimate"].iloc[0] == pytest.approx(r["coef"], abs=TOL)
    assert tr.cox["std_error"].iloc[0] == pytest.approx(r["robust_se"], abs=TOL)
    for arm in (0, 1):
        c = tr.cumhaz[tr.cumhaz["arm"] == arm].set_index("k").loc[1:20]
        np.testing.assert_allclose(c["cumhaz"], r[f"cumhaz_arm{arm}"], atol=TOL, rtol=0)
        assert c["at_risk"].tolist() == r[f"n_risk_arm{arm}"]
