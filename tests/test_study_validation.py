"""One test per validation rule of the data contract: it triggers the rule and checks the message."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import ips_impact.errors as E
from ips_impact.study import Study, load_study
from ips_impact.validate import looks_like_national_number


def build(f, **kw):
    return Study.from_frames(f["assignment"], f["panel"], households=f.get("households"), **kw)


def assert_message(err: Exception, *parts: str) -> None:
    msg = str(err)
    for p in parts:
        assert p in msg, f"{p!r} not in message: {msg}"
    assert "Fix:" in msg


def test_valid_frames_build(frames):
    s = build(frames)
    assert s.n_persons == 40 and s.frequency == "Q"
    assert set(s.persons["arm"]) == {0, 1}


def test_missing_required_column(frames):
    a = frames["assignment"].drop(columns="arm")
    with pytest.raises(E.DataContractError) as ei:
        Study.from_frames(a, frames["panel"])
    assert_message(ei.value, "table 'assignment'", "'arm'", "missing required column")


def test_missing_randomization_date_and_period(frames):
    a = frames["assignment"].drop(columns="randomization_date")
    with pytest.raises(E.DataContractError) as ei:
        Study.from_frames(a, frames["panel"])
    assert_message(ei.value, "randomization_date or randomization_period")


def test_duplicate_person_in_assignment(frames):
    a = pd.concat([frames["assignment"], frames["assignment"].iloc[[3, 5]]])
    with pytest.raises(E.DataContractError) as ei:
        Study.from_frames(a, frames["panel"])
    assert_message(ei.value, "table 'assignment'", "duplicate person", "(4 rows)", "P0003A")


def test_duplicate_person_period_in_panel(frames):
    p = pd.concat([frames["panel"], frames["panel"].iloc[[0]]])
    with pytest.raises(E.DataContractError) as ei:
        Study.from_frames(frames["assignment"], p)
    assert_message(ei.value, "table 'panel'", "duplicate person × period", "(2 rows)", "P0000A")


def test_arm_values_outside_contract(frames):
    a = frames["assignment"].copy()
    a["arm"] = a["arm"].astype(object)
    a.loc[[1, 2], "arm"] = "treated"
    with pytest.raises(E.DataContractError) as ei:
        Study.from_frames(a, frames["panel"])
    assert_message(ei.value, "column 'arm'", "(2 rows)", "'treated'", "1 = IPS")


def test_arm_text_codes_accepted(frames):
    a = frames["assignment"].copy()
    a["arm"] = np.where(a["arm"] == 1, "IPS", " control ")
    s = Study.from_frames(a, frames["panel"])
    assert s.persons["arm"].tolist() == build(frames).persons["arm"].tolist()


def test_no_contrast_overall(frames):
    a = frames["assignment"].assign(arm=1)
    with pytest.raises(E.DesignError) as ei:
        Study.from_frames(a, frames["panel"])
    assert_message(ei.value, "no contrast", "(40 rows)")


def test_one_arm_stratum_is_set_aside_with_ledger_and_warning(frames):
    # issue #10: estimatr / clubSandwich let such a block drop out; refusing the whole study was wrong
    a = frames["assignment"].copy()
    a.loc[a.region == "WAL", "arm"] = 0
    with pytest.warns(E.DataWarning, match=r"1 randomization strata hold one arm only \(WAL\).*20 persons"):
        s = Study.from_frames(a, frames["panel"])
    assert s.n_persons == 20 and set(s.persons["stratum"]) == {"VL"}
    assert s.design.n_strata == 1
    led = s.ledger.to_frame()
    row = led[led.reason.str.contains("one arm only")].iloc[0]
    assert (row.n_persons, row.n_treated, row.n_control, row.action) == (20, 0, 20, "set aside")
    assert led.reason.str.contains("set aside with their one-arm stratum").any()


def test_no_contrast_at_all_is_refused(frames):
    a = frames["assignment"].copy()
    a["arm"] = 0
    with pytest.raises(E.DesignError) as ei:
        Study.from_frames(a, frames["panel"])
    assert_message(ei.value, "column 'arm'", "no contrast")


def test_unparseable_randomization_date(frames):
    a = frames["assignment"].copy()
    a["randomization_date"] = a["randomization_date"].dt.strftime("%d/%m/%Y")
    a.loc[7, "randomization_date"] = "31/02/2019"
    with pytest.raises(E.DataContractError) as ei:
        Study.from_frames(a, frames["panel"])
    assert_message(ei.value, "column 'randomization_date'", "cannot be read", "(1 row)", "'31/02/2019'", "YYYY-MM-DD")


def test_missing_randomization_date(frames):
    a = frames["assignment"].copy()
    a["randomization_date"] = a["randomization_date"].dt.strftime("%Y-%m-%d")
    a.loc[8, "randomization_date"] = None
    with pytest.raises(E.DataContractError) as ei:
        Study.from_frames(a, frames["panel"])
    assert_message(ei.value, "column 'randomization_date'", "missing randomization dates", "(1 row)", "row 8")


def test_mixed_period_frequencies(frames):
    p = frames["panel"].copy()
    p.loc[p.index[:3], "period"] = ["2017-01", "2017-02", "2017-03"]
    with pytest.raises(E.DataContractError) as ei:
        Study.from_frames(frames["assignment"], p)
    assert_message(ei.value, "column 'period'", "mixes period frequencies", "M: 3 rows")


def test_unreadable_period(frames):
    p = frames["panel"].copy()
    p.loc[p.index[:2], "period"] = "spring 2017"
    with pytest.raises(E.DataContractError) as ei:
        Study.from_frames(frames["assignment"], p)
    assert_message(ei.value, "cannot be read", "'spring 2017'", "(2 rows)")


@pytest.mark.parametrize("column", ["earnings", "fte"])
def test_negative_amounts(frames, column):
    p = frames["panel"].copy()
    p.loc[p.index[[4, 9]], column] = -5.0
    with pytest.raises(E.DataContractError) as ei:
        Study.from_frames(frames["assignment"], p)
    assert_message(ei.value, f"column '{column}'", "negative", "(2 rows)", "P0000A")


def test_negative_benefit_amount(frames):
    b = pd.DataFrame({"person_id": ["P0000A", "P0001A"], "month": ["2017-01", "2017-02"],
                      "on_di": [1, 1], "di_benefit": [1100.0, -3.0]})
    with pytest.raises(E.DataContractError) as ei:
        build(frames, benefits=b)
    assert_message(ei.value, "table 'benefits'", "column 'di_benefit'", "negative", "P0001A")


def test_binary_column_with_other_values(frames):
    p = frames["panel"].copy()
    p.loc[p.index[:3], "on_di"] = 2
    with pytest.raises(E.DataContractError) as ei:
        Study.from_frames(frames["assignment"], p)
    assert_message(ei.value, "column 'on_di'", "0/1 column", "(3 rows)", "2")


def test_unknown_household_role(frames):
    h = frames["households"].copy()
    h.loc[45, "role"] = "lodger"
    with pytest.raises(E.DataContractError) as ei:
        build({**frames, "households": h})
    assert_message(ei.value, "table 'households'", "column 'role'", "unknown household roles", "'lodger'", "LIPRO")


def test_lipro_codes_map_to_roles(frames):
    h = frames["households"].copy()
    h.loc[h.role == "partner", "role"] = "UNM0"
    s = build({**frames, "households": h})
    assert set(s.members["role"]) == {"partner"}


def test_person_in_two_households_at_once(frames):
    h = frames["households"].copy()
    extra = pd.DataFrame({"household_id": ["H0001"], "person_id": ["Q0000B"], "role": ["other"]})
    h = pd.concat([h, extra], ignore_index=True)
    with pytest.raises(E.LinkageError) as ei:
        build({**frames, "households": h})
    assert_message(ei.value, "two households", "Q0000B", "valid_to")


def test_person_moving_between_households_is_fine(frames):
    h = frames["households"].copy()
    h["valid_from"] = pd.NaT
    h["valid_to"] = pd.NaT
    h.loc[h.person_id == "Q0000B", "valid_to"] = pd.Timestamp("2016-12-31")
    extra = pd.DataFrame({"household_id": ["H0001"], "person_id": ["Q0000B"], "role": ["other"],
                          "valid_from": [pd.Timestamp("2017-01-01")], "valid_to": [pd.NaT]})
    s = build({**frames, "households": pd.concat([h, extra], ignore_index=True)})
    assert (s.members.query("person_id == 'Q0000B'")["index_person_id"] == "P0001A").all()


def _valid_nrn(body: int) -> str:
    return f"{body:09d}{97 - body % 97:02d}"


def test_national_number_in_key_is_refused_and_not_echoed(frames):
    a = frames["assignment"].copy()
    nrn = _valid_nrn(850730033)
    a.loc[2, "person_id"] = nrn
    with pytest.raises(E.DataContractError) as ei:
        Study.from_frames(a, frames["panel"])
    assert_message(ei.value, "column 'person_id'", "national register", "row 2", "pseudonymise")
    assert nrn not in str(ei.value)


def test_national_number_detector():
    born_2000s = 10_203_123  # 01.02.03-123 → uses the 2000000000 + n rule
    vals = pd.Series([_valid_nrn(850730033), "85.07.30-033.28", f"{born_2000s:09d}{97 - (2_000_000_000 + born_2000s) % 97:02d}",
                      "85073003300", "P0001", "12345"])
    flags = looks_like_national_number(vals).tolist()
    assert flags[0] and flags[2]
    assert flags[3:] == [False, False, False]


@pytest.mark.parametrize("table", ["assignment", "panel"])
def test_empty_table(frames, table):
    f = dict(frames)
    f[table] = f[table].iloc[:0]
    with pytest.raises(E.DataContractError) as ei:
        Study.from_frames(f["assignment"], f["panel"])
    assert_message(ei.value, f"table '{table}'", "is empty")


def test_requested_outcome_absent_or_not_numeric(frames):
    p = frames["panel"].assign(nace="C")
    s = Study.from_frames(frames["assignment"], p)
    with pytest.raises(E.DataContractError) as ei:
        s.outcome_matrix("wages", [0])
    assert_message(ei.value, "'wages' is not in the panel", "employed")
    with pytest.raises(E.DataContractError) as ei:
        s.require_outcome("nace")
    assert_message(ei.value, "not numeric")


def test_horizon_outside_follow_up(frames):
    s = build(frames)
    with pytest.raises(E.EstimationError) as ei:
        s.outcome_at("employed", 99)
    assert_message(ei.value, "horizon 99", "outside the observed follow-up")


def test_unknown_region(frames):
    a = frames["assignment"].copy()
    a.loc[0, "region"] = "Limburg"
    with pytest.raises(E.DataContractError) as ei:
        Study.from_frames(a, frames["panel"])
    assert_message(ei.value, "column 'region'", "'Limburg'", "VL")


def test_missing_key(frames):
    p = frames["panel"].copy()
    p.loc[p.index[5], "person_id"] = None
    with pytest.raises(E.DataContractError) as ei:
        Study.from_frames(frames["assignment"], p)
    assert_message(ei.value, "column 'person_id'", "missing keys", "(1 row)")


def test_not_a_dataframe(frames):
    with pytest.raises(E.DataContractError) as ei:
        Study.from_frames(frames["assignment"].to_dict(), frames["panel"])
    assert_message(ei.value, "expected a pandas DataFrame")


def test_unlinked_persons_and_strangers_go_to_ledger(frames):
    p = frames["panel"]
    p = p[p.person_id != "P0003A"]
    stranger = pd.DataFrame({"person_id": ["Z9"] * 2, "period": ["2017Q1", "2017Q2"], "employed": [1, 0]})
    s = Study.from_frames(frames["assignment"], pd.concat([p, stranger], ignore_index=True),
                          households=frames["households"])
    led = s.ledger.to_frame()
    unl = led[led.reason.str.contains("no panel row")]
    arm3 = int(frames["assignment"].set_index("person_id").loc["P0003A", "arm"])
    assert unl["n_rows"].iloc[0] == 1 and unl["n_treated"].iloc[0] == arm3
    assert led[led.reason.str.contains("neither randomized")]["n_rows"].iloc[0] == 2
    assert not s.persons.set_index("person_id").loc["P0003A", "linked"]
    rep = s.linkage_report()
    assert rep.by_arm["n_linked"].sum() == 39


def test_csv_folder_round_trip(tmp_path, frames):
    for name, f in frames.items():
        f.to_csv(tmp_path / f"{name}.csv", index=False)
    s = load_study(tmp_path)
    assert s.n_persons == 40 and len(s.members) == 40 * 12


def test_missing_required_file(tmp_path, frames):
    frames["assignment"].to_csv(tmp_path / "assignment.csv", index=False)
    with pytest.raises(E.DataContractError) as ei:
        load_study(tmp_path)
    assert_message(ei.value, "no file for the required table 'panel'", "panel.parquet")


def test_malformed_csv_file(tmp_path, frames):
    frames["assignment"].to_csv(tmp_path / "assignment.csv", index=False)
    (tmp_path / "panel.csv").write_text('person_id,period\n"P0000A,2017Q1\n')
    with pytest.raises(E.DataContractError) as ei:
        load_study(tmp_path)
    assert_message(ei.value, "table 'panel'", "cannot be read")


def test_column_map(frames):
    p = frames["panel"].rename(columns={"earnings": "gross_wage", "period": "quarter"})
    s = Study.from_frames(frames["assignment"], p, column_map={"panel": {"gross_wage": "earnings", "quarter": "period"}})
    assert "earnings" in s.panel.columns
    with pytest.raises(E.DataContractError) as ei:
        Study.from_frames(frames["assignment"], frames["panel"], column_map={"fte": "earnings"})
    assert_message(ei.value, "duplicate columns")


def test_no_key_in_ledger_or_reports(frames):
    p = frames["panel"]
    p = p[p.person_id != "P0003A"]
    s = Study.from_frames(frames["assignment"], p, households=frames["households"])
    text = repr(s.ledger) + repr(s.linkage_report()) + repr(s.consort()) + repr(s)
    assert "P00" not in text and "Q00" not in text and "H00" not in text
