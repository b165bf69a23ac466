"""itt(): invariants, options, categorical outcomes, missing outcomes, errors, RI components."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hst
from test_itt_simulation import single_threaded_blas

from ips_impact.errors import DataContractError, EstimationError, SmallSampleWarning
from ips_impact.estimators.itt import CategoricalEffectResult, ITTComponents, itt, itt_components
from ips_impact.inference.covariance import COV_TYPES, ols
from ips_impact.results.effect import EffectResult
from ips_impact.study import Study


@pytest.fixture(scope="module", autouse=True)
def _one_blas_thread():
    """Small regressions: OpenBLAS threads only contend on a shared machine."""
    with single_threaded_blas():
        yield


def make_frames(n: int = 300, seed: int = 0, *, strata: tuple[str, ...] = ("VL", "WAL", "BXL"),
                p_treat: tuple[float, ...] = (0.5, 0.3, 0.6), ks: tuple[int, int] = (-4, 8),
                drop_share: float = 0.0, effect: tuple[float, ...] = (1.0, 3.0, -1.0)):
    """A small trial: complete randomization within strata (unequal probabilities), int periods.

    Outcomes: ``score`` (continuous, effect by stratum from k >= 1), ``employed`` (0/1),
    ``nace`` (category when employed). ``drop_share`` removes that share of panel rows at random.
    """
    rng = np.random.default_rng(seed)
    st = np.array(strata)[rng.integers(0, len(strata), n)]
    arm = np.zeros(n, dtype=int)
    for s, p in zip(strata, p_treat):
        idx = np.flatnonzero(st == s)
        arm[rng.choice(idx, int(round(p * idx.size)), replace=False)] = 1
    age = rng.normal(40, 10, n).round(1)
    sex = rng.choice(["f", "m"], n)
    rp = rng.integers(0, 4, n)
    a = pd.DataFrame({"person_id": [f"id{i:05d}" for i in range(n)], "arm": arm, "stratum": st,
                      "randomization_period": rp, "age": age, "sex": sex,
                      "household_id": [f"h{i // 2:05d}" for i in range(n)],
                      "site": np.array(["s1", "s2", "s3", "s4", "s5"])[rng.integers(0, 5, n)],
                      "young": age < 40})
    k = np.arange(ks[0], ks[1] + 1)
    P = np.repeat(np.arange(n), k.size)
    K = np.tile(k, n)
    tau = np.array([effect[strata.index(s)] for s in st])
    u = rng.normal(0, 1, n)
    score = 10 + 0.05 * age[P] + u[P] + rng.normal(0, 1, P.size) + (K >= 1) * arm[P] * tau[P]
    lat = -0.5 + 0.02 * (age[P] - 40) + u[P] + rng.normal(0, 1, P.size) + 0.5 * (K >= 1) * arm[P]
    employed = (lat > 0).astype(float)
    nace = np.where(employed == 1, rng.choice(["C", "G", "Q"], P.size), None)
    panel = pd.DataFrame({"person_id": a["person_id"].to_numpy()[P], "period": rp[P] + K,
                          "score": score, "employed": employed, "nace": nace})
    if drop_share:
        panel = panel.loc[rng.random(len(panel)) >= drop_share].reset_index(drop=True)
    return a, panel


def make_study(**kw) -> Study:
    a, p = make_frames(**kw)
    return Study.from_frames(a, p, frequency="int")


@pytest.fixture(scope="module")
def study() -> Study:
    return make_study()


# ------------------------------------------------------------------ invariants


def test_ancova_without_covariates_is_difference_in_means(study):
    a = itt(study, "score", horizon=4, adjustment="ancova", strata=False)
    d = itt(study, "score", horizon=4, adjustment="none", strata=False)
    y = study.outcome_at("score", 4).to_numpy()
    arm = study.persons["arm"].to_numpy()
    assert a.estimate == pytest.approx(y[arm == 1].mean() - y[arm == 0].mean(), rel=1e-12)
    assert d.estimate == pytest.approx(a.estimate, rel=1e-12)
    assert d.std_error == pytest.approx(a.std_error, rel=1e-12)
    neyman = np.sqrt(y[arm == 1].var(ddof=1) / (arm == 1).sum() + y[arm == 0].var(ddof=1) / (arm == 0).sum())
    assert d.std_error == pytest.approx(neyman, rel=1e-12)  # HC2 = Neyman variance


def test_blocked_difference_in_means_is_size_weighted(study):
    r = itt(study, "score", horizon=4, adjustment="none", strata=True)
    y = study.outcome_at("score", 4).to_numpy()
    p = study.persons
    est = 0.0
    for s, g in p.groupby("stratum"):
        yy, aa = y[g.index], g["arm"].to_numpy()
        est += len(g) / len(p) * (yy[aa == 1].mean() - yy[aa == 0].mean())
    assert r.estimate == pytest.approx(est, rel=1e-12)
    # lin without covariates is the same estimator
    lin = itt(study, "score", horizon=4, adjustment="lin", strata=True)
    assert lin.estimate == pytest.approx(r.estimate, rel=1e-12)
    assert lin.std_error == pytest.approx(r.std_error, rel=1e-12)


@pytest.mark.parametrize("adjustment", ["none", "ancova", "lin"])
def test_one_stratum_stratified_equals_unstratified(adjustment):
    one = make_study(n=120, strata=("all",), p_treat=(0.5,), effect=(2.0,))
    covs = () if adjustment == "none" else ("age", "sex")
    a = itt(one, "score", horizon=3, adjustment=adjustment, covariates=covs, strata=True)
    b = itt(one, "score", horizon=3, adjustment=adjustment, covariates=covs, strata=False)
    assert a.estimate == pytest.approx(b.estimate, rel=1e-12)
    assert a.std_error == pytest.approx(b.std_error, rel=1e-12)


@pytest.mark.parametrize("adjustment", ["none", "ancova", "lin"])
def test_stacked_one_period_equals_horizon(study, adjustment):
    covs = () if adjustment == "none" else ("age", "sex")
    h = itt(study, "score", horizon=5, adjustment=adjustment, covariates=covs)
    s = itt(study, "score", window=(5, 5), aggregate="stack", adjustment=adjustment, covariates=covs)
    assert s.spec["cov_type"] == "CR2" and h.spec["cov_type"] == "HC2"
    assert s.estimate == pytest.approx(h.estimate, rel=1e-10)
    assert s.std_error == pytest.approx(h.std_error, rel=1e-10)  # CR2 on singletons = HC2


def test_balanced_stack_equals_window_mean(study):
    """With every person observed at every k, stacked OLS with period effects = OLS on the mean."""
    m = itt(study, "score", window=(1, 6), aggregate="mean", covariates=("age",))
    s = itt(study, "score", window=(1, 6), aggregate="stack", covariates=("age",))
    assert s.estimate == pytest.approx(m.estimate, rel=1e-10)
    assert s.nobs == 6 * m.nobs
    assert s.diagnostics["n_persons"] == m.nobs


def test_window_sum_and_mean(study):
    Y = study.outcome_matrix("score", np.arange(1, 5))
    arm = study.persons["arm"].to_numpy()
    for agg, v in (("mean", Y.mean(axis=1)), ("sum", Y.sum(axis=1))):
        r = itt(study, "score", window=(1, 4), aggregate=agg, adjustment="none", strata=False)
        assert r.estimate == pytest.approx(v[arm == 1].mean() - v[arm == 0].mean(), rel=1e-12)
        assert r.horizon == "1:4"


def test_result_is_effect_result_with_spec_and_no_keys(study):
    r = itt(study, "score", horizon=4, covariates=("age", "sex"), adjustment="lin", cov_type="HC1")
    assert isinstance(r, EffectResult)
    t = r.tidy()
    assert t.loc[0, "term"] == "arm" and t.loc[0, "horizon"] == 4
    assert r.spec["adjustment"] == "lin" and r.spec["covariates"] == ("age", "sex")
    text = json.dumps(r.to_dict())
    assert "id0" not in text and "person_id" not in text
    with pytest.raises(Exception):
        r.estimate = 0.0  # frozen
    assert r.coefficients.index[1] == "arm"


def test_all_cov_types_run_and_cluster(study):
    for ct in COV_TYPES:
        kw = {"cluster": "household_id"} if COV_TYPES[ct].clustered else {}
        r = itt(study, "score", horizon=4, covariates=("age",), cov_type=ct, **kw)
        assert r.spec["cov_type"] == ct and np.isfinite(r.std_error)
    r = itt(study, "score", horizon=4, covariates=("age",), cluster="household_id")
    assert r.spec["cov_type"] == "CR2"  # default when clustered
    assert r.diagnostics["n_clusters"] == study.persons["household_id"].nunique()


def test_cluster_result_equals_engine(study):
    r = itt(study, "score", horizon=4, covariates=("age",), cluster="household_id", cov_type="CR2",
            strata=False)
    p = study.persons
    y = study.outcome_at("score", 4).to_numpy()
    X = np.column_stack([np.ones(len(p)), p["arm"], p["age"]])
    f = ols(X, y, cov_type="CR2", clusters=p["household_id"])
    assert r.estimate == pytest.approx(f.coef[1], rel=1e-12)
    assert r.std_error == pytest.approx(f.std_error[1], rel=1e-12)
    assert r.df == pytest.approx(f.df[1], rel=1e-12)


# ------------------------------------------------------------------ categorical


def test_categorical_outcome_gives_unconditional_shares(study):
    r = itt(study, "nace", horizon=4, adjustment="none", strata=False)
    assert isinstance(r, CategoricalEffectResult)
    assert r.levels == ("C", "G", "Q")
    t = r.tidy()
    assert list(t["outcome"]) == ["nace=C", "nace=G", "nace=Q"]
    # shares among all persons observed (no category = 0): effects sum to the effect on any job
    emp = itt(study, "employed", horizon=4, adjustment="none", strata=False)
    assert t["estimate"].sum() == pytest.approx(emp.estimate, rel=1e-10)
    assert r.effect_at("G").estimate == t.loc[1, "estimate"]
    # a manual share
    nace = study.panel.loc[study.panel.k == 4].set_index("person_id")["nace"].reindex(study.persons.person_id)
    arm = study.persons["arm"].to_numpy()
    share = (nace == "C").to_numpy()
    assert r.effects[0].estimate == pytest.approx(share[arm == 1].mean() - share[arm == 0].mean(), rel=1e-12)


# ------------------------------------------------------------------ missing outcomes


def test_missing_outcomes_are_excluded_and_counted():
    st = make_study(n=300, drop_share=0.15, seed=3)
    y = st.outcome_at("score", 4).to_numpy()
    arm = st.persons["arm"].to_numpy()
    miss = ~np.isfinite(y)
    r = itt(st, "score", horizon=4, covariates=("age",))
    assert r.nobs == int((~miss).sum())
    assert r.n_missing_treated == int((miss & (arm == 1)).sum())
    assert r.n_missing_control == int((miss & (arm == 0)).sum())
    assert r.n_missing_treated + r.n_missing_control > 0
    led = r.ledger
    assert int(led["n_rows"].iloc[0]) == int(miss.sum())
    assert int(led["n_treated"].iloc[0]) == r.n_missing_treated
    # window means need complete windows; stacking keeps partial windows
    m = itt(st, "score", window=(1, 3))
    s = itt(st, "score", window=(1, 3), aggregate="stack")
    Y = st.outcome_matrix("score", [1, 2, 3])
    assert m.nobs == int(np.isfinite(Y).all(axis=1).sum())
    assert s.nobs == int(np.isfinite(Y).sum())
    assert len(s.ledger) == 2  # persons without any period, person-periods missing


# ------------------------------------------------------------------ subset


def test_subset_forms_agree(study):
    p = study.persons
    mask = (p["stratum"] == "VL").to_numpy()
    a = itt(study, "score", horizon=4, subset=mask)
    b = itt(study, "score", horizon=4, subset="stratum == 'VL'")
    c = itt(study, "score", horizon=4, subset=pd.Series(mask))
    assert a.nobs == mask.sum()
    assert a.estimate == b.estimate == c.estimate
    d = itt(study, "score", horizon=4, subset="young")
    assert d.nobs == p["young"].sum()


# ------------------------------------------------------------------ errors


def test_unknown_cov_type_lists_allowed(study):
    with pytest.raises(EstimationError, match="HC0.*HC1.*HC2.*HC3.*CR0.*CR1.*CR2"):
        itt(study, "score", horizon=4, cov_type="HC9")
    with pytest.raises(EstimationError, match="'CR1' with clusters"):
        itt(study, "score", horizon=4, cov_type="stata")


def test_cr_without_cluster_and_hc_with_cluster(study):
    with pytest.raises(EstimationError, match="no cluster was given"):
        itt(study, "score", horizon=4, cov_type="CR2")
    with pytest.raises(EstimationError, match="ignores clusters"):
        itt(study, "score", horizon=4, cov_type="HC2", cluster="site")
    with pytest.raises(EstimationError, match="ignores clusters"):
        itt(study, "score", window=(1, 3), aggregate="stack", cov_type="HC2")


def test_too_few_clusters(study):
    with pytest.raises(EstimationError, match="at least 2 clusters"):
        itt(study, "score", horizon=4, cluster="site", cov_type="CR2", subset="site == 's1'")
    with pytest.warns(SmallSampleWarning, match="only 5 clusters"):
        r = itt(study, "score", horizon=4, cluster="site")
    assert any("only 5 clusters" in w for w in r.warnings)
    with pytest.raises(EstimationError, match="cluster must be a column"):
        itt(study, "score", horizon=4, cluster="nope")


def test_outcome_errors(study):
    with pytest.raises(DataContractError, match="not in the panel"):
        itt(study, "wages", horizon=4)
    with pytest.raises(DataContractError):
        itt(study, 3, horizon=4)
    with pytest.raises(EstimationError, match="outside the observed follow-up"):
        itt(study, "score", horizon=40)
    with pytest.raises(EstimationError, match="outside the observed follow-up"):
        itt(study, "score", window=(5, 40))


def test_no_variation():
    a, p = make_frames(n=60)
    p["flat"] = 1.0
    st = Study.from_frames(a, p, frequency="int")
    with pytest.raises(EstimationError, match="does not vary"):
        itt(st, "flat", horizon=2)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"horizon": 4, "adjustment": "ols"}, "adjustment must be one of 'none', 'ancova', 'lin'"),
        ({"window": (1, 3), "aggregate": "median"}, "aggregate must be one of 'mean', 'sum', 'stack'"),
        ({}, "needs the event time"),
        ({"horizon": 4, "window": (1, 3)}, "either horizon= or window="),
        ({"window": (3, 1)}, "is empty"),
        ({"horizon": 4, "covariates": ("nope",)}, "covariate 'nope' is not a column"),
        ({"horizon": 4, "adjustment": "none", "covariates": ("age",)}, "takes no covariates"),
        ({"horizon": 4, "level": 95}, "level must be"),
        ({"horizon": 4, "subset": "stratum == 'XX'"}, "selects no person"),
        ({"horizon": 4, "subset": np.ones(3, bool)}, "subset has shape"),
        ({"horizon": 4, "strata": "nope"}, "strata must be"),
        ({"horizon": 2.5}, "horizon must be an integer"),
    ],
)
def test_option_errors(study, kwargs, match):
    with pytest.raises(EstimationError, match=match):
        itt(study, "score", **kwargs)


def test_collinear_covariates_named():
    a, p = make_frames(n=100)
    a["age2"] = a["age"] * 2
    st = Study.from_frames(a, p, frequency="int")
    with pytest.raises(EstimationError, match="collinear.*age"):
        itt(st, "score", horizon=2, covariates=("age", "age2"))


def test_stratum_with_one_arm_under_lin(study):
    sub = "not (stratum == 'BXL' and arm == 0)"  # a stratum left with treated persons only
    with pytest.raises(EstimationError, match="one arm only"):
        itt(study, "score", horizon=2, adjustment="lin", subset=sub)
    with pytest.raises(EstimationError, match="one arm only"):
        itt(study, "score", horizon=2, adjustment="none", subset=sub)
    r = itt(study, "score", horizon=2, adjustment="ancova", subset=sub)  # the stratum only shifts the level
    assert np.isfinite(r.estimate)


# ------------------------------------------------------------------ RI components


@pytest.mark.parametrize("adjustment", ["none", "ancova", "lin"])
def test_components_reproduce_the_estimate(study, adjustment):
    covs = () if adjustment == "none" else ("age", "sex")
    r = itt(study, "score", horizon=4, adjustment=adjustment, covariates=covs)
    c = itt_components(study, r)
    assert isinstance(c, ITTComponents)
    assert c.y.shape == c.arm.shape == c.person_index.shape
    X = c.design_matrix()
    beta = np.linalg.lstsq(X, c.y, rcond=None)[0]
    assert beta[1] == pytest.approx(r.estimate, rel=1e-10)
    np.testing.assert_array_equal(c.arm, study.persons["arm"].to_numpy()[c.person_index])
    if c.interact.shape[1] == 0:
        # Frisch–Waugh–Lovell with the nuisance block: what RI needs
        N = c.nuisance
        ry = c.y - N @ np.linalg.lstsq(N, c.y, rcond=None)[0]
        rz = c.arm - N @ np.linalg.lstsq(N, c.arm, rcond=None)[0]
        assert rz @ ry / (rz @ rz) == pytest.approx(r.estimate, rel=1e-10)


def test_components_of_stacked_and_categorical(study):
    r = itt(study, "score", window=(1, 3), aggregate="stack")
    c = itt_components(study, r)
    assert c.clusters is not None and c.cov_type == "CR2"
    np.testing.assert_array_equal(c.clusters, c.person_index)
    rc = itt(study, "nace", horizon=4)
    with pytest.raises(EstimationError, match="level="):
        itt_components(study, rc)
    cg = itt_components(study, rc, level="G")
    assert cg.outcome == "nace=G" and set(np.unique(cg.y)) <= {0.0, 1.0}


# ------------------------------------------------------------------ synthetic trial


def test_synthetic_trial_end_to_end():
    """Quarterly panel, real categorical job variables, household clusters."""
    from ips_impact.synthetic import generate

    st = generate(n_persons=300, seed=3).study()
    r = itt(st, "nace", horizon=6, covariates=("age", "female", "education"))
    assert isinstance(r, CategoricalEffectResult) and len(r.levels) > 3
    has = st.with_outcome("has_nace", lambda p: p["nace"].notna().astype(float))
    any_job = itt(has, "has_nace", horizon=6, covariates=("age", "female", "education"))
    # same design for every level, so the level effects add up to the effect on having a sector
    assert r.tidy()["estimate"].sum() == pytest.approx(any_job.estimate, rel=1e-9)
    s = itt(st, "work_on_di", window=(4, 10), aggregate="stack", cluster="household_id",
            covariates=("age", "pre_employment_share"))
    assert s.spec["cov_type"] == "CR2" and s.diagnostics["n_clusters"] == st.persons["household_id"].nunique()
    assert 0 < s.df < s.diagnostics["n_clusters"]
    # 12 strata on 300 persons: some stratum x arm cells hold one person, whose
    # leverage under the interacted (lin) model is one -> HC2 undefined, said so
    with pytest.raises(EstimationError, match="leverage one"):
        itt(st, "work_on_di", horizon=6, adjustment="lin")


# ------------------------------------------------------------------ properties


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    a=hst.floats(0.01, 1e3) | hst.floats(-1e3, -0.01),
    b=hst.floats(-1e4, 1e4),
    adjustment=hst.sampled_from(["none", "ancova", "lin"]),
    cov_type=hst.sampled_from(["HC0", "HC1", "HC2", "HC3", "CR2"]),
)
def test_affine_equivariance(study, a, b, adjustment, cov_type):
    """itt of a·y + b is a·τ̂ with standard error |a|·se (and the same df)."""
    moved = study.with_outcome("moved", lambda p: a * p["score"] + b)
    kw = dict(horizon=3, adjustment=adjustment, covariates=() if adjustment == "none" else ("age", "sex"),
              cov_type=cov_type, cluster="household_id" if cov_type == "CR2" else None)
    r0 = itt(study, "score", **kw)
    r1 = itt(moved, "moved", **kw)
    assert r1.estimate == pytest.approx(a * r0.estimate, rel=1e-7, abs=1e-9 * abs(b) + 1e-12)
    assert r1.std_error == pytest.approx(abs(a) * r0.std_error, rel=1e-7)
    assert r1.df == pytest.approx(r0.df, rel=1e-10)


def test_categorical_levels_follow_the_subset(study):
    p = study.panel
    k4 = p.loc[p.k == 4].set_index("person_id")["nace"].reindex(study.persons.person_id).to_numpy()
    no_q = ~(k4 == "Q")
    r = itt(study, "nace", horizon=4, subset=no_q)
    assert "Q" not in r.levels and len(r.levels) == 2


def test_window_must_hold_integers(study):
    with pytest.raises(EstimationError, match="pair of integer event times"):
        itt(study, "score", window=(1.5, 3))
    with pytest.raises(EstimationError, match="pair of integer event times"):
        itt(study, "score", window="13")


def test_coefficient_table_has_each_coefficients_own_df(study):
    r = itt(study, "score", horizon=4, covariates=("age",), cluster="household_id")
    t = r.coefficients
    assert list(t.columns[:6]) == ["estimate", "std_error", "statistic", "p_value", "conf_low", "conf_high"]
    assert t.loc["arm", "df"] == pytest.approx(r.df)
    assert t["df"].nunique() > 1  # CR2: Satterthwaite df per coefficient
    d = itt(study, "score", horizon=4, adjustment="none", strata=False)  # Welch df on the arm row
    assert d.coefficients.loc["arm", "df"] == pytest.approx(d.df) and d.df != d.coefficients.loc["(Intercept)", "df"]
    assert d.coefficients.loc["arm", "conf_low"] == pytest.approx(d.conf_low, rel=1e-12)
