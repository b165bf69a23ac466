"""One pipeline: the same request gives the same sample and the same rules everywhere.

Consistency properties across estimators on the synthetic trial (itt, late's reduced
form, heterogeneity, spillover/household_total, time_to_event), the shared option and
covariate rules, typed errors, and the randomization-inference protocol.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import ips_impact as ii
from ips_impact.errors import EstimationError
from ips_impact.inference.ri_engine import LinearProblem
from ips_impact.inference.ri_protocol import (
    RandomizationNotAvailableError,
    RandomizationProblem,
    register_randomization,
    registered_estimators,
)
from ips_impact.results import EffectResult
from ips_impact.study import Study


@pytest.fixture(scope="module")
def study() -> Study:
    tr = ii.synthetic.generate(n_persons=400, seed=11)
    a = tr.assignment.assign(age2=lambda d: 2.0 * d["age"], age_missing=lambda d: d["age"])
    a.loc[a.index[:3], "age_missing"] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Study.from_frames(a, tr.panel, households=tr.households, takeup=tr.takeup)


def quiet(f, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return f(*args, **kwargs)


# ------------------------------------------------------------------- same sample
OPTIONS = [
    dict(horizon=6),
    dict(window=(2, 5)),
    dict(window=(2, 5), window_rule="available"),
    dict(window=(2, 5), aggregate="sum", covariates=["age", "education"]),
    dict(window=(2, 5), aggregate="stack", covariates=["age"]),
    dict(horizon=6, covariates=["age", "education"], adjustment="lin"),
]


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_late_reduced_form_is_the_itt(study, options):
    r = quiet(ii.itt, study, "earnings", **options)
    late = quiet(ii.late, study, "earnings", **options)
    assert late.nobs == r.nobs
    assert late.diagnostics["itt_estimate"] == pytest.approx(r.estimate, rel=1e-10)
    assert late.diagnostics["adjustment"] == r.diagnostics["adjustment"]


@pytest.mark.parametrize("rule", ["complete", "available", "absent_not_at_work"])
def test_heterogeneity_uses_the_itt_sample_and_subgroup_effects_are_itts(study, rule):
    """The window rule is the same: heterogeneity's rows are itt's rows, and with the
    difference in means per subgroup each subgroup effect is the itt on that subgroup."""
    kw = dict(window=(2, 5), window_rule=rule, adjustment="none", strata=False)
    pooled = quiet(ii.itt, study, "employed", **kw)
    het = quiet(ii.heterogeneity, study, "employed", by="female", **kw)
    assert het.nobs == pooled.nobs
    for _, row in het.subgroups.iterrows():
        sub = quiet(ii.itt, study, "employed", subset=f"female == {int(row['subgroup'])}", **kw)
        assert row["estimate"] == pytest.approx(sub.estimate, rel=1e-10)
        assert row["nobs"] == sub.nobs


def test_window_rules_differ_as_documented(study):
    complete = quiet(ii.itt, study, "earnings", window=(2, 5))
    available = quiet(ii.itt, study, "earnings", window=(2, 5), window_rule="available")
    zero = quiet(ii.itt, study, "earnings", window=(2, 5), window_rule="absent_not_at_work")
    assert complete.nobs <= zero.nobs and complete.nobs <= available.nobs
    with pytest.raises(EstimationError, match="LMD job variables only"):
        ii.itt(study, "di_benefit", window=(2, 5), window_rule="absent_not_at_work")
    with pytest.raises(EstimationError, match="window_rule must be one of"):
        ii.itt(study, "earnings", window=(2, 5), window_rule="some")


def test_household_total_of_the_index_person_alone_counts_persons_as_itt(study):
    r = quiet(ii.itt, study, "earnings", horizon=6, adjustment="none", strata=False)
    tot = quiet(ii.household_total, study, "earnings", horizon=6, members="partner",
                missing_members="zero", adjustment="none", strata=False)
    # every index person with the outcome is one household row
    assert tot.nobs == r.nobs


def test_the_arm_comes_from_the_design(study):
    r = quiet(ii.itt, study, "earnings", horizon=6)
    d = quiet(ii.did, study, "earnings", pre=(-4, -1), post=(1, 4))
    assert d.n_treated + d.n_control == d.diagnostics["n_persons"]  # persons, not rows
    assert d.nobs > d.diagnostics["n_persons"]
    assert r.n_treated == int(np.asarray(study.design.arm)[np.isfinite(
        study.outcome_at("earnings", 6).to_numpy())].sum())


# -------------------------------------------------------------- covariate rules
def _estimators(study):
    return {
        "itt": lambda c: ii.itt(study, "earnings", horizon=6, covariates=c),
        "itt_by_period": lambda c: ii.itt_by_period(study, "earnings", periods=[4, 6], covariates=c),
        "late": lambda c: ii.late(study, "earnings", horizon=6, covariates=c),
        "heterogeneity": lambda c: ii.heterogeneity(study, "earnings", by="female", horizon=6,
                                                   covariates=c),
        "spillover": lambda c: ii.spillover(study, "earnings", horizon=6, covariates=c),
        "household_total": lambda c: ii.household_total(study, "earnings", horizon=6, covariates=c),
        "time_to_event": lambda c: ii.time_to_event(study, "employed", covariates=c),
        "discrete_time_hazard": lambda c: ii.discrete_time_hazard(study, "employed", covariates=c),
    }


ESTIMATORS = ["itt", "itt_by_period", "late", "heterogeneity", "spillover", "household_total",
              "time_to_event", "discrete_time_hazard"]


@pytest.mark.parametrize("name", ESTIMATORS)
def test_collinear_covariate_is_refused_by_name_everywhere(study, name):
    with pytest.raises(EstimationError, match="collinear covariate\\(s\\) 'age2'"):
        quiet(_estimators(study)[name], ["age", "age2"])


@pytest.mark.parametrize("name", ESTIMATORS)
def test_missing_covariate_is_refused_everywhere(study, name):
    with pytest.raises(EstimationError, match="covariate 'age_missing' has missing values"):
        quiet(_estimators(study)[name], ["age_missing"])


@pytest.mark.parametrize("name", ESTIMATORS)
def test_categorical_covariate_becomes_dummies_everywhere(study, name):
    res = quiet(_estimators(study)[name], ["education"])
    levels = sorted(study.persons["education"].dropna().astype(str).unique())
    assert len(levels) > 1
    # the fit went through: a finite effect, and the first level is the reference
    assert np.isfinite(res.tidy()["estimate"].iloc[0])


def test_categorical_dummies_named_by_level(study):
    r = quiet(ii.itt, study, "earnings", horizon=6, covariates=["education"])
    levels = sorted(study.persons["education"].astype(str).unique())
    names = [n for n in r.coefficients.index if n.startswith("education[")]
    assert names == [f"education[{lv}]" for lv in levels[1:]]


# ------------------------------------------------------------------ typed errors
def test_typed_errors_instead_of_raw_exceptions(study):
    for f in (ii.itt, ii.late):
        with pytest.raises(EstimationError, match="horizon must be one integer event time"):
            f(study, "earnings", horizon=[6, 10])
    with pytest.raises(EstimationError, match="horizon must be one integer event time"):
        ii.lee_bounds(study, "earnings", selection="employed", horizon=[6, 10])
    with pytest.raises(EstimationError, match="horizon"):
        ii.heterogeneity(study, "earnings", by="female", horizon=[6, 10])
    with pytest.raises(EstimationError, match="adjust_pvalues takes fitted results"):
        ii.adjust_pvalues([0.01, 0.04], method="holm")
    with pytest.raises(EstimationError, match="'employed' is given more than once"):
        ii.competing_risks(study, ["employed", "employed"])
    with pytest.raises(EstimationError, match="must come after pre"):
        ii.did(study, "earnings", pre=(2, 6), post=(-4, -1))


# ------------------------------------------------------- randomization protocol
def test_inference_and_the_data_layer_import_no_estimator():
    """The import-linter contracts of pyproject.toml, checked on the import graph."""
    import grimp

    graph = grimp.build_graph("ips_impact")
    assert not graph.chain_exists(importer="ips_impact.inference", imported="ips_impact.estimators",
                                  as_packages=True)
    for data in ("ips_impact.study", "ips_impact.design", "ips_impact.validate", "ips_impact.roster",
                 "ips_impact.io"):
        for forbidden in ("ips_impact.estimators", "ips_impact.results"):
            assert not graph.chain_exists(importer=data, imported=forbidden, as_packages=True), (
                data, forbidden)


def test_every_estimator_with_ri_registers_its_problem():
    assert set(registered_estimators()) >= {"itt", "itt_by_period", "did", "late", "spillover",
                                             "household_total", "heterogeneity", "time_to_event"}


def test_a_new_estimator_plugs_in_through_the_protocol(study):
    """A difference in means at k = 6 built outside the package: its builder gives the
    arrays, and randomization inference needs nothing else."""
    y = study.outcome_at("earnings", 6).to_numpy()
    rows = np.flatnonzero(np.isfinite(y))
    z = np.asarray(study.design.arm)[rows]
    est = float(y[rows][z == 1].mean() - y[rows][z == 0].mean())
    res = EffectResult(outcome="earnings", estimate=est, std_error=1.0, df=None, nobs=rows.size,
                       n_treated=int(z.sum()), n_control=int((1 - z).sum()),
                       spec={"estimator": "toy_difference_in_means"})
    with pytest.raises(RandomizationNotAvailableError, match="toy_difference_in_means"):
        ii.randomization_inference(study, res, n_permutations=50)
    register_randomization(
        "toy_difference_in_means",
        lambda st, r: RandomizationProblem(linear=(LinearProblem(y=y[rows], row_person=rows),)),
    )
    out = ii.randomization_inference(study, {"toy": res}, n_permutations=200, seed=1)
    assert set(out) == {"toy"} and 0 < out["toy"].ri_p_value <= 1
    same = ii.randomization_inference(study, quiet(ii.itt, study, "earnings", horizon=6,
                                                   adjustment="none", strata=False),
                                      n_permutations=200, seed=1)
    assert out["toy"].ri_p_value == same.ri_p_value


def test_randomization_ci_returns_results_of_the_same_shape(study):
    r = quiet(ii.itt, study, "earnings", horizon=6)
    out = ii.randomization_ci(study, {"a": r, "b": r}, n_permutations=200, seed=0)
    assert set(out) == {"a", "b"}
    t = out["a"].tidy()
    assert {"ri_p_value", "ri_conf_low", "ri_conf_high"} <= set(t.columns)
    assert t["ri_conf_low"].iloc[0] < r.estimate < t["ri_conf_high"].iloc[0]
    assert isinstance(out["a"], EffectResult)
    pd.testing.assert_frame_equal(out["a"].tidy(), out["b"].tidy())


def test_n_columns_count_persons_also_for_stacked_rows(study):
    stacked = quiet(ii.itt, study, "earnings", window=(2, 5), aggregate="stack")
    late = quiet(ii.late, study, "earnings", window=(2, 5), aggregate="stack")
    assert stacked.n_treated + stacked.n_control == stacked.diagnostics["n_persons"] < stacked.nobs
    assert (late.n_treated, late.n_control) == (stacked.n_treated, stacked.n_control)
