"""``load_study(path, engine="duckdb")`` gives the Study of the pandas engine, to the last bit (issue 15).

Every test builds a delivery in parquet from the synthetic trial, reads it with both
engines and compares the Study strictly: the frames with ``check_exact=True`` and their
dtypes, the ledger, the design arrays, the near misses of the linkage, the scale
fingerprint (``tests/scale_fingerprint.py``) and the ``itt`` / ``itt_by_period``
estimates with ``==``.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scale_fingerprint import REFERENCE, fingerprint

import ips_impact as ii
from ips_impact.errors import DataContractError, UsageError

pytest.importorskip("duckdb")

NEITHER = "rows of persons neither randomized nor in a baseline household roster"


def _load(path: Path, **kw: object) -> ii.Study:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unlinked persons: the warnings are the same in both engines
        return ii.load_study(path, **kw)


def assert_same_study(a: ii.Study, b: ii.Study) -> None:
    """Strict equality of two studies: frames, dtypes, ledger, design, linkage, estimates."""
    for attr in ("persons", "panel", "members", "households"):
        x, y = getattr(a, attr), getattr(b, attr)
        if x is None or y is None:
            assert x is None and y is None, attr
            continue
        assert list(x.dtypes.astype(str)) == list(y.dtypes.astype(str)), attr
        pd.testing.assert_frame_equal(x, y, check_exact=True, check_dtype=True, check_index_type=True,
                                      check_column_type=True, obj=attr)
    pd.testing.assert_frame_equal(a.ledger.to_frame(), b.ledger.to_frame(), check_exact=True, obj="ledger")
    da, db = a.design, b.design
    assert np.array_equal(da.arm, db.arm) and da.arm.dtype == db.arm.dtype
    assert np.array_equal(da.stratum, db.stratum) and da.stratum_labels == db.stratum_labels
    assert (da.household is None) == (db.household is None)
    if da.household is not None:
        assert np.array_equal(da.household, db.household)
    ra, rb = a.linkage_report(), b.linkage_report()
    pd.testing.assert_frame_equal(ra.near_misses, rb.near_misses, check_exact=True, obj="near misses")
    pd.testing.assert_frame_equal(ra.to_frame(), rb.to_frame(), check_exact=True, obj="linkage")
    pd.testing.assert_frame_equal(ra.other_tables, rb.other_tables, check_exact=True, obj="other tables")
    assert a.frequency == b.frequency and a.covariates == b.covariates
    assert fingerprint(a) == fingerprint(b)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ea = ii.itt(a, "employed", horizon=6).tidy()
        eb = ii.itt(b, "employed", horizon=6).tidy()
        assert (ea["estimate"].to_numpy() == eb["estimate"].to_numpy()).all()
        assert (ea["std_error"].to_numpy() == eb["std_error"].to_numpy()).all()
        pa_, pb_ = (ii.itt_by_period(s, "employed", periods=range(1, 9)).tidy() for s in (a, b))
        num = pa_.select_dtypes("number").columns
        assert np.array_equal(pa_[num].to_numpy(), pb_[num].to_numpy(), equal_nan=True)


@pytest.fixture(scope="module")
def trial() -> ii.synthetic.SyntheticTrial:
    return ii.synthetic.generate(n_persons=300, seed=5)


@pytest.fixture
def delivery(tmp_path: Path, trial: ii.synthetic.SyntheticTrial) -> Path:
    folder = tmp_path / "delivery"
    trial.write(folder)
    for extra in ("truth", "truth_late", "truth_rmst"):
        (folder / f"{extra}.parquet").unlink()
    return folder


def _panel(folder: Path) -> pd.DataFrame:
    return pq.read_table(folder / "panel.parquet").to_pandas()


def _write(frame: pd.DataFrame, path: Path) -> None:
    frame.to_parquet(path, index=False, engine="pyarrow", compression="zstd")


def test_all_tables_same_study_as_pandas_and_the_reference(delivery: Path) -> None:
    assert {p.stem for p in delivery.glob("*.parquet")} >= {"assignment", "panel", "households", "benefits",
                                                            "takeup"}
    a, b = _load(delivery), _load(delivery, engine="duckdb")
    assert_same_study(a, b)
    # the same trial (n=300, seed=5) through the pandas engine before the population-scale work
    assert fingerprint(b) == json.loads(REFERENCE.read_text())["parquet_n300_s5"]


def test_extra_persons_and_near_misses_are_ledgered_as_by_pandas(delivery: Path, trial) -> None:
    panel = _panel(delivery)
    study_ids = sorted(trial.assignment["person_id"])
    # 40 persons of a population panel, neither randomized nor in the roster
    donors = panel[panel["person_id"].isin(study_ids[:40])].copy()
    donors["person_id"] = "POP" + donors["person_id"].str[1:]
    # two randomized persons whose panel keys are near misses: a trailing space, a case change
    a_key, b_key = study_ids[50], study_ids[51]
    panel.loc[panel["person_id"] == a_key, "person_id"] = a_key + " "
    panel.loc[panel["person_id"] == b_key, "person_id"] = b_key.lower()
    panel = pd.concat([panel, donors], ignore_index=True)
    _write(panel, delivery / "panel.parquet")
    a, b = _load(delivery), _load(delivery, engine="duckdb")
    assert_same_study(a, b)
    entry = b.ledger.to_frame().query("reason == @NEITHER")
    n_near = int((panel["person_id"].isin([a_key + " ", b_key.lower()])).sum())
    assert entry["n_rows"].tolist() == [len(donors) + n_near]
    assert entry["n_persons"].tolist() == [42]
    near = b.linkage_report().near_misses.query("table == 'panel'")
    assert dict(zip(near["kind"], near["n_persons"])) == {"surrounding spaces": 1, "letter case": 1,
                                                          "several of these at once": 2}
    # the rows were left out in SQL: pandas never saw them, the counts came back beside the frames
    from ips_impact.io import duck

    frames, outside, _ = duck.read_delivery(delivery, ii.ColumnMap())
    assert len(frames["panel"]) == len(panel) - len(donors) - n_near
    assert (outside.n_rows, outside.n_persons) == (len(donors) + n_near, 42)
    assert sorted(outside.keys) == sorted(set(donors["person_id"]) | {a_key + " ", b_key.lower()})


def test_shuffled_rows_give_the_same_study(delivery: Path, tmp_path: Path) -> None:
    a = _load(delivery, engine="duckdb")
    for name in ("panel", "assignment", "households", "benefits"):
        f = pq.read_table(delivery / f"{name}.parquet").to_pandas()
        _write(f.sample(frac=1.0, random_state=11).reset_index(drop=True), delivery / f"{name}.parquet")
    b = _load(delivery, engine="duckdb", duckdb_config={"threads": 1, "memory_limit": "512MB"})
    assert_same_study(a, b)


def test_panel_as_parquet_parts_gives_the_single_file_study(delivery: Path, tmp_path: Path) -> None:
    a = _load(delivery, engine="duckdb")
    panel = _panel(delivery)
    (delivery / "panel.parquet").unlink()
    parts = delivery / "Panel"
    parts.mkdir()
    year = panel["period"].str[:4]
    for y in sorted(year.unique()):  # one file per year, as LMD deliveries come
        _write(panel[year == y], parts / f"part-{y}.parquet")
    (parts / "_SUCCESS").write_text("")  # Spark's marker is ignored
    assert len(list(parts.glob("part-*.parquet"))) > 3
    assert_same_study(a, _load(delivery, engine="duckdb"))
    # the same parts named by a glob in the mapping file
    parts.rename(delivery / "lmd")
    c = _load(delivery, engine="duckdb", column_map={"panel": {"file": "lmd/part-*.parquet"}})
    assert_same_study(a, c)


def test_parts_folder_with_other_files_is_refused(delivery: Path) -> None:
    panel = _panel(delivery)
    (delivery / "panel.parquet").unlink()
    (delivery / "panel").mkdir()
    _write(panel, delivery / "panel" / "part-0.parquet")
    panel.to_csv(delivery / "panel" / "part-1.csv", index=False)
    with pytest.raises(DataContractError, match="parquet parts only"):
        _load(delivery, engine="duckdb")


def test_missing_duckdb_is_a_usage_error_with_the_fix(delivery: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "duckdb", None)  # `import duckdb` raises ImportError
    with pytest.raises(UsageError, match=r"pip install 'ips_impact\[scale\]'"):
        ii.load_study(delivery, engine="duckdb")


def test_bad_engine_and_settings_are_usage_errors(delivery: Path) -> None:
    with pytest.raises(UsageError, match="engine must be one of 'pandas', 'duckdb'"):
        ii.load_study(delivery, engine="polars")
    with pytest.raises(UsageError, match="unknown settings 'memory'"):
        ii.load_study(delivery, engine="duckdb", duckdb_config={"memory": "1GB"})
    with pytest.raises(UsageError, match="threads must be a positive integer"):
        ii.load_study(delivery, engine="duckdb", duckdb_config={"threads": 0})
    with pytest.raises(UsageError, match="engine='duckdb' only"):
        ii.load_study(delivery, duckdb_config={"threads": 1})


def _national_number() -> str:
    body = 850730033  # born 30 July 1985, serial 033
    return f"{body}{97 - body % 97:02d}"


def test_national_number_among_filtered_rows_is_refused(delivery: Path) -> None:
    panel = _panel(delivery)
    nrn = _national_number()
    extra = panel[panel["person_id"] == panel["person_id"].iloc[0]].copy()
    extra["person_id"] = nrn  # a person outside the study: DuckDB filters these rows out
    _write(pd.concat([panel, extra], ignore_index=True), delivery / "panel.parquet")
    with pytest.raises(DataContractError) as duck:
        _load(delivery, engine="duckdb")
    with pytest.raises(DataContractError) as pandas:
        _load(delivery)
    assert "national register numbers" in str(duck.value)
    assert nrn not in str(duck.value) and nrn[:6] not in str(duck.value)
    assert duck.value.n_rows == len(extra)
    assert str(duck.value) == str(pandas.value)  # same rows named by position in the file


def test_column_map_rename_and_key_recode_apply_before_the_join(delivery: Path, trial) -> None:
    panel = _panel(delivery).rename(columns={"person_id": "INSZ_PSEUDO", "period": "kwartaal"})
    key = sorted(trial.assignment["person_id"])[3]
    panel.loc[panel["INSZ_PSEUDO"] == key, "INSZ_PSEUDO"] = "OLD-" + key  # the mapping recodes it back
    _write(panel, delivery / "panel.parquet")
    cmap = {"panel": {"columns": {"INSZ_PSEUDO": "person_id", "kwartaal": "period"},
                      "values": {"person_id": {"OLD-" + key: key}}}}
    a, b = _load(delivery, column_map=cmap), _load(delivery, column_map=cmap, engine="duckdb")
    assert_same_study(a, b)
    assert bool(b.persons.loc[b.persons["person_id"] == key, "linked"].iloc[0])
    assert NEITHER not in set(b.ledger.to_frame()["reason"])


def test_integer_column_missing_only_outside_the_study_keeps_the_pandas_dtype(delivery: Path) -> None:
    panel = _panel(delivery)
    extra = panel[panel["person_id"] == panel["person_id"].iloc[0]].copy()
    extra["person_id"] = "ZZ_OUT"
    table = pa.Table.from_pandas(pd.concat([panel, extra], ignore_index=True), preserve_index=False)
    n_jobs = table.column("n_jobs").to_numpy().copy()
    mask = np.zeros(len(n_jobs), dtype=bool)
    mask[-len(extra):] = True
    table = table.set_column(table.schema.get_field_index("n_jobs"), "n_jobs",
                             pa.array(n_jobs, mask=mask, type=pa.int8()))
    pq.write_table(table.replace_schema_metadata(None), delivery / "panel.parquet")  # no pandas metadata
    a, b = _load(delivery), _load(delivery, engine="duckdb")
    assert a.panel["n_jobs"].dtype == np.float64  # the whole file read has missing n_jobs
    assert_same_study(a, b)


def test_text_tables_fall_back_to_the_pandas_reader(delivery: Path, trial) -> None:
    (delivery / "assignment.parquet").unlink()
    trial.assignment.to_csv(delivery / "assignment.csv", index=False, sep=";")
    assert_same_study(_load(delivery), _load(delivery, engine="duckdb"))


def test_no_study_person_in_the_panel_is_a_linkage_error(delivery: Path) -> None:
    panel = _panel(delivery)
    panel["person_id"] = "POP" + panel["person_id"]
    _write(panel, delivery / "panel.parquet")
    with pytest.raises(ii.errors.LinkageError, match="no panel row belongs to a randomized person"):
        _load(delivery, engine="duckdb")


def test_other_tables_as_parts_are_read_in_file_order(delivery: Path) -> None:
    a = _load(delivery, engine="duckdb")
    benefits = pq.read_table(delivery / "benefits.parquet").to_pandas()
    (delivery / "benefits.parquet").unlink()
    (delivery / "benefits").mkdir()
    for i, part in enumerate(np.array_split(np.arange(len(benefits)), 3)):
        _write(benefits.iloc[part], delivery / "benefits" / f"part-{i}.parquet")
    assert_same_study(a, _load(delivery, engine="duckdb"))


def test_national_number_in_a_part_names_the_part(delivery: Path) -> None:
    panel = _panel(delivery)
    extra = panel[panel["person_id"] == panel["person_id"].iloc[0]].copy()
    extra["person_id"] = _national_number()
    (delivery / "panel.parquet").unlink()
    (delivery / "panel").mkdir()
    _write(panel, delivery / "panel" / "part-1.parquet")
    _write(extra, delivery / "panel" / "part-2.parquet")
    with pytest.raises(DataContractError, match=r"Examples: 'row 0 of part-2.parquet'") as err:
        _load(delivery, engine="duckdb")
    assert err.value.n_rows == len(extra) and _national_number() not in str(err.value)


def test_assignment_without_key_gets_the_pandas_engines_error(delivery: Path, trial) -> None:
    _write(trial.assignment.rename(columns={"person_id": "pid"}), delivery / "assignment.parquet")
    with pytest.raises(DataContractError) as pandas:
        _load(delivery)
    with pytest.raises(DataContractError) as duck:
        _load(delivery, engine="duckdb")
    assert "missing required column" in str(duck.value) and str(duck.value) == str(pandas.value)


def test_handed_over_panel_is_the_pandas_readers_frame_sorted(delivery: Path) -> None:
    """The hand-off itself (before from_frames): same columns, dtypes, codes and values, by (key, period)."""
    from ips_impact.io import duck, readers
    from ips_impact.io.schema import KEY_COLUMNS

    cmap = ii.ColumnMap()
    frames, outside, _ = duck.read_delivery(delivery, cmap)
    got = frames["panel"]
    keys = cmap.source_names("panel", set(KEY_COLUMNS))
    text = duck._keep_text(cmap, "panel")
    want = readers.read_table(delivery / "panel.parquet", table="panel", key_columns=keys | text,
                              text_columns=text, keep_codes=text)
    assert outside is not None and outside.n_rows == 0
    assert got.attrs.get(readers.CODES_ATTR) == want.attrs.get(readers.CODES_ATTR)
    assert list(got.columns) == list(want.columns)
    assert [str(t) if str(t) != "category" else "category" for t in got.dtypes] == \
        [str(t) if str(t) != "category" else "category" for t in want.dtypes]

    def plain(f: pd.DataFrame) -> pd.DataFrame:
        f = f.assign(**{c: f[c].astype(object).where(f[c].notna(), np.nan)
                        for c in f.columns if isinstance(f[c].dtype, pd.CategoricalDtype)})
        return f.sort_values(["person_id", "period"], kind="stable").reset_index(drop=True)

    pd.testing.assert_frame_equal(plain(got), plain(want), check_exact=True)
