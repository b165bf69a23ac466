"""Parity of ``itt`` (through a real Study) with R estimatr / sandwich, every adjustment × cov_type.

Each STAR and npk case of tests/reference/regression_reference.json (see
tests/reference/r/regression.R; the R call is in each case's "call" field) is replayed
as ``itt(study, outcome, horizon=0, adjustment=…, covariates=…, strata=…, cov_type=…,
cluster=…)`` on a one-period Study built from the same CSV. Tolerance 1e-8 relative for
estimate, standard error and df (Welch df of difference_in_means included).
"""

from __future__ import annotations

import json
import warnings
from functools import cache
from pathlib import Path

import pandas as pd
import pytest
from test_itt_simulation import single_threaded_blas

from ips_impact.errors import SmallSampleWarning
from ips_impact.estimators.itt import itt
from ips_impact.study import Study

REF = Path(__file__).parent / "reference"
CASES = [
    c for c in json.loads((REF / "regression_reference.json").read_text())["cases"]
    if c["spec"]["dataset"] in ("reg_star.csv", "reg_npk.csv")
]
RTOL = 1e-8


@pytest.fixture(scope="module", autouse=True)
def _one_blas_thread():
    """Small regressions: OpenBLAS threads only contend on a shared machine."""
    with single_threaded_blas():
        yield


@cache
def _study(dataset: str, outcome: str, treatment: str) -> Study:
    d = pd.read_csv(REF / "data" / dataset)
    a = d.drop(columns=[outcome, treatment]).assign(
        person_id=[f"u{i:05d}" for i in range(len(d))], arm=d[treatment], randomization_period=0
    )
    a = a.drop(columns=[c for c in ("readk", "mathk") if c in a.columns])
    panel = pd.DataFrame({"person_id": a["person_id"], "period": 0, outcome: d[outcome].astype(float)})
    return Study.from_frames(a, panel, frequency="int")


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_itt_matches_r(case):
    s = case["spec"]
    study = _study(s["dataset"], s["outcome"], s["treatment"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallSampleWarning)
        res = itt(study, s["outcome"], horizon=0, adjustment=s["adjustment"],
                  covariates=tuple(s["covariates"]), strata=s["strata"] or False,
                  cov_type=s["cov_type"], cluster=s["cluster"])
    ref = case["terms"][case["treatment"]]
    assert res.term == "arm"
    assert res.estimate == pytest.approx(ref["estimate"], rel=RTOL), case["call"]
    assert res.std_error == pytest.approx(ref["std_error"], rel=RTOL), case["call"]
    if case["id"] == "star_none_HC2":
        # adjustment="none" with HC2 is estimatr's difference_in_means: Welch df, not N - 2
        ref = next(c for c in CASES if c["id"] == "star_dim")["terms"]["small"]
        assert res.std_error == pytest.approx(ref["std_error"], rel=RTOL)
    if ref["df"] is not None:
        assert res.df == pytest.approx(ref["df"], rel=RTOL), case["call"]
        assert res.p_value == pytest.approx(ref["p_value"], rel=1e-6), case["call"]
        lo, hi = res.conf_int()
        assert lo == pytest.approx(ref["conf_low"], rel=RTOL)
        assert hi == pytest.approx(ref["conf_high"], rel=RTOL)
