"""Tests of balance(): checked against statsmodels (an independent OLS/HC2 implementation)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from ips_impact.errors import DataContractError, EstimationError, EstimationWarning
from ips_impact.estimators.balance import balance
from ips_impact.results import BalanceTable
from ips_impact.study import Study


def toy_frames(n=240, seed=0, n_periods=10, miss_shift=0.0):
    rng = np.random.default_rng(seed)
    stratum = np.repeat(["A", "B", "C"], [n // 2, n // 3, n - n // 2 - n // 3])
    arm = np.zeros(n, dtype=int)
    for s in np.unique(stratum):
        idx = np.flatnonzero(stratum == s)
        arm[rng.choice(idx, size=len(idx) // 2, replace=False)] = 1
    age = rng.normal(40, 10, n)
    age[rng.choice(n, 7, replace=False)] = np.nan
    diag = rng.choice(["mood", "psychotic", "anxiety"], n, p=[0.5, 0.2, 0.3]).astype(object)
    diag[rng.choice(n, 5, replace=False)] = None
    a = pd.DataFrame({"person_id": [f"p{i:04d}" for i in range(n)], "arm": arm,
                      "randomization_period": "2018Q1", "stratum": stratum,
                      "region": rng.choice(["VL", "WAL"], n), "age": age, "diag": diag,
                      "female": rng.integers(0, 2, n)})
    periods = pd.period_range("2017Q3", periods=n_periods, freq="Q").astype(str)
    panel = pd.DataFrame({"person_id": np.repeat(a.person_id, n_periods),
                          "period": np.tile(periods, n)})
    panel["employed"] = rng.integers(0, 2, len(panel)).astype(float)
    # earnings missing for 50% of the control rows and (50 + miss_shift)% of the treated
    arm_rows = np.repeat(arm, n_periods)
    p_miss = 0.5 + miss_shift * arm_rows
    panel["earnings"] = np.where(rng.random(len(panel)) < p_miss, np.nan, rng.gamma(2, 2000, len(panel)))
    return a, panel


@pytest.fixture(scope="module")
def study():
    a, panel = toy_frames()
    return Study.from_frames(a, panel)


@pytest.fixture(scope="module")
def table(study):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning expected on balanced toy data
        return balance(study)


def _sm_fit(y, arm, stratum, strata=True):
    df = pd.DataFrame({"y": y, "arm": arm, "stratum": stratum})
    X = pd.get_dummies(df[["arm", "stratum"]], columns=["stratum"], drop_first=True, dtype=float) if strata \
        else df[["arm"]].astype(float)
    X = sm.add_constant(X)
    return sm.OLS(df["y"], X).fit(cov_type="HC2")


def test_rows_means_and_normalised_differences(study, table):
    assert isinstance(table, BalanceTable)
    t = table.to_frame()
    # covariates in the study's order, levels sorted, region added (it varies within strata)
    assert list(t["label"]) == ["age", "diag=anxiety", "diag=mood", "diag=psychotic", "female",
                                "region=VL", "region=WAL"]
    p = study.persons
    arm = p["arm"].to_numpy()
    age = p["age"].to_numpy(dtype=float)
    a1, a0 = age[(arm == 1) & ~np.isnan(age)], age[(arm == 0) & ~np.isnan(age)]
    row = t.set_index("label").loc["age"]
    assert row["mean_treated"] == pytest.approx(a1.mean(), rel=1e-12)
    assert row["mean_control"] == pytest.approx(a0.mean(), rel=1e-12)
    nd = (a1.mean() - a0.mean()) / np.sqrt((a1.var(ddof=1) + a0.var(ddof=1)) / 2)
    assert row["norm_diff"] == pytest.approx(nd, rel=1e-12)
    miss = np.isnan(age)
    assert row["n_missing_treated"] == int((miss & (arm == 1)).sum())
    assert row["n_missing_control"] == int((miss & (arm == 0)).sum())
    assert row["n_missing_treated"] + row["n_missing_control"] == 7
    # category shares of the non-missing persons add up to one in each arm
    d = t[t["covariate"] == "diag"]
    assert d["mean_treated"].sum() == pytest.approx(1.0) and d["mean_control"].sum() == pytest.approx(1.0)
    assert (d["n_missing_treated"] + d["n_missing_control"] == 5).all()
    # the ledger says how many values were missing, per arm
    led = table.ledger
    assert led["n_rows"].tolist() == [7, 5]


def test_stratified_hc2_matches_statsmodels(study, table):
    p = study.persons
    t = table.to_frame().set_index("label")
    for label, col, level in (("age", "age", None), ("diag=psychotic", "diag", "psychotic"),
                              ("female", "female", None)):
        x = p[col]
        if level is None:
            y = x.to_numpy(dtype=float, na_value=np.nan)
        else:
            y = np.where(x.isna(), np.nan, (x.astype(str) == level).astype(float))
        ok = ~np.isnan(y)
        res = _sm_fit(y[ok], p["arm"].to_numpy()[ok], p["stratum"].to_numpy()[ok])
        assert t.loc[label, "estimate"] == pytest.approx(res.params["arm"], rel=1e-10)
        assert t.loc[label, "std_error"] == pytest.approx(res.bse["arm"], rel=1e-10)
        # statsmodels' robust p uses the normal; ours the t(N-K) like estimatr
        from scipy import stats

        tt = res.params["arm"] / res.bse["arm"]
        assert t.loc[label, "p_value"] == pytest.approx(2 * stats.t.sf(abs(tt), res.df_resid), rel=1e-10)
        assert t.loc[label, "df"] == res.df_resid


def test_unstratified_is_the_welch_difference_in_means(study):
    b = balance(study, ["age"], strata=False, outcomes=())
    r = b.table.iloc[0]
    p = study.persons
    age, arm = p["age"].to_numpy(dtype=float), p["arm"].to_numpy()
    a1, a0 = age[(arm == 1) & ~np.isnan(age)], age[(arm == 0) & ~np.isnan(age)]
    assert r["estimate"] == pytest.approx(a1.mean() - a0.mean(), rel=1e-12)
    assert r["difference"] == pytest.approx(a1.mean() - a0.mean(), rel=1e-12)
    # HC2 for a difference in means is the Neyman/Welch variance
    assert r["std_error"] == pytest.approx(np.sqrt(a1.var(ddof=1) / a1.size + a0.var(ddof=1) / a0.size),
                                           rel=1e-12)


def test_joint_test_matches_statsmodels_wald(study, table):
    p = study.persons
    age = p["age"].to_numpy(dtype=float)
    miss_age = np.isnan(age)
    diag = p["diag"]
    cols = {
        "age": np.where(miss_age, np.nanmean(age), age),
        "age_missing": miss_age.astype(float),
        "anx": (diag == "anxiety").fillna(False).to_numpy(dtype=float),
        "psy": (diag == "psychotic").fillna(False).to_numpy(dtype=float),
        "diag_missing": diag.isna().to_numpy(dtype=float),
        "female": p["female"].to_numpy(dtype=float),
        "wal": (p["region"] == "WAL").to_numpy(dtype=float),
    }
    X = pd.DataFrame(cols)
    X = pd.concat([X, pd.get_dummies(p["stratum"], drop_first=True, dtype=float)], axis=1)
    X = sm.add_constant(X)
    res = sm.OLS(p["arm"].astype(float), X).fit(cov_type="HC2")
    R = np.zeros((7, X.shape[1]))
    for i, c in enumerate(cols):
        R[i, list(X.columns).index(c)] = 1.0
    w = res.wald_test(R, use_f=True, scalar=True)
    j = table.joint
    assert j["df_num"] == 7 and j["df_denom"] == res.df_resid
    assert j["statistic"] == pytest.approx(float(w.statistic), rel=1e-9)
    assert j["p_value"] == pytest.approx(float(w.pvalue), rel=1e-9)
    assert j["chi2"] == pytest.approx(7 * float(w.statistic), rel=1e-9)
    # randomized arms: the omnibus test does not reject here
    assert j["p_value"] > 0.05


def test_joint_test_detects_an_imbalanced_covariate():
    a, panel = toy_frames(seed=3)
    # a covariate that is almost the arm itself
    a["prior_work"] = a["arm"] + np.random.default_rng(1).normal(0, 0.5, len(a))
    b = balance(Study.from_frames(a, panel), ["prior_work", "age"], outcomes=())
    assert b.joint["p_value"] < 1e-6
    assert b.table.set_index("covariate").loc["prior_work", "norm_diff"] > 1.0


def test_differential_missingness(study, table):
    m = table.missingness.set_index("outcome")
    panel = study.panel
    p = study.persons
    post = panel[panel["k"] >= 0]
    share = post["earnings"].isna().groupby(post["person_id"]).mean()
    share = share.reindex(p["person_id"]).to_numpy()
    arm = p["arm"].to_numpy()
    assert m.loc["earnings", "horizon"] == "0:7"
    assert m.loc["earnings", "share_missing_treated"] == pytest.approx(share[arm == 1].mean(), rel=1e-12)
    assert m.loc["earnings", "share_missing_control"] == pytest.approx(share[arm == 0].mean(), rel=1e-12)
    res = _sm_fit(share, arm, p["stratum"].to_numpy())
    assert m.loc["earnings", "std_error"] == pytest.approx(res.bse["arm"], rel=1e-10)
    # never missing -> no variation -> no p-value
    assert m.loc["employed", "share_missing_treated"] == 0 and np.isnan(m.loc["employed", "p_value"])


def test_differential_missingness_is_flagged_at_horizons():
    a, panel = toy_frames(seed=5, miss_shift=0.3)
    st = Study.from_frames(a, panel)
    with pytest.warns(EstimationWarning, match="earnings.*missing more often"):
        b = balance(st, ["age"], outcomes=["earnings"], missing_horizons=[2, 4])
    m = b.missingness
    assert list(m["horizon"]) == [2, 4]
    assert (m["share_missing_treated"] > m["share_missing_control"]).all()
    assert any("missing more often" in w for w in b.warnings)
    with pytest.raises(EstimationError, match="outside the observed follow-up"):
        balance(st, ["age"], outcomes=["earnings"], missing_horizons=[40])


def test_stratum_level_covariate_is_not_tested():
    a, panel = toy_frames()
    a["site"] = a["stratum"].map({"A": "s1", "B": "s2", "C": "s3"})
    st = Study.from_frames(a, panel)
    # by default a covariate fixed by the strata is left out
    assert "site" not in set(balance(st, outcomes=()).table["covariate"])
    with pytest.warns(EstimationWarning, match="constant within strata"):
        b = balance(st, ["site", "age"], outcomes=())
    t = b.table
    assert t.loc[t["covariate"] == "site", "p_value"].isna().all()
    assert "site=s2" not in b.joint["terms"]


def test_errors(study):
    with pytest.raises(DataContractError, match="'income'.*not baseline covariates"):
        balance(study, ["income"])
    with pytest.raises(DataContractError, match="person_id"):
        balance(study, ["person_id"])
    with pytest.raises(EstimationError, match="cov_type must be one of 'HC0', 'HC1', 'HC2', 'HC3'"):
        balance(study, ["age"], cov_type="CR2")
    with pytest.raises(EstimationError, match="strata must be True or False"):
        balance(study, ["age"], strata="yes")


def test_balance_of_the_study_is_tidy_and_study_has_no_estimator_method(study, table):
    # Study.balance() was dropped so that the data layer imports no estimator.
    assert not hasattr(study, "balance")
    b = balance(study, outcomes=())
    pd.testing.assert_frame_equal(b.table, table.table)
    tidy = b.tidy()
    assert (tidy["estimand"] == "balance").all() and (tidy["term"] == "arm").all()
    js = b.to_json()
    assert "person_id" not in js and "p0001" not in js


def test_covariate_partly_determined_by_strata():
    """A site that coincides with stratum A but splits strata B and C: its stratum-A share
    has no within-stratum variation (no test), and the joint test leaves out the columns
    that are linear combinations of the strata instead of failing."""
    a, panel = toy_frames(seed=4)
    rng = np.random.default_rng(2)
    site = np.where(a["stratum"] == "A", "s_a", np.where(rng.random(len(a)) < 0.5, "s_x", "s_y"))
    a["site"] = site
    st = Study.from_frames(a, panel)
    with pytest.warns(EstimationWarning) as rec:
        b = balance(st, ["age", "site"], outcomes=())
    msgs = [str(w.message) for w in rec]
    t = b.to_frame().set_index("label")
    assert np.isnan(t.loc["site=s_a", "p_value"]) and np.isfinite(t.loc["site=s_x", "p_value"])
    assert any("no test" in m and "site=s_a" in m for m in msgs)
    # s_a (most frequent) is the reference level; s_x + s_y is the indicator of strata B
    # and C, so one of them is left out and the other tested
    j = b.joint
    assert sorted([*j["dropped"], *[t for t in j["terms"] if t.startswith("site")]]) == ["site=s_x", "site=s_y"]
    assert len(j["dropped"]) == 1 and j["df_num"] == len(j["terms"]) == 3  # age, age missing, site
    assert any("left out of the joint test" in m for m in msgs)


def test_date_covariate_is_refused():
    a, panel = toy_frames(n=60)
    a["diagnosis_date"] = pd.Timestamp("2017-01-01") + pd.to_timedelta(np.arange(60), unit="D")
    st = Study.from_frames(a, panel)
    with pytest.raises(EstimationError, match="'diagnosis_date' holds dates"):
        balance(st, ["diagnosis_date"], outcomes=())
