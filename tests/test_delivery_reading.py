"""Issue #11, reading: a delivery as it comes (mapping file, separators, decimals, encodings,
Excel, dates, periods), and every ambiguous reading refused with both readings and the option."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import make_frames

import ips_impact as ii
from ips_impact import errors as E
from ips_impact.io.mapping import ColumnMap
from ips_impact.io.periods import date_to_period, parse_dates, parse_periods
from ips_impact.io.readers import read_table, text_to_numbers


def _write_csv(folder, frames, **kw):
    for name, f in frames.items():
        f.to_csv(folder / f"{name}.csv", index=False, **kw)


def _quiet_load(path, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", E.DataWarning)
        return ii.load_study(path, **kw)


# ---------------------------------------------------------------- dates
def test_day_first_dates_all_days_le_12_are_refused_with_both_readings():
    # before: 545 of 600 dates silently swapped (2 May -> 5 Feb)
    s = pd.Series(["02/05/2018", "03/06/2018", "11/12/2018"])
    with pytest.raises(E.DataContractError) as ei:
        parse_dates(s)
    msg = str(ei.value)
    assert "'02/05/2018' reads as 02 May 2018" in msg and "05 February 2018" in msg
    assert 'date_order = "DMY"' in msg and "column 'randomization_date'" in msg
    assert list(parse_dates(s, order="DMY").dt.strftime("%Y-%m-%d")) == ["2018-05-02", "2018-06-03", "2018-12-11"]


def test_day_first_detected_when_some_day_exceeds_12_and_all_rows_read():
    # before: only the rows with a day > 12 were refused
    s = pd.Series(["02/05/2018", "13/06/2018"])
    assert list(parse_dates(s).dt.strftime("%Y-%m-%d")) == ["2018-05-02", "2018-06-13"]


def test_mixed_date_orders_are_refused():
    with pytest.raises(E.DataContractError, match="mixes day-first and month-first"):
        parse_dates(pd.Series(["13/02/2018", "02/13/2018"]))


def test_excel_serials_and_yyyymmdd_integers_are_dates_not_1970():
    assert parse_dates(pd.Series([43222, 43223])).dt.strftime("%Y-%m-%d").tolist() == ["2018-05-02", "2018-05-03"]
    assert parse_dates(pd.Series([20180502])).iloc[0] == pd.Timestamp("2018-05-02")
    assert parse_dates(pd.Series(["20180502"])).iloc[0] == pd.Timestamp("2018-05-02")
    with pytest.raises(E.DataContractError, match="neither YYYYMMDD"):
        parse_dates(pd.Series([20180502, 43222]))


def test_excel_serial_randomization_dates_give_the_right_event_time(frames):
    a = frames["assignment"].copy()
    serial = (a["randomization_date"] - pd.Timestamp("1899-12-30")).dt.days
    s1 = ii.Study.from_frames(frames["assignment"], frames["panel"])
    s2 = ii.Study.from_frames(a.assign(randomization_date=serial), frames["panel"])
    pd.testing.assert_frame_equal(s1.panel, s2.panel)
    assert s2.k_range[1] < 20  # before: k ran 176…219


def test_tz_aware_dates_use_their_local_date(frames):
    a = frames["assignment"].copy()
    local = a["randomization_date"].dt.tz_localize("Europe/Brussels") + pd.Timedelta(hours=23, minutes=30)
    s1 = ii.Study.from_frames(frames["assignment"], frames["panel"])
    s2 = ii.Study.from_frames(a.assign(randomization_date=local), frames["panel"])
    pd.testing.assert_series_equal(s1.persons["randomization_date"], s2.persons["randomization_date"])
    # an ISO text with an offset: the wall-clock date, not the UTC one
    assert parse_dates(pd.Series(["2018-05-02T23:30:00+02:00"])).iloc[0] == pd.Timestamp("2018-05-02")


def test_tz_aware_panel_periods(frames):
    p = frames["panel"].copy()
    p["period"] = pd.PeriodIndex(p["period"], freq="Q").start_time.tz_localize("Europe/Brussels")
    s = ii.Study.from_frames(frames["assignment"], p, frequency="Q")
    assert s.frequency == "Q" and len(s.panel) == len(frames["panel"]) // 2


def test_randomization_period_is_checked_against_the_date(frames):
    a = frames["assignment"].copy()
    a["randomization_period"] = a["randomization_date"].dt.to_period("Q").astype(str)
    ii.Study.from_frames(a, frames["panel"])  # consistent: fine
    a.loc[[1, 4], "randomization_period"] = (a.loc[[1, 4], "randomization_date"].dt.to_period("Q") + 1).astype(str)
    with pytest.raises(E.DataContractError) as ei:
        ii.Study.from_frames(a, frames["panel"])
    msg = str(ei.value)
    assert "disagrees with the period of randomization_date for 2 persons" in msg and "(2 rows)" in msg


def test_takeup_before_randomization_is_an_error_with_counts(frames):
    a = frames["assignment"]
    start = a["randomization_date"] + pd.Timedelta(days=30)
    start.iloc[[0, 2, 3]] = a["randomization_date"].iloc[[0, 2, 3]] - pd.Timedelta(days=5)
    takeup = pd.DataFrame({"person_id": a["person_id"], "ips_start_date": start.where(a["arm"] == 1)})
    takeup.loc[[0, 2, 3], "ips_start_date"] = start.iloc[[0, 2, 3]]
    with pytest.raises(E.DataContractError) as ei:
        ii.Study.from_frames(a, frames["panel"], takeup=takeup)
    assert "IPS starts before the randomization date for 3 persons" in str(ei.value)
    assert "table 'takeup'" in str(ei.value)


def test_panel_that_never_reaches_randomization_is_an_error_with_counts():
    f = make_frames(n=10, periods=4)  # 2017 only; randomized in 2018
    with pytest.raises(E.DataContractError) as ei:
        ii.Study.from_frames(f["assignment"], f["panel"])
    assert "the panel of 10 randomized persons" in str(ei.value) and "ends before" in str(ei.value)
    f = make_frames(n=20, periods=6)  # some persons randomized after 2018Q2: warned, ledgered
    with pytest.warns(E.DataWarning, match="ends before their randomization period"):
        s = ii.Study.from_frames(f["assignment"], f["panel"])
    led = s.ledger.to_frame()
    assert led.reason.str.contains("ends before randomization").any()


# ---------------------------------------------------------------- periods
@pytest.mark.parametrize("spelling", ["{y}/{q}", "{y}-{q}", "{q}/{y}"])
def test_quarters_written_like_months_are_refused_as_ambiguous(spelling):
    vals = pd.Series([spelling.format(y=y, q=q) for y in (2018, 2019) for q in (1, 2, 3, 4)])
    with pytest.raises(E.DataContractError) as ei:
        parse_periods(vals)
    msg = str(ei.value)
    assert "reads as quarter 2018Q1 or as month 2018-01" in msg and 'frequency = "Q"' in msg
    periods, freq = parse_periods(vals, "Q")
    assert freq == "Q" and periods.astype(str).tolist()[:2] == ["2018Q1", "2018Q2"]
    assert parse_periods(vals, "YYYY/q")[1] == "Q"  # a period format settles it too


@pytest.mark.parametrize("vals, expected", [
    (["2019T1", "2019T2"], ["2019Q1", "2019Q2"]),      # trimestre
    (["2019K3", "2019K4"], ["2019Q3", "2019Q4"]),      # kwartaal
    (["20191", "20194"], ["2019Q1", "2019Q4"]),        # YYYYq
    (["201901", "201912"], ["2019-01", "2019-12"]),    # YYYYMM
    (["2019/1", "2019/7"], ["2019-01", "2019-07"]),    # a number above 4: months
    (["Q1-2019", "T2/2019"], ["2019Q1", "2019Q2"]),
])
def test_period_spellings(vals, expected):
    periods, _ = parse_periods(pd.Series(vals))
    assert periods.astype(str).tolist() == expected


def test_integer_yyyymm_periods_are_ambiguous_until_said():
    vals = pd.Series([201901, 201902, 201903])
    with pytest.raises(E.DataContractError, match="integer periods .* or as YYYYMM months"):
        parse_periods(vals)
    assert parse_periods(vals, "M")[0].astype(str).tolist() == ["2019-01", "2019-02", "2019-03"]
    assert parse_periods(vals, "int")[1] == "int"


def test_validate_refuses_quarters_as_months_on_the_command_line(tmp_path, capsys):
    # before: k from -56 to 60 and exit 0
    from ips_impact.cli import main

    f = make_frames(n=20, periods=12)
    f["panel"]["period"] = pd.PeriodIndex(f["panel"]["period"], freq="Q").map(lambda p: f"{p.year}/{p.quarter}")
    _write_csv(tmp_path, f)
    assert main(["-q", "validate", str(tmp_path)]) == 2
    assert "reads as quarter" in capsys.readouterr().err
    (tmp_path / "map.toml").write_text('[panel]\nfrequency = "Q"\n')
    assert main(["-q", "validate", str(tmp_path), "--column-map", str(tmp_path / "map.toml")]) == 0


# ---------------------------------------------------------------- read options
def test_semicolon_decimal_comma_file_is_read(tmp_path):
    # before: "missing required columns … rename the columns"
    f = make_frames(n=20, periods=12)
    _write_csv(tmp_path, f, sep=";", decimal=",")
    s = _quiet_load(tmp_path)
    ref = ii.Study.from_frames(f["assignment"], f["panel"], households=f["households"])
    np.testing.assert_allclose(s.panel["earnings"], ref.panel["earnings"])


def test_ambiguous_separator_is_refused(tmp_path):
    (tmp_path / "panel.csv").write_text("a;b,c\n1;2,3\n")
    with pytest.raises(E.DataContractError, match="separator cannot be told"):
        read_table(tmp_path / "panel.csv")
    got = read_table(tmp_path / "panel.csv", options=ColumnMap({"read": {"separator": ";"}}).read_options("panel"))
    assert list(got.columns) == ["a", "b,c"]


def test_decimal_comma_detected_and_thousands_ambiguity_refused():
    assert text_to_numbers(pd.Series(["46,5", "30"])).tolist() == [46.5, 30.0]
    with pytest.raises(E.DataContractError) as ei:
        text_to_numbers(pd.Series(["1,234", "2,500"]), column="earnings")
    assert "read as 1.234 (decimal comma) or 1234 (thousands separator)" in str(ei.value)
    with pytest.raises(E.DataContractError, match=r"2.5 \(decimal point\) or 2500"):
        text_to_numbers(pd.Series(["2.500", "3.125"]))
    assert text_to_numbers(pd.Series(["2.500"]), thousands=".").tolist() == [2500]
    assert text_to_numbers(pd.Series(["1.234,5", "12,25"])).tolist() == [1234.5, 12.25]


def test_non_utf8_file_is_refused_with_two_readings_then_read_with_encoding(tmp_path):
    (tmp_path / "assignment.csv").write_bytes("person_id;arm;opleiding\nP1;1;hogeschool\nP2;0;école\n".encode("cp1252"))
    with pytest.raises(E.DataContractError) as ei:
        read_table(tmp_path / "assignment.csv")
    assert "not UTF-8" in str(ei.value) and "Windows-1252" in str(ei.value) and 'encoding = "cp1252"' in str(ei.value)
    got = read_table(tmp_path / "assignment.csv", options=ColumnMap({"read": {"encoding": "cp1252"}}).read_options("a"))
    assert got["opleiding"].tolist() == ["hogeschool", "école"]


def test_excel_workbook_sheet(tmp_path):
    f = make_frames(n=20, periods=12)
    with pd.ExcelWriter(tmp_path / "Panel.xlsx") as xw:
        f["panel"].to_excel(xw, sheet_name="LMD", index=False)
        pd.DataFrame({"x": [1]}).to_excel(xw, sheet_name="notes", index=False)
    f["assignment"].to_csv(tmp_path / "ASSIGNMENT.CSV", index=False)  # case-insensitive names
    with pytest.raises(E.DataContractError, match='has 2 sheets.*sheet = "LMD"'):
        _quiet_load(tmp_path)
    (tmp_path / "map.toml").write_text('[panel]\nsheet = "LMD"\n')
    s = _quiet_load(tmp_path, column_map=tmp_path / "map.toml")
    assert len(s.panel) == len(f["panel"]) // 2


def test_key_named_otherwise_keeps_its_zeros(tmp_path):
    # before: INSZ read as a number before the map applied: 00001148413 -> 1148413
    f = make_frames(n=20, periods=12)
    ids = {p: f"{i:011d}" for i, p in enumerate(f["assignment"]["person_id"], start=1148400)}
    ids.update({p: f"{i:011d}" for i, p in enumerate(f["households"]["person_id"][20:], start=2148400)})
    a = f["assignment"].assign(person_id=f["assignment"]["person_id"].map(ids)).rename(columns={"person_id": "INSZ"})
    p = f["panel"].assign(person_id=f["panel"]["person_id"].map(ids)).rename(columns={"person_id": "INSZ"})
    a.to_csv(tmp_path / "assignment.csv", index=False)
    p.to_csv(tmp_path / "panel.csv", index=False)
    (tmp_path / "map.toml").write_text('[assignment.columns]\nINSZ = "person_id"\n[panel.columns]\nINSZ = "person_id"\n')
    s = _quiet_load(tmp_path, column_map=tmp_path / "map.toml")
    assert s.persons["person_id"].str.len().eq(11).all() and s.persons["linked"].all()


# ---------------------------------------------------------------- mapping file
def test_mapping_file_errors_name_the_line_and_key(tmp_path):
    m = tmp_path / "m.toml"
    m.write_text('[read]\nseparator = ";"\n\n[panel]\nseperator = ","\n')
    with pytest.raises(E.DataContractError) as ei:
        ColumnMap.from_toml(m)
    assert "line 5" in str(ei.value) and "'seperator'" in str(ei.value) and "[panel]" in str(ei.value)
    m.write_text('[read]\ndecimal = ";"\n')
    with pytest.raises(E.DataContractError, match=r"line 2, \[read\]: decimal = ';' is not a decimal mark"):
        ColumnMap.from_toml(m)
    m.write_text('[linkage]\nmin_share = 2\n')
    with pytest.raises(E.DataContractError, match="line 2.*not a share"):
        ColumnMap.from_toml(m)
    m.write_text('[pannel]\na = "b"\n')
    with pytest.raises(E.DataContractError, match="unknown table 'pannel'"):
        ColumnMap.from_toml(m)


def test_recodings_of_arm_region_role_and_sep_codes(frames):
    a = frames["assignment"].copy()
    a["arm"] = a["arm"].map({1: "ja", 0: "nee"})
    a["region"] = a["region"].map({"VL": "Vlaams Gewest", "WAL": "Région wallonne"})
    h = frames["households"].assign(role=frames["households"]["role"].map({"index": "ref", "partner": "PARTNER_X"}))
    p = frames["panel"].drop(columns="employed").assign(sep_code=np.resize(["1.1.1", "2.1.1", "1.2.1"],
                                                                             len(frames["panel"])))
    cmap = {"assignment": {"values": {"arm": {"ja": 1, "nee": 0}}},
            "households": {"values": {"role": {"ref": "index", "PARTNER_X": "partner"}}}}
    s = ii.Study.from_frames(a, p, households=h, column_map=cmap)
    assert s.design.n_treated == 20 and set(s.persons["region"]) == {"VL", "WAL"}
    assert s.panel["employed"].notna().all()  # before: all NaN for codes written 1.1.1
    assert set(s.members["role"]) == {"partner"}
    with pytest.raises(E.DataContractError, match="values other than 0/1.*assignment.values.arm"):
        ii.Study.from_frames(a, p)


def test_builtin_labels_and_nis_codes(frames):
    a = frames["assignment"].copy()
    a["arm"] = a["arm"].map({1: "IPS", 0: "témoin"})
    a["region"] = a["region"].map({"VL": "02000", "WAL": "03000"})
    s = ii.Study.from_frames(a, frames["panel"])
    assert set(s.persons["region"]) == {"VL", "WAL"} and s.design.n_control == 20


def test_unknown_sep_codes_are_refused(frames):
    p = frames["panel"].drop(columns="employed").assign(sep_code="werknemer")
    with pytest.raises(E.DataContractError, match="not LMD codes.*panel.values.sep_code"):
        ii.Study.from_frames(frames["assignment"], p)


@pytest.mark.parametrize("unit", ["ns", "us", "s"])
def test_date_to_period_equals_pandas_to_period(unit):
    # quarters, months and years are read off month counts; they must be pandas' own
    # periods for any date (before 1970 too, with a time of day, NaT) and keep the index
    rng = np.random.default_rng(0)
    days = rng.integers(-40_000, 40_000, 3_000).astype("datetime64[D]").astype(f"datetime64[{unit}]")
    d = pd.Series(days + rng.integers(0, 86_400, 3_000).astype("timedelta64[s]"),
                  index=rng.permutation(3_000), name="randomization_date")
    d.iloc[[3, 77, 2_000]] = pd.NaT
    for ours, theirs in (("Q", "Q-DEC"), ("M", "M"), ("Y", "Y-DEC"), ("W", "W-SUN")):
        got = date_to_period(d, ours)
        pd.testing.assert_series_equal(got, d.dt.to_period(theirs))
        assert np.array_equal(got.array.asi8, d.dt.to_period(theirs).array.asi8)
