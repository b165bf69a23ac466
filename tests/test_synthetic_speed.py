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


@pytest.mark.parametrize("n,seed,post,outcomes,columns", [
    (1200, 3, 6, ["work_on_di"], ["person_id", "arm", "stratum", "region", "site", "household_id"]),
    (300, 5, 10, ["earnings", "employed", "work_on_di"], ["person_id", "pre_employment_share",
                                                          "pre_earnings", "age", "randomization_date"]),
    (77, 9, 4, ["di_benefit", "fte", "days_worked", "earnings"], ["person_id", "arm", "female", "nope"]),
])
def test_the_power_draw_is_the_generators_columns_bit_for_bit(n, seed, post, outcomes, columns):
    # power studies draw only the columns they read; they must be generate()'s own
    import dataclasses

    from ips_impact.synthetic import SyntheticParams
    from ips_impact.synthetic.trial import _draw

    p = dataclasses.replace(SyntheticParams(), pre_quarters=0, post_quarters=post)
    full = generate(n_persons=n, seed=seed, params=p, tables=("assignment", "panel"), job_details=False)
    d = _draw(n_persons=n, seed=seed, params=p, outcomes=outcomes, assignment_columns=columns)
    kept = [c for c in columns if c in full.assignment.columns]
    pd.testing.assert_frame_equal(d.assignment, full.assignment[kept], check_exact=True)
    pd.testing.assert_frame_equal(d.panel, full.panel[["person_id", "period", *outcomes]], check_exact=True)
    t = full.truth
    want = t[(t["population"] == "participants") & t["outcome"].isin(outcomes)]
    key = ["outcome", "k", "group"]
    pd.testing.assert_frame_equal(d.truth.sort_values(key).reset_index(drop=True),
                                  want.sort_values(key).reset_index(drop=True), check_exact=True)
