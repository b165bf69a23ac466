"""run_plan: every estimand filled or with a reason; seeds per estimand; families adjusted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import ips_impact as ii
from ips_impact.errors import PlanError
from ips_impact.plan.run import derive_seed

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "synthetic_data"

SMALL = """
schema = 1
name = "small"
seed = 7
n_permutations = 199

[defaults]
covariates = ["age", "female"]

[families.primary]
method = "holm"

[families.rw]
method = "romano-wolf"

[[estimands]]
estimator = "itt"
outcomes = ["work_on_di", "di_benefit"]
horizon = 6
tag = "primary"
family = "primary"

[[estimands]]
estimator = "itt"
outcome = "employed"
horizons = [6, 10]
tag = "secondary"
family = "rw"

[[estimands]]
estimator = "time_to_event"
outcome = "employed"
tau = 12
covariates = []
tag = "secondary"

[[estimands]]
estimator = "spell_survival"
outcome = "employed"
horizon = 12
covariates = []
tag = "exploratory"
"""


@pytest.fixture(scope="module")
def study():
    return ii.load_study(SAMPLE)


@pytest.fixture(scope="module")
def small_plan():
    return ii.AnalysisPlan.from_string(SMALL, source="small.toml")


@pytest.fixture(scope="module")
def analysis(study, small_plan):
    return ii.run_plan(study, small_plan, progress=False)


def test_every_estimand_is_filled_with_ri_and_family_p(analysis, small_plan):
    assert [e.id for e in analysis.entries] == list(small_plan.ids)
    assert all(e.filled for e in analysis.entries)
    tidy = analysis.tidy()
    assert set(tidy["estimand_id"]) == set(small_plan.ids)
    prim = tidy[tidy["family"] == "primary"]
    assert len(prim) == 2 and prim["ri_p_value"].notna().all() and prim["adj_p_value"].notna().all()
    # Holm on the two randomization p-values, by hand
    p = prim["ri_p_value"].to_numpy()
    order = np.argsort(p)
    holm = np.empty(2)
    holm[order[0]] = min(1, 2 * p[order[0]])
    holm[order[1]] = max(holm[order[0]], min(1, p[order[1]]))
    np.testing.assert_allclose(prim["adj_p_value"].to_numpy(), holm, rtol=0, atol=1e-15)
    # Monte Carlo p-values on B = 199 draws are multiples of 1/200
    np.testing.assert_allclose((prim["ri_p_value"] * 200) % 1, 0, atol=1e-9)
    assert analysis.results(tag="primary").keys() == {"itt.work_on_di.k6", "itt.di_benefit.k6"}
    assert analysis.results(family="rw").keys() == {"itt.employed.k6", "itt.employed.k10"}


def test_estimand_ri_uses_its_derived_seed(analysis, study):
    e = analysis.entry("itt.work_on_di.k6")
    assert e.seed == derive_seed(7, "itt.work_on_di.k6")
    fitted = ii.itt(study, "work_on_di", horizon=6, covariates=("age", "female"))
    again = ii.randomization_inference(study, fitted, n_permutations=199, seed=e.seed)
    assert again.tidy()["ri_p_value"].iloc[0] == e.result.tidy()["ri_p_value"].iloc[0]


def test_romano_wolf_family_uses_the_family_seed(analysis, study):
    fitted = [ii.itt(study, "employed", horizon=h, covariates=("age", "female")) for h in (6, 10)]
    adj = ii.adjust_pvalues(fitted, method="romano-wolf", study=study, n_permutations=199,
                            seed=derive_seed(7, "family:rw"))
    got = [analysis.entry(f"itt.employed.k{h}").result.tidy()["adj_p_value"].iloc[0] for h in (6, 10)]
    assert got == [r.tidy()["adj_p_value"].iloc[0] for r in adj]


def test_no_randomization_is_a_note_not_a_silent_gap(analysis):
    e = analysis.entry("spell_survival.employed.h12")
    assert e.filled and any("no randomization p-value" in n for n in e.notes)
    assert "spell_survival.employed.h12" in set(analysis.notes()["estimand_id"])


def test_adding_or_reordering_estimands_leaves_ri_p_values_unchanged(study, small_plan, analysis):
    more = small_plan.with_estimands([{"estimator": "itt", "outcome": "earnings", "horizon": 6,
                                       "tag": "secondary"}])
    plain = more.to_plain()
    plain["estimands"] = list(reversed(plain["estimands"]))
    reordered = ii.AnalysisPlan.from_dict(plain)
    other = ii.run_plan(study, reordered, progress=False)
    a = analysis.tidy().set_index(["estimand_id", "term"])["ri_p_value"]
    b = other.tidy().set_index(["estimand_id", "term"])["ri_p_value"]
    pd.testing.assert_series_equal(a, b.loc[a.index])
    assert "itt.earnings.k6" in set(other.tidy()["estimand_id"])


def test_deviation_for_a_study_missing_an_outcome(small_plan):
    frames = {name: pd.read_parquet(SAMPLE / f"{name}.parquet")
              for name in ("assignment", "panel", "households", "takeup")}
    frames["panel"] = frames["panel"].drop(columns=["earnings"])
    study = ii.Study.from_frames(frames["assignment"], frames["panel"], households=frames["households"],
                                 takeup=frames["takeup"])
    plan = small_plan.with_estimands([{"estimator": "itt", "outcome": "earnings", "horizon": 6,
                                       "tag": "secondary"}])
    a = ii.run_plan(study, plan, n_permutations=0, progress=False)
    dev = a.deviations()
    assert list(dev["estimand_id"]) == ["itt.earnings.k6"]
    assert "absent" in dev["reason"].iloc[0] and "earnings" in dev["reason"].iloc[0]
    assert "itt.earnings.k6" not in set(a.tidy()["estimand_id"])
    assert "Deviations from the plan" in a.summary() and "itt.earnings.k6" in a.summary()
    # n_permutations = 0: no randomization columns filled, the resampling family says why
    assert a.tidy()["ri_p_value"].isna().all()
    assert any("needs randomization draws" in n for n in a.entry("itt.employed.k6").notes)


def test_estimator_refusal_becomes_the_reason(study):
    plan = ii.AnalysisPlan.from_string("""
seed = 1
n_permutations = 0
[[estimands]]
estimator = "heterogeneity"
outcome = "work_on_di"
by = "no_such_column"
horizon = 6
tag = "exploratory"
""")
    a = ii.run_plan(study, plan, progress=False)
    (e,) = a.entries
    assert not e.filled and e.reason.startswith("heterogeneity refused (")
    assert "no_such_column" in e.reason


def test_too_few_per_arm_is_a_reason(study):
    plan = ii.AnalysisPlan.from_string("""
seed = 1
n_permutations = 0
min_per_arm = 100000
[[estimands]]
estimator = "itt"
outcome = "work_on_di"
horizon = 6
tag = "primary"
""")
    (e,) = ii.run_plan(study, plan, progress=False).entries
    assert not e.filled and "too few persons per arm" in e.reason


def test_exploratory_extras_are_tagged_and_kept_out_of_primary(study, small_plan):
    a = ii.run_plan(study, small_plan, n_permutations=0, progress=False,
                    exploratory=[{"estimator": "itt", "outcome": "fte", "horizon": 6, "tag": "primary"}])
    assert a.entry("itt.fte.k6").tag == "exploratory"
    with pytest.raises(PlanError, match="primary family"):
        ii.run_plan(study, small_plan, n_permutations=0, progress=False,
                    exploratory=[{"estimator": "itt", "outcome": "fte", "horizon": 6, "family": "primary"}])


def test_provenance_hashes_inputs_plan_and_versions(analysis, small_plan):
    prov = analysis.provenance
    assert prov["plan"] == small_plan.sha256()
    assert prov["input_kind"] in ("files", "frames") and prov["inputs"]
    assert prov["seed"] == 7 and prov["n_permutations"] == 199
    assert set(prov["versions"]) >= {"ips_impact", "numpy", "pandas", "python"}
    assert "time_utc" in prov["run"] and len(prov["digest"]) == 64
    # no clock, host or path in the hashed part
    hashed = {k: v for k, v in prov.items() if k not in ("run", "digest")}
    text = repr(hashed)
    assert prov["run"]["host"] not in text and str(SAMPLE) not in text


def test_study_info_holds_no_microdata(analysis):
    info = analysis.study_info
    assert info["n_persons"] == 1200 and info["n_treated"] == 600 and info["frequency"] == "Q"
    assert info["n_strata"] == 12 and info["by_stratum"]["n"].sum() == 1200
    for value in info.values():
        if isinstance(value, pd.DataFrame):
            assert not {"person_id", "household_id", "index_person_id"} & set(value.columns)


def test_progress_bar_when_asked(study, capsys):
    plan = ii.AnalysisPlan.from_string("""
seed = 1
n_permutations = 0
[[estimands]]
estimator = "itt"
outcome = "work_on_di"
horizon = 6
tag = "primary"
""")
    ii.run_plan(study, plan, progress=True)
    assert "run_plan" in capsys.readouterr().err
    ii.run_plan(study, plan)  # "auto": stderr is not a terminal under pytest
    assert capsys.readouterr().err == ""


def test_workers_give_the_same_analysis(study, small_plan, analysis):
    two = ii.run_plan(study, small_plan, progress=False, n_jobs=2)
    pd.testing.assert_frame_equal(two.tidy(), analysis.tidy())
    assert [e.notes for e in two.entries] == [e.notes for e in analysis.entries]
    with pytest.raises(PlanError, match="n_jobs"):
        ii.run_plan(study, small_plan, n_jobs=0)


def test_frame_hash_ignores_row_and_column_order_not_values():
    from ips_impact.plan.provenance import frame_sha256

    f = pd.DataFrame({"person_id": ["b", "a", "c"], "k": [1, 2, 0], "y": [0.5, np.nan, 2.0],
                      "period": pd.PeriodIndex(["2019Q1", "2019Q2", "2019Q3"], freq="Q")})
    shuffled = f.iloc[[2, 0, 1]][["y", "period", "k", "person_id"]]
    assert frame_sha256(f) == frame_sha256(shuffled)
    changed = f.assign(y=[0.5, np.nan, 2.0000001])
    assert frame_sha256(changed) != frame_sha256(f)
    assert frame_sha256(f.assign(y=f["y"].astype("float32"))) != frame_sha256(f)  # the dtype counts


def test_run_plan_argument_errors(study, small_plan):
    with pytest.raises(PlanError, match="AnalysisPlan or a TOML path"):
        ii.run_plan(study, {"seed": 1})
    with pytest.raises(PlanError, match="n_permutations"):
        ii.run_plan(study, small_plan, n_permutations=-1)


def test_exploratory_extras_enter_the_provenance(study, small_plan, analysis):
    a = ii.run_plan(study, small_plan, n_permutations=0, progress=False,
                    exploratory=[{"estimator": "itt", "outcome": "fte", "horizon": 6}])
    assert [e["id"] for e in a.provenance["exploratory"]] == ["itt.fte.k6"]
    assert a.provenance["plan"] == analysis.provenance["plan"]  # the registered plan is unchanged
    assert analysis.provenance["exploratory"] == ()


def test_units_in_the_overview(analysis):
    units = analysis.overview().set_index("estimand_id")["unit"]
    assert units["itt.work_on_di.k6"] == "share (x100 = pp)"
    assert units["itt.di_benefit.k6"] == "EUR per month"
    assert units["time_to_event.employed.tau12"].startswith("log-rank")
    assert "share (x100 = pp)" in analysis.summary()


def test_compare_table_of_the_primary_estimands(analysis):
    table = analysis.compare(tag="primary")
    md = table.to_markdown()
    assert "itt.work_on_di.k6" in md and "itt.di_benefit.k6" in md and "itt.employed.k6" not in md
    with pytest.raises(PlanError, match="no filled estimand"):
        analysis.compare(family="no_such_family")


def test_a_study_of_another_frequency_is_refused():
    from conftest import make_frames

    f = make_frames(n=40, periods=24, freq="M")
    monthly = ii.Study.from_frames(f["assignment"], f["panel"], households=f["households"])
    plan = ii.AnalysisPlan.from_string("""
frequency = "Q"
seed = 1
n_permutations = 0
[[estimands]]
estimator = "itt"
outcome = "employed"
horizon = 6
tag = "primary"
""")
    with pytest.raises(PlanError, match="frequency 'Q'.*frequency 'M'"):
        ii.run_plan(monthly, plan)
    assert ii.AnalysisPlan.default().frequency == "Q"
    with pytest.raises(PlanError, match="unknown panel frequency"):
        ii.AnalysisPlan.from_string('frequency = "quarterly"\nseed = 1\n[[estimands]]\nestimator = "itt"\n'
                                    'outcome = "employed"\nhorizon = 6\ntag = "primary"\n')
