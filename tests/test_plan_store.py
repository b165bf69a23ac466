"""Analysis.save / load_analysis: round trip, byte-identical files, atomic replacement; diff."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

import ips_impact as ii  # noqa: E402
from ips_impact.errors import PlanError  # noqa: E402
from ips_impact.plan import store  # noqa: E402
from ips_impact.plan.diff import diff_analyses  # noqa: E402
from ips_impact.plan.serialize import result_from_dict, result_to_dict  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "synthetic_data"

# One estimand of every estimator (and a categorical outcome, a window sum), few draws.
PLAN = """
schema = 1
name = "every estimator"
seed = 11
n_permutations = 99

[defaults]
covariates = ["age", "female"]

[families.primary]
method = "holm"

[families.rw]
method = "westfall-young"

[[estimands]]
estimator = "itt"
outcomes = ["work_on_di", "di_benefit"]
horizon = 6
tag = "primary"
family = "primary"

[[estimands]]
estimator = "itt"
outcome = "nace"
horizon = 6
tag = "secondary"

[[estimands]]
estimator = "itt"
outcome = "employed"
window = [1, 20]
aggregate = "sum"
tag = "secondary"
family = "rw"

[[estimands]]
estimator = "spillover"
outcome = "employed"
horizon = 6
tag = "secondary"
family = "rw"

[[estimands]]
estimator = "itt_by_period"
outcome = "work_on_di"
periods = { first = -4, last = 8 }
tag = "secondary"

[[estimands]]
estimator = "heterogeneity"
outcome = "work_on_di"
by = "region"
horizon = 6
tag = "secondary"

[[estimands]]
estimator = "late"
outcome = "work_on_di"
horizon = 6
tag = "secondary"

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

[[estimands]]
estimator = "itt"
outcome = "not_in_the_data"
horizon = 6
tag = "secondary"
"""


@pytest.fixture(scope="module")
def study():
    return ii.load_study(SAMPLE)


@pytest.fixture(scope="module")
def analysis(study):
    return ii.run_plan(study, ii.AnalysisPlan.from_string(PLAN), progress=False)


@pytest.fixture(scope="module")
def saved(analysis, tmp_path_factory):
    return analysis.save(tmp_path_factory.mktemp("a") / "analysis")


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_layout(saved, analysis):
    names = set(files_of(saved))
    assert {"manifest.json", "plan.toml", "tidy.parquet", "run.json"} <= names
    filled = [e.id for e in analysis.entries if e.filled]
    assert {f"results/{i}.json" for i in filled} == {n for n in names if n.startswith("results/")}
    assert not any(p.name.startswith(".") for p in saved.parent.iterdir())  # no temporary folder left


def test_round_trip_gives_the_same_tidy_frames_summaries_and_plots(saved, analysis):
    loaded = ii.load_analysis(saved)
    pd.testing.assert_frame_equal(loaded.tidy(), analysis.tidy())
    pd.testing.assert_frame_equal(loaded.deviations(), analysis.deviations())
    assert loaded.summary() == analysis.summary()
    assert loaded._repr_html_() == analysis._repr_html_()
    assert loaded.plan == analysis.plan
    assert dict(loaded.provenance)["digest"] == analysis.provenance["digest"]
    assert loaded.study_info["n_persons"] == analysis.study_info["n_persons"]
    pd.testing.assert_frame_equal(loaded.study_info["consort"], analysis.study_info["consort"])
    for a, b in zip(analysis.entries, loaded.entries):
        assert (a.id, a.tag, a.family, a.reason, a.notes, a.seed) == (b.id, b.tag, b.family, b.reason, b.notes, b.seed)
        if a.result is None:
            continue
        assert type(a.result) is type(b.result)
        pd.testing.assert_frame_equal(a.result.tidy(), b.result.tidy())
        assert a.result.summary() == b.result.summary()
        assert a.result.to_json() == b.result.to_json()
        pd.testing.assert_frame_equal(a.result.ledger, b.result.ledger)
        assert a.result.warnings == b.result.warnings and dict(a.result.spec).keys() == dict(b.result.spec).keys()
    # plots redrawn from the saved curves alone (KM, effect path, forest rows)
    for id_ in ("itt_by_period.work_on_di.k-4_8", "time_to_event.employed.tau12",
                "heterogeneity.work_on_di.by_region.k6", "spell_survival.employed.h12"):
        ax = loaded[id_].plot()
        fig = getattr(ax, "figure", ax)
        assert fig.axes and any(a.lines or a.collections for a in fig.axes)
        plt.close("all")
    km_a = analysis["time_to_event.employed.tau12"].km
    km_b = loaded["time_to_event.employed.tau12"].km
    pd.testing.assert_frame_equal(km_a, km_b)


def test_loaded_result_is_frozen(saved):
    r = ii.load_analysis(saved)["itt.work_on_di.k6"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.estimate = 0.0
    with pytest.raises(ValueError):
        r.coefficients.iloc[0, 0] = 1.0


def test_result_dict_round_trip_is_exact(analysis):
    for e in analysis.entries:
        if e.result is None:
            continue
        again = result_from_dict(result_to_dict(e.result))
        assert result_to_dict(again) == result_to_dict(e.result)


def test_two_runs_give_byte_identical_files(study, saved, tmp_path):
    other = ii.run_plan(study, ii.AnalysisPlan.from_string(PLAN), progress=False)
    again = other.save(tmp_path / "again")
    a, b = files_of(saved), files_of(again)
    assert a.keys() == b.keys()
    differ = [n for n in a if a[n] != b[n] and n != "run.json"]
    assert differ == []


def test_row_order_of_the_inputs_does_not_change_the_files(study, saved, tmp_path):
    frames = {n: pd.read_parquet(SAMPLE / f"{n}.parquet") for n in ("assignment", "panel", "households",
                                                                     "benefits", "takeup")}
    rng = np.random.default_rng(0)
    shuffled = {n: f.iloc[rng.permutation(len(f))].reset_index(drop=True) for n, f in frames.items()}
    s2 = ii.Study.from_frames(shuffled["assignment"], shuffled["panel"], households=shuffled["households"],
                              benefits=shuffled["benefits"], takeup=shuffled["takeup"])
    a2 = ii.run_plan(s2, ii.AnalysisPlan.from_string(PLAN), progress=False)
    out = a2.save(tmp_path / "shuffled")
    a, b = files_of(saved), files_of(out)
    assert [n for n in a if a[n] != b[n] and n != "run.json"] == []


def test_a_failure_mid_save_leaves_the_previous_folder_intact(analysis, tmp_path, monkeypatch):
    target = analysis.save(tmp_path / "published")
    before = files_of(target)
    calls = {"n": 0}
    real = store._write_file

    def failing(path, data):
        calls["n"] += 1
        if calls["n"] == 4:
            raise OSError("disk full (injected)")
        real(path, data)

    monkeypatch.setattr(store, "_write_file", failing)
    other = ii.Analysis(plan=analysis.plan, entries=analysis.entries[:3], provenance=analysis.provenance,
                        study_info=analysis.study_info)
    with pytest.raises(OSError, match="injected"):
        other.save(target)
    assert calls["n"] == 4
    assert files_of(target) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["published"]  # no partial folder left
    monkeypatch.setattr(store, "_write_file", real)
    other.save(target)  # replaced atomically once writing succeeds
    assert len(ii.load_analysis(target).entries) == 3


def test_save_never_replaces_a_folder_that_is_not_an_analysis(analysis, tmp_path):
    keep = tmp_path / "mine"
    keep.mkdir()
    (keep / "notes.txt").write_text("precious")
    with pytest.raises(PlanError, match="something other than a saved analysis"):
        analysis.save(keep)
    assert (keep / "notes.txt").read_text() == "precious"
    with pytest.raises(PlanError, match="exists"):
        analysis.save(analysis.save(tmp_path / "a"), overwrite=False)


def test_load_refuses_an_edited_file(analysis, tmp_path):
    out = analysis.save(tmp_path / "a")
    f = out / "results" / "itt.work_on_di.k6.json"
    f.write_text(f.read_text().replace("work_on_di", "work_on_DI", 1))
    with pytest.raises(PlanError, match="differs from its manifest"):
        ii.load_analysis(out)
    with pytest.raises(PlanError, match="not a folder"):
        ii.load_analysis(tmp_path / "nothing")


def test_tidy_parquet_has_ids_tags_families_and_p_values(saved, analysis):
    t = store.read_tidy(saved)
    assert list(t.columns[:4]) == ["estimand_id", "tag", "family", "estimator"]
    assert {"ri_p_value", "adj_p_value"} <= set(t.columns)
    ref = analysis.tidy()
    assert len(t) == len(ref)
    np.testing.assert_array_equal(t["estimate"].to_numpy(), ref["estimate"].to_numpy())
    assert t.loc[t["estimand_id"] == "itt.employed.k1_20.sum", "horizon"].iloc[0] == "1:20"
    assert t.loc[t["family"] == "primary", "adj_p_value"].notna().all()


# ---------------------------------------------------------------- diff


def test_diff_identical_and_changed(study, saved, tmp_path):
    d = diff_analyses(saved, saved)
    assert d.within_tolerance and d.max_rel_diff == 0 and "No estimand differs" in d.summary()
    other = ii.run_plan(study, ii.AnalysisPlan.from_string(PLAN), seed=12, progress=False).save(tmp_path / "s12")
    d = diff_analyses(other, saved)
    assert not d.within_tolerance
    assert set(d.changes["column"]) <= {"ri_p_value", "adj_p_value"}  # only the draws changed
    assert "seed" in d.context and "ri_p_value" in d.summary()
    # a loose tolerance on p-values accepts it
    assert diff_analyses(other, saved, rtol=1.0, atol=1.0).within_tolerance


def test_diff_reports_missing_rows(analysis, saved, tmp_path):
    fewer = ii.Analysis(plan=analysis.plan, entries=analysis.entries[:2], provenance=analysis.provenance,
                        study_info=analysis.study_info).save(tmp_path / "fewer")
    d = diff_analyses(fewer, saved, rtol=1.0, atol=1e9)
    assert not d.within_tolerance
    assert (d.changes["column"] == "<row>").all()
    assert "itt_by_period.work_on_di.k-4_8" in set(d.changes["estimand_id"])


def test_no_person_or_household_key_in_any_saved_file(saved):
    assignment = pd.read_parquet(SAMPLE / "assignment.parquet")
    households = pd.read_parquet(SAMPLE / "households.parquet")
    keys = set(assignment.person_id) | set(households.person_id) | set(households.household_id)
    for name, data in files_of(saved).items():
        text = data.decode("utf-8", errors="ignore")
        assert not [k for k in keys if k in text], name
