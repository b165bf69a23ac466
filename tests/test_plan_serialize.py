"""Typed JSON of results: every dtype, index and container comes back exactly."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ips_impact.errors import PlanError
from ips_impact.plan.serialize import decode, dumps, encode, result_from_dict


def round_trip(value):
    return decode(json.loads(dumps(encode(value))))


def test_frames_keep_dtypes_index_and_non_finite_values():
    f = pd.DataFrame({
        "a": pd.array([1, None], dtype="Int64"), "b": pd.Categorical(["x", "y"]),
        "c": pd.PeriodIndex(["2019Q1", None], freq="Q"), "d": pd.to_datetime(["2019-01-01", None]),
        "e": ["s", None], "f": [True, False], "g": [1.5, np.inf], "h": [-0.0, np.nan],
        "i": np.array([3, 4], dtype="int8"),
    }, index=pd.Index(["r1", "r2"], name="row"))
    g = round_trip(f)
    pd.testing.assert_frame_equal(f, g)
    assert np.signbit(g["h"].iloc[0])  # -0.0 stays -0.0
    pd.testing.assert_frame_equal(round_trip(f.iloc[:0]), f.iloc[:0])
    pd.testing.assert_frame_equal(round_trip(pd.DataFrame(index=pd.RangeIndex(3))), pd.DataFrame(index=pd.RangeIndex(3)))


def test_series_arrays_and_containers():
    s = pd.Series([1.0, np.nan], index=pd.MultiIndex.from_tuples([("a", 1), ("b", 2)], names=["x", "y"]), name="s")
    pd.testing.assert_series_equal(s, round_trip(s))
    a = np.arange(6.0).reshape(2, 3)
    a[0, 0] = np.nan
    b = round_trip(a)
    assert b.dtype == a.dtype and b.shape == a.shape and np.array_equal(a, b, equal_nan=True)
    x = {"t": (1, 2.5, None), "p": pd.Period("2019Q1", "Q"), "r": range(1, 4), "__k": 1, 5: "int key",
         "l": [1, [2, 3]], "fs": frozenset({"a", "b"}), "na": pd.NA, "nat": pd.NaT}
    y = round_trip(x)
    assert list(y) == list(x)  # insertion order kept
    assert y["t"] == (1, 2.5, None) and y["r"] == range(1, 4) and y[5] == "int key"
    assert y["p"] == x["p"] and y["fs"] == x["fs"] and y["na"] is pd.NA and y["nat"] is pd.NaT
    # floats come back bit for bit
    v = [0.1 + 0.2, 1e-300, np.nextafter(1.0, 2.0)]
    assert round_trip(v) == v


def test_unknown_values_and_foreign_classes_refused():
    with pytest.raises(PlanError, match="cannot save a value of type object"):
        encode(object())
    with pytest.raises(PlanError, match="outside ips_impact"):
        result_from_dict({"format": 1, "class": "os:system", "fields": {}})
    with pytest.raises(PlanError, match="not a result class"):
        result_from_dict({"format": 1, "class": "ips_impact.study:Study", "fields": {}})
    with pytest.raises(PlanError, match="lacks"):
        result_from_dict({"format": 1, "class": "ips_impact.results.effect:NoSuchResult", "fields": {}})
    with pytest.raises(PlanError, match="format"):
        result_from_dict({"format": 99, "class": "ips_impact.results.effect:EffectResult", "fields": {}})
