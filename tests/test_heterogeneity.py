"""Heterogeneity of the effect (ips_impact.estimators.heterogeneity).

R parity: tests/reference/r/spillover_heterogeneity.R — estimatr::lm_robust interaction
models (CR2 by school on AchievementAwardsRCT 2001; HC0-HC3 on alo_star_men), the joint
Wald test with the same vcov (car::linearHypothesis; clubSandwich::Wald_test "chi-sq",
"Naive-F" and "HTZ", the default with CR2).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from test_spillover import small_trial  # the hand-made household trial

from ips_impact.errors import DataContractError, EstimationError, SmallSampleWarning
from ips_impact.estimators.heterogeneity import check_sites, heterogeneity, randomization_problem
from ips_impact.inference.randomization import linear_statistics
from ips_impact.power import mde
from ips_impact.results.base import TIDY_COLUMNS
from ips_impact.study import Study

HERE = Path(__file__).parent
REF = json.loads((HERE / "reference" / "spillover_heterogeneity_reference.json").read_text())["models"]
RTOL = 1e-8
AA_COVS = ["siblings", "immigrant", "father_ed", "mother_ed"]


@pytest.fixture(scope="module")
def aa_persons() -> Study:
    """Every student a 'person'; arm = the school's; strata = pairs; cluster = school."""
    aa = pd.read_csv(HERE / "reference" / "data" / "het_achievement_awards_2001.csv")
    aa["person_id"] = "p" + aa["row"].astype(str)
    a = aa[["person_id", "treated", "pair", "sex", "school_type", "lagscore", *AA_COVS]].rename(
        columns={"treated": "arm", "pair": "stratum"})
    a["stratum"] = a["stratum"].astype(str)
    a["school"] = "s" + aa["school_id"].astype(str)
    a["randomization_period"] = 0
    panel = aa[["person_id", "Bagrut_status"]].assign(period=0)
    return Study.from_frames(a, panel, frequency="int")


@pytest.fixture(scope="module")
def alo() -> Study:
    d = pd.read_csv(HERE / "reference" / "data" / "het_alo_star_men.csv")
    d["person_id"] = "a" + d["row"].astype(str)
    a = d[["person_id", "sfsp", "gpa0"]].rename(columns={"sfsp": "arm"}).assign(randomization_period=0)
    return Study.from_frames(a, d[["person_id", "GPA_year1"]].assign(period=0), frequency="int")


def _check(res, entry, terms, rtol=RTOL):
    sub = res.subgroups
    assert len(sub) == len(terms)
    for (_, row), t in zip(sub.iterrows(), terms):
        c = entry["coefficients"][t]
        for k in ("estimate", "std_error", "statistic", "p_value", "conf_low", "conf_high", "df"):
            assert row[k] == pytest.approx(c[k], rel=rtol), (t, k)
        if "mde" in entry:
            assert row["mde"] == pytest.approx(entry["mde"][t], rel=rtol)
    if "joint" in entry:
        j = entry["joint"]
        assert res.joint["statistic"] == pytest.approx(j["F"], rel=rtol)
        assert res.joint["chi2"] == pytest.approx(j["chi2"], rel=rtol)
        assert res.joint["df_num"] == j["df_num"]
        assert res.joint["df_denom"] == pytest.approx(j["df_denom"], rel=1e-12)
        assert res.joint["p_value"] == pytest.approx(j["p_value"], rel=rtol)
        assert res.joint["p_value_chi2"] == pytest.approx(j["p_value_chi2"], rel=rtol)
    assert res.nobs == entry["nobs"]


def _check_clubsandwich(res, entry, test, rtol=RTOL):
    """The joint test against clubSandwich::Wald_test(..., test = <test>)."""
    cs = entry["joint_clubSandwich"]
    i = cs["test"].index(test)
    assert res.joint["statistic"] == pytest.approx(cs["Fstat"][i], rel=rtol)
    assert res.joint["df_num"] == cs["df_num"][i]
    if cs["df_denom"][i] == "Inf":
        assert res.joint["df_denom"] == np.inf
    else:
        assert res.joint["df_denom"] == pytest.approx(cs["df_denom"][i], rel=rtol)
    assert res.joint["p_value"] == pytest.approx(cs["p_val"][i], rel=rtol)
    if "delta" in cs:
        assert res.joint["delta"] == pytest.approx(cs["delta"][i], rel=rtol)


SEX_TERMS = ["sexBoy:treated", "sexGirl:treated"]
SCHOOL_TERMS = ["school_typeArab:treated", "school_typeReligious:treated", "school_typeSecular:treated"]


# The R models of the achievement-awards data have strata (pair) fixed effects; the
# pairs' assignment probabilities differ, where the default is "lin", so "ancova" is named.
def test_sex_cr2_matches_estimatr_and_clubsandwich(aa_persons):
    entry = REF["het_sex_strata_CR2"]
    res = heterogeneity(aa_persons, "Bagrut_status", by="sex", horizon=0, adjustment="ancova", cluster="school",
                        joint_test="naive-F")
    _check(res, entry, SEX_TERMS)
    _check_clubsandwich(res, entry, "Naive-F")
    assert res.joint["df_denom"] == 38 and res.joint["method"] == "naive-F"
    assert res.spec["cov_type"] == "CR2"
    # the default with CR2 is HTZ (Pustejovsky & Tipton 2018)
    htz = heterogeneity(aa_persons, "Bagrut_status", by="sex", horizon=0, adjustment="ancova", cluster="school")
    assert htz.spec["joint_test"] == "HTZ" and htz.joint["method"] == "HTZ"
    _check_clubsandwich(htz, entry, "HTZ")
    chi = heterogeneity(aa_persons, "Bagrut_status", by="sex", horizon=0, adjustment="ancova", cluster="school",
                        joint_test="chi-square")
    _check_clubsandwich(chi, entry, "chi-sq")
    # same Wald statistic W, three reference distributions; the subgroup effects do not move
    assert htz.joint["chi2"] == pytest.approx(res.joint["chi2"], rel=1e-12)
    assert chi.joint["chi2"] == pytest.approx(res.joint["chi2"], rel=1e-12)
    pd.testing.assert_frame_equal(htz.subgroups, res.subgroups)


def test_school_type_ancova_cr2_matches_estimatr(aa_persons):
    entry = REF["het_schooltype_ancova_CR2"]
    res = heterogeneity(aa_persons, "Bagrut_status", by="school_type", horizon=0, adjustment="ancova", cluster="school",
                        covariates=AA_COVS, joint_test="naive-F")
    _check(res, entry, SCHOOL_TERMS)
    _check_clubsandwich(res, entry, "Naive-F")
    assert list(res.subgroups["subgroup"]) == ["Arab", "Religious", "Secular"]


def test_school_type_htz_matches_clubsandwich(aa_persons):
    # q = 2: delta < 1 and nu - q + 1 = 7.7 against the naive G - 1 = 38
    entry = REF["het_schooltype_ancova_CR2"]
    res = heterogeneity(aa_persons, "Bagrut_status", by="school_type", horizon=0, adjustment="ancova", cluster="school",
                        covariates=AA_COVS)
    _check_clubsandwich(res, entry, "HTZ")
    assert res.joint["delta"] < 1.0
    assert res.joint["nu"] == pytest.approx(res.joint["df_denom"] + 1.0, rel=1e-14)
    assert res.joint["statistic"] == pytest.approx(res.joint["delta"] * res.joint["chi2"] / 2, rel=1e-14)
    tidy = res.tidy().iloc[-1]
    assert tidy["df"] == pytest.approx(res.joint["df_denom"], rel=1e-14)
    assert tidy["p_value"] == pytest.approx(res.joint["p_value"], rel=1e-14)
    chi = heterogeneity(aa_persons, "Bagrut_status", by="school_type", horizon=0, adjustment="ancova", cluster="school",
                        covariates=AA_COVS, joint_test="chi-square")
    _check_clubsandwich(chi, entry, "chi-sq")


def test_continuous_cr2_matches_estimatr(aa_persons):
    res = heterogeneity(aa_persons, "Bagrut_status", by="lagscore", horizon=0, adjustment="ancova", cluster="school",
                        joint_test="naive-F")
    _check(res, REF["het_lagscore_strata_CR2"], ["treated", "treated:lagscore_c"])
    _check_clubsandwich(res, REF["het_lagscore_strata_CR2"], "Naive-F")
    # HTZ with one restriction is the Satterthwaite t test of the interaction, squared
    htz = heterogeneity(aa_persons, "Bagrut_status", by="lagscore", horizon=0, adjustment="ancova", cluster="school")
    _check_clubsandwich(htz, REF["het_lagscore_strata_CR2"], "HTZ")
    assert htz.joint["df_denom"] == pytest.approx(htz.subgroups["df"].iloc[1], rel=1e-12)
    assert htz.joint["p_value"] == pytest.approx(htz.subgroups["p_value"].iloc[1], rel=1e-10)
    assert res.moderator == "continuous"
    tidy = res.tidy()
    assert list(tidy["estimand"]) == ["effect_at_mean", "interaction", "heterogeneity_test"]
    # the joint row of a continuous moderator is the Wald test of the interaction
    t = res.subgroups["statistic"].iloc[1]
    assert res.joint["statistic"] == pytest.approx(t**2, rel=1e-12)


@pytest.mark.parametrize("se", ["HC0", "HC1", "HC2", "HC3"])
def test_tercile_hc_matches_estimatr_and_car(alo, se):
    with pytest.warns(SmallSampleWarning, match="fewer than 30"):
        res = heterogeneity(alo, "GPA_year1", by="gpa0", cut=3, horizon=0, cov_type=se)
    entry = REF[f"het_tercile_none_{se}"]
    _check(res, entry, ["tercileT1:sfsp", "tercileT2:sfsp", "tercileT3:sfsp"])
    car = entry["joint_car"]
    assert res.spec["joint_test"] == "F" and res.joint["method"] == "F"
    assert res.joint["statistic"] == pytest.approx(car["F"], rel=RTOL)
    assert res.joint["df_denom"] == car["df_denom"]
    assert res.joint["p_value"] == pytest.approx(car["p_value"], rel=RTOL)
    # quantile groups as R's cut(quantile(type 7), include.lowest = TRUE)
    cuts = REF["alo_tercile_cutpoints"]
    assert list(res.subgroups["nobs"]) == [cuts["counts"][k] for k in ("T1", "T2", "T3")]
    assert res.subgroups["small"].all()


def test_tercile_ancova_and_continuous_hc2_match_estimatr(alo):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallSampleWarning)
        a = heterogeneity(alo, "GPA_year1", by="gpa0", cut=3, horizon=0, covariates=["gpa0"])
    _check(a, REF["het_tercile_ancova_HC2"], ["tercileT1:sfsp", "tercileT2:sfsp", "tercileT3:sfsp"])
    b = heterogeneity(alo, "GPA_year1", by="gpa0", horizon=0)
    _check(b, REF["het_gpa0_none_HC2"], ["sfsp", "sfsp:gpa0_c"])
    assert b.centre == pytest.approx(pd.read_csv(HERE / "reference" / "data" / "het_alo_star_men.csv")
                                     ["gpa0"].mean(), rel=1e-14)


def test_mde_is_the_power_formula_on_each_subgroup_se(alo):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallSampleWarning)
        res = heterogeneity(alo, "GPA_year1", by="gpa0", cut=3, horizon=0)
    sub = res.subgroups
    np.testing.assert_allclose(sub["mde"], mde(sub["std_error"], df=sub["df"]), rtol=1e-14)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallSampleWarning)
        res9 = heterogeneity(alo, "GPA_year1", by="gpa0", cut=3, horizon=0, mde_power=0.9)
    assert (res9.subgroups["mde"] > sub["mde"]).all()


# ----------------------------------------------------------------- hand-made trial


@pytest.fixture(scope="module")
def trial():
    a, p, h = small_trial(n=240, seed=11)
    rng = np.random.default_rng(5)
    a["local_unemployment"] = rng.uniform(2.0, 15.0, len(a)).round(3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        st = Study.from_frames(a, p, households=h)
    return st, a, p, h


def test_region_subgroups_are_differences_in_means(trial):
    st = trial[0]
    res = heterogeneity(st, "earnings", by="region", horizon=2, adjustment="none", strata=False)
    y = st.outcome_at("earnings", 2).to_numpy()
    z = st.persons["arm"].to_numpy()
    reg = st.persons["region"].to_numpy()
    for _, row in res.subgroups.iterrows():
        g = reg == row["subgroup"]
        dim = y[g & (z == 1)].mean() - y[g & (z == 0)].mean()
        assert row["estimate"] == pytest.approx(dim, rel=1e-12)
        assert row["n_treated"] == int((g & (z == 1)).sum())
        assert row["control_mean"] == pytest.approx(y[g & (z == 0)].mean(), rel=1e-12)


def test_strata_nested_in_subgroups_are_dropped_not_an_error(trial):
    # strata = region: the stratum indicators are the region intercepts again
    st = trial[0]
    a = heterogeneity(st, "earnings", by="region", horizon=2)
    b = heterogeneity(st, "earnings", by="region", horizon=2, strata=False)
    np.testing.assert_allclose(a.subgroups["estimate"], b.subgroups["estimate"], rtol=1e-12)
    np.testing.assert_allclose(a.subgroups["std_error"], b.subgroups["std_error"], rtol=1e-10)
    assert set(a.spec["dropped_collinear"]) == {"stratum[VL]", "stratum[WAL]"}


def test_tidy_has_one_row_per_subgroup_and_a_joint_row(trial):
    res = heterogeneity(trial[0], "earnings", by="region", horizon=2)
    tidy = res.tidy()
    assert tuple(tidy.columns) == TIDY_COLUMNS
    assert list(tidy["term"]) == ["arm:region=BXL", "arm:region=VL", "arm:region=WAL", "joint:region"]
    assert list(tidy["estimand"]) == ["subgroup"] * 3 + ["heterogeneity_test"]
    joint = tidy.iloc[-1]
    assert np.isnan(joint["estimate"]) and joint["p_value"] == pytest.approx(res.p_value)
    assert joint["df"] == 240 - 6  # n - rank for HC2
    assert tidy["nobs"].iloc[:3].sum() == tidy["nobs"].iloc[-1] == 240


def test_household_type_from_the_baseline_roster(trial):
    st = trial[0]
    res = heterogeneity(st, "earnings", by="household_type", horizon=2)
    sub = res.subgroups.set_index("subgroup")
    # every household has a partner; children of even households joined later
    assert sub.loc["couple", "nobs"] == 120 and sub.loc["couple with children", "nobs"] == 120
    assert set(sub.index) == {"couple", "couple with children"}


def test_partner_at_work_at_baseline(trial):
    st = trial[0]
    res = heterogeneity(st, "earnings", by="partner_at_work", horizon=2)
    m = st.members
    base = m[(m["role"] == "partner") & (m["k"] == -1)].set_index("index_person_id")["employed"]
    n_work = int((st.persons["person_id"].map(base) == 1).sum())
    sub = res.subgroups.set_index("subgroup")
    assert sub.loc["partner at work", "nobs"] == n_work
    assert sub.loc["partner not at work", "nobs"] == 240 - n_work


def test_unemployment_tercile(trial):
    st = trial[0]
    a = heterogeneity(st, "earnings", by="unemployment_tercile", horizon=2)
    b = heterogeneity(st, "earnings", by="local_unemployment", cut=3, horizon=2)
    np.testing.assert_allclose(a.subgroups["estimate"], b.subgroups["estimate"], rtol=1e-14)
    assert list(a.subgroups["nobs"]) == [80, 80, 80]
    c = heterogeneity(st, "earnings", by="local_unemployment", horizon=2)
    assert c.moderator == "continuous"


SITES = pd.DataFrame({
    "site": ["s1", "s1", "s2", "s3", "s4"],
    "fidelity": [96, 104, 115, 88, 121],
    "assessment_date": ["2018-06-01", "2019-06-01", "2018-06-01", "2018-07-01", "2018-08-01"],
})


def test_fidelity_is_a_continuous_moderator_from_the_sites_table(trial):
    st, a, p, h = trial
    res = heterogeneity(st, "earnings", by="fidelity", horizon=2, sites=SITES)
    assert res.moderator == "continuous"
    fid = {"s1": 100.0, "s2": 115.0, "s3": 88.0, "s4": 121.0}  # s1: mean of two assessments
    a2 = a.assign(fid=a["site"].map(fid))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        st2 = Study.from_frames(a2, p, households=h)
    ref = heterogeneity(st2, "earnings", by="fid", horizon=2)
    np.testing.assert_allclose(res.subgroups["estimate"], ref.subgroups["estimate"], rtol=1e-12)
    np.testing.assert_allclose(res.subgroups["std_error"], ref.subgroups["std_error"], rtol=1e-12)


def test_by_site_reports_site_fidelity(trial):
    with pytest.warns(SmallSampleWarning):
        res = heterogeneity(trial[0], "earnings", by="site", horizon=2, sites=SITES)
    sub = res.subgroups.set_index("subgroup")
    assert sub.loc["s1", "fidelity"] == 100.0 and sub.loc["s1", "n_assessments"] == 2
    assert sub.loc["s4", "fidelity"] == 121.0


@pytest.mark.parametrize(
    "sites, match",
    [
        (SITES.drop(columns="fidelity"), "missing required columns"),
        (SITES.assign(fidelity=[96, 104, 130, 88, 121]), "outside the 25-item"),
        (SITES.assign(assessment_date=["x"] * 5), "unparseable"),
        ("sites.csv", "must be a DataFrame"),
    ],
)
def test_bad_sites_tables_are_typed_errors(sites, match):
    with pytest.raises(DataContractError, match=match):
        check_sites(sites)


def test_small_subgroups_warn_and_are_flagged(trial):
    with pytest.warns(SmallSampleWarning, match="fewer than 30 persons in an arm"):
        res = heterogeneity(trial[0], "earnings", by="site", horizon=2)  # 60 per site, ~30 per arm
    flagged = res.subgroups["small"]
    assert flagged.equals((res.subgroups["n_treated"] < 30) | (res.subgroups["n_control"] < 30))
    assert any("fewer than 30" in w for w in res.warnings)
    quiet = heterogeneity(trial[0], "earnings", by="region", horizon=2)
    assert not quiet.subgroups["small"].any() and not quiet.warnings


def test_subgroup_with_one_arm_is_set_aside(trial):
    st, a, p, h = trial
    a2 = a.copy()
    a2["grp"] = np.where(a2["arm"] == 1, "x", "y")
    a2.loc[a2.index[:100], "grp"] = "z"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        st2 = Study.from_frames(a2, p, households=h)
    with pytest.raises(EstimationError, match="fewer than two subgroups"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            heterogeneity(st2, "earnings", by="grp", horizon=2)
    a2["grp2"] = np.where(a2.index < 100, "z", np.where(a2.index < 170, "w", "x"))
    a2["grp3"] = np.where(a2["grp2"].eq("w") & a2["arm"].eq(1), "only_ips", a2["grp2"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        st3 = Study.from_frames(a2, p, households=h)
    with pytest.warns(SmallSampleWarning, match="one arm only"):
        res = heterogeneity(st3, "earnings", by="grp3", horizon=2, min_per_arm=0)
    # 'only_ips' has treated persons only and what is left of 'w' controls only
    assert set(res.subgroups["subgroup"]) == {"x", "z"}
    assert res.ledger["n_rows"].sum() == int(a2["grp2"].eq("w").sum())


def test_lin_and_window(trial):
    st = trial[0]
    res = heterogeneity(st, "earnings", by="region", window=(1, 3), adjustment="lin",
                        covariates=["age"])
    assert res.horizon == "1:3" and len(res.subgroups) == 3
    # Lin within subgroups with a single stratum per subgroup: each subgroup effect is the
    # Lin estimate on that subgroup alone
    y = st.outcome_matrix("earnings", [1, 2, 3]).mean(axis=1)
    p = st.persons
    for _, row in res.subgroups.iterrows():
        g = (p["region"] == row["subgroup"]).to_numpy()
        z = p["arm"].to_numpy()[g].astype(float)
        x = p["age"].to_numpy()[g].astype(float)
        xc = x - x.mean()
        X = np.column_stack([np.ones(g.sum()), z, xc, z * xc])
        beta = np.linalg.lstsq(X, y[g], rcond=None)[0]
        assert row["estimate"] == pytest.approx(beta[1], rel=1e-10)


def test_randomization_problem_reproduces_subgroup_effects(trial):
    st = trial[0]
    arm = np.asarray(st.design.arm)
    res = heterogeneity(st, "earnings", by="region", horizon=2, covariates=["age"])
    probs = randomization_problem(st, res)
    got = np.concatenate([s[0] for s in linear_statistics(probs, arm[None, :])])
    assert got.size == len(res.tidy())  # one statistic per tidy row
    np.testing.assert_allclose(got[:3], res.subgroups["estimate"], rtol=1e-10)
    assert np.isnan(got[3])  # three subgroups: no linear statistic for the joint row
    cont = heterogeneity(st, "earnings", by="age", horizon=2)
    got = np.concatenate([s[0] for s in linear_statistics(randomization_problem(st, cont), arm[None, :])])
    np.testing.assert_allclose(got, list(cont.subgroups["estimate"]) + [cont.subgroups["estimate"].iloc[1]],
                               rtol=1e-10)


def test_randomization_inference_end_to_end(trial):
    from ips_impact.inference.randomization import randomization_inference

    st = trial[0]
    two = heterogeneity(st, "earnings", by="household_type", horizon=2, adjustment="lin",
                        covariates=["age"])
    arm = np.asarray(st.design.arm)
    got = np.concatenate([s[0] for s in linear_statistics(randomization_problem(st, two), arm[None, :])])
    est = two.subgroups["estimate"].to_numpy()
    assert got[2] == pytest.approx(est[1] - est[0], rel=1e-10)  # the contrast
    ri = randomization_inference(st, two, n_permutations=200, seed=1)
    p = ri.tidy()["ri_p_value"]
    assert p.notna().all() and ((p > 0) & (p <= 1)).all()


def test_plots(trial):
    res = heterogeneity(trial[0], "earnings", by="region", horizon=2)
    ax = res.plot()
    assert len(ax.get_yticklabels()) == 3
    cont = heterogeneity(trial[0], "earnings", by="age", horizon=2)
    ax2 = cont.plot()
    assert ax2.get_xlabel() == "age"
    eff = cont.effect_at([cont.centre])
    assert eff["estimate"].iloc[0] == pytest.approx(cont.subgroups["estimate"].iloc[0], rel=1e-12)
    with pytest.raises(EstimationError, match="continuous moderator"):
        res.effect_at(1.0)


def test_result_frozen_and_deterministic(trial):
    a = heterogeneity(trial[0], "earnings", by="region", horizon=2)
    b = heterogeneity(trial[0], "earnings", by="region", horizon=2)
    assert a.to_json() == b.to_json()
    with pytest.raises(Exception):
        a.by = "site"  # type: ignore[misc]
    with pytest.raises(ValueError):
        a.subgroups.iloc[0, 2] = 0.0
    assert "i0" not in a.to_json()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(by="shoe_size"), "by must be a column of persons or one of"),
        (dict(by="region", cut=3), "cut= needs a numeric moderator"),
        (dict(by="region", moderator="continuous"), "is not numeric"),
        (dict(by="household_type", moderator="continuous"), "is a categorical moderator"),
        (dict(moderator="ordinal"), "moderator must be one of"),
        (dict(adjustment="double"), "adjustment must be one of"),
        (dict(cov_type="CR2"), "cluster-robust but no cluster"),
        (dict(cov_type="HC2", cluster="site"), "ignores cluster"),
        (dict(cluster="nowhere"), "cluster must be a column"),
        (dict(by="fidelity"), "needs the sites table"),
        (dict(by="unemployment_tercile", cut=1), "cut must be"),
        (dict(min_per_arm=-1), "min_per_arm"),
        (dict(level=1.5), "level must be"),
        (dict(horizon=None), "exactly one of horizon"),
        (dict(covariates=["nope"]), "covariate 'nope'"),
        (dict(adjustment="none", covariates=["age"]), "takes no covariates"),
    ],
)
def test_bad_options_are_typed_errors(trial, kwargs, match):
    args = dict(by="region", horizon=2)
    args.update(kwargs)
    with pytest.raises(EstimationError, match=match):
        heterogeneity(trial[0], "earnings", **args)


def test_household_moderators_need_a_roster(trial):
    a, p = trial[1], trial[2]
    p = p[p["person_id"].str.startswith("i")]
    st = Study.from_frames(a.drop(columns="household_id"), p)
    with pytest.raises(EstimationError, match="household roster"):
        heterogeneity(st, "earnings", by="household_type", horizon=2)


def test_sites_default_to_the_study_sites(trial):
    class WithSites:
        # a Study that carries study.sites (as the lead's Study will)
        def __init__(self, study, sites):
            self._s, self.sites = study, sites

        def __getattr__(self, name):
            return getattr(self._s, name)

    st = trial[0]
    a = heterogeneity(WithSites(st, SITES), "earnings", by="fidelity", horizon=2)
    b = heterogeneity(st, "earnings", by="fidelity", horizon=2, sites=SITES)
    np.testing.assert_allclose(a.subgroups["estimate"], b.subgroups["estimate"], rtol=1e-14)


def test_partner_at_work_needs_employment(trial):
    a, p, h = small_trial(n=60, seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        st = Study.from_frames(a, p.drop(columns="employed"), households=h)
    with pytest.raises(EstimationError, match="employed"):
        heterogeneity(st, "earnings", by="partner_at_work", horizon=2)


def test_unemployment_tercile_needs_the_column(trial):
    a, p, h = small_trial(n=60, seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        st = Study.from_frames(a, p, households=h)
    with pytest.raises(EstimationError, match="local_unemployment"):
        heterogeneity(st, "earnings", by="unemployment_tercile", horizon=2)


# ----------------------------------------------------------------- joint_test option


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(joint_test="HTZ"), r"joint_test='HTZ' does not go with cov_type='HC2'.*cluster="),
        (dict(joint_test="naive-F"), r"does not go with cov_type='HC2'.*'F', 'chi-square'"),
        (dict(joint_test="F", cluster="site"), r"does not go with cov_type='CR2'.*'HTZ', 'naive-F'"),
        (dict(joint_test="HTZ", cluster="site", cov_type="CR1"), r"CR2 working model"),
        (dict(joint_test="wald"), r"joint_test must be one of 'HTZ', 'naive-F', 'F', 'chi-square'"),
        (dict(joint_test=3), r"joint_test must be one of"),
    ],
)
def test_bad_joint_tests_are_typed_errors(trial, kwargs, match):
    with pytest.raises(EstimationError, match=match):
        heterogeneity(trial[0], "earnings", by="region", horizon=2, **kwargs)


def test_joint_test_defaults_follow_the_covariance(trial):
    st = trial[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallSampleWarning)  # 4 sites
        cr1 = heterogeneity(st, "earnings", by="region", horizon=2, cluster="site", cov_type="CR1")
        cr2 = heterogeneity(st, "earnings", by="region", horizon=2, cluster="site")
    assert cr1.spec["joint_test"] == "naive-F" and cr1.joint["df_denom"] == 3
    assert cr2.spec["joint_test"] == "HTZ" and cr2.joint["df_denom"] != 3
    hc = heterogeneity(st, "earnings", by="region", horizon=2)
    assert hc.spec["joint_test"] == "F" and hc.joint["df_denom"] == 240 - 6
    assert np.isnan(hc.joint["nu"]) and hc.joint["delta"] == 1.0
    chi = heterogeneity(st, "earnings", by="region", horizon=2, joint_test="chi-square")
    assert chi.joint["df_denom"] == np.inf
    assert chi.joint["p_value"] == pytest.approx(chi.joint["p_value_chi2"], rel=1e-14)
    assert chi.joint["p_value"] < hc.joint["p_value"]  # chi-square ignores the df


def _htz_clubsandwich_transcription(X, cl, C, beta, V):
    """A line-by-line transcription of clubSandwich 0.5.8 (get_GH, get_P_array,
    total_variance_mat, Wald_testing, Hotelling_Tsq) for an unweighted lm with CR2:
    dense J x J arrays, cluster blocks by explicit eigen-decomposition."""
    J = np.unique(cl)
    M = np.linalg.inv(X.T @ X)
    Lc = np.linalg.cholesky(M)
    Gs, Hs = [], []
    for j in J:
        Xj = X[cl == j]
        ev, vec = np.linalg.eigh(np.eye(len(Xj)) - Xj @ M @ Xj.T)
        Aj = vec @ np.diag(np.where(ev > 1e-12, 1 / np.sqrt(np.clip(ev, 1e-300, None)), 0)) @ vec.T
        E = Xj.T @ Aj  # est_mats X_j' adjusted by A_j
        Gs.append(C @ M @ E)
        Hs.append(C @ M @ E @ Xj @ Lc)
    q, nJ = C.shape[0], len(J)
    P = np.zeros((q, q, nJ, nJ))
    for i in range(q):
        for k in range(q):
            tmp = -np.array([[Hs[a][i] @ Hs[b][k] for b in range(nJ)] for a in range(nJ)])
            tmp[np.diag_indices(nJ)] += [g[i] @ g[k] for g in Gs]
            P[i, k] = tmp
    Om = np.einsum("ikjj->ik", P)
    ev, vec = np.linalg.eigh(Om)
    On = vec @ np.diag(np.where(ev > 1e-12, ev, np.inf) ** -0.5) @ vec.T
    B = np.einsum("ab,bcjl,cd->adjl", On, P, On)
    var = np.array([[(B[s, t] * B[t, s]).sum() + (B[s, s] * B[t, t]).sum() for t in range(q)]
                    for s in range(q)])
    nu = q * (q + 1) / var.sum()
    Q = (C @ beta) @ np.linalg.solve(C @ V @ C.T, C @ beta)
    delta = max((nu - q + 1) / nu, 0)
    from scipy import stats as st_
    return delta * Q / q, nu - q + 1, st_.f.sf(delta * Q / q, q, nu - q + 1)


def test_htz_matches_a_direct_transcription_of_clubsandwich():
    # unequal clusters, some larger than K (the SVD branch of the CR2 blocks), a covariate
    from ips_impact.estimators.heterogeneity import htz_test
    from ips_impact.inference.covariance import OLSDesign

    rng = np.random.Generator(np.random.PCG64(7))
    sizes = np.r_[rng.integers(1, 6, 14), rng.integers(12, 30, 6)]
    cl = np.repeat(np.arange(sizes.size), sizes)
    n = cl.size
    g = rng.integers(0, 4, n)
    z = rng.integers(0, 2, n).astype(float)
    D = (g[:, None] == np.arange(4)).astype(float)
    X = np.hstack([D, D * z[:, None], rng.normal(size=(n, 1))])
    y = rng.normal(size=n) + rng.normal(size=sizes.size)[cl] + 0.3 * z
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallSampleWarning)
        design = OLSDesign(X, cov_type="CR2", clusters=cl)
    fit = design.fit(y)
    C = np.zeros((3, X.shape[1]))
    C[:, 4] = -1.0
    C[:, 5:8] = np.eye(3)
    got = htz_test(design, C, np.asarray(fit.coef), np.asarray(fit.vcov))
    F, df2, p = _htz_clubsandwich_transcription(X, cl, C, np.asarray(fit.coef), np.asarray(fit.vcov))
    assert got["statistic"] == pytest.approx(F, rel=1e-9)
    assert got["df_denom"] == pytest.approx(df2, rel=1e-9)
    assert got["p_value"] == pytest.approx(p, rel=1e-9)
    # the hypothesis, not its parametrisation: any basis of the same contrasts
    A = np.array([[2.0, 1.0, 0.0], [0.5, -3.0, 1.0], [0.0, 0.0, 1.0]])
    again = htz_test(design, A @ C, np.asarray(fit.coef), np.asarray(fit.vcov))
    for k in ("statistic", "df_denom", "p_value"):
        assert again[k] == pytest.approx(got[k], rel=1e-10)
    with pytest.raises(EstimationError, match="needs a CR2 fit"):
        htz_test(OLSDesign(X, cov_type="HC2"), C, fit.coef, fit.vcov)
    with pytest.raises(EstimationError, match="C has 3 columns"):
        htz_test(design, np.eye(3), fit.coef, fit.vcov)


def test_htz_with_too_few_clusters_gives_a_missing_p_value_and_says_so(trial):
    # 4 sites, 5 age groups: nu ~ 3 < q = 4, so nu - q + 1 <= 0
    st = trial[0]
    with pytest.warns(SmallSampleWarning, match="HTZ degrees of freedom"):
        res = heterogeneity(st, "earnings", by="age", cut=5, horizon=2, cluster="site")
    assert res.joint["df_denom"] <= 0 and res.joint["delta"] == 0.0
    assert np.isnan(res.joint["p_value"]) and np.isfinite(res.joint["chi2"])
    assert any("HTZ degrees of freedom" in m for m in res.warnings)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallSampleWarning)
        ok = heterogeneity(st, "earnings", by="age", cut=3, horizon=2, cluster="site")
    assert 0 < ok.joint["df_denom"] < 3 and 0 < ok.joint["p_value"] < 1


def test_singular_contrast_covariance_gives_no_joint_test(trial):
    # subgroups = clusters: the CR covariance of the site effects is singular
    st = trial[0]
    with pytest.warns(SmallSampleWarning, match="covariance of the 3 contrast"):
        res = heterogeneity(st, "earnings", by="site", horizon=2, cluster="site")
    for k in ("statistic", "chi2", "p_value", "df_denom"):
        assert np.isnan(res.joint[k]), k
    assert np.isnan(res.tidy()["p_value"].iloc[-1])
    assert np.isfinite(res.subgroups["estimate"]).all()
    assert any("made of a few whole clusters" in m for m in res.warnings)


# ----------------------------------------------------------------- moderator source


@pytest.fixture(scope="module")
def synth():
    import ips_impact as ii

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trial_ = ii.synthetic.generate(n_persons=1200, seed=2018)
        return trial_, trial_.study()


def test_household_type_column_of_persons_wins_over_the_roster(synth):
    trial_, st = synth
    assert "household_type" in st.persons.columns and st.households is not None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallSampleWarning)
        res = heterogeneity(st, "employed", by="household_type", horizon=8)
    assert res.spec["moderator_source"] == "persons"
    assert res.spec["moderator_column"] == "household_type"
    # the user's own labels and counts, not the roster's "couple with children"
    col = st.persons["household_type"]
    assert set(res.subgroups["subgroup"]) == set(col.dropna().unique())
    assert {"couple_children", "one_parent"} <= set(res.subgroups["subgroup"])
    counts = res.subgroups.set_index("subgroup")["nobs"]
    y = st.outcome_at("employed", 8)
    expected = col[y.notna()].value_counts()
    for lab, n in counts.items():
        assert n == expected[lab]


def test_household_type_is_derived_from_the_roster_without_the_column(synth):
    trial_, st = synth
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        st2 = Study.from_frames(trial_.assignment.drop(columns="household_type"), trial_.panel,
                                households=trial_.households, benefits=trial_.benefits,
                                takeup=trial_.takeup)
        res = heterogeneity(st2, "employed", by="household_type", horizon=8)
    assert "household_type" not in st2.persons.columns
    assert res.spec["moderator_source"] == "roster"
    assert {"couple with children", "single parent"} <= set(res.subgroups["subgroup"])
    # on this synthetic trial the roster says the same as the generator's own column
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallSampleWarning)
        own = heterogeneity(st, "employed", by="household_type", horizon=8)
    rename = {"couple_children": "couple with children", "one_parent": "single parent"}
    a = own.subgroups.assign(subgroup=own.subgroups["subgroup"].replace(rename)).set_index("subgroup")
    b = res.subgroups.set_index("subgroup")
    assert set(a.index) == set(b.index)
    np.testing.assert_allclose(b.loc[a.index, "estimate"], a["estimate"], rtol=1e-12)
    np.testing.assert_array_equal(b.loc[a.index, "nobs"], a["nobs"])


def test_moderator_source_of_the_other_moderators(trial):
    st = trial[0]
    assert heterogeneity(st, "earnings", by="region", horizon=2).spec["moderator_source"] == "persons"
    assert heterogeneity(st, "earnings", by="partner_at_work", horizon=2).spec["moderator_source"] == "roster"
    ut = heterogeneity(st, "earnings", by="unemployment_tercile", horizon=2)
    assert ut.spec["moderator_source"] == "persons" and ut.spec["moderator_column"] == "local_unemployment"
    fid = heterogeneity(st, "earnings", by="fidelity", horizon=2, sites=SITES)
    assert fid.spec["moderator_source"] == "sites"
    # the recorded spec still drives randomization_problem
    assert len(randomization_problem(st, fid, sites=SITES)) == 2


# ----------------------------------------------------------------- size with few clusters


def _few_cluster_design(seed: int, n_sites: int, n_types: int):
    """Sites of 10-60 persons, a site-level moderator (n_types site types, equal shares),
    complete randomization of persons within each site."""
    rng = np.random.Generator(np.random.PCG64(seed))
    sizes = rng.integers(10, 61, n_sites)
    site = np.repeat(np.arange(n_sites), sizes)
    stype = (np.arange(n_sites) % n_types)[site]
    z = np.zeros(site.size)
    for s in range(n_sites):
        idx = np.flatnonzero(site == s)
        z[rng.permutation(idx)[: idx.size // 2]] = 1.0
    D = (stype[:, None] == np.arange(n_types)).astype(float)
    return np.hstack([D, D * z[:, None]]), site, stype, z, rng


def _draw_null_outcomes(rng, site, z, n_rep, sd_u=0.5):
    """Equal subgroup effects (zero): site intercepts and site-specific effects with mean
    zero in every site type, so effects and errors are correlated within sites."""
    n_sites = site.max() + 1
    a = rng.normal(size=(n_sites, n_rep))
    u = sd_u * rng.normal(size=(n_sites, n_rep))
    return a[site] + u[site] * z[:, None] + rng.normal(size=(site.size, n_rep))


def _joint_p_values(X, site, n_types, Y):
    """p-values of HTZ and naive-F for every column of Y, vectorised over replications:
    CR2 scores per coefficient (OLSDesign.scores), W per column; the HTZ delta and df
    depend on X and the clusters only, so htz_test runs once per design."""
    from scipy import stats

    from ips_impact.estimators.heterogeneity import htz_test
    from ips_impact.inference.covariance import OLSDesign

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallSampleWarning)
        design = OLSDesign(X, cov_type="CR2", clusters=site)
    q = n_types - 1
    cols = list(range(n_types, 2 * n_types))
    R = np.hstack([-np.ones((q, 1)), np.eye(q)])
    C = np.zeros((q, X.shape[1]))
    C[:, cols] = R
    fit0 = design.fit(Y[:, 0])
    h = htz_test(design, C, np.asarray(fit0.coef), np.asarray(fit0.vcov))
    B = design.coef(Y)
    E = Y - X @ B
    S = np.stack([design.scores(E, j) for j in cols])  # (q + 1, G, n_rep)
    V = np.einsum("agr,bgr->rab", S, S)
    rb = (R @ B[cols]).T
    W = np.einsum("ra,ra->r", rb, np.linalg.solve(R @ V @ R.T, rb[:, :, None])[:, :, 0])
    n_sites = site.max() + 1
    p_naive = stats.f.sf(W / q, q, n_sites - 1)
    p_htz = stats.f.sf(h["delta"] * W / q, q, h["df_denom"])
    return p_htz, p_naive


def test_vectorised_size_path_is_the_heterogeneity_estimator():
    # the fast path of the size simulation gives heterogeneity()'s own p-values
    X, site, stype, z, rng = _few_cluster_design(1, 24, 4)
    Y = _draw_null_outcomes(rng, site, z, 3)
    p_htz, p_naive = _joint_p_values(X, site, 4, Y)
    pid = [f"p{i:04d}" for i in range(site.size)]
    a = pd.DataFrame({"person_id": pid, "arm": z.astype(int), "randomization_period": 0,
                      "site": [f"s{s:02d}" for s in site], "site_type": [f"T{t}" for t in stype]})
    panel = pd.DataFrame({"person_id": pid, "period": 0, **{f"y{r}": Y[:, r] for r in range(3)}})
    st = Study.from_frames(a, panel, frequency="int")
    for r in range(3):
        got = heterogeneity(st, f"y{r}", by="site_type", horizon=0, cluster="site")
        naive = heterogeneity(st, f"y{r}", by="site_type", horizon=0, cluster="site",
                              joint_test="naive-F")
        assert got.joint["p_value"] == pytest.approx(p_htz[r], rel=1e-9)
        assert naive.joint["p_value"] == pytest.approx(p_naive[r], rel=1e-9)


@pytest.mark.slow
@pytest.mark.parametrize(
    "n_sites, n_types, n_designs",
    # measured (seeds as below, 2,500 outcome draws per design):
    #   24 sites, 4 site types: HTZ 4.9% (1% level: 0.9%), naive-F 12.1% (4.5%); nu ~ 11
    #   30 sites, 5 site types: HTZ 4.6% (1% level: 1.0%), naive-F 14.9% (6.0%)
    [(24, 4, 8), (30, 5, 4)],
)
def test_htz_holds_its_size_with_few_clusters_where_naive_f_over_rejects(n_sites, n_types, n_designs):
    """Equal subgroup effects, 24-30 sites, site-level moderator: rejection rate at 5%.

    Several designs (cluster sizes, assignments) × 2,500 outcome draws each; Monte Carlo
    SE of a 5% rate over 20,000 (10,000) draws is 0.15 (0.22) points.
    """
    p_htz, p_naive = [], []
    for d in range(n_designs):
        X, site, stype, z, rng = _few_cluster_design(100 + d, n_sites, n_types)
        Y = _draw_null_outcomes(rng, site, z, 2500)
        ph, pn = _joint_p_values(X, site, n_types, Y)
        p_htz.append(ph)
        p_naive.append(pn)
    size_htz = float((np.concatenate(p_htz) < 0.05).mean())
    size_naive = float((np.concatenate(p_naive) < 0.05).mean())
    assert 0.03 <= size_htz <= 0.06, size_htz
    assert size_naive >= 0.09, size_naive  # the naive F(q, G - 1) over-rejects


def test_subgroup_within_one_cluster_has_no_cluster_robust_se():
    """Brussels is one site: with cluster='site' its CR2 variance is exactly 0, which must not
    be reported as certainty (SE 0, p < 0.001) but as not defined, with a warning."""
    import ips_impact as ii
    from ips_impact.errors import SmallSampleWarning

    study = ii.synthetic.generate(n_persons=1200, seed=2018).study()
    with pytest.warns(SmallSampleWarning, match="single cluster"):
        res = ii.heterogeneity(study, "work_on_di", by="region", horizon=6, cluster="site")
    sub = res.subgroups.set_index("subgroup")
    for lone in ("BXL", "VL"):  # one site each
        assert np.isnan(sub.loc[lone, "std_error"]) and np.isnan(sub.loc[lone, "p_value"])
        assert np.isnan(sub.loc[lone, "mde"]) and np.isnan(sub.loc[lone, "conf_low"])
        assert np.isfinite(sub.loc[lone, "estimate"])
    assert sub.loc["WAL", "std_error"] > 0  # two sites in Wallonia
