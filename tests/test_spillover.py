"""Household spillovers and household totals (ips_impact.estimators.spillover).

R parity: tests/reference/r/spillover_heterogeneity.R on clubSandwich::AchievementAwardsRCT
(cohort 2001). Schools play households: the first student of each school (file order) is
the randomized "index person", the others are members; strata = matched pairs.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ips_impact.errors import DataContractError, EstimationError, SmallSampleWarning
from ips_impact.estimators.spillover import (
    household_total,
    independent_columns,
    randomization_problem,
    spillover,
)
from ips_impact.inference.randomization import linear_statistics
from ips_impact.results.base import TIDY_COLUMNS
from ips_impact.study import Study

HERE = Path(__file__).parent
REF = json.loads((HERE / "reference" / "spillover_heterogeneity_reference.json").read_text())["models"]
AA = HERE / "reference" / "data" / "het_achievement_awards_2001.csv"
MEMBER_COVS = ["siblings", "immigrant", "father_ed", "mother_ed", "lagscore"]
RTOL = 1e-8


def aa_frames() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    aa = pd.read_csv(AA)
    aa["person_id"] = "p" + aa["row"].astype(str)
    aa["household_id"] = "h" + aa["school_id"].astype(str)
    idx = aa[aa["is_index"] == 1]
    assignment = pd.DataFrame({
        "person_id": idx["person_id"], "arm": idx["treated"], "stratum": idx["pair"].astype(str),
        "randomization_period": 0, "household_id": idx["household_id"],
    })
    # outcomes at k = 0, the students' baseline characteristics at k = -1
    p0 = aa[["person_id", "Bagrut_status", "attempted"]].assign(period=0)
    p1 = aa[["person_id"] + MEMBER_COVS].assign(period=-1)
    panel = pd.concat([p0, p1], ignore_index=True)
    roster = pd.DataFrame({
        "household_id": aa["household_id"], "person_id": aa["person_id"],
        "role": np.where(aa["is_index"] == 1, "index", "other"),
    })
    return assignment, panel, roster


@pytest.fixture(scope="module")
def aa_study() -> Study:
    assignment, panel, roster = aa_frames()
    return Study.from_frames(assignment, panel, households=roster, frequency="int")


def _quiet(fn, *args, **kwargs):
    # any SmallSampleWarning here would be an error: 39 clusters is above the threshold
    with warnings.catch_warnings():
        warnings.simplefilter("error", SmallSampleWarning)
        return fn(*args, **kwargs)


CASES = {
    "spill_member_none_CR2": dict(adjustment="none", strata=False),
    "spill_member_strata_CR2": dict(),
    "spill_member_strata_CR1": dict(cov_type="CR1"),
    "spill_member_ancova_CR2": dict(member_covariates=MEMBER_COVS),
    "spill_member_lin_CR2": dict(adjustment="lin", strata=False,
                                 member_covariates=["siblings", "father_ed", "mother_ed", "lagscore"]),
    "spill_household_mean_strata_HC2": dict(level="household"),
    "spill_household_mean_none_HC2": dict(level="household", adjustment="none", strata=False),
}


def _check_against(result, entry, rtol=RTOL):
    c = entry["coefficients"]["treated"]
    assert result.estimate == pytest.approx(c["estimate"], rel=rtol)
    assert result.std_error == pytest.approx(c["std_error"], rel=rtol)
    assert result.df == pytest.approx(c["df"], rel=rtol)
    if "p_value" in c:
        assert result.p_value == pytest.approx(c["p_value"], rel=rtol)
    if "conf_low" in c:
        assert result.conf_low == pytest.approx(c["conf_low"], rel=rtol)
        assert result.conf_high == pytest.approx(c["conf_high"], rel=rtol)
    if "nobs" in entry:
        assert result.nobs == entry["nobs"]


@pytest.mark.parametrize("model", sorted(CASES))
def test_spillover_matches_estimatr(aa_study, model):
    res = _quiet(spillover, aa_study, "Bagrut_status", members="all", horizon=0, **CASES[model])
    _check_against(res, REF[model])
    assert res.term == "arm" and res.estimand == "spillover"


def test_clustered_spillover_matches_clubsandwich(aa_study):
    # a second implementation of CR2 and its Satterthwaite df
    res = _quiet(spillover, aa_study, "Bagrut_status", members="all", horizon=0)
    _check_against(res, REF["spill_member_strata_CR2_clubSandwich"], rtol=1e-8)


def test_household_total_matches_estimatr(aa_study):
    res = household_total(aa_study, "Bagrut_status", horizon=0)
    _check_against(res, REF["household_total_strata_HC2"])
    assert res.estimand == "household_total"


def test_few_clusters_warning_is_raised_and_recorded():
    a, p, h = small_trial(n=18, seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        st = Study.from_frames(a, p, households=h)
    with pytest.warns(SmallSampleWarning, match="18 clusters"):
        res = spillover(st, "earnings", members="all", horizon=1, cov_type="CR1")
    assert any("18 clusters" in w for w in res.warnings)


def test_tidy_schema_and_no_person_keys(aa_study):
    res = _quiet(spillover, aa_study, "Bagrut_status", members="all", horizon=0)
    tidy = res.tidy()
    assert tuple(tidy.columns) == TIDY_COLUMNS
    assert tidy.loc[0, "term"] == "arm" and tidy.loc[0, "estimand"] == "spillover"
    text = res.to_json()
    assert '"p1' not in text and '"h1' not in text  # no person or household key


def test_results_are_frozen(aa_study):
    res = _quiet(spillover, aa_study, "Bagrut_status", members="all", horizon=0)
    with pytest.raises(Exception):
        res.estimate = 0.0  # type: ignore[misc]


# ------------------------------------------------------------------ hand-made trial


def small_trial(n: int = 240, seed: int = 1, *, spill: float = 0.0, members_per: int = 2,
                later_child: bool = True):
    """Index persons (quarterly panel k = -1..4) with a partner, a child (who, when
    ``later_child``, joins after randomization for half of the households) and a
    parent for a third; partner outcomes shift by ``spill`` when the index person is
    treated."""
    rng = np.random.default_rng(seed)
    pid = np.array([f"i{i:04d}" for i in range(n)])
    region = np.array(["VL", "WAL", "BXL"])[np.arange(n) % 3]
    arm = np.zeros(n, dtype=int)
    for r in ("VL", "WAL", "BXL"):
        idx = np.flatnonzero(region == r)
        arm[rng.permutation(idx)[: idx.size // 2]] = 1
    assignment = pd.DataFrame({
        "person_id": pid, "arm": arm, "randomization_date": "2019-02-15", "region": region,
        "household_id": [f"h{i:04d}" for i in range(n)], "age": rng.integers(20, 60, n),
        "site": np.array(["s1", "s2", "s3", "s4"])[np.arange(n) % 4],
    })
    quarters = [str(q) for q in pd.period_range("2018Q4", "2020Q1", freq="Q")]
    rows = []
    roster = []
    for i in range(n):
        h = f"h{i:04d}"
        roster.append((h, pid[i], "index", None))
        hh_effect = rng.normal()
        who = [(f"p{i:04d}", "partner", None)]
        if members_per >= 2:
            joined = "2019-09-01" if (later_child and i % 2 == 0) else None
            who.append((f"c{i:04d}", "child", joined))
        if i % 3 == 0:
            who.append((f"g{i:04d}", "parent", None))
        for mid, role, vf in who:
            roster.append((h, mid, role, vf))
        for qi, q in enumerate(quarters):
            k = qi - 1
            post = k >= 0
            rows.append({"person_id": pid[i], "period": q,
                         "employed": float(rng.random() < 0.3 + 0.1 * arm[i] * post),
                         "earnings": float(max(0.0, rng.normal(1000 + 100 * arm[i] * post, 200)))})
            for mid, role, _ in who:
                shift = spill * arm[i] * post if role == "partner" else 0.0
                rows.append({"person_id": mid, "period": q,
                             "employed": float(rng.random() < 0.5 + 0.0 * shift),
                             "earnings": float(max(0.0, hh_effect * 300 + rng.normal(1500 + shift, 300)))})
    households = pd.DataFrame(roster, columns=["household_id", "person_id", "role", "valid_from"])
    return assignment, pd.DataFrame(rows), households


@pytest.fixture(scope="module")
def small_study() -> Study:
    a, p, h = small_trial()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Study.from_frames(a, p, households=h)


def _by_hand_dim(study, roles, horizon, outcome="earnings"):
    m = study.members
    m = m[m["role"].isin(roles) & (m["k"] == horizon) & m[outcome].notna()]
    arm = study.persons.set_index("person_id")["arm"]
    z = m["index_person_id"].map(arm).to_numpy()
    y = m[outcome].to_numpy()
    return y[z == 1].mean() - y[z == 0].mean(), len(y), m


def test_difference_in_means_by_hand(small_study):
    res = spillover(small_study, "earnings", members="partner", horizon=2, adjustment="none",
                    strata=False)
    dim, n, _ = _by_hand_dim(small_study, ("partner",), 2)
    assert res.estimate == pytest.approx(dim, rel=1e-12)
    assert res.nobs == n


def test_members_who_joined_later_are_not_counted(small_study):
    # half of the children join after randomization: the Study sets them aside, and
    # spillover counts only the baseline-roster children
    res = spillover(small_study, "earnings", members="children", horizon=1, adjustment="none",
                    strata=False)
    assert res.nobs == 120
    dim, n, m = _by_hand_dim(small_study, ("child",), 1)
    assert n == 120 and res.estimate == pytest.approx(dim, rel=1e-12)


def test_member_sets(small_study):
    n_partner = spillover(small_study, "earnings", members="partner", horizon=1).nobs
    n_child = spillover(small_study, "earnings", members="children", horizon=1).nobs
    n_adults = spillover(small_study, "earnings", members="adults", horizon=1).nobs
    n_all = spillover(small_study, "earnings", members="all", horizon=1).nobs
    n_list = spillover(small_study, "earnings", members=["partner", "parent"], horizon=1).nobs
    assert n_partner == 240 and n_child == 120
    assert n_adults == n_list == 240 + 80
    assert n_all == n_adults + n_child


def test_one_member_per_household_member_level_equals_household_level(small_study):
    # with one partner per household, the household mean is the partner's value: same
    # point estimate; the member-level CR2 with singleton clusters is HC2 with other df
    a = spillover(small_study, "earnings", members="partner", horizon=2)
    b = spillover(small_study, "earnings", members="partner", horizon=2, level="household")
    assert a.estimate == pytest.approx(b.estimate, rel=1e-12)
    assert a.std_error == pytest.approx(b.std_error, rel=1e-10)


def test_window_mean_by_hand(small_study):
    res = spillover(small_study, "earnings", members="partner", window=(1, 3), adjustment="none",
                    strata=False)
    m = small_study.members
    m = m[(m["role"] == "partner") & m["k"].between(1, 3)]
    y = m.groupby("index_person_id")["earnings"].mean()
    z = y.index.map(small_study.persons.set_index("person_id")["arm"]).to_numpy()
    assert res.estimate == pytest.approx(y[z == 1].mean() - y[z == 0].mean(), rel=1e-12)
    assert res.horizon == "1:3"


def test_window_sum_by_hand(small_study):
    res = spillover(small_study, "earnings", members="partner", window=(1, 3), aggregate="sum",
                    adjustment="none", strata=False)
    m = small_study.members
    m = m[(m["role"] == "partner") & m["k"].between(1, 3)]
    y = m.groupby("index_person_id")["earnings"].sum()
    z = y.index.map(small_study.persons.set_index("person_id")["arm"]).to_numpy()
    assert res.estimate == pytest.approx(y[z == 1].mean() - y[z == 0].mean(), rel=1e-12)


def test_household_total_by_hand(small_study):
    res = household_total(small_study, "earnings", members="partner", horizon=2,
                          adjustment="none", strata=False)
    own = small_study.outcome_at("earnings", 2).to_numpy()
    m = small_study.members
    part = m[(m["role"] == "partner") & (m["k"] == 2)].set_index("index_person_id")["earnings"]
    total = own + small_study.persons["person_id"].map(part).to_numpy()
    z = small_study.persons["arm"].to_numpy()
    assert res.estimate == pytest.approx(total[z == 1].mean() - total[z == 0].mean(), rel=1e-12)
    assert res.nobs == 240


def test_missing_member_outcomes_go_to_the_ledger():
    a, p, h = small_trial(n=90, seed=3, later_child=False)
    # partner rows of 7 households missing at k = 2 (2019Q3)
    drop = p["person_id"].isin([f"p{i:04d}" for i in range(7)]) & (p["period"] == "2019Q3")
    p = p[~drop]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        st = Study.from_frames(a, p, households=h)
    res = spillover(st, "earnings", members="partner", horizon=2)
    led = res.ledger
    assert led["n_rows"].sum() == 7
    assert int(led["n_treated"].sum() + led["n_control"].sum()) == 7
    tot_drop = household_total(st, "earnings", members="partner", horizon=2)
    assert tot_drop.nobs == 83 and tot_drop.ledger["n_rows"].sum() == 7
    tot_zero = household_total(st, "earnings", members="partner", horizon=2, missing_members="zero")
    assert tot_zero.nobs == 90


def test_invariant_ancova_without_covariates_single_stratum_is_dim():
    a, p, h = small_trial(n=90, seed=4)
    a = a.drop(columns="region")  # one stratum
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        st = Study.from_frames(a, p, households=h)
    x = spillover(st, "earnings", horizon=1, adjustment="ancova")
    y = spillover(st, "earnings", horizon=1, adjustment="none")
    assert x.estimate == pytest.approx(y.estimate, rel=1e-12)
    assert x.std_error == pytest.approx(y.std_error, rel=1e-12)


def test_blocked_none_equals_lin_without_covariates(small_study):
    x = spillover(small_study, "earnings", members="all", horizon=1, adjustment="none")
    y = spillover(small_study, "earnings", members="all", horizon=1, adjustment="lin")
    assert x.estimate == pytest.approx(y.estimate, rel=1e-12)


def test_randomization_problem_reproduces_estimates_under_redrawn_assignments(small_study):
    res = spillover(small_study, "earnings", members="all", horizon=2, covariates=["age"],
                    adjustment="lin")
    prob = randomization_problem(small_study, res)
    arm = np.asarray(small_study.design.arm)
    obs = linear_statistics(prob, arm[None, :])[0][0, 0]
    assert obs == pytest.approx(res.estimate, rel=1e-10)
    # a re-drawn assignment: the engine's coefficient equals a refit on a study with that
    # assignment (members follow their index person)
    draw = small_study.design.permutations(1, seed=5)[0]
    a, p, h = small_trial()
    a = a.set_index("person_id").loc[small_study.persons["person_id"]].reset_index()
    a["arm"] = draw
    # the outcomes stay those observed: the sharp null of no effect
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        st2 = Study.from_frames(a, p, households=h)
    refit = spillover(st2, "earnings", members="all", horizon=2, covariates=["age"], adjustment="ancova")
    prob_a = randomization_problem(small_study, spillover(small_study, "earnings", members="all",
                                                          horizon=2, covariates=["age"]))
    got = linear_statistics(prob_a, draw[None, :])[0][0, 0]
    assert got == pytest.approx(refit.estimate, rel=1e-9)


def test_randomization_problem_household_total(small_study):
    res = household_total(small_study, "earnings", horizon=1)
    prob = randomization_problem(small_study, res)
    arm = np.asarray(small_study.design.arm)
    assert linear_statistics(prob, arm[None, :])[0][0, 0] == pytest.approx(res.estimate, rel=1e-10)


def test_independent_columns_keeps_earlier_columns():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(50, 3))
    mat = np.column_stack([a, a[:, 0] + a[:, 1], np.zeros(50), a[:, 2] * 2.0, rng.normal(size=50)])
    assert independent_columns(mat, 1).tolist() == [0, 1, 2, 6]


# ------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(members="cousins"), "members must be one of"),
        (dict(members=["partner", "dog"]), "members must be one of"),
        (dict(level="person"), "level must be one of"),
        (dict(adjustment="ols"), "adjustment must be one of"),
        (dict(aggregate="median"), "aggregate must be one of"),
        (dict(cov_type="HC2"), "ignores that members of a household"),
        (dict(cov_type="CR3"), "cov_type must be one of"),
        (dict(adjustment="none", covariates=["age"]), "takes no covariates"),
        (dict(covariates=["shoe_size"]), "covariate 'shoe_size'"),
        (dict(member_covariates=["shoe_size"]), "not a column of the household members"),
        (dict(conf_level=95), "conf_level must be"),
        (dict(horizon=None), "exactly one of horizon"),
        (dict(window=(3, 1), horizon=None), "window must be a pair"),
        (dict(horizon=1.5), "horizon must be a whole number"),
        (dict(horizon=40), "no selected household member has an observed"),
    ],
)
def test_bad_options_are_typed_errors(small_study, kwargs, match):
    args = dict(members="partner", horizon=1)
    args.update(kwargs)
    with pytest.raises(EstimationError, match=match):
        spillover(small_study, "earnings", **args)


def test_unknown_outcome_names_the_columns(small_study):
    with pytest.raises(EstimationError, match="outcome 'wages'") as exc:
        spillover(small_study, "wages", horizon=1)
    assert "earnings" in str(exc.value)


def test_no_roster_is_a_typed_error():
    a, p, _ = small_trial(n=30)
    p = p[p["person_id"].str.startswith("i")]
    st = Study.from_frames(a.drop(columns="household_id"), p)
    with pytest.raises(EstimationError, match="no household roster"):
        spillover(st, "earnings", horizon=1)
    with pytest.raises(EstimationError, match="no household roster"):
        household_total(st, "earnings", horizon=1)


def test_missing_members_option_checked(small_study):
    with pytest.raises(EstimationError, match="missing_members must be one of"):
        household_total(small_study, "earnings", horizon=1, missing_members="impute")


def test_randomization_problem_refuses_other_results(small_study):
    from ips_impact.results.effect import EffectResult

    other = EffectResult(outcome="y", estimate=1.0, std_error=1.0, nobs=2, n_treated=1,
                         n_control=1, spec={"estimator": "itt"})
    with pytest.raises(EstimationError, match="not from spillover"):
        randomization_problem(small_study, other)


def test_deterministic(small_study):
    a = spillover(small_study, "earnings", members="all", horizon=2).to_json()
    b = spillover(small_study, "earnings", members="all", horizon=2).to_json()
    assert a == b


def test_datacontract_errors_are_not_raw_pandas():
    # guard: the typed errors derive from ValueError, never a KeyError from pandas
    assert issubclass(EstimationError, ValueError) and issubclass(DataContractError, ValueError)
    assert not math.isnan(1.0)
