"""Linkage semantics: event time, derived outcomes, benefits, take-up, baseline roster; properties."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import make_frames
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ips_impact.errors import DataContractError, DataWarning
from ips_impact.io.mapping import ColumnMap
from ips_impact.io.periods import parse_periods
from ips_impact.study import Study


def _early(frames):
    """Randomize a year earlier, so that a short toy panel (from 2017Q1) covers randomization.

    A panel ending before every randomization is refused (no follow-up at all).
    """
    a = frames["assignment"].copy()
    a["randomization_date"] = a["randomization_date"] - pd.DateOffset(years=1, months=1)
    return {**frames, "assignment": a}


def _iso_monday(label: str) -> pd.Timestamp:
    year, week = label.split("-W")
    return pd.Timestamp.fromisocalendar(int(year), int(week), 1)


@pytest.mark.parametrize("freq", ["Q", "M", "Y", "W"])
def test_event_time_matches_calendar(freq):
    f = make_frames(n=20, periods={"M": 30, "W": 100}.get(freq, 12), freq=freq)
    s = Study.from_frames(f["assignment"], f["panel"])
    p = s.panel.merge(s.persons[["person_id", "randomization_date"]], on="person_id")
    if freq == "W":  # independent of pandas periods: whole weeks between ISO Mondays
        labels = f["panel"].drop_duplicates("period")["period"]
        monday = {str(pd.Period(_iso_monday(lab), freq="W-SUN")): _iso_monday(lab) for lab in labels}
        expected = [((monday[str(per)] - (rd - pd.Timedelta(days=rd.weekday()))).days // 7)
                    for per, rd in zip(p["period"], p["randomization_date"])]
        assert p["k"].tolist() == expected
        return
    pf = {"Q": "Q", "M": "M", "Y": "Y"}[freq]
    expected = [(per - rd.to_period(pf)).n for per, rd in zip(p["period"], p["randomization_date"])]
    assert p["k"].tolist() == expected
    assert (s.panel.groupby("person_id")["k"].apply(lambda k: k.is_monotonic_increasing)).all()


def test_integer_periods_need_randomization_period():
    f = make_frames(n=10, periods=6)
    panel = f["panel"].assign(period=f["panel"].groupby("person_id").cumcount() + 1)
    a = f["assignment"].drop(columns="randomization_date").assign(randomization_period=3)
    s = Study.from_frames(a, panel, frequency="int")
    assert s.frequency == "int"
    assert s.k_range == (-2, 3)


def test_iso_weeks():
    s, f = parse_periods(pd.Series(["2020-W53", "2021-W01", "2021W02"]))
    assert f == "W"
    assert np.diff(s.array.asi8).tolist() == [1, 1]


def test_employed_derived_from_sep_code():
    f = _early(make_frames(n=10, periods=4))
    p = f["panel"].drop(columns=["employed"])
    codes = np.resize([111, 112, 121, 211, 311, 41], len(p))
    s = Study.from_frames(f["assignment"], p.assign(sep_code=codes))
    exp = pd.Series(np.resize([1, 1, 1, 0, 0, 0], len(p)), index=p.index)
    merged = s.panel.merge(p.assign(sep_code=codes, exp=exp)[["person_id", "period", "exp"]].assign(
        period=lambda d: parse_periods(d["period"])[0]), on=["person_id", "period"])
    assert (merged["employed"] == merged["exp"]).all()
    # work_on_di = employed & on_di
    assert (s.panel["work_on_di"] == s.panel["employed"] * s.panel["on_di"]).all()


def test_benefits_aggregated_to_quarters():
    f = _early(make_frames(n=6, periods=4))
    months = pd.period_range("2017-01", periods=12, freq="M").astype(str)
    b = pd.DataFrame({"person_id": np.repeat(f["assignment"].person_id, 12), "month": np.tile(months, 6)})
    b["di_benefit"] = np.tile(np.arange(12) * 10.0, 6)
    b["authorised_work"] = np.tile([0, 0, 1] + [0] * 9, 6)
    s = Study.from_frames(f["assignment"], f["panel"], benefits=b)
    one = s.panel[s.panel.person_id == f["assignment"].person_id.iloc[0]].sort_values("period")
    assert one["di_benefit"].tolist() == [10.0, 40.0, 70.0, 100.0]  # monthly mean per quarter
    assert one["authorised_work"].tolist() == [1.0, 0.0, 0.0, 0.0]  # any month


def test_benefits_outside_panel_are_ledgered():
    f = _early(make_frames(n=6, periods=4))
    b = pd.DataFrame({"person_id": [f["assignment"].person_id.iloc[0]] * 2, "month": ["2016-01", "2017-01"],
                      "on_di": [1, 1], "di_benefit": [900.0, 1000.0]})
    s = Study.from_frames(f["assignment"], f["panel"], benefits=b)
    led = s.ledger.to_frame()
    assert led.loc[led.table == "benefits", "n_rows"].iloc[0] == 1


def test_takeup_from_dates_and_absent_persons():
    f = _early(make_frames(n=10, periods=4))
    a = f["assignment"]
    ips = a.loc[a.arm == 1, "person_id"].tolist()
    t = pd.DataFrame({"person_id": ips[:3], "ips_start_date": ["2018-05-01", None, "2018-07-01"]})
    s = Study.from_frames(a, f["panel"], takeup=t)
    started = s.persons.set_index("person_id")["ips_started"]
    assert started[ips[0]] == 1 and started[ips[1]] == 0 and started.sum() == 2
    led = s.ledger.to_frame()
    row = led[led.table == "takeup"].iloc[0]
    assert row["n_rows"] == 7 and row["action"] == "assumed 0"
    assert s.consort().table.set_index("stage").loc["started IPS", "n_ips"] == 2


def test_baseline_roster_excludes_later_members():
    f = make_frames(n=10, periods=12)
    h = f["households"].copy()
    h["valid_from"] = pd.NaT
    late = h.person_id == "Q0002B"
    h.loc[late, "valid_from"] = pd.Timestamp("2019-06-01")  # after every randomization date
    s = Study.from_frames(f["assignment"], f["panel"], households=h)
    assert "Q0002B" not in set(s.members.person_id)
    led = s.ledger.to_frame()
    assert led.reason.str.contains("joined the household after").any()
    assert led.reason.str.contains("baseline roster rule").any()
    # members' k is relative to their index person's randomization
    m = s.members.merge(s.persons[["person_id", "randomization_period"]], left_on="index_person_id",
                        right_on="person_id", suffixes=("", "_idx"))
    assert ((m["period"] - m["randomization_period"]).map(lambda d: d.n) == m["k"]).all()


def test_household_from_roster_when_assignment_lacks_it():
    f = _early(make_frames(n=10, periods=4))
    a = f["assignment"].drop(columns="household_id")
    s = Study.from_frames(a, f["panel"], households=f["households"])
    assert s.members.person_id.nunique() == 10
    assert (s.persons["household_id"] == f["assignment"]["household_id"]).all()


def test_outcome_matrix_alignment():
    f = make_frames(n=12, periods=8)
    s = Study.from_frames(f["assignment"], f["panel"])
    ks = [2, -1, 0, 50]
    m = s.outcome_matrix("earnings", ks)
    for i in (0, 5, 11):
        pid = s.persons.person_id[i]
        rows = s.panel[s.panel.person_id == pid].set_index("k")["earnings"]
        for j, k in enumerate(ks):
            if k in rows.index:
                assert m[i, j] == rows[k]
            else:
                assert np.isnan(m[i, j])


def test_same_input_same_study():
    f = make_frames(n=15, periods=6)
    s1 = Study.from_frames(f["assignment"], f["panel"].sample(frac=1, random_state=3), households=f["households"])
    s2 = Study.from_frames(f["assignment"].sample(frac=1, random_state=4), f["panel"], households=f["households"])
    pd.testing.assert_frame_equal(s1.panel, s2.panel)
    pd.testing.assert_frame_equal(s1.persons, s2.persons)
    pd.testing.assert_frame_equal(s1.members, s2.members)


# ---------------------------------------------------------------- properties
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(4, 20), periods=st.integers(2, 10), drop_frac=st.floats(0, 0.5),
       strangers=st.integers(0, 5), seed=st.integers(0, 10_000), freq=st.sampled_from(["Q", "M", "Y", "W"]))
def test_no_row_lost_without_ledger_entry(n, periods, drop_frac, strangers, seed, freq):
    f = make_frames(n=n, periods=periods, seed=seed, freq=freq)
    panel = f["panel"].sample(frac=1 - drop_frac, random_state=seed)
    extra = pd.DataFrame({"person_id": [f"Z{i}" for i in range(strangers)],
                          "period": [panel["period"].iloc[0]] * strangers, "employed": 1})
    panel = pd.concat([panel, extra], ignore_index=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataWarning)  # partial linkage is warned about; counted below
            s = Study.from_frames(f["assignment"], panel, households=f["households"], min_linked_share=0)
    except DataContractError as exc:
        # a toy panel that ends before every randomization is refused (no follow-up at all)
        assume("ends before their randomization period" not in str(exc))
        raise
    led = s.ledger.to_frame()
    dropped_panel = int(led.loc[led.table == "panel", "n_rows"].sum())
    n_member_rows = len(s.members)  # one member per household, each in exactly one household
    assert len(s.panel) + n_member_rows + dropped_panel == len(panel)
    unlinked = led[led.reason.str.contains("no panel row")]
    assert int(unlinked["n_rows"].sum() if len(unlinked) else 0) == int((~s.persons.linked).sum())
    # k is ordinal(period) - ordinal(randomization period) at every frequency
    rp = s.persons.set_index("person_id")["randomization_period"]
    k = s.panel["period"].array.asi8 - rp.loc[s.panel.person_id].array.asi8
    assert (k == s.panel["k"].to_numpy()).all()


@settings(max_examples=30, deadline=None)
@given(mapping=st.dictionaries(st.sampled_from(["a", "b", "c"]), st.sampled_from(["x", "y", "z"]),
                               max_size=3).filter(lambda m: len(set(m.values())) == len(m)))
def test_column_map_is_idempotent(mapping):
    frame = pd.DataFrame({c: [1] for c in ("a", "b", "c", "d")})
    cm = ColumnMap({"panel": mapping})
    once = cm.apply(frame, "panel")
    assert list(cm.apply(once, "panel").columns) == list(once.columns)


def test_sites_table_is_validated_kept_and_read_from_folder(tmp_path):
    import ips_impact.errors as E

    f = _early(make_frames(n=10, periods=4))
    a = f["assignment"].assign(site=np.where(f["assignment"].region == "VL", "GTB", "Forem"))
    sites = pd.DataFrame({"site": ["GTB", "GTB", "Elsewhere"], "fidelity": [101, 108, 90],
                          "assessment_date": ["2018-06-01", "2019-06-01", "2019-01-01"]})
    s = Study.from_frames(a, f["panel"], sites=sites)
    assert len(s.sites) == 3
    led = s.ledger.to_frame()
    assert led.loc[led.table == "sites", "n_rows"].tolist() == [1, 1]  # unused site; Forem unassessed
    with pytest.raises(E.DataContractError) as ei:
        Study.from_frames(a, f["panel"], sites=sites.assign(fidelity=[101, 140, 90]))
    assert "25-125" in str(ei.value) and "Fix:" in str(ei.value)
    a.to_csv(tmp_path / "assignment.csv", index=False)
    f["panel"].to_csv(tmp_path / "panel.csv", index=False)
    sites.to_csv(tmp_path / "sites.csv", index=False)
    from ips_impact.study import load_study

    assert load_study(tmp_path).sites["fidelity"].tolist() == [101, 108, 90]


def test_benefit_fill_counts_only_cells_that_change():
    f = _early(make_frames(n=4, periods=2))
    p = f["panel"].assign(di_benefit=np.nan)
    pid = f["assignment"].person_id.iloc[0]
    b = pd.DataFrame({"person_id": [pid, pid], "month": ["2017-01", "2017-04"], "di_benefit": [1000.0, np.nan]})
    s = Study.from_frames(f["assignment"], p, benefits=b)
    led = s.ledger.to_frame()
    assert led.loc[led.reason.str.contains("filled"), "n_rows"].tolist() == [1]
    assert s.panel["di_benefit"].notna().sum() == 1
