"""A small fitted analysis of the synthetic trial for the brief tests.

Uses ``ii.run_plan`` with the default plan when the plan module is present; until then
(and for speed) :func:`stand_in_analysis` fits the same kind of estimands directly and
wraps them with the ``Analysis`` interface the brief reads (entries with id, tag,
family, estimator, outcome, result, reason; provenance; study_info).
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import ips_impact as ii


@dataclasses.dataclass(frozen=True)
class Entry:
    id: str
    tag: str
    family: str | None
    estimator: str
    outcome: str
    options: dict
    result: Any
    reason: str | None = None


@dataclasses.dataclass(frozen=True)
class StandInAnalysis:
    plan: Any
    entries: tuple
    provenance: dict
    study_info: dict

    def results(self, *, tag=None, family=None):
        return {e.id: e.result for e in self.entries if e.result is not None
                and (tag is None or e.tag == tag) and (family is None or e.family == family)}


def stand_in_analysis(study, *, n_permutations: int = 200, seed: int = 0) -> StandInAnalysis:
    adj = ("age", "female", "di_months", "pre_employment_share")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prim = [ii.itt(study, "work_on_di", horizon=h, covariates=adj) for h in (6, 10)]
        ben = ii.itt(study, "di_benefit", horizon=10, covariates=adj)
        emp = ii.itt(study, "employed", horizon=10, covariates=adj)
        sp = ii.spillover(study, "employed", members="partner", horizon=6)
        ri = ii.randomization_inference(study, prim + [ben, emp, sp], n_permutations=n_permutations,
                                        seed=seed)
        work = ii.adjust_pvalues(ri[:2], method="holm")
        benefit = ii.adjust_pvalues([ri[2]], method="holm")
        other = ii.adjust_pvalues(ri[3:], method="holm")
        dyn = ii.itt_by_period(study, "work_on_di", periods=range(-4, 21), covariates=adj)
        het = ii.heterogeneity(study, "work_on_di", by="region", horizon=10, covariates=adj)
        surv = ii.time_to_event(study, "employed", start=1, tau=20)
    E = Entry
    entries = (
        E("itt.work_on_di.k6", "primary", "work", "itt", "work_on_di", {"horizon": 6}, work[0]),
        E("itt.work_on_di.k10", "primary", "work", "itt", "work_on_di", {"horizon": 10}, work[1]),
        E("itt.di_benefit.k10", "primary", "benefit", "itt", "di_benefit", {"horizon": 10}, benefit[0]),
        E("itt.employed.k10", "secondary", "other", "itt", "employed", {"horizon": 10}, other[0]),
        E("spillover.partner.employed.k6", "secondary", "other", "spillover", "employed",
          {"horizon": 6}, other[1]),
        E("dynamic.work_on_di", "secondary", None, "itt_by_period", "work_on_di", {}, dyn),
        E("heterogeneity.region.work_on_di.k10", "exploratory", None, "heterogeneity",
          "work_on_di", {"by": "region"}, het),
        E("survival.employed", "secondary", None, "time_to_event", "employed", {"tau": 20}, surv),
        E("late.work_on_di.k10", "secondary", None, "late", "work_on_di", {},
          None, "no take-up column in the delivery"),
    )
    d = study.design
    prov = {"input_hashes": {"assignment": "ab" * 32, "panel": "cd" * 32}, "plan_hash": "ef" * 32,
            "versions": {"ips_impact": ii.__version__}, "seed": seed, "n_permutations": n_permutations}
    info = {"frequency": study.frequency, "n_persons": study.n_persons, "n_treated": d.n_treated,
            "n_control": d.n_control, "n_strata": d.n_strata}
    return StandInAnalysis(None, entries, prov, info)


def _analysis():
    trial = ii.synthetic.generate(n_persons=1200, seed=2018)
    return stand_in_analysis(trial.study())


try:
    import pytest

    analysis = pytest.fixture(scope="module")(_analysis)
except ImportError:  # pragma: no cover
    pass
