"""Heterogeneity of the effect (ips_impact.estimators.heterogeneity).

R parity: tests/reference/r/spillover_heterogeneity.R — estimatr::lm_robust interaction
models (CR2 by school on AchievementAwardsRCT 2001; HC0-HC3 on alo_star_men), the joint
Wald test with the same vcov (car::linearHypothesis, clubSandwich::Wald_test "Naive-F").
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

from ips_impact.errors import DataContractError, EstimationError, SmallSampleWarning
from ips_impact.estimators.heterogeneity import check_sites, heterogeneity, randomization_problem
from ips_impact.inference.randomization import linear_statistics
from ips_impact.power import mde
from ips_impact.results.base import TIDY_COLUMNS
from ips_impact.study import Study

from test_spillover import small_trial  # the hand-made household trial

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


def test_sex_cr2_matches_estimatr_and_clubsandwich(aa_persons):
    res = heterogeneity(aa_persons, "Bagrut_status", by="sex", horizon=0, cluster="school")
    entry = REF["het_sex_strata_CR2"]
    _check(res, entry, ["sexBoy:treated", "sexGirl:treated"])
    cs = entry["joint_clubSandwich"]
    naive = cs["test"].index("Naive-F")
    assert res.joint["statistic"] == pytest.approx(cs["Fstat"][naive], rel=RTOL)
    assert res.joint["df_denom"] == cs["df_denom"][naive]
    assert res.joint["p_value"] == pytest.approx(cs["p_val"][naive], rel=1e-8)
    assert res.spec["cov_type"] == "CR2"


def test_school_type_ancova_cr2_matches_estimatr(aa_persons):
    res = heterogeneity(aa_persons, "Bagrut_status", by="school_type", horizon=0, cluster="school",
                        covariates=AA_COVS)
    _check(res, REF["het_schooltype_ancova_CR2"],
           ["school_typeArab:treated", "school_typeReligious:treated", "school_typeSecular:treated"])
    assert list(res.subgroups["subgroup"]) == ["Arab", "Religious", "Secular"]


def test_continuous_cr2_matches_estimatr(aa_persons):
    res = heterogeneity(aa_persons, "Bagrut_status", by="lagscore", horizon=0, cluster="school")
    _check(res, REF["het_lagscore_strata_CR2"], ["treated", "treated:lagscore_c"])
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
