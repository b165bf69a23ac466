"""Tests of the frozen result types (ips_impact.results)."""

from __future__ import annotations

import dataclasses
import json
import math

import matplotlib
import numpy as np
import pandas as pd
import pytest
from scipy import stats

matplotlib.use("Agg")

from ips_impact.errors import DisclosureError, EstimationError
from ips_impact.results import (
    BALANCE_COLUMNS,
    OPTIONAL_TIDY_COLUMNS,
    TIDY_COLUMNS,
    BalanceTable,
    BoundsResult,
    DynamicEffectResult,
    EffectResult,
    imbens_manski_interval,
    make_row,
    with_adjusted_pvalues,
    with_ri,
)


def _effect(**kw):
    base = dict(
        outcome="work_on_di", estimate=0.095, std_error=0.03, df=590, nobs=600,
        n_treated=300, n_control=300, control_mean=0.29, horizon=6,
        spec={"cov_type": "HC2", "covariates": ["age", "sex"]},
    )
    base.update(kw)
    return EffectResult(**base)


def test_tidy_schema_and_values():
    r = _effect()
    t = r.tidy()
    assert tuple(t.columns) == TIDY_COLUMNS
    assert len(t) == 1
    row = t.iloc[0]
    crit = stats.t.ppf(0.975, 590)
    assert row["term"] == "arm" and row["estimand"] == "itt" and row["horizon"] == 6
    assert row["statistic"] == pytest.approx(0.095 / 0.03, rel=1e-12)
    assert row["p_value"] == pytest.approx(2 * stats.t.sf(0.095 / 0.03, 590), rel=1e-12)
    assert row["conf_low"] == pytest.approx(0.095 - crit * 0.03, rel=1e-12)
    assert row["conf_high"] == pytest.approx(0.095 + crit * 0.03, rel=1e-12)
    assert row["nobs"] == 600 and row["n_treated"] == 300 and row["control_mean"] == 0.29
    assert t["nobs"].dtype == np.int64
    # accessors give the effect row directly
    assert r.p_value == row["p_value"] and r.conf_int() == (row["conf_low"], row["conf_high"])


def test_normal_reference_when_df_is_none():
    r = _effect(df=None)
    assert r.df == math.inf
    z = stats.norm.ppf(0.95)
    lo, hi = r.conf_int(level=0.90)
    assert lo == pytest.approx(0.095 - z * 0.03, rel=1e-12)
    assert hi == pytest.approx(0.095 + z * 0.03, rel=1e-12)
    assert r.p_value == pytest.approx(2 * stats.norm.sf(0.095 / 0.03), rel=1e-12)


def test_result_is_frozen_and_isolated_from_inputs():
    coefs = pd.DataFrame({"estimate": [0.095, 0.5], "std_error": [0.03, 0.1]},
                         index=pd.Index(["arm", "(Intercept)"], name="term"))
    spec = {"covariates": ["age"]}
    r = _effect(coefficients=coefs, spec=spec)
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.estimate = 1.0  # type: ignore[misc]
    with pytest.raises(ValueError):
        r.coefficients.loc["arm", "estimate"] = 9.0
    with pytest.raises(ValueError):
        r.coefficients["std_error"].to_numpy()[0] = 9.0
    with pytest.raises(TypeError):
        r.spec["covariates"] = ["x"]  # type: ignore[index]
    # changing the caller's objects afterwards does not reach the result
    coefs.loc["arm", "estimate"] = 123.0
    spec["covariates"].append("sex")
    assert r.coefficients.loc["arm", "estimate"] == 0.095
    assert r.spec["covariates"] == ("age",)
    # missing inference columns are derived
    assert r.coefficients.loc["(Intercept)", "statistic"] == pytest.approx(5.0)
    # tidy returns a fresh copy
    t = r.tidy()
    t.loc[0, "estimate"] = 5.0
    assert r.tidy().loc[0, "estimate"] == 0.095


def test_ledger_frame_already_in_shape_is_still_copied_and_read_only():
    # a ledger with a plain index and the columns in order is not reshaped, but the
    # result must still hold its own read-only copy of it
    ledger = pd.DataFrame({"reason": ["outcome missing"], "n_rows": [4], "n_treated": [1],
                           "n_control": [3]})
    spec = {"periods": (1, 2, 3), "covariates": ("age",)}
    r = _effect(ledger=ledger, spec=spec)
    ledger.loc[0, "n_rows"] = 99
    ledger["extra"] = 1
    assert r.ledger.loc[0, "n_rows"] == 4
    assert list(r.ledger.columns) == ["reason", "n_rows", "n_treated", "n_control"]
    with pytest.raises(ValueError):
        r.ledger.loc[0, "n_rows"] = 5
    with pytest.raises(ValueError):
        r.ledger["n_treated"].to_numpy()[0] = 5
    assert r.spec["periods"] == (1, 2, 3)
    # a ledger out of order or with another index is normalised as before
    shuffled = ledger[["n_control", "reason", "n_treated", "n_rows"]].set_axis([7], axis=0)
    r2 = _effect(ledger=shuffled)
    assert list(r2.ledger.columns[:4]) == ["reason", "n_rows", "n_treated", "n_control"]
    assert list(r2.ledger.index) == [0]


def test_from_fit_takes_se_from_vcov():
    params = pd.Series({"(Intercept)": 0.3, "arm": 0.1, "age": -0.01})
    v = np.array([[0.04, 0.001, 0.0], [0.001, 0.0009, 0.0], [0.0, 0.0, 0.0001]])
    vcov = pd.DataFrame(v, index=params.index, columns=params.index)
    r = EffectResult.from_fit(outcome="y", params=params, vcov=vcov, df=100, nobs=103,
                              n_treated=50, n_control=53)
    assert r.estimate == 0.1 and r.std_error == pytest.approx(0.03, rel=1e-12)
    assert r.coefficients.loc["age", "std_error"] == pytest.approx(0.01, rel=1e-12)
    assert r.vcov.loc["arm", "(Intercept)"] == 0.001
    with pytest.raises(EstimationError, match="no coefficient 'ips_started'"):
        EffectResult.from_fit(outcome="y", params=params, vcov=vcov, df=100, nobs=103,
                              n_treated=50, n_control=53, term="ips_started")


def test_with_ri_and_adjusted_return_new_results():
    r = _effect()
    r2 = with_ri(r, 0.012, ri_se=0.001)
    assert r2 is not r
    assert "ri_p_value" not in r.tidy().columns and r.ri_p_value is None
    t2 = r2.tidy()
    assert list(t2.columns) == list(TIDY_COLUMNS) + ["ri_p_value", "ri_se"]
    assert t2.loc[0, "ri_p_value"] == 0.012 and r2.ri_p_value == 0.012
    r3 = with_adjusted_pvalues(r2, [0.04], family="primary")
    t3 = r3.tidy()
    assert list(t3.columns) == list(TIDY_COLUMNS) + ["ri_p_value", "ri_se", "adj_p_value", "family"]
    assert t3.loc[0, "family"] == "primary" and r3.adj_p_value == 0.04
    assert r3.estimate == r.estimate and r3.spec == r.spec
    with pytest.raises(EstimationError, match="2 value"):
        with_ri(r, [0.1, 0.2])
    with pytest.raises(EstimationError, match=r"\[0, 1\]"):
        with_ri(r, 1.5)
    with pytest.raises(EstimationError, match="unknown annotation"):
        dataclasses.replace(r, annotations={"q_value": (0.1,)})


def test_to_dict_is_json_safe_and_deterministic():
    r = _effect(control_mean=float("nan"), diagnostics={"first_stage_f": np.float64(55.5)},
                ledger=[{"reason": "outcome missing", "n_rows": 4, "n_treated": 1, "n_control": 3}])
    d = r.to_dict()
    s = json.dumps(d)  # must not raise (NaN/inf converted)
    assert d["type"] == "EffectResult"
    assert d["control_mean"] is None and d["tidy"][0]["control_mean"] is None
    assert d["diagnostics"] == {"first_stage_f": 55.5}
    assert d["ledger"]["data"] == [["outcome missing", 4, 1, 3]]
    r_again = _effect(control_mean=float("nan"), diagnostics={"first_stage_f": 55.5},
                      ledger=[{"reason": "outcome missing", "n_rows": 4, "n_treated": 1,
                               "n_control": 3}])
    assert r.to_json() == r_again.to_json()
    assert json.loads(s)["tidy"][0]["estimate"] == 0.095
    assert _effect(df=None).to_dict()["df"] == "inf"


def test_summary_and_html_show_the_numbers():
    r = _effect(ledger=[{"reason": "outcome missing", "n_rows": 4, "n_treated": 1, "n_control": 3}],
                warnings=("few persons in stratum BXL",))
    s = r.summary()
    assert "0.0950" in s and "0.0300" in s and "0.0361" in s and "0.1539" in s
    assert "few persons in stratum BXL" in s
    assert "outcome missing: 4 (treated 1, control 3)" in s
    assert "HC2" in s
    h = r._repr_html_()
    assert "<table" in h and "0.0950" in h and "few persons in stratum BXL" in h
    assert repr(r) == "<EffectResult: ITT of arm on work_on_di at k = 6>"


def test_person_keys_are_refused():
    with pytest.raises(DisclosureError, match="person_id"):
        _effect(ledger=pd.DataFrame({"reason": ["x"], "n_rows": [1], "n_treated": [1],
                                     "n_control": [0], "person_id": ["p1"]}))
    with pytest.raises(DisclosureError, match="household_id"):
        _effect(diagnostics={"tab": pd.DataFrame({"household_id": ["h"]})})


def test_bad_level_and_ledger_are_typed_errors():
    with pytest.raises(EstimationError, match="level"):
        _effect(level=95)
    with pytest.raises(EstimationError, match="n_treated"):
        _effect(ledger=[{"reason": "x", "n_rows": 1}])
    with pytest.raises(EstimationError, match="std_error must not be negative"):
        _effect(std_error=-0.1)
    with pytest.raises(EstimationError, match="effect term 'arm'"):
        _effect(coefficients=pd.DataFrame({"estimate": [1.0], "std_error": [1.0]}, index=["x"]))


def test_make_row_explicit_values_win():
    row = make_row(outcome="y", estimate=1.0, std_error=0.5, nobs=10, n_treated=5, n_control=5,
                   conf_low=-3.0, conf_high=4.0)
    assert tuple(row) == TIDY_COLUMNS
    assert row["conf_low"] == -3.0 and row["conf_high"] == 4.0
    assert row["statistic"] == 2.0 and row["df"] == math.inf


# ------------------------------------------------------------------------- dynamic


def _dynamic(crit=2.6):
    effects = tuple(
        EffectResult(outcome="y", estimate=0.01 * k, std_error=0.02 + 0.001 * k, df=200,
                     nobs=200, n_treated=100, n_control=100, horizon=k)
        for k in range(-4, 6)
    )
    return DynamicEffectResult(
        outcome="y", effects=effects, sup_t_crit=crit,
        pretest={"statistic": 1.5, "df_num": 4, "df_denom": math.inf, "p_value": 0.83,
                 "test": "chi2"},
    )


def test_dynamic_tidy_band_and_lookup():
    d = _dynamic()
    t = d.tidy()
    assert list(t["horizon"]) == list(range(-4, 6))
    assert t.loc[t["horizon"] == 3, "estimate"].item() == pytest.approx(0.03)
    b = d.band()
    row = b[b["k"] == 3].iloc[0]
    assert row["band_low"] == pytest.approx(0.03 - 2.6 * 0.023)
    assert row["band_high"] == pytest.approx(0.03 + 2.6 * 0.023)
    # the simultaneous band is wider than the pointwise interval
    assert (b["band_high"] > b["conf_high"]).all()
    assert d.effect_at(2).estimate == pytest.approx(0.02)
    with pytest.raises(EstimationError, match="no effect estimated at k = 40"):
        d.effect_at(40)
    assert "p = 0.830" in d.summary()
    r = with_ri(d, np.linspace(0.1, 1.0, 10))
    assert r.tidy()["ri_p_value"].iloc[-1] == 1.0


def test_dynamic_plot_returns_axes():
    import matplotlib.pyplot as plt

    d = _dynamic()
    ax = d.plot()
    assert hasattr(ax, "get_xlabel") and "event time" in ax.get_xlabel()
    # the error-bar points are the estimates, at the event times
    line = [ln for ln in ax.get_lines() if len(ln.get_xdata()) == 10][0]
    np.testing.assert_allclose(line.get_xdata(), np.arange(-4, 6))
    np.testing.assert_allclose(line.get_ydata(), 0.01 * np.arange(-4, 6))
    plt.close("all")


def test_dynamic_rejects_duplicate_horizons():
    e = _effect()
    with pytest.raises(EstimationError, match="same horizon"):
        DynamicEffectResult(outcome="y", effects=(e, e))


# -------------------------------------------------------------------------- bounds


def test_imbens_manski_limits_and_equation():
    # point identified: two-sided normal quantile
    lo, hi, c = imbens_manski_interval(1.0, 1.0, 0.5, 0.5, 0.95)
    assert c == pytest.approx(stats.norm.ppf(0.975), rel=1e-12)
    assert (lo, hi) == pytest.approx((1.0 - c * 0.5, 1.0 + c * 0.5))
    # very wide set: one-sided quantile
    _, _, c = imbens_manski_interval(0.0, 100.0, 1.0, 1.0, 0.95)
    assert c == pytest.approx(stats.norm.ppf(0.95), rel=1e-10)
    # in between, C solves Phi(C + width/max se) - Phi(-C) = level
    lo, hi, c = imbens_manski_interval(-0.1, 0.2, 0.1, 0.15, 0.9)
    gap = stats.norm.cdf(c + 0.3 / 0.15) - stats.norm.cdf(-c)
    assert gap == pytest.approx(0.9, abs=1e-12)
    assert stats.norm.ppf(0.9) < c < stats.norm.ppf(0.95)
    assert lo == pytest.approx(-0.1 - c * 0.1) and hi == pytest.approx(0.2 + c * 0.15)


def _bounds(**kw):
    base = dict(outcome="earnings", selection="employed", lower=-100.0, upper=300.0,
                se_lower=50.0, se_upper=60.0, trim_share=0.2, trimmed_arm="treated",
                share_selected_treated=0.4, share_selected_control=0.32, nobs=600,
                n_treated=300, n_control=300, n_selected_treated=120, n_selected_control=96,
                control_mean=4000.0, horizon=10)
    base.update(kw)
    return BoundsResult(**base)


def test_bounds_tidy_rows_carry_the_im_interval():
    b = _bounds()
    t = b.tidy()
    assert list(t["estimand"]) == ["lee_lower", "lee_upper", "lee_effect_imbens_manski"]
    assert list(t["estimate"][:2]) == [-100.0, 300.0] and np.isnan(t["estimate"].iloc[2])
    assert list(t["std_error"][:2]) == [50.0, 60.0]
    # each bound has its own interval and no test against 0
    z = 1.959963984540054
    assert t["conf_low"].iloc[0] == pytest.approx(-100.0 - z * 50.0, rel=1e-12)
    assert t["conf_high"].iloc[1] == pytest.approx(300.0 + z * 60.0, rel=1e-12)
    assert t["p_value"].isna().all() and t["statistic"].isna().all()
    lo, hi, _ = imbens_manski_interval(-100.0, 300.0, 50.0, 60.0, 0.95)
    assert (t["conf_low"].iloc[2], t["conf_high"].iloc[2]) == (lo, hi)
    assert b.conf_int() == (lo, hi)
    assert "Imbens-Manski 95% CI" in b.summary()
    with pytest.raises(EstimationError, match="exceeds upper"):
        _bounds(lower=400.0)
    with pytest.raises(EstimationError, match="trimmed_arm"):
        _bounds(trimmed_arm="ips")


# ------------------------------------------------------------------------- balance


def _balance_table():
    return pd.DataFrame(
        {
            "covariate": ["age", "region", "region"],
            "level": [None, "VL", "WAL"],
            "mean_treated": [41.0, 0.55, 0.45],
            "mean_control": [40.0, 0.56, 0.44],
            "sd_treated": [10.0, 0.5, 0.5],
            "sd_control": [11.0, 0.5, 0.5],
            "difference": [1.0, -0.01, 0.01],
            "norm_diff": [1.0 / np.sqrt((100 + 121) / 2), -0.02, 0.02],
            "estimate": [0.9, -0.01, 0.01],
            "std_error": [0.8, 0.04, 0.04],
            "df": [595.0, 595.0, 595.0],
            "p_value": [0.26, 0.8, 0.8],
            "n_treated": [300, 300, 300],
            "n_control": [300, 300, 300],
            "n_missing_treated": [0, 0, 0],
            "n_missing_control": [0, 0, 0],
        }
    )


def test_balance_table_tidy_and_summary():
    bt = BalanceTable(table=_balance_table(),
                      joint={"statistic": 0.7, "df_num": 3, "df_denom": 596, "p_value": 0.55,
                             "test": "F"})
    t = bt.tidy()
    assert list(t["outcome"]) == ["age", "region=VL", "region=WAL"]
    assert (t["estimand"] == "balance").all()
    assert t.loc[0, "estimate"] == 0.9 and t.loc[0, "control_mean"] == 40.0
    assert t.loc[0, "p_value"] == 0.26
    s = bt.summary()
    assert "region=WAL" in s and "41.0000" in s and "p = 0.550" in s
    with pytest.raises(EstimationError, match="norm_diff"):
        BalanceTable(table=_balance_table().drop(columns="norm_diff"))
    assert set(BALANCE_COLUMNS) <= set(bt.to_frame().columns)


def test_every_family_serialises_to_json_deterministically():
    bt = BalanceTable(table=_balance_table(), joint={"statistic": 0.7, "df_num": 3, "df_denom": 596,
                                                     "p_value": 0.55, "test": "F", "terms": ("age",)})
    for r in (_effect(), _dynamic(), _bounds(), bt):
        s = json.dumps(r.to_dict(), sort_keys=True)
        assert s == r.to_json()
        back = json.loads(s)
        assert back["type"] == type(r).__name__
        assert len(back["tidy"]) == len(r.tidy())
    d = json.loads(_dynamic().to_json())
    assert [e["horizon"] for e in d["effects"]] == list(range(-4, 6))


def test_balance_plot_shows_normalised_differences():
    import matplotlib.pyplot as plt

    bt = BalanceTable(table=_balance_table())
    ax = bt.plot()
    line = ax.get_lines()[0]
    np.testing.assert_allclose(line.get_xdata(), _balance_table()["norm_diff"].to_numpy())
    assert [t.get_text() for t in ax.get_yticklabels()] == ["age", "region=VL", "region=WAL"]
    plt.close("all")


def test_results_pickle_and_deepcopy():
    import copy
    import pickle

    for r in (_effect(diagnostics={"f": 1.0}), _dynamic(), _bounds(),
              BalanceTable(table=_balance_table(), joint={"p_value": 0.5})):
        back = pickle.loads(pickle.dumps(r))
        assert back.to_json() == r.to_json()
        assert copy.deepcopy(r).to_json() == r.to_json()
        with pytest.raises(TypeError):
            back.spec["x"] = 1  # type: ignore[index]
        with pytest.raises(dataclasses.FrozenInstanceError):
            back.warnings = ("x",)  # type: ignore[misc]
    # tables stay read-only after a round trip
    back = pickle.loads(pickle.dumps(_effect()))
    with pytest.raises(ValueError):
        back.coefficients.iloc[0, 0] = 1.0


def test_with_ri_carries_a_randomization_interval():
    r = _effect()
    r2 = with_ri(r, 0.012, ri_se=0.001, ri_conf_low=0.031, ri_conf_high=0.158)
    t = r2.tidy()
    assert list(t.columns) == list(TIDY_COLUMNS) + ["ri_p_value", "ri_se", "ri_conf_low", "ri_conf_high"]
    assert (t.loc[0, "ri_conf_low"], t.loc[0, "ri_conf_high"]) == (0.031, 0.158)
    assert r2.ri_conf_int == (0.031, 0.158) and r.ri_conf_int is None
    r3 = with_adjusted_pvalues(r2, 0.04, family="primary")
    assert list(r3.tidy().columns) == list(TIDY_COLUMNS) + list(OPTIONAL_TIDY_COLUMNS)
    assert "ri_conf_low" in r3.summary() and "0.1580" in r3.summary()
    # a new randomization run replaces every randomization column: none is left stale
    r4 = with_ri(r2, 0.02)
    assert "ri_conf_low" not in r4.tidy().columns and r4.ri_conf_int is None
    assert "ri_se" not in r4.tidy().columns
    # an unbounded side is allowed; a missing interval is NaN
    r5 = with_ri(r, 0.5, ri_conf_low=-math.inf, ri_conf_high=math.inf)
    assert r5.ri_conf_int == (-math.inf, math.inf)
    assert json.loads(r5.to_json())["tidy"][0]["ri_conf_low"] == "-inf"
    with pytest.raises(EstimationError, match="both ri_conf_low and ri_conf_high"):
        with_ri(r, 0.5, ri_conf_low=0.1)
    with pytest.raises(EstimationError, match="exceeds"):
        with_ri(r, 0.5, ri_conf_low=0.2, ri_conf_high=0.1)
    with pytest.raises(EstimationError, match="2 value"):
        with_ri(r, 0.5, ri_conf_low=[0.0, 0.1], ri_conf_high=[0.2, 0.3])
    # positional calls of the old signature still work
    assert with_ri(r, 0.3, 0.01).ri_se == 0.01


def test_with_ri_interval_on_a_multi_row_result():
    effects = tuple(_effect(horizon=k, estimate=0.01 * k) for k in (0, 1, 2))
    dyn = DynamicEffectResult(outcome="work_on_di", effects=effects)
    d2 = with_ri(dyn, [0.5, 0.2, 0.01], ri_conf_low=[-0.05, None, 0.004],
                 ri_conf_high=[0.06, None, 0.05])
    t = d2.tidy()
    assert t["ri_conf_low"].tolist()[::2] == [-0.05, 0.004] and math.isnan(t.loc[1, "ri_conf_low"])
    assert t["ri_conf_high"].tolist()[::2] == [0.06, 0.05] and math.isnan(t.loc[1, "ri_conf_high"])


def test_summary_shows_float_horizons_as_event_times():
    from ips_impact.results import SurvivalResult

    rows = [make_row(outcome="employed", term="rmst_difference", estimand="rmst_difference",
                     horizon=20, estimate=-2.5, std_error=0.39, nobs=1200, n_treated=600,
                     n_control=600),
            make_row(outcome="employed", term="median_difference", estimand="median_difference",
                     horizon=None, estimate=-4.0, std_error=math.nan, nobs=1200, n_treated=600,
                     n_control=600)]
    res = SurvivalResult(outcome="employed", kind="time_to_event", statistics=pd.DataFrame(rows),
                         tau=20.0)
    assert res.tidy()["horizon"].dtype == float  # pandas: 20 next to None becomes 20.0
    s = res.summary()
    lines = s.splitlines()
    rmst = next(line for line in lines if "rmst_difference" in line).split()
    median = next(line for line in lines if "median_difference" in line).split()
    assert rmst[3] == "20" and "20.0000" not in s
    assert median[3] == "-4.0000"  # no horizon: the column is blank, the estimate comes next
    h = res._repr_html_()
    assert "<td>20</td>" in h and "20.0000" not in h
    assert _effect(horizon=6.0).summary().splitlines()[0] == "ITT of arm on work_on_di at k = 6"


def test_summary_sentences_never_print_p_as_zero():
    # a tiny p-value reads "p < 0.001" in every family's summary, never "p = 0.000"
    from ips_impact.results import HeterogeneityResult, SurvivalResult

    d = dataclasses.replace(_dynamic(), pretest={"statistic": 30.0, "df_num": 4, "df_denom": math.inf,
                                                 "p_value": 2e-6, "test": "chi2"})
    assert "Pre-period joint test (chi2): statistic 30.0000, df 4, p < 0.001" in d.summary()
    bt = BalanceTable(table=_balance_table(), joint={"statistic": 9.0, "df_num": 3, "df_denom": 596,
                                                     "p_value": 1e-5, "test": "F"})
    assert "Joint test (F): statistic 9.0000, df 3, p < 0.001" in bt.summary()
    rows = [make_row(outcome="employed", term="logrank", estimand="logrank", horizon=20,
                     estimate=91.7, std_error=14.6, nobs=1200, n_treated=600, n_control=600,
                     statistic=39.554, p_value=3.2e-10, df=1)]
    ph = pd.DataFrame({"term": ["arm"], "chisq": [25.0], "df": [1.0], "p_value": [5.7e-7]})
    s = SurvivalResult(outcome="employed", kind="time_to_event", statistics=pd.DataFrame(rows),
                       tau=20.0, ph_test=ph).summary()
    assert "log-rank: chi2 = 39.554, df = 1, p < 0.001" in s
    assert "proportional hazards (arm): chi2 = 25.000, df = 1, p < 0.001" in s
    assert "p = 0.000" not in s
    sg = pd.DataFrame({"subgroup": ["VL", "WAL"], "term": ["arm:region=VL", "arm:region=WAL"],
                       "estimate": [0.14, 0.04], "std_error": [0.04, 0.05], "statistic": [3.5, 0.8],
                       "p_value": [0.0005, 0.42], "conf_low": [0.06, -0.06], "conf_high": [0.22, 0.14],
                       "df": [1185.0, 1185.0], "nobs": [680, 400], "n_treated": [340, 200],
                       "n_control": [340, 200], "control_mean": [0.37, 0.35], "mde": [0.1, 0.14],
                       "small": [False, False]})
    het = HeterogeneityResult(outcome="employed", by="region", moderator="categorical", subgroups=sg,
                              joint={"test": "equal_effects", "statistic": 2.25, "chi2": 2.25,
                                     "df_num": 1, "df_denom": 1185.0, "p_value": 0.134,
                                     "p_value_chi2": 0.134},
                              vcov=pd.DataFrame(np.diag([0.0016, 0.0025])), nobs=1080, n_treated=540,
                              n_control=540, horizon=6)
    assert "Joint test of equal effects: F(1, 1185.0) = 2.2500, p = 0.134" in het.summary()
    small_p = dataclasses.replace(het, joint={**het.joint, "p_value": 4e-4})
    assert "F(1, 1185.0) = 2.2500, p < 0.001" in small_p.summary()


def test_summary_title_names_the_effect_term():
    late = _effect(term="ips_started", estimand="late", outcome="di_benefit", horizon=10)
    assert late.summary().splitlines()[0] == "LATE of ips_started on di_benefit at k = 10"
    assert repr(_effect()) == "<EffectResult: ITT of arm on work_on_di at k = 6>"


def test_balance_summary_lists_warnings_and_rows_set_aside():
    bt = BalanceTable(table=_balance_table(), warnings=("covariate 'age' missing for 7 persons",),
                      ledger=[{"reason": "missing value of covariate 'age'", "n_rows": 7,
                               "n_treated": 3, "n_control": 4}])
    s = bt.summary()
    assert "Warnings:\n  - covariate 'age' missing for 7 persons" in s
    assert "Rows set aside:\n  - missing value of covariate 'age': 7 (treated 3, control 4)" in s
    # the same ending as every other result
    r = _effect(warnings=("w",), ledger=[{"reason": "x", "n_rows": 1, "n_treated": 1, "n_control": 0}])
    assert r.summary().endswith("Warnings:\n  - w\n\nRows set aside:\n  - x: 1 (treated 1, control 0)")


def test_estimators_record_the_frequency_in_a_frozen_spec():
    # records_frequency adds spec["frequency"] to the result it was just handed; the
    # result must be what rebuilding it with that spec would give, and stay frozen
    import pickle

    import ips_impact as ii

    study = ii.synthetic.generate(n_persons=300, seed=4, tables=("assignment", "panel")).study()
    for r in (ii.itt(study, "employed", horizon=4),
              ii.itt_by_period(study, "employed", periods=range(1, 5))):
        assert r.spec["frequency"] == str(study.frequency)
        rebuilt = dataclasses.replace(r, spec=dict(r.spec))
        assert rebuilt.to_json() == r.to_json()
        with pytest.raises(TypeError):
            r.spec["frequency"] = "month"  # type: ignore[index]
        assert pickle.loads(pickle.dumps(r)).to_json() == r.to_json()
