"""Text held as codes (issue 15): load_study reads the panel's keys, periods and codes
dictionary-encoded and validates them on their distinct values. Everything a user sees
must be what the per-row reading gives: the Study bit for bit, and every refusal word
for word (row counts included).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import make_frames
from scale_fingerprint import fingerprint

import ips_impact as ii
import ips_impact.study as study_module
from ips_impact import validate as V
from ips_impact.errors import DataContractError
from ips_impact.io import readers


def _per_row(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make load_study read every column as an object column (the reading before codes)."""
    plain = readers.read_table

    def read_plain(*args, keep_codes=(), **kwargs):
        return plain(*args, **kwargs)

    monkeypatch.setattr(study_module, "read_table", read_plain)


def _messy_delivery(folder, n: int = 60, seed: int = 11) -> dict[str, pd.DataFrame]:
    f = make_frames(n=n, periods=12, seed=seed)
    rng = np.random.default_rng(seed)
    p = f["panel"].copy()
    m = len(p)
    p["employer_id"] = np.where(rng.random(m) < 0.4, None, [f"E{int(v):05d}" for v in rng.integers(0, 50, m)])
    p["di_phase"] = np.where(rng.random(m) < 0.3, None, rng.choice(["primary", "invalidity"], m))
    p["worker_class"] = rng.choice(["blue", "white", None], m)
    p["nace"] = rng.choice(["8810", "4711", None], m)
    stranger = p.iloc[:12].assign(person_id="Z9999X")  # neither randomized nor in a roster
    near = p.iloc[12:24].assign(person_id=lambda d: d["person_id"].str.lower())  # a near miss of the keys
    f["panel"] = pd.concat([p, stranger, near], ignore_index=True).sample(frac=1, random_state=seed)
    for name, frame in f.items():
        frame.to_parquet(folder / f"{name}.parquet", index=False)
    return f


def test_coded_reading_gives_the_study_of_the_per_row_reading(tmp_path, monkeypatch) -> None:
    _messy_delivery(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        coded = ii.load_study(tmp_path)
        frame = readers.read_table(tmp_path / "panel.parquet", table="panel",
                                   keep_codes=("person_id", "period", "di_phase"))
        _per_row(monkeypatch)
        plain = ii.load_study(tmp_path)
    assert isinstance(frame["person_id"].dtype, pd.CategoricalDtype)  # the codes path was taken
    assert frame.attrs[readers.CODES_ATTR] == ["di_phase", "period", "person_id"]
    assert fingerprint(coded) == fingerprint(plain)
    pd.testing.assert_frame_equal(coded.panel, plain.panel, check_exact=True)
    pd.testing.assert_frame_equal(coded.members, plain.members, check_exact=True)
    pd.testing.assert_frame_equal(coded.ledger.to_frame(), plain.ledger.to_frame())
    pd.testing.assert_frame_equal(coded.linkage_report().near_misses, plain.linkage_report().near_misses)
    assert coded.panel["person_id"].dtype == object and coded.panel["di_phase"].dtype == object
    assert coded.panel["di_phase"].map(type).isin([str, float]).all()


def _refusal(folder, monkeypatch, per_row: bool) -> str:
    with monkeypatch.context() as m:
        if per_row:
            _per_row(m)
        with warnings.catch_warnings(), pytest.raises(DataContractError) as err:
            warnings.simplefilter("ignore")
            ii.load_study(folder)
    return str(err.value)


@pytest.mark.parametrize("fault", ["missing_key", "national_number", "bad_period", "mixed_periods"])
def test_refusals_read_the_same_from_codes(tmp_path, monkeypatch, fault) -> None:
    f = make_frames(n=40, periods=12, seed=2)
    p = f["panel"].copy()
    p["period"] = p["period"].astype(str)
    if fault == "missing_key":
        p.loc[[3, 17, 40], "person_id"] = None
    elif fault == "national_number":
        p.loc[p["person_id"] == p["person_id"].iloc[0], "person_id"] = "85073003328"  # a valid NRN shape
    elif fault == "bad_period":
        p.loc[[5, 6, 7], "period"] = "2019Q7"
    else:
        p.loc[[5], "period"] = "2019-03"
    f["panel"] = p
    for name, frame in f.items():
        frame.to_parquet(tmp_path / f"{name}.parquet", index=False)
    coded, plain = _refusal(tmp_path, monkeypatch, False), _refusal(tmp_path, monkeypatch, True)
    assert coded == plain
    assert "85073003328" not in coded


def test_distinct_values_and_decoding() -> None:
    s = pd.Series(pd.Categorical(["b", None, "a", "b"], categories=["a", "b", "c"]))
    assert V.distinct_values(s).tolist() == ["a", "b"]  # unused categories are not values
    out = V.decode_text(s)
    assert out.dtype == object and out.tolist()[0] == "b" and np.isnan(out.iloc[1])
    assert V.is_text_codes(s) and not V.is_text_codes(pd.Series(pd.Categorical([1, 2])))


def test_categorical_keys_of_other_types_become_text() -> None:
    """A user's category of integers as keys: text as the per-row rule gives (no code leaks)."""
    f = make_frames(n=20, periods=6, seed=4)
    a = f["assignment"].copy()
    num = {k: i + 1000 for i, k in enumerate(a["person_id"])}
    a["person_id"] = pd.Categorical(a["person_id"].map(num))
    p = f["panel"][f["panel"]["person_id"].isin(num)].copy()
    p["person_id"] = p["person_id"].map(num).astype("category")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = ii.Study.from_frames(a, p)
    assert s.persons["person_id"].map(type).eq(str).all()
    assert set(s.panel["person_id"]) == {str(v) for v in num.values()}


def test_national_number_screen_vectorised_equals_the_rule() -> None:
    from ips_impact.errors import is_national_number

    rng = np.random.default_rng(3)
    base = [f"{x:011d}" for x in rng.integers(0, 10**11, 200_000)]
    vals = [f"{b[:2]}.{b[2:4]}.{b[4:6]}-{b[6:9]}.{b[9:]}" if i % 4 == 1 else b[:10] if i % 4 == 2 else b
            for i, b in enumerate(base)] + [None, "", " 85073003328 ", "٨٥٠٧٣٠٠٣٣٢٨"]
    s = pd.Series(vals, dtype=object)
    got = V.looks_like_national_number(s).to_numpy()
    want = np.array([v is not None and is_national_number(v) for v in vals])
    assert got.sum() > 100 and (got == want).all()


def test_parquet_with_a_text_index_reads_as_pandas_does(tmp_path) -> None:
    """A frame saved with its (text) index: the index comes back as the index, keys as text."""
    df = pd.DataFrame({"person_id": ["a", "b", None], "x": [1, 2, 3]},
                      index=pd.Index(["r1", "r2", "r3"], name="rid"))
    df.to_parquet(tmp_path / "panel.parquet")
    got = readers.read_table(tmp_path / "panel.parquet", table="panel", keep_codes={"person_id"})
    assert list(got.columns) == ["person_id", "x"] and got.index.tolist() == ["r1", "r2", "r3"]
    assert isinstance(got["person_id"].dtype, pd.CategoricalDtype) and got["person_id"].isna().tolist()[2]
    many = pd.DataFrame({"person_id": [f"P{i % 997:05d}" if i % 13 else None for i in range(300_000)],
                         "x": np.arange(300_000)})
    many.to_parquet(tmp_path / "many.parquet", index=False, row_group_size=70_000)  # several dictionaries
    got = readers.read_table(tmp_path / "many.parquet", table="panel", keep_codes={"person_id"})
    want = many["person_id"]
    assert (got["person_id"].astype(object).where(got["person_id"].notna(), None) == want).sum() == want.notna().sum()
    assert got["person_id"].isna().sum() == want.isna().sum()


def test_outcome_matrix_by_lookup_equals_the_sorted_search() -> None:
    """outcome_matrix looks event times up in a table; the reference searches a sorted copy."""
    from ips_impact.synthetic import generate

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trial = generate(n_persons=300, seed=3)
        dense = trial.study()
        panel = trial.panel.sample(frac=0.8, random_state=2)  # gaps in the persons' quarters
        gappy = ii.Study.from_frames(trial.assignment, panel)
        # dense rows, but persons followed over different spans (the whole-range gather
        # must not apply to persons missing some of the event times asked)
        k = trial.panel.groupby("person_id").cumcount()
        late = trial.panel["person_id"].isin(trial.assignment["person_id"].iloc[::2])
        short = ii.Study.from_frames(trial.assignment, trial.panel[(k >= 3) | ~late])
    assert dense._dense is not None and gappy._dense is None  # both look-ups are exercised
    assert short._dense is not None and (short._dense[1] != dense._dense[1]).any()
    for st in (dense, gappy, short):
        _compare_with_search(st)


def _compare_with_search(st) -> None:
    def reference(outcome: str, ks: np.ndarray) -> np.ndarray:
        out = np.full((st.n_persons, ks.size), np.nan)
        order = np.argsort(ks, kind="stable")
        sorted_ks = ks[order]
        pos = np.searchsorted(sorted_ks, st._k)
        pos_c = np.minimum(pos, ks.size - 1)
        hit = (pos < ks.size) & (sorted_ks[pos_c] == st._k)
        vals = st._panel[outcome].to_numpy(dtype=np.float64, na_value=np.nan)
        out[st._pidx[hit], order[pos_c[hit]]] = vals[hit]
        return out

    rng = np.random.default_rng(0)
    lo, hi = st.k_range
    inside = [rng.permutation(np.arange(lo, hi + 1)), np.arange(lo + 2, lo + 9), np.array([hi, lo])]
    for ks in inside + [rng.integers(lo - 5, hi + 5, rng.integers(1, 30)) for _ in range(60)]:
        # in range, then repeated, unsorted and out-of-range event times included
        for outcome in ("employed", "earnings", "n_jobs"):
            np.testing.assert_array_equal(st.outcome_matrix(outcome, ks), reference(outcome, ks))


def test_sorted_codes_equal_factorize_with_sort() -> None:
    from ips_impact.study import _sorted_codes

    rng = np.random.default_rng(5)
    keys = pd.Series([f"H{v:05d}" for v in rng.integers(0, 3000, 10_000)] + [np.nan, "é1", "Z", "a", "H00001"],
                     dtype=object).sample(frac=1, random_state=1)
    np.testing.assert_array_equal(_sorted_codes(keys), pd.factorize(keys, sort=True)[0])
    mixed = pd.Series(["b", 3, "a", None], dtype=object)  # not all text: pandas decides
    np.testing.assert_array_equal(_sorted_codes(mixed), pd.factorize(mixed, sort=True)[0])


def test_used_categories_marks_codes_seen_and_ignores_missing() -> None:
    from ips_impact.io.codes import used_categories

    col = pd.Series(pd.Categorical.from_codes([2, -1, 0, 2, -1], categories=["a", "b", "c", "d"]))
    np.testing.assert_array_equal(used_categories(col), [True, False, True, False])
    none = pd.Series(pd.Categorical.from_codes([-1, -1], categories=["a"]))
    np.testing.assert_array_equal(used_categories(none), [False])


def test_period_ordinals_are_a_read_only_view() -> None:
    from ips_impact.io.periods import period_ordinals

    s = pd.Series(pd.period_range("2018Q1", periods=6, freq="Q"))
    o = period_ordinals(s)
    np.testing.assert_array_equal(o, s.array.asi8)
    with pytest.raises(ValueError):
        o[0] = 0  # nothing can write into the caller's periods
    ints = pd.Series(np.arange(5, dtype=np.int64))
    oi = period_ordinals(ints)
    with pytest.raises(ValueError):
        oi[0] = 7
    ints.iloc[0] = 3  # the caller's own Series stays writeable
    assert ints.iloc[0] == 3


@pytest.mark.parametrize("dtype", ["int8", "int64", "uint8", "bool"])
def test_binary_integers_checked_on_their_bytes(dtype) -> None:
    ok = pd.DataFrame({"employed": np.array([0, 1, 1, 0], dtype=dtype)})
    out = V.check_binary(ok, "panel", ["employed"])
    assert out["employed"].dtype == np.float64
    np.testing.assert_array_equal(out["employed"], [0.0, 1.0, 1.0, 0.0])
    if dtype != "bool":
        bad = pd.DataFrame({"employed": np.array([0, 2, 1, 2, 0], dtype=dtype)})
        with pytest.raises(DataContractError, match=r"2 rows.*Examples: '2'"):
            V.check_binary(bad, "panel", ["employed"])


def test_unique_person_period_fast_paths() -> None:
    from ips_impact.study import _unique_person_period

    codes = np.repeat(np.arange(4), 3).astype(np.int32)
    ords = np.tile(np.arange(200, 203), 4).astype(np.int64)
    assert _unique_person_period(codes, ords)  # sorted: strictly increasing keys
    rng = np.random.default_rng(0)
    p = rng.permutation(codes.size)
    assert _unique_person_period(codes[p], ords[p])  # shuffled: counted on the grid
    dup_o = ords.copy()
    dup_o[1] = dup_o[0]
    assert not _unique_person_period(codes, dup_o)
    assert not _unique_person_period(codes[p], dup_o[p])
    far = ords * 10**7  # a sparse grid: the hash rule
    assert _unique_person_period(codes[p], far[p])
    assert not _unique_person_period(codes[p], (dup_o * 10**7)[p])


def test_dictionary_chunks_unify_with_missing_rows() -> None:
    import pyarrow as pa

    words = [f"w{i:03d}" for i in range(128)]
    d8 = pa.array(words)
    chunks = [
        pa.DictionaryArray.from_arrays(pa.array([127, None, 0, 5], type=pa.int8()), d8),  # the slot past int8
        pa.DictionaryArray.from_arrays(pa.array([None, None], type=pa.int8()), pa.array([], type=pa.string())),
        pa.DictionaryArray.from_arrays(pa.array([1, 0, None], type=pa.int8()), pa.array(["zz", "w005"])),
        pa.DictionaryArray.from_arrays(pa.array([], type=pa.int8()), pa.array(["q"])),
    ]
    got = readers._categorical(pa.chunked_array(chunks))
    want = ["w127", None, "w000", "w005", None, None, "w005", "zz", None]
    assert [None if pd.isna(v) else v for v in got] == want
    assert list(got.categories) == [*words, "zz"]  # first appearance over the dictionaries
