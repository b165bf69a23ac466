"""Tests of Lee bounds: R by-hand parity, brute-force trimming, known truth, Study wiring."""

from __future__ import annotations

import itertools
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ips_impact.errors import DataContractError, EstimationError, EstimationWarning
from ips_impact.estimators.bounds import lee_bounds, trimming_bounds
from ips_impact.results import BoundsResult
from ips_impact.study import Study

REF = Path(__file__).parent / "reference"
REFERENCE = json.loads((REF / "iv_bounds_reference.json").read_text())
STAR = pd.read_csv(REF / "data" / "iv_star_lee.csv")


@pytest.mark.parametrize("case", REFERENCE["lee_cases"], ids=lambda c: c["id"])
def test_parity_with_r_by_hand(case):
    z = STAR["small"] if case["arm"] == "small" else 1 - STAR["small"]
    r = trimming_bounds(STAR["read3"], STAR["observed"], z, level=case["level"])
    assert r.trimmed_arm == case["trimmed_arm"]
    assert r.n_selected_treated == case["n_selected_treated"]
    assert r.n_selected_control == case["n_selected_control"]
    for name in ("lower", "upper", "se_lower", "se_upper", "trim_share", "share_selected_treated",
                 "share_selected_control"):
        assert getattr(r, name) == pytest.approx(case[name], rel=1e-10), name
    lo, hi = r.conf_int()
    assert lo == pytest.approx(case["conf_low"], rel=1e-10)
    assert hi == pytest.approx(case["conf_high"], rel=1e-10)


def test_bounds_are_the_extreme_subsample_means():
    """Brute force: with m = (1 - p) n_s whole persons kept, the lower (upper) trimmed mean is
    the smallest (largest) mean over every subset of m selected treated outcomes."""
    rng = np.random.default_rng(11)
    for n_sel_t, n_sel_c in ((10, 7), (12, 9), (9, 6)):
        n = 12
        z = np.r_[np.ones(n), np.zeros(n)]
        s = np.r_[np.ones(n_sel_t), np.zeros(n - n_sel_t), np.ones(n_sel_c), np.zeros(n - n_sel_c)]
        y = np.where(s == 1, rng.lognormal(7, 0.6, 2 * n).round(0), np.nan)  # rounded: ties
        r = trimming_bounds(y, s, z)
        m = int(round((1 - r.trim_share) * n_sel_t))
        assert m == n_sel_c  # equal arm sizes: keep as many treated as there are selected controls
        means = [np.mean(c) for c in itertools.combinations(y[:n_sel_t], m)]
        mu0 = np.nanmean(y[n:])
        assert r.lower == pytest.approx(min(means) - mu0, rel=1e-12)
        assert r.upper == pytest.approx(max(means) - mu0, rel=1e-12)


def test_fractional_trimming_and_control_trimmed():
    # control selected more often: trim the control arm; m = (1 - p) * 5 is fractional
    y = np.array([1.0, 2.0, 3.0, np.nan, np.nan, 10.0, 20.0, 30.0, 40.0, 50.0])
    s = np.array([1, 1, 1, 0, 0, 1, 1, 1, 1, 1])
    z = np.array([1, 1, 1, 1, 1, 0, 0, 0, 0, 0])
    r = trimming_bounds(y, s, z)
    assert r.trimmed_arm == "control" and r.trim_share == pytest.approx(0.4)
    assert r.naive_difference == pytest.approx(2.0 - 30.0)
    # keep 3 of the 5 selected controls: top 3 = 30, 40, 50 -> lower bound 2 - 40
    assert r.lower == pytest.approx(2.0 - 40.0) and r.upper == pytest.approx(2.0 - 20.0)
    z6 = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])  # 4 treated (3 selected), 6 control (5 selected)
    y6 = np.array([1.0, 2.0, 3.0, np.nan, np.nan, 10.0, 20.0, 30.0, 40.0, 50.0])
    s6 = np.array([1, 1, 1, 0, 0, 1, 1, 1, 1, 1])
    r6 = trimming_bounds(y6, s6, z6)
    # s1 = 3/4, s0 = 5/6, p = 0.1, keep m = 4.5 of 5: upper part = 50+40+30+20 + 0.5*10
    assert r6.trim_share == pytest.approx(0.1)
    assert r6.lower == pytest.approx(2.0 - (50 + 40 + 30 + 20 + 5) / 4.5)
    assert r6.upper == pytest.approx(2.0 - (10 + 20 + 30 + 40 + 25) / 4.5)


def _monotone_trial(rng, n, delta, extra_selection):
    z = np.zeros(n)
    z[rng.choice(n, n // 2, replace=False)] = 1
    s0 = rng.random(n) < 0.35
    s1 = s0 | (rng.random(n) < extra_selection)  # IPS only adds workers (monotone)
    y0 = rng.lognormal(7.5, 0.5, n)
    induced = s1 & ~s0
    # always-selected gain delta; the induced workers earn less (part-time jobs)
    y1 = np.where(induced, rng.lognormal(6.8, 0.5, n), y0 + delta)
    s = np.where(z == 1, s1, s0)
    y = np.where(s, np.where(z == 1, y1, y0), np.nan)
    return y, s.astype(float), z


def test_known_truth_is_inside_the_bounds_and_covered():
    rng = np.random.default_rng(7)
    delta, reps, hits, lows, highs, se_l, se_u = 200.0, 400, 0, [], [], [], []
    for _ in range(reps):
        y, s, z = _monotone_trial(rng, 1200, delta, 0.2)
        r = trimming_bounds(y, s, z)
        lo, hi = r.conf_int()
        hits += lo <= delta <= hi
        lows.append(r.lower)
        highs.append(r.upper)
        se_l.append(r.se_lower)
        se_u.append(r.se_upper)
    # Lee's analytic standard errors match the sampling spread of the bounds: the Monte
    # Carlo s.d. of 400 draws is itself uncertain by 1/sqrt(800) = 3.5%, so allow 10%.
    # (Off-line, 1,500 replications: s.d. 111.3 vs mean s.e. 114.5; 136.0 vs 137.1.)
    assert np.mean(se_l) == pytest.approx(np.std(lows, ddof=1), rel=0.10)
    assert np.mean(se_u) == pytest.approx(np.std(highs, ddof=1), rel=0.10)
    # the identified set contains the truth, and the IM interval covers it at least 95% of
    # the time (it is conservative when the set is wide); 3 MC s.e. of slack below 95%
    assert np.mean(lows) < delta < np.mean(highs)
    assert hits / reps >= 0.95 - 3 * np.sqrt(0.95 * 0.05 / reps)


def test_point_identified_case_is_narrow_and_covers():
    """No effect of the arm on selection: the bounds shrink towards a point and the IM
    interval still covers the truth at least 95% of the time. (It is conservative here:
    the estimated trimming share |s1 - s0| / max(s1, s0) is positive in every sample,
    which widens the estimated set; 400 replications gave 100% coverage.)"""
    rng = np.random.default_rng(8)
    delta, reps, hits, widths = 200.0, 400, 0, []
    for _ in range(reps):
        y, s, z = _monotone_trial(rng, 1200, delta, 0.0)
        r = trimming_bounds(y, s, z)
        lo, hi = r.conf_int()
        hits += lo <= delta <= hi
        widths.append(r.upper - r.lower)
    assert hits / reps >= 0.95 - 3 * np.sqrt(0.95 * 0.05 / reps)
    wide = [trimming_bounds(*_monotone_trial(rng, 1200, delta, 0.2)) for _ in range(20)]
    assert np.median(widths) < 0.25 * np.median([r.upper - r.lower for r in wide])


def test_bootstrap_agrees_with_analytic_and_is_seeded():
    rng = np.random.default_rng(3)
    y, s, z = _monotone_trial(rng, 4000, 200.0, 0.15)
    a = trimming_bounds(y, s, z)
    b = trimming_bounds(y, s, z, se_method="bootstrap", n_bootstrap=400, seed=1)
    assert b.lower == a.lower and b.upper == a.upper
    # 400 draws: the bootstrap s.e. is itself uncertain by about 1/sqrt(2*400) = 3.5%
    assert b.se_lower == pytest.approx(a.se_lower, rel=0.15)
    assert b.se_upper == pytest.approx(a.se_upper, rel=0.15)
    again = trimming_bounds(y, s, z, se_method="bootstrap", n_bootstrap=400, seed=1)
    other = trimming_bounds(y, s, z, se_method="bootstrap", n_bootstrap=400, seed=2)
    assert again.se_lower == b.se_lower and other.se_lower != b.se_lower
    assert b.se_method == "bootstrap"


def test_array_errors():
    y, s, z = np.array([1.0, 2, 3, 4]), np.array([1, 1, 1, 1]), np.array([1, 1, 0, 0])
    with pytest.raises(EstimationError, match="se_method must be one of 'analytic', 'bootstrap'"):
        trimming_bounds(y, s, z, se_method="delta")
    with pytest.raises(EstimationError, match="selected must hold only 0 and 1"):
        trimming_bounds(y, np.array([1, 2, 1, 1]), z)
    with pytest.raises(EstimationError, match="outcome is missing for selected persons"):
        trimming_bounds(np.array([1.0, np.nan, 3, 4]), s, z)
    with pytest.raises(EstimationError, match="only 1 selected person"):
        trimming_bounds(y, np.array([1, 0, 1, 1]), z)


# ------------------------------------------------------------------ through a Study


def trial_frames(n=400, seed=0, n_periods=12):
    rng = np.random.default_rng(seed)
    stratum = np.repeat(["VL", "WAL"], [n // 2, n - n // 2])
    arm = np.zeros(n, dtype=int)
    for st in ("VL", "WAL"):
        idx = np.flatnonzero(stratum == st)
        arm[rng.choice(idx, idx.size // 2, replace=False)] = 1
    a = pd.DataFrame({"person_id": [f"r{i:05d}" for i in range(n)], "arm": arm,
                      "randomization_period": "2018Q1", "stratum": stratum})
    periods = pd.period_range("2017Q1", periods=n_periods, freq="Q").astype(str)
    k = np.tile(np.arange(n_periods) - 4, n)
    p_work = 0.3 + 0.12 * np.repeat(arm, n_periods) * (k >= 1)
    employed = (rng.random(n * n_periods) < p_work).astype(float)
    earnings = np.where(employed == 1, rng.gamma(2, 2000, n * n_periods), np.nan)
    panel = pd.DataFrame({"person_id": np.repeat(a["person_id"], n_periods), "period": np.tile(periods, n),
                          "employed": employed, "earnings": earnings})
    return a, panel


@pytest.fixture(scope="module")
def study():
    a, panel = trial_frames()
    return Study.from_frames(a, panel)


def test_study_horizon_matches_the_panel(study):
    r = lee_bounds(study, "earnings", selection="employed", horizon=4)
    assert isinstance(r, BoundsResult) and r.horizon == 4
    panel = study.panel
    at = panel[panel["k"] == 4].merge(study.persons[["person_id", "arm"]], on="person_id")
    ref = trimming_bounds(at["earnings"].where(at["employed"] == 1), at["employed"], at["arm"])
    assert r.lower == pytest.approx(ref.lower, rel=1e-12) and r.upper == pytest.approx(ref.upper, rel=1e-12)
    assert r.se_lower == pytest.approx(ref.se_lower, rel=1e-12)
    assert r.trimmed_arm == "treated" and r.trim_share > 0
    t = r.tidy()
    assert list(t["estimand"]) == ["lee_lower", "lee_upper", "lee_effect_imbens_manski"]
    assert (t["horizon"] == 4).all()
    assert r.spec["selection"] == "employed" and r.spec["se_method"] == "analytic"


def test_study_window_uses_mean_over_selected_periods(study):
    r = lee_bounds(study, "earnings", selection="employed", window=(2, 5))
    panel = study.panel
    w = panel[panel["k"].between(2, 5)]
    sel = w.groupby("person_id")["employed"].max()
    mean_earn = w[w["employed"] == 1].groupby("person_id")["earnings"].mean()
    arm = study.persons.set_index("person_id")["arm"]
    y = mean_earn.reindex(sel.index)
    ref = trimming_bounds(y.where(sel == 1), sel, arm.reindex(sel.index))
    assert r.lower == pytest.approx(ref.lower, rel=1e-12) and r.upper == pytest.approx(ref.upper, rel=1e-12)
    assert r.horizon == "2:5"


def test_set_aside_rows_are_ledgered():
    a, panel = trial_frames(seed=1)
    # 6 persons lose their k = 4 row (selection unknown); 5 workers lose their earnings
    k4 = panel["period"] == "2019Q1"  # randomized in 2018Q1, so k = 4
    lost = panel.index[k4][:6]
    workers = panel.index[k4 & (panel["employed"] == 1)][6:11]
    panel.loc[workers, "earnings"] = np.nan
    st = Study.from_frames(a, panel.drop(index=lost))
    with pytest.warns(EstimationWarning, match="lack the outcome"):
        r = lee_bounds(st, "earnings", selection="employed", horizon=4)
    led = r.ledger.set_index("reason")["n_rows"]
    assert led["selection 'employed' not observed"] == 6
    assert led["selected but outcome 'earnings' missing"] == 5
    assert r.nobs == len(a) - 11


def test_study_errors(study):
    with pytest.raises(DataContractError, match="must be 0/1"):
        lee_bounds(study, "employed", selection="earnings", horizon=4)
    with pytest.raises(EstimationError, match="exactly one of horizon= or window="):
        lee_bounds(study, "earnings", selection="employed")
    with pytest.raises(EstimationError, match="outside the observed follow-up"):
        lee_bounds(study, "earnings", selection="employed", window=(2, 40))
    with pytest.raises(DataContractError, match="not in the panel"):
        lee_bounds(study, "earnings", selection="at_work", horizon=4)
    with pytest.raises(EstimationError, match="se_method"):
        lee_bounds(study, "earnings", selection="employed", horizon=4, se_method="jackknife")


def test_no_warning_on_clean_data(study):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lee_bounds(study, "earnings", selection="employed", horizon=6)


# ------------------------------------------------------------------ bounds within cells


def test_by_one_cell_is_pooled_and_cells_combine_by_always_selected():
    rng = np.random.default_rng(12)
    y, s, z = _monotone_trial(rng, 2000, 200.0, 0.2)
    pooled = trimming_bounds(y, s, z)
    one = trimming_bounds(y, s, z, by=np.zeros(z.size), n_bootstrap=60)
    assert one.lower == pytest.approx(pooled.lower, rel=1e-12)
    assert one.upper == pytest.approx(pooled.upper, rel=1e-12)
    assert one.trim_share == pytest.approx(pooled.trim_share, rel=1e-12)
    assert one.se_method == "bootstrap" and np.isfinite(one.se_lower)
    # three cells: each cell's own pooled bounds, weighted by P(c) * s_0c
    g = rng.integers(0, 3, z.size)
    r = trimming_bounds(y, s, z, by=g, n_bootstrap=60)
    lows, highs, w = [], [], []
    for c in range(3):
        m = g == c
        rc = trimming_bounds(y[m], s[m], z[m])
        lows.append(rc.lower)
        highs.append(rc.upper)
        w.append(m.mean() * rc.share_selected_control)
    w = np.array(w) / np.sum(w)
    assert r.lower == pytest.approx(w @ lows, rel=1e-12)
    assert r.upper == pytest.approx(w @ highs, rel=1e-12)


def test_by_stratum_handles_unequal_assignment_probabilities():
    """Stratum A: 80% assigned to IPS, high selection and earnings; stratum B: 20%, low.
    IPS has no effect at all, so the truth is 0. Pooled bounds are confounded by the
    strata; bounds within strata are not."""
    rng = np.random.default_rng(21)
    n = 3000
    stratum = np.repeat([0, 1], n // 2)
    z = np.where(stratum == 0, rng.random(n) < 0.8, rng.random(n) < 0.2).astype(float)
    s = (rng.random(n) < np.where(stratum == 0, 0.6, 0.3)).astype(float)
    y = np.where(s == 1, np.where(stratum == 0, 5000.0, 2000.0) + rng.normal(0, 500, n), np.nan)
    pooled = trimming_bounds(y, s, z)
    assert pooled.lower > 0  # confounded: far from the true 0
    within = trimming_bounds(y, s, z, by=stratum, strata=stratum, n_bootstrap=200, seed=3)
    lo, hi = within.conf_int()
    assert lo <= 0.0 <= hi
    assert within.upper - within.lower < 0.5 * (pooled.upper - pooled.lower)


def test_by_through_the_study_and_errors(study):
    r = lee_bounds(study, "earnings", selection="employed", horizon=4, by="stratum", n_bootstrap=100)
    assert r.spec["by"] == "stratum" and r.se_method == "bootstrap"
    assert "within cells of 'stratum'" in r.summary()
    p = study.persons
    at = study.panel[study.panel["k"] == 4].merge(p[["person_id", "arm", "stratum"]], on="person_id")
    ref = trimming_bounds(at["earnings"].where(at["employed"] == 1), at["employed"], at["arm"],
                          by=at["stratum"], n_bootstrap=100)
    assert r.lower == pytest.approx(ref.lower, rel=1e-12) and r.upper == pytest.approx(ref.upper, rel=1e-12)
    with pytest.raises(EstimationError, match="need the bootstrap"):
        lee_bounds(study, "earnings", selection="employed", horizon=4, by="stratum", se_method="analytic")
    with pytest.raises(EstimationError, match="by must be 'stratum' or a column of persons"):
        lee_bounds(study, "earnings", selection="employed", horizon=4, by="district")


def test_unequal_probabilities_warn_unless_by_stratum():
    a, panel = trial_frames(seed=6)
    vl = np.flatnonzero(a["stratum"] == "VL")
    a.loc[vl[: len(vl) * 3 // 4], "arm"] = 1  # VL: 75% or more assigned to IPS
    a.loc[vl[len(vl) * 3 // 4:], "arm"] = 0
    st = Study.from_frames(a, panel)
    with pytest.warns(EstimationWarning, match="use by='stratum'"):
        lee_bounds(st, "earnings", selection="employed", horizon=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lee_bounds(st, "earnings", selection="employed", horizon=4, by="stratum", n_bootstrap=100)
