"""The generator's speed-ups (chunks built by threads) leave its output unchanged, bit for bit."""

from __future__ import annotations

import hashlib

import pandas as pd
import pytest

import ips_impact.synthetic.world as world
from ips_impact.synthetic import generate

# sha256 (first 16 hex digits) of each table, hashed with pandas.util.hash_pandas_object
# plus the column names and dtypes, as generated BEFORE the speed-ups (commit 1864b62)
BEFORE = {
    (300, 0): {"assignment": "9910647b98726efc", "panel": "331dd790653f4ccb",
               "households": "ca6a1589efe7ded6", "benefits": "ca615241b8fe6271",
               "takeup": "94467e18a37a5f0f", "truth": "551a5fe853bf29a5",
               "truth_late": "0e4afb82117592ef", "truth_rmst": "208314eaaf6dceb9"},
}


def digest(df: pd.DataFrame) -> str:
    raw = (pd.util.hash_pandas_object(df, index=True).values.tobytes()
           + repr(list(df.columns)).encode() + repr(list(df.dtypes.astype(str))).encode())
    return hashlib.sha256(raw).hexdigest()[:16]


@pytest.mark.parametrize("chunk,threads", [(world.CHUNK, 1), (64, 1), (64, 2), (97, 3)])
def test_frames_are_bit_identical_to_the_generator_before_the_speed_ups(monkeypatch, chunk, threads):
    monkeypatch.setattr(world, "CHUNK", chunk)
    monkeypatch.setattr(world, "CHUNK_THREADS", threads)
    trial = generate(n_persons=300, seed=0)
    for name, expected in BEFORE[(300, 0)].items():
        assert digest(getattr(trial, name)) == expected, name
    assert digest(trial.rerandomize(3).panel) == "64136714f45d2b0c"
