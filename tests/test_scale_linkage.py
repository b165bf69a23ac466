"""Population-scale linkage (issue 15): the same Study and estimates, to the last bit.

The fingerprints were computed with the linkage code before the population-scale
rewrite (see ``tests/scale_fingerprint.py``) and are compared here bit for bit.
"""

from __future__ import annotations

import json
import warnings

import pytest
from scale_fingerprint import REFERENCE, cases, fingerprint

EXPECTED = json.loads(REFERENCE.read_text())


@pytest.fixture(scope="module")
def builders() -> dict:
    return cases()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_study_and_estimates_unchanged(name: str, builders: dict) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = fingerprint(builders[name]())
    assert got == EXPECTED[name]


def test_parquet_reader_gives_the_frame_of_the_per_row_path(tmp_path) -> None:
    """Dictionary-encoded reading = pd.read_parquet followed by the per-value key text."""
    import numpy as np
    import pandas as pd
    from scale_fingerprint import frame_hash

    from ips_impact.io import readers

    frame = pd.DataFrame({
        "person_id": ["P1", "P2", "P1", "P3"], "employer_id": ["E1", None, "E1", "E2"],
        "period": ["2019Q1", "2019Q1", "2019Q2", "2019Q2"], "note": ["a", None, "b", "a"],
        "household_id": [10.0, np.nan, 10.0, 12.0], "site": pd.Categorical(["s", "t", None, "s"]),
        "earnings": [1.5, 0.0, 2.0, np.nan],
    })
    path = tmp_path / "panel.parquet"
    frame.to_parquet(path, index=False)
    keys = {"person_id", "employer_id", "household_id", "note"}
    got = readers.read_table(path, table="panel", key_columns=keys)
    want = pd.read_parquet(path)
    for col in want.columns:
        if (col in keys or col in readers.TEXT_COLUMNS) and col not in ("period", "month"):
            want[col] = want[col].astype(object).map(
                lambda v: np.nan if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v))
                else str(int(v)) if isinstance(v, float) and v.is_integer() else str(v))
    assert frame_hash(got) == frame_hash(want)
    assert got["employer_id"].map(type).tolist() == [str, float, str, str]
    assert got["note"].isna().tolist() == [False, True, False, False]
