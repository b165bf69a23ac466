"""randomization_inference / randomization_ci / resampling adjustments on fitted results."""

from __future__ import annotations

import importlib
import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import make_frames

from ips_impact.errors import EstimationError
from ips_impact.inference.multiple import adjust_pvalues, p_adjust
from ips_impact.inference.permutation import enumerate_assignments
from ips_impact.inference.randomization import (
    RandomizationNotAvailableError,
    family_distribution,
    randomization_ci,
    randomization_inference,
)
from ips_impact.results import EffectResult
from ips_impact.study import Study

spillover_mod = importlib.import_module("ips_impact.estimators.spillover")


def _study(n, seed, assignment=None):
    f = make_frames(n=n, seed=seed)
    a = f["assignment"] if assignment is None else assignment
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Study.from_frames(a, f["panel"], households=f["households"]), f


def _fit(study, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tiny samples: small-cluster warnings
        return spillover_mod.spillover(study, "earnings", **kw)


@pytest.fixture(scope="module")
def tiny_world():
    """8 persons, 2 strata of 4 with 2 treated: 36 assignments. The study is rebuilt
    with each of them (the brute force refits the estimators on these studies)."""
    study, frames = _study(8, seed=3)
    arm, stratum = study.design.arm, study.design.stratum
    ids = study.persons["person_id"].tolist()
    rebuilt = []
    for z in enumerate_assignments(arm, stratum):
        a = frames["assignment"].copy()
        a["arm"] = a["person_id"].map(dict(zip(ids, z.tolist())))
        rebuilt.append(_study(8, seed=3, assignment=a)[0])
    assert len(rebuilt) == 36
    return study, rebuilt


def _brute_force_p(estimates, observed):
    estimates = np.abs(np.asarray(estimates))
    return np.mean(estimates >= abs(observed) - 1e-9 * estimates.max())


def test_spillover_exact_p_value_equals_refitting_every_assignment(tiny_world):
    study, rebuilt = tiny_world
    result = _fit(study, horizon=2, adjustment="none")
    ri = randomization_inference(study, result, n_permutations=10_000, seed=0)
    assert "ri_se" not in ri.tidy().columns  # exact: no Monte Carlo error
    expected = _brute_force_p([_fit(s, horizon=2, adjustment="none").estimate for s in rebuilt], result.estimate)
    assert ri.ri_p_value == pytest.approx(expected, abs=1e-12)


@pytest.fixture(scope="module")
def fitted():
    study, _ = _study(60, seed=3)
    results = [
        _fit(study, horizon=2, adjustment="none"),
        _fit(study, horizon=2, adjustment="ancova", covariates=("age",)),
        _fit(study, horizon=2, adjustment="lin", covariates=("age",)),
        _fit(study, window=(1, 4)),
        _fit(study, window=(1, 4), level="household"),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results.append(spillover_mod.household_total(study, "earnings", horizon=3))
    return study, results


def test_new_results_with_ri_columns_and_originals_untouched(fitted):
    study, results = fitted
    out = randomization_inference(study, results, n_permutations=999, seed=1)
    assert isinstance(out, list) and len(out) == len(results)
    for before, after in zip(results, out):
        assert after is not before
        assert "ri_p_value" not in before.tidy().columns
        tidy = after.tidy()
        p = tidy.loc[0, "ri_p_value"]
        # Monte Carlo p-values live on the grid (1 + c) / (1 + B).
        assert 0 < p <= 1 and abs(p * 1000 - round(p * 1000)) < 1e-9
        assert tidy.loc[0, "ri_se"] == pytest.approx(np.sqrt(p * (1 - p) / 999))
        assert tidy.loc[0, "estimate"] == before.estimate


def test_same_seed_same_pvalues_other_seed_differs(fitted):
    study, results = fitted
    a = [r.ri_p_value for r in randomization_inference(study, results, n_permutations=500, seed=7)]
    b = [r.ri_p_value for r in randomization_inference(study, results, n_permutations=500, seed=7)]
    c = [r.ri_p_value for r in randomization_inference(study, results, n_permutations=500, seed=8)]
    assert a == b
    assert a != c


def test_ri_close_to_model_pvalue_in_a_regular_case(fitted):
    """Not a parity test (different nulls), a sanity check: with 60 households the
    randomization and HC/CR p-values of a difference in means are of the same size."""
    study, results = fitted
    r = randomization_inference(study, results[0], n_permutations=4000, seed=2)
    assert abs(r.ri_p_value - r.p_value) < 0.05


def test_randomization_ci_contains_estimate_and_inverts_the_test(fitted):
    study, results = fitted
    out = randomization_ci(study, results[:3], level=0.9, n_permutations=999, seed=3)
    assert isinstance(out, list) and len(out) == 3
    ci = pd.concat([r.tidy() for r in out], ignore_index=True)
    assert list(ci.columns[:4]) == ["outcome", "term", "estimand", "horizon"]
    assert len(ci) == 3
    assert np.all(ci["ri_conf_low"] < ci["estimate"]) and np.all(ci["estimate"] < ci["ri_conf_high"])
    # The interval excludes 0 exactly when the RI p-value is at most 0.10.
    excludes_zero = (ci["ri_conf_low"] > 0) | (ci["ri_conf_high"] < 0)
    assert list(excludes_zero) == list(ci["ri_p_value"] <= 0.10)


def test_family_distribution_is_joint(fitted):
    study, results = fitted
    obs, draws, exact = family_distribution(study, results, n_permutations=300, seed=0)
    assert obs.shape == (6,) and draws.shape == (300, 6) and not exact
    np.testing.assert_allclose(obs, [r.estimate for r in results], rtol=1e-7)
    # Same assignment matrix for every statistic: the member-level and household-level
    # means over the same window move together across draws.
    assert np.corrcoef(draws[:, 3], draws[:, 4])[0, 1] > 0.5


@pytest.mark.parametrize("method", ["westfall-young", "romano-wolf"])
def test_resampling_adjustments_on_results(fitted, method):
    study, results = fitted
    ri = randomization_inference(study, results, n_permutations=999, seed=4)
    adj = adjust_pvalues(results, method=method, study=study, n_permutations=999, seed=4)
    p_ri = np.array([r.ri_p_value for r in ri])
    p_adj = np.array([r.adj_p_value for r in adj])
    assert np.all(p_adj >= p_ri - 1e-12)
    assert np.all(p_adj <= np.minimum(1, len(results) * p_ri) + 1e-12)
    assert adj[0].tidy().loc[0, "family"] == method


def test_ri_p_values_can_be_adjusted_by_p_value_methods(fitted):
    study, results = fitted
    ri = randomization_inference(study, results, n_permutations=500, seed=5)
    adj = adjust_pvalues(ri, method="bh", pvalue="ri_p_value", family="spillovers")
    np.testing.assert_allclose([r.adj_p_value for r in adj], p_adjust([r.ri_p_value for r in ri], "bh"))
    with pytest.raises(EstimationError, match="ri_p_value"):
        adjust_pvalues(results, method="bh", pvalue="ri_p_value")


def test_result_type_not_available_yet_is_a_typed_error(fitted):
    study, _ = fitted
    r = EffectResult(outcome="y", estimate=0.1, std_error=0.1, nobs=10, n_treated=5, n_control=5,
                     spec={"estimator": "lee_bounds"})
    with pytest.raises(RandomizationNotAvailableError, match="RI for lee_bounds not available yet"):
        randomization_inference(study, r)
    bare = EffectResult(outcome="y", estimate=0.1, std_error=0.1, nobs=10, n_treated=5, n_control=5)
    with pytest.raises(RandomizationNotAvailableError, match="spec"):
        randomization_inference(study, bare)


@pytest.mark.parametrize("kw,match", [({"n_permutations": 0}, "n_permutations"),
                                      ({"seed": -1}, "seed"), ({"seed": 1.5}, "seed")])
def test_bad_options(fitted, kw, match):
    study, results = fitted
    with pytest.raises(EstimationError, match=match):
        randomization_inference(study, results[0], **kw)


def test_estimate_not_reproduced_is_refused(fitted):
    """A result whose estimate the randomization problem cannot reproduce (here: a
    tampered copy) is refused rather than given a p-value for another statistic."""
    import dataclasses

    study, results = fitted
    tampered = dataclasses.replace(results[0], estimate=results[0].estimate + 1.0)
    with pytest.raises(EstimationError, match="does not reproduce"):
        randomization_inference(study, tampered, n_permutations=50)


def test_tidy_frames_concatenate(fitted):
    study, results = fitted
    out = randomization_inference(study, results, n_permutations=200, seed=0)
    table = pd.concat([r.tidy() for r in out], ignore_index=True)
    assert {"ri_p_value", "ri_se"} <= set(table.columns)


# ------------------------------------------------------------------------- itt
itt_mod = importlib.import_module("ips_impact.estimators.itt")


def _itt(study, outcome, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return itt_mod.itt(study, outcome, **kw)


@pytest.mark.parametrize(
    "kw",
    [
        {"horizon": 2, "adjustment": "none"},
        {"horizon": 3, "adjustment": "lin", "covariates": ("age",)},
        {"window": (1, 4), "aggregate": "stack", "adjustment": "ancova", "covariates": ("age",)},
    ],
    ids=["dim", "lin", "stack"],
)
def test_itt_exact_p_value_equals_refitting_every_assignment(tiny_world, kw):
    study, rebuilt = tiny_world
    result = _itt(study, "earnings", **kw)
    ri = randomization_inference(study, result, n_permutations=10_000)
    expected = _brute_force_p([_itt(s, "earnings", **kw).estimate for s in rebuilt], result.estimate)
    assert 0 < expected < 1
    assert ri.ri_p_value == pytest.approx(expected, abs=1e-12)


@pytest.fixture(scope="module")
def itt_fitted():
    study, _ = _study(80, seed=3)
    results = []
    for adj in ("none", "ancova", "lin"):
        cov = () if adj == "none" else ("age",)
        results.append(_itt(study, "earnings", horizon=3, adjustment=adj, covariates=cov))
        results.append(_itt(study, "employed", window=(1, 4), adjustment=adj, covariates=cov))
        results.append(_itt(study, "employed", window=(1, 4), aggregate="stack", adjustment=adj, covariates=cov))
    results.append(_itt(study, "employed", horizon=2, strata=False, adjustment="none"))
    results.append(_itt(study, "employed", horizon=2, cluster="household_id"))
    return study, results


def test_itt_every_option_reproduces_its_estimate(itt_fitted):
    study, results = itt_fitted
    obs, draws, exact = family_distribution(study, results, n_permutations=200, seed=0)
    np.testing.assert_allclose(obs, [r.estimate for r in results], rtol=1e-8)
    out = randomization_inference(study, results, n_permutations=200, seed=0)
    assert all(0 < r.ri_p_value <= 1 for r in out)


def test_itt_stacked_rows_follow_their_person(itt_fitted):
    """A balanced window: the stacked ITT equals the ITT on the person mean, for the
    observed assignment and for every re-drawn one (rows follow their person)."""
    study, results = itt_fitted
    mean_ancova, stack_ancova = results[4], results[5]
    assert stack_ancova.spec["aggregate"] == "stack"
    _, draws, _ = family_distribution(study, [mean_ancova, stack_ancova], n_permutations=300, seed=1)
    np.testing.assert_allclose(draws[:, 0], draws[:, 1], rtol=1e-6, atol=1e-10)


def test_itt_randomization_ci_close_to_wald(itt_fitted):
    study, results = itt_fitted
    ci = pd.concat([r.tidy() for r in randomization_ci(study, results[:3], n_permutations=2000, seed=0)])
    for r, (_, row) in zip(results[:3], ci.iterrows()):
        width = r.conf_high - r.conf_low
        assert abs(row["ri_conf_low"] - r.conf_low) < 0.1 * width
        assert abs(row["ri_conf_high"] - r.conf_high) < 0.1 * width


# -------------------------------------------------------------- survival, subgroups
def test_survival_exact_p_values_equal_refitting_every_assignment(tiny_world):
    surv = importlib.import_module("ips_impact.estimators.survival")
    study, rebuilt = tiny_world

    def fit(s, tau=None):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return surv.time_to_event(s, "employed", start=1, tau=tau)

    # The RMST horizon tau is data-dependent by default; the randomization statistic
    # holds it at its observed value, so the brute force refits with that tau.
    result = fit(study, tau=fit(study).tau)
    ri = randomization_inference(study, result, n_permutations=10_000).tidy().set_index("term")
    refits = [fit(s, tau=result.tau).tidy().set_index("term") for s in rebuilt]
    obs = result.tidy().set_index("term")
    # The log-rank statistic is the chi-square; RMST difference its estimate.
    for term, col in (("logrank", "statistic"), ("rmst_difference", "estimate")):
        expected = _brute_force_p([r.loc[term, col] for r in refits], obs.loc[term, col])
        assert ri.loc[term, "ri_p_value"] == pytest.approx(expected, abs=1e-12), term
    assert np.isnan(ri.loc["survival_difference", "ri_p_value"])  # not re-randomized


@pytest.fixture(scope="module")
def three_groups():
    f = make_frames(n=90, seed=21)
    f["assignment"]["education"] = np.random.default_rng(1).choice(["low", "mid", "high"], 90)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Study.from_frames(f["assignment"], f["panel"], households=f["households"])


def test_heterogeneity_joint_test_with_three_subgroups(three_groups):
    het = importlib.import_module("ips_impact.estimators.heterogeneity")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = het.heterogeneity(three_groups, "earnings", by="education", horizon=2)
    obs, draws, _ = family_distribution(three_groups, [res], n_permutations=400, seed=0)
    tidy = res.tidy()
    assert len(tidy) == 4 and tidy.loc[3, "term"] == "joint:education"
    # The joint statistic is the Wald form with the observed covariance: W = q F.
    assert obs[3] == pytest.approx(2 * tidy.loc[3, "statistic"], rel=1e-8)
    assert np.all(draws[:, 3] >= 0)
    ri = randomization_inference(three_groups, res, n_permutations=400, seed=0).tidy()
    assert ri["ri_p_value"].notna().all()


# ------------------------------------------------------------- did, itt_by_period
def test_did_exact_p_value_equals_refitting_every_assignment(tiny_world):
    did_mod = importlib.import_module("ips_impact.estimators.did")
    study, rebuilt = tiny_world

    def fit(s):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return did_mod.did(s, "earnings", pre=(-3, -1), post=(1, 3))

    result = fit(study)
    refits = np.array([fit(s).estimate for s in rebuilt])
    # Every one of the 36 statistics, in enumeration order, equals the refitted DiD.
    _, draws, exact = family_distribution(study, [result], n_permutations=10_000)
    assert exact
    np.testing.assert_allclose(draws[:, 0], refits, rtol=1e-9, atol=1e-9)
    ri = randomization_inference(study, result, n_permutations=10_000)
    assert ri.ri_p_value == pytest.approx(_brute_force_p(refits, result.estimate), abs=1e-12)


def test_did_calendar_time_and_ci(itt_fitted):
    did_mod = importlib.import_module("ips_impact.estimators.did")
    study, _ = itt_fitted
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = [did_mod.did(study, "earnings", pre=(-4, -1), post=(1, 5)),
                   did_mod.did(study, "employed", pre=(-4, -1), post=(1, 5), time="period")]
    obs, _, _ = family_distribution(study, results, n_permutations=100)
    np.testing.assert_allclose(obs, [r.estimate for r in results], rtol=1e-8)
    ci = randomization_ci(study, results[0], n_permutations=2000).tidy()
    width = results[0].conf_high - results[0].conf_low
    assert abs(ci.loc[0, "ri_conf_low"] - results[0].conf_low) < 0.1 * width
    assert abs(ci.loc[0, "ri_conf_high"] - results[0].conf_high) < 0.1 * width


def test_itt_by_period_rows_equal_itt_at_each_horizon(itt_fitted):
    dyn = importlib.import_module("ips_impact.estimators.dynamic")
    study, _ = itt_fitted
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = dyn.itt_by_period(study, "earnings", periods=range(-2, 4), adjustment="lin", covariates=("age",))
    ri = randomization_inference(study, res, n_permutations=500, seed=9)
    p = ri.tidy()["ri_p_value"].to_numpy()
    assert p.size == 6
    singles = [_itt(study, "earnings", horizon=k, adjustment="lin", covariates=("age",)) for k in range(-2, 4)]
    p_single = [r.ri_p_value for r in randomization_inference(study, singles, n_permutations=500, seed=9)]
    np.testing.assert_allclose(p, p_single, rtol=0, atol=1e-15)


# ------------------------------------------------------------------------ late
@pytest.fixture(scope="module")
def takeup_study():
    f = make_frames(n=120, seed=13)
    rng = np.random.default_rng(0)
    a = f["assignment"]
    takeup = pd.DataFrame({"person_id": a["person_id"],
                           "ips_started": ((a["arm"] == 1) & (rng.random(len(a)) < 0.7)).astype(int)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Study.from_frames(a, f["panel"], households=f["households"], takeup=takeup)


def test_late_ri_is_the_reduced_form_test_and_its_ci_inverts_it(takeup_study):
    iv = importlib.import_module("ips_impact.estimators.iv")
    study = takeup_study
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = iv.late(study, "earnings", horizon=3, covariates=("age",))
    ri = randomization_inference(study, [res, _itt(study, "earnings", horizon=3, covariates=("age",))],
                                 n_permutations=999, seed=2)
    assert ri[0].ri_p_value == ri[1].ri_p_value  # LATE = 0  <=>  ITT = 0 (exclusion)
    ci = randomization_ci(study, res, level=0.9, n_permutations=999, seed=2).tidy()
    lo, hi = ci.loc[0, "ri_conf_low"], ci.loc[0, "ri_conf_high"]
    assert lo < res.estimate < hi

    # Independent check: the randomization test of the ITT of y - tau d (a new
    # outcome, refitted by itt) accepts just inside the interval, rejects just outside.
    d_person = dict(zip(study.persons["person_id"], study.persons["ips_started"]))
    d_rows = study.panel["person_id"].map(d_person).to_numpy(dtype=float)

    def p_tau(tau):
        s2 = study.with_outcome("y_minus_tau_d", study.panel["earnings"].to_numpy() - tau * d_rows)
        r2 = _itt(s2, "y_minus_tau_d", horizon=3, covariates=("age",))
        return randomization_inference(s2, r2, n_permutations=999, seed=2).ri_p_value

    eps = 1e-6 * (hi - lo)
    assert p_tau(lo + eps) > 0.1 and p_tau(hi - eps) > 0.1
    assert p_tau(lo - eps) <= 0.1 and p_tau(hi + eps) <= 0.1


def test_pre_period_placebo_test(itt_fitted):
    dyn = importlib.import_module("ips_impact.estimators.dynamic")
    from ips_impact.inference.randomization import randomization_pretest

    study, results = itt_fitted
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = dyn.itt_by_period(study, "earnings", periods=range(-3, 3))
    out = randomization_pretest(study, res, n_permutations=999, seed=0)
    assert out.ks == (-3, -2, -1) and out["ks"] == out.ks
    row = out.tidy().iloc[0]
    assert row["term"] == "pre_period_placebo" and row["statistic"] == out.statistic
    assert row["p_value"] == out.ri_p_value
    # The Wald form with the observed covariance is the result's own pre-period statistic.
    pre = res.pretest
    assert out["statistic"] == pytest.approx(pre["wald"], rel=1e-8)
    assert 0 < out["ri_p_value"] <= 1 and out["ri_se"] > 0
    with pytest.raises(EstimationError, match="itt_by_period"):
        randomization_pretest(study, results[0])


@pytest.mark.parametrize("options", [
    {"horizon": 6, "adjustment": "lin", "covariates": ("age",)},
    {"horizon": 6, "subset": "region == 'VL'"},
    {"window": (4, 8), "aggregate": "stack"},
    {"window": (4, 8), "aggregate": "sum"},
])
def test_late_ri_follows_every_option_and_equals_the_reduced_form(options):
    """RI of a LATE re-draws the reduced form (the ITT of the same options), so its
    p-value is the ITT's under the same draws, whatever subset / adjustment / window."""
    import ips_impact as ii

    study = ii.synthetic.generate(n_persons=600, seed=2018).study()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        late_res = ii.late(study, "work_on_di", **options)
        itt_res = ii.itt(study, "work_on_di", **options)
        p_late = ii.randomization_inference(study, [late_res], n_permutations=300, seed=5)[0].ri_p_value
        p_itt = ii.randomization_inference(study, [itt_res], n_permutations=300, seed=5)[0].ri_p_value
    assert p_late == p_itt
    assert 0 < p_late <= 1
