"""Tests of ips_impact.synthetic: contracts, design, truth, determinism, fast paths.

Calibration to the Belgian pilot on a large sample is in test_synthetic_calibration.py.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re

import numpy as np
import pandas as pd
import pytest

from ips_impact.errors import DataContractError
from ips_impact.synthetic import (
    OUTCOMES,
    TABLES,
    SyntheticParams,
    SyntheticTrial,
    generate,
    population_truth,
)

FAST = ("assignment", "panel")


@pytest.fixture(scope="module")
def trial() -> SyntheticTrial:
    return generate(n_persons=1200, seed=7)


@pytest.fixture(scope="module")
def small() -> SyntheticTrial:
    return generate(n_persons=240, seed=3)


def _k(trial: SyntheticTrial, panel: pd.DataFrame) -> np.ndarray:
    """Event time of each panel row (quarters since the randomization quarter)."""
    rq = trial.assignment.set_index("person_id")["randomization_date"].dt.to_period("Q")
    hh = trial.households
    idx_of = dict(zip(trial.assignment.person_id, trial.assignment.person_id))
    if hh is not None:
        h2i = dict(zip(hh.loc[hh.role == "index", "household_id"], hh.loc[hh.role == "index", "person_id"]))
        idx_of.update({p: h2i[h] for p, h in zip(hh.person_id, hh.household_id)})
    per = pd.PeriodIndex(panel["period"], freq="Q")
    base = pd.PeriodIndex(rq.loc[panel["person_id"].map(idx_of)].to_numpy(), freq="Q")
    return (per.year * 4 + per.quarter - (base.year * 4 + base.quarter)).to_numpy()


# ---------------------------------------------------------------- contracts
def test_tables_follow_the_data_contracts(trial: SyntheticTrial) -> None:
    a = trial.assignment
    for col in ("person_id", "arm", "randomization_date", "stratum", "region", "site",
                "household_id", "age", "female", "education", "diagnosis", "di_phase",
                "di_months", "pre_employment_share", "pre_earnings"):
        assert col in a.columns, col
    assert a["person_id"].is_unique
    assert set(a["arm"].unique()) == {0, 1}
    assert a["randomization_date"].dtype == "datetime64[ns]"
    assert (a["randomization_date"] == a["randomization_date"].dt.normalize()).all()
    assert a["randomization_date"].min() >= pd.Timestamp("2018-02-01")
    assert a["randomization_date"].max() <= pd.Timestamp("2019-12-31")
    assert set(a["region"]) == {"VL", "WAL", "BXL"}
    assert a["stratum"].str.fullmatch(r"(VL|WAL|BXL)-20(18|19)H[12]").all()
    assert (a["stratum"].str.split("-").str[0] == a["region"]).all()
    assert set(a["di_phase"]) == {"primary", "invalidity"}
    assert list(trial.panel.columns) == [
        "person_id", "period", "sep_code", "employed", "self_employed", "n_jobs",
        "days_worked", "earnings", "fte", "worker_class", "nace", "temp_agency",
        "permanent_contract", "on_di", "di_phase", "di_benefit", "authorised_work",
        "work_on_di", "unemployment_benefit",
    ]
    assert trial.panel["period"].str.fullmatch(r"\d{4}Q[1-4]").all()
    assert not trial.panel.duplicated(["person_id", "period"]).any()
    assert set(trial.households["role"]) == {"index", "partner", "child"}
    assert trial.benefits["month"].str.fullmatch(r"\d{4}-\d{2}").all()
    assert set(trial.frames()) == set(TABLES)


def test_keys_are_pseudonyms_never_digits(trial: SyntheticTrial) -> None:
    keys = pd.concat([trial.households["person_id"], trial.households["household_id"]])
    assert keys.str.fullmatch(r"[PH][A-Z2-7]{10}").all()
    assert not keys.str.fullmatch(r"\d+").any()
    roster = trial.households["person_id"]
    assert roster.is_unique
    assert set(trial.panel["person_id"]) <= set(roster)


def test_panel_spans_pre_and_post_quarters_of_every_person(trial: SyntheticTrial) -> None:
    p = trial.params
    k = _k(trial, trial.panel)
    span = pd.Series(k).groupby(trial.panel["person_id"].to_numpy()).agg(["min", "max", "size"])
    assert (span["min"] == -p.pre_quarters).all()
    assert (span["max"] == p.post_quarters).all()
    assert (span["size"] == p.pre_quarters + p.post_quarters + 1).all()


def test_sep_code_is_consistent_with_employment(trial: SyntheticTrial) -> None:
    pn = trial.panel
    first = pn["sep_code"] // 100
    assert ((first == 1) == (pn["employed"] == 1)).all()
    assert ((pn["sep_code"] == 121) == (pn["self_employed"] == 1)).all()
    assert set(pn.loc[pn.employed == 0, "sep_code"] // 100) <= {2, 3}
    # position on the last day: no job then, but earnings and days cover the quarter
    assert (pn.loc[pn.employed == 0, ["n_jobs", "fte"]] == 0).all().all()
    assert ((pn.loc[pn.employed == 1, ["earnings", "days_worked"]]) > 0).all().all()
    assert ((pn["earnings"] > 0) == (pn["days_worked"] > 0)).all()
    assert pn.loc[pn.employed == 0, "nace"].isna().all()
    emp = pn[pn.employed == 1]
    assert emp["nace"].notna().all()
    assert ((emp["fte"] > 0) & (emp["fte"] <= 1)).all()
    assert (pn["work_on_di"] == (pn["employed"] & pn["on_di"])).all()
    assert (pn.loc[pn.on_di == 0, "di_benefit"] == 0).all()
    assert pn.loc[pn.on_di == 1, "di_phase"].isin(["primary", "invalidity"]).all()
    # job-seeker codes go with unemployment benefit, never with work or DI in that month
    assert (pn.loc[pn.sep_code // 100 == 2, "unemployment_benefit"] > 0).all()


def test_benefits_aggregate_to_the_quarterly_panel(trial: SyntheticTrial) -> None:
    b = trial.benefits.copy()
    b["period"] = pd.PeriodIndex(b["month"], freq="M").asfreq("Q").astype(str)
    g = b.groupby(["person_id", "period"], sort=False)
    agg = pd.concat(
        [g["di_benefit"].mean(), g[["on_di", "authorised_work"]].max(), g["di_phase"].last()], axis=1
    ).reset_index()
    assert (g.size() == 3).all()
    merged = agg.merge(trial.panel, on=["person_id", "period"], suffixes=("_m", ""), validate="1:1")
    assert len(merged) == len(agg)
    np.testing.assert_allclose(merged["di_benefit_m"], merged["di_benefit"], rtol=0, atol=1e-9)
    assert (merged["on_di_m"] == merged["on_di"]).all()
    assert (merged["authorised_work_m"] == merged["authorised_work"]).all()
    assert (merged["di_phase_m"].fillna("-") == merged["di_phase"].fillna("-")).all()
    # every participant has monthly records; members only when on DI
    assert set(trial.assignment.person_id) <= set(b.person_id)


def test_households_include_late_partners_outside_the_baseline_roster(trial: SyntheticTrial) -> None:
    hh = trial.households
    a = trial.assignment.set_index("household_id")
    assert (hh.groupby("household_id")["role"].apply(lambda r: (r == "index").sum()) == 1).all()
    rdate = a.loc[hh["household_id"], "randomization_date"].to_numpy()
    late = hh["valid_from"].to_numpy() > rdate
    assert late.any()
    assert set(hh.loc[late, "role"]) == {"partner"}
    assert hh.loc[late, "lipro"].isin(["UNM0", "UNM+"]).all()
    # a few baseline partners leave later: valid_to after the randomization date
    left = hh["valid_to"].notna()
    assert left.any() and (hh.loc[left, "valid_to"].to_numpy() > rdate[left.to_numpy()]).all()
    assert hh["lipro"].isin(["SING", "MAR0", "MAR+", "UNM0", "UNM+", "H1PA", "CMAR", "CUNM", "C1PA"]).all()
    # partners have their own panel; children only when of working age
    partners = set(hh.loc[hh.role == "partner", "person_id"])
    assert partners <= set(trial.panel.person_id)


def test_takeup_no_crossover_and_85_percent(trial: SyntheticTrial) -> None:
    t = trial.takeup.merge(trial.assignment[["person_id", "arm", "randomization_date"]], on="person_id")
    assert (t.loc[t.arm == 0, "ips_started"] == 0).all()
    share = t.loc[t.arm == 1, "ips_started"].mean()
    assert 0.80 <= share <= 0.90
    assert (t["ips_start_date"].isna() == (t["ips_started"] == 0)).all()
    started = t[t.ips_started == 1]
    assert (started["ips_start_date"] > started["randomization_date"]).all()


def test_crossover_parameter_gives_always_takers() -> None:
    tr = generate(n_persons=600, seed=2, params=SyntheticParams(crossover_rate=0.2), tables=TABLES)
    t = tr.takeup.merge(tr.assignment[["person_id", "arm"]], on="person_id")
    assert 0.1 < t.loc[t.arm == 0, "ips_started"].mean() < 0.3


# ---------------------------------------------------------------- design
def test_design_counts_match_the_pilot(trial: SyntheticTrial) -> None:
    a = trial.assignment
    treated = a[a.arm == 1].groupby("region").size().to_dict()
    control = a[a.arm == 0].groupby("region").size().to_dict()
    assert treated == {"VL": 340, "WAL": 200, "BXL": 60}
    assert control == treated
    by = a.groupby("stratum")["arm"].agg(["sum", "size"])
    assert (by["sum"] * 2 == by["size"]).all()  # complete randomization, 1:1 in each stratum
    sites = a.groupby("region")["site"].unique().apply(sorted).to_dict()
    assert sites["VL"] == ["VDAB-GTB"]
    assert sites["WAL"] == ["Forem-Charleroi-ISPPC", "Forem-Liege-Article23"]
    assert sites["BXL"] == ["Actiris-Bruxelles"]


def test_odd_strata_get_the_extra_person_at_random() -> None:
    tr = generate(n_persons=101, seed=5, tables=FAST)
    by = tr.assignment.groupby("stratum")["arm"].agg(["sum", "size"])
    assert ((by["sum"] == by["size"] // 2) | (by["sum"] == (by["size"] + 1) // 2)).all()


def test_rerandomize_keeps_design_and_truth(trial: SyntheticTrial) -> None:
    new = trial.rerandomize(11)
    a0, a1 = trial.assignment, new.assignment
    assert (a0.person_id == a1.person_id).all()
    assert (a0.arm != a1.arm).any()
    c0 = a0.groupby("stratum")["arm"].sum()
    c1 = a1.groupby("stratum")["arm"].sum()
    pd.testing.assert_series_equal(c0, c1)
    pd.testing.assert_frame_equal(a0.drop(columns="arm"), a1.drop(columns="arm"))
    assert new.truth is trial.truth
    assert new.assignment_seed == 11
    again = trial.rerandomize(11)
    pd.testing.assert_frame_equal(again.panel, new.panel)
    assert not a1.arm.equals(trial.rerandomize(12).assignment.arm)


def _assert_revealed(tr: SyntheticTrial, outcome: str, population: str) -> None:
    po = tr.potential_outcomes(outcome, population=population)
    arm = tr.assignment.set_index("person_id")["arm"]
    if population != "participants":
        hh = tr.households
        index_of = hh[hh.role == "index"].set_index("household_id")["person_id"]
        idx = hh.set_index("person_id")["household_id"].map(index_of)
        arm = idx.map(arm)
    po["arm"] = po["person_id"].map(arm).to_numpy()
    po["k"] = po["k"].astype(np.int64)
    pn = tr.panel[["person_id", "period", outcome]].copy()
    pn["k"] = _k(tr, pn)
    m = po.merge(pn, on=["person_id", "k"], validate="1:1")
    assert len(m) == len(po)
    revealed = np.where(m["arm"] == 1, m["y1"], m["y0"])
    np.testing.assert_array_equal(revealed, m[outcome].astype(np.float64).to_numpy())


@pytest.mark.parametrize("outcome", ["employed", "work_on_di", "earnings", "fte", "di_benefit", "on_di"])
def test_revealed_outcomes_are_the_potential_outcome_of_the_assigned_arm(
    small: SyntheticTrial, outcome: str
) -> None:
    _assert_revealed(small, outcome, "participants")
    _assert_revealed(small, outcome, "members")
    _assert_revealed(small.rerandomize(99), outcome, "participants")


# ---------------------------------------------------------------- truth
def test_truth_is_the_sample_mean_of_individual_effects(small: SyntheticTrial) -> None:
    T = small.truth
    assert list(T.columns[:8]) == ["population", "outcome", "k", "group", "n", "ate", "control_mean", "treated_mean"]
    assert set(T.population) == {"participants", "partners", "members"}
    assert set(T.outcome) == set(OUTCOMES)
    assert set(T.group) == {"all", "VL", "WAL", "BXL"}
    for pop in ("participants", "partners"):
        po = small.potential_outcomes("earnings", population=pop)
        mean = po.assign(d=po.y1 - po.y0).groupby("k")[["d", "y0", "y1"]].mean()
        row = T[(T.population == pop) & (T.outcome == "earnings") & (T.group == "all")].set_index("k")
        np.testing.assert_allclose(row["ate"], mean["d"], rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(row["control_mean"], mean["y0"], rtol=1e-12)
        np.testing.assert_allclose(row["treated_mean"], mean["y1"], rtol=1e-12)
    # no effect before randomization (IPS cannot act on the past)
    pre = T[T.k < 0]
    assert (pre["ate"] == 0).all()
    # the region groups partition the participants
    part = T[(T.population == "participants") & (T.outcome == "employed") & (T.k == 6)].set_index("group")
    w = part.loc[["VL", "WAL", "BXL"], "n"]
    assert w.sum() == part.loc["all", "n"]
    np.testing.assert_allclose((part.loc[["VL", "WAL", "BXL"], "ate"] * w).sum() / w.sum(), part.loc["all", "ate"])


def test_late_truth_times_complier_share_is_the_itt(small: SyntheticTrial) -> None:
    L = small.truth_late
    T = small.truth[small.truth.population == "participants"]
    m = L.merge(T, on=["outcome", "k", "group"])
    assert len(m) == len(L)
    # exclusion restriction: never-takers are unaffected, so ATE = share × LATE exactly
    np.testing.assert_allclose(m["complier_share"] * m["late"], m["ate"], rtol=1e-10, atol=1e-9)
    assert ((L["complier_share"] > 0.75) & (L["complier_share"] < 0.95)).all()


def test_rmst_truth_is_the_mean_restricted_first_job_time(small: SyntheticTrial) -> None:
    R = small.truth_rmst
    assert set(R.event) == {"employed", "work_on_di"}
    po = small.potential_outcomes("employed")
    for tau in (4, 8):
        for arm, col in ((0, "y0"), (1, "y1")):
            ev = po[(po.k >= 1) & (po[col] > 0)].groupby("person_id")["k"].min()
            t = po["person_id"].drop_duplicates().map(ev).fillna(np.inf).to_numpy()
            expect = np.minimum(t, tau).mean()
            got = R[(R.event == "employed") & (R.tau == tau) & (R.group == "all")].iloc[0]
            assert got["rmst_treated" if arm else "rmst_control"] == pytest.approx(expect, rel=1e-12)
    # IPS shortens the time to the first job
    row = R[(R.event == "employed") & (R.tau == 12) & (R.group == "all")].iloc[0]
    assert row["difference"] < 0
    other = small.rmst_truth("work_on_di", start=2, taus=(6,))
    assert list(other["tau"].unique()) == [6] and (other["start"] == 2).all()


# ---------------------------------------------------------------- determinism
def _digest(path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(path.iterdir())}


def test_same_seed_gives_byte_identical_files(tmp_path, small: SyntheticTrial) -> None:
    again = generate(n_persons=240, seed=3)
    for name, df in small.frames().items():
        pd.testing.assert_frame_equal(df, again.frames()[name])
    pd.testing.assert_frame_equal(small.truth, again.truth)
    small.write(tmp_path / "a")
    again.write(tmp_path / "b")
    da, db = _digest(tmp_path / "a"), _digest(tmp_path / "b")
    assert da == db
    assert set(da) == {
        "assignment.parquet", "panel.parquet", "households.parquet", "benefits.parquet",
        "takeup.parquet", "truth.parquet", "truth_late.parquet", "truth_rmst.parquet", "params.json",
    }
    meta = json.loads((tmp_path / "a" / "params.json").read_text())
    assert meta["seed"] == 3 and meta["n_persons"] == 240
    assert SyntheticParams.from_dict(meta["params"]) == small.params
    back = pd.read_parquet(tmp_path / "a" / "panel.parquet")
    pd.testing.assert_frame_equal(back, small.panel)


def test_different_seed_gives_a_different_sample(small: SyntheticTrial) -> None:
    other = generate(n_persons=240, seed=4)
    assert not set(other.assignment.person_id) & set(small.assignment.person_id)


def test_changing_household_parameters_does_not_shift_participants(small: SyntheticTrial) -> None:
    p = dataclasses.replace(
        small.params, partner_effect=0.9, child_entry_rate=0.08, late_partner_share=0.3,
        children_extra_mean=1.5,
    )
    other = generate(n_persons=240, seed=3, params=p)
    assert len(other.households) > len(small.households)  # more members…
    pd.testing.assert_frame_equal(other.assignment, small.assignment)  # …same participants
    ids = small.assignment.person_id
    a = small.panel[small.panel.person_id.isin(ids)].reset_index(drop=True)
    b = other.panel[other.panel.person_id.isin(ids)].reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    T0 = small.truth[small.truth.population == "partners"]
    T1 = other.truth[other.truth.population == "partners"]
    assert not np.allclose(T0["ate"], T1["ate"])


def test_shorter_panel_keeps_the_same_outcomes(small: SyntheticTrial) -> None:
    p = dataclasses.replace(small.params, pre_quarters=4, post_quarters=12)
    short = generate(n_persons=240, seed=3, params=p)
    assert _k(short, short.panel).min() == -4 and _k(short, short.panel).max() == 12
    long = small.panel.merge(short.panel[["person_id", "period"]], on=["person_id", "period"])
    pd.testing.assert_frame_equal(long, short.panel)
    pd.testing.assert_frame_equal(
        small.truth[small.truth.k.between(-4, 12)].reset_index(drop=True), short.truth.reset_index(drop=True)
    )


# ---------------------------------------------------------------- fast path
def test_fast_path_builds_only_what_is_asked(small: SyntheticTrial) -> None:
    fast = generate(n_persons=240, seed=3, tables=FAST)
    assert fast.households is None and fast.benefits is None and fast.takeup is None
    assert set(fast.frames()) == set(FAST)
    pd.testing.assert_frame_equal(fast.assignment, small.assignment)
    assert set(fast.panel.person_id) == set(small.assignment.person_id)
    assert "nace" not in fast.panel.columns and "sep_code" not in fast.panel.columns
    full = small.panel[small.panel.person_id.isin(small.assignment.person_id)]
    full = full[fast.panel.columns].reset_index(drop=True)
    pd.testing.assert_frame_equal(fast.panel, full)
    pd.testing.assert_frame_equal(
        fast.truth, small.truth[small.truth.population == "participants"].reset_index(drop=True)
    )
    with_details = generate(n_persons=240, seed=3, tables=FAST, job_details=True)
    assert "nace" in with_details.panel.columns
    with pytest.raises(DataContractError, match="members were not simulated"):
        fast.potential_outcomes("employed", population="partners")


# ---------------------------------------------------------------- params and errors
def test_params_are_frozen_and_replaceable() -> None:
    p = SyntheticParams()
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.takeup_rate = 0.5  # type: ignore[misc]
    q = dataclasses.replace(p, takeup_rate=0.7)
    assert q.takeup_rate == 0.7 and p.takeup_rate == 0.85
    assert SyntheticParams.from_dict(json.loads(p.to_json())) == p
    assert p.to_json() == SyntheticParams().to_json()
    # every field is documented in the class docstring
    doc = SyntheticParams.__doc__ or ""
    missing = [f.name for f in dataclasses.fields(SyntheticParams) if not re.search(rf"\b{f.name}\b", doc)]
    assert missing == []


@pytest.mark.parametrize(
    "change",
    [dict(p_treated=1.0), dict(takeup_rate=0.0), dict(job_exit_rate=1.5),
     dict(region_shares={"XX": 1.0}), dict(post_quarters=-1),
     dict(enrolment_start="2020-01-01", enrolment_end="2019-01-01"),
     dict(household_shares={"commune": 1.0})],
)
def test_bad_params_raise_typed_errors(change: dict) -> None:
    with pytest.raises(DataContractError, match="params"):
        SyntheticParams(**change)


def test_bad_arguments_raise_typed_errors() -> None:
    with pytest.raises(DataContractError, match="n_persons"):
        generate(n_persons=1)
    with pytest.raises(DataContractError, match="n_persons"):
        generate(n_persons=12.5)  # type: ignore[arg-type]
    with pytest.raises(DataContractError, match="unknown tables"):
        generate(n_persons=10, tables=("assignment", "panel", "jobs"))
    with pytest.raises(DataContractError, match="must include"):
        generate(n_persons=10, tables=("assignment",))
    with pytest.raises(DataContractError, match="SyntheticParams"):
        generate(n_persons=10, params={"takeup_rate": 0.5})  # type: ignore[arg-type]
    with pytest.raises(DataContractError, match="unknown synthetic parameters"):
        SyntheticParams.from_dict({"nope": 1})
    with pytest.raises(DataContractError, match="unknown outcome"):
        population_truth(outcome="happiness", n=100)
    tr = generate(n_persons=10, seed=1, tables=FAST)
    with pytest.raises(DataContractError, match="unknown population"):
        tr.potential_outcomes("employed", population="neighbours")


def test_population_truth_reports_its_monte_carlo_error() -> None:
    pt = population_truth(outcome="work_on_di", k=2, n=4000, seed=5)
    assert pt.n == 4000 and pt.k == 2
    assert pt.ate == pytest.approx(pt.treated_mean - pt.control_mean, abs=1e-12)
    assert 0 < pt.std_error < 0.02
    # it is the sample truth of the same large sample (the panel length does not matter)
    tr = generate(n_persons=4000, seed=5, tables=FAST)
    row = tr.truth.query("outcome == 'work_on_di' and k == 2 and group == 'all'").iloc[0]
    assert pt.ate == pytest.approx(row["ate"], abs=1e-12)
    vl = population_truth(outcome="employed", k=2, n=4000, seed=5, group="VL")
    assert vl.n == int((tr.assignment.region == "VL").sum())


# ---------------------------------------------------------------- study
def test_study_reads_the_synthetic_frames(small: SyntheticTrial) -> None:
    study = small.study()
    assert len(study.persons) == len(small.assignment)
    assert study.persons["linked"].all()
    assert set(study.panel["k"]) == set(range(-small.params.pre_quarters, small.params.post_quarters + 1))
    # the study's event-time outcome equals the revealed potential outcome
    po = small.potential_outcomes("work_on_di")
    arm = small.assignment.set_index("person_id")["arm"]
    at6 = po[po.k == 6].set_index("person_id")
    expect = np.where(arm.loc[at6.index] == 1, at6.y1, at6.y0)
    got = study.panel[study.panel.k == 6].set_index("person_id").loc[at6.index, "work_on_di"]
    np.testing.assert_array_equal(got.to_numpy(dtype=float), expect)
    # late partners are set aside by the baseline-roster rule, baseline members are kept
    hh = small.households
    a = small.assignment.set_index("household_id")["randomization_date"]
    late = hh[hh.valid_from.to_numpy() > a.loc[hh.household_id].to_numpy()]["person_id"]
    assert not set(late) & set(study.members["person_id"])
    assert set(study.members["role"]) == {"partner", "child"}


# ---------------------------------------------------------------- committed sample
def test_committed_sample_is_what_the_documented_command_makes() -> None:
    from pathlib import Path

    folder = Path(__file__).resolve().parents[1] / "synthetic_data"
    meta = json.loads((folder / "params.json").read_text())
    assert meta["seed"] == 2018 and meta["n_persons"] == 1200
    assert "ips-impact simulate --seed 2018 --out synthetic_data/" in (folder / "README.md").read_text()
    tr = generate(n_persons=1200, seed=2018)
    assert SyntheticParams.from_dict(meta["params"]) == tr.params
    for name, df in tr.frames().items():
        pd.testing.assert_frame_equal(pd.read_parquet(folder / f"{name}.parquet"), df)
    pd.testing.assert_frame_equal(pd.read_parquet(folder / "truth.parquet"), tr.truth)
    assert sum(p.stat().st_size for p in folder.iterdir()) < 15 * 2**20


def test_chunked_aggregation_gives_the_same_frames(small: SyntheticTrial, monkeypatch) -> None:
    import ips_impact.synthetic.world as world

    monkeypatch.setattr(world, "CHUNK", 37)  # many chunks, one of them ragged
    chunked = generate(n_persons=240, seed=3)
    for name, df in small.frames().items():
        pd.testing.assert_frame_equal(chunked.frames()[name], df)
    pd.testing.assert_frame_equal(chunked.truth, small.truth)
    pd.testing.assert_frame_equal(chunked.rerandomize(5).panel, small.rerandomize(5).panel)


def test_full_takeup_and_other_design_parameters_keep_the_population() -> None:
    base = generate(n_persons=200, seed=8, tables=FAST)
    full = generate(n_persons=200, seed=8, tables=FAST,
                    params=SyntheticParams(takeup_rate=1.0, partner_leave_share=0.5))
    pd.testing.assert_frame_equal(base.assignment, full.assignment)
    L = full.truth_late
    assert (L["complier_share"] == 1.0).all()
    # with everyone starting IPS the compliers' effect is the average effect
    T = full.truth
    m = L.merge(T, on=["outcome", "k", "group"])
    np.testing.assert_allclose(m["late"], m["ate"], rtol=1e-12, atol=1e-12)


def test_repr_is_short_and_says_what_the_trial_is(small: SyntheticTrial) -> None:
    text = repr(small.rerandomize(4))
    assert text.startswith("SyntheticTrial(n_persons=240 (120 IPS, 120 control), seed=3, assignment_seed=4")
    assert len(text) < 300


def test_null_switches_give_exactly_zero_effects() -> None:
    null = SyntheticParams.null()
    assert null == SyntheticParams(effect_size=0.0, ips_di_exit_multiplier=1.0, ips_fte_shift=0.0, partner_effect=0.0)
    tr = generate(n_persons=300, seed=3, params=null)
    assert (tr.truth["ate"] == 0).all()
    assert (tr.truth_late["late"] == 0).all()
    assert (tr.truth_rmst["difference"] == 0).all()
    # switching off only the job-finding boost leaves the DI-exit and part-time channels
    jobs_off = generate(n_persons=300, seed=3, params=SyntheticParams(effect_size=0.0))
    assert (jobs_off.truth.query("population == 'participants'")["ate"] != 0).any()
    with pytest.raises(DataContractError, match="fixes the effect parameters"):
        SyntheticParams.null(effect_size=0.5)
