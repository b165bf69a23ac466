"""ips_impact: causal evaluation of a randomized IPS trial with administrative data.

Public API re-exports only; ``shared/DESIGN.md`` is the contract and
``docs/architecture.md`` the map of the modules.

>>> import ips_impact as ii
>>> trial = ii.synthetic.generate(n_persons=1200, seed=2018)      # doctest: +SKIP
>>> study = trial.study()                                          # doctest: +SKIP
>>> ii.itt(study, "work_on_di", horizon=6).summary()               # doctest: +SKIP
"""

from __future__ import annotations

from ips_impact import disclosure, errors, synthetic, units
from ips_impact.brief import brief
from ips_impact.design import Design
from ips_impact.estimators.balance import balance
from ips_impact.estimators.bounds import lee_bounds
from ips_impact.estimators.did import did
from ips_impact.estimators.dynamic import itt_by_period
from ips_impact.estimators.heterogeneity import heterogeneity
from ips_impact.estimators.itt import CategoricalEffectResult, itt
from ips_impact.estimators.iv import late
from ips_impact.estimators.spillover import household_total, spillover
from ips_impact.estimators.survival import (
    competing_risks,
    discrete_time_hazard,
    spell_survival,
    time_to_event,
)
from ips_impact.inference.covariance import COV_TYPES
from ips_impact.inference.index import summary_index
from ips_impact.inference.multiple import adjust_pvalues, p_adjust
from ips_impact.inference.randomization import (
    randomization_ci,
    randomization_inference,
    randomization_pretest,
)
from ips_impact.io.mapping import ColumnMap
from ips_impact.ledger import Ledger
from ips_impact.plan import Analysis, AnalysisPlan, run_plan
from ips_impact.plan.store import load_analysis
from ips_impact.power import mde, mde_from_design
from ips_impact.results import (
    BalanceTable,
    BoundsResult,
    ComparisonTable,
    DynamicEffectResult,
    EffectResult,
    compare,
)
from ips_impact.results.heterogeneity import HeterogeneityResult
from ips_impact.results.survival import SurvivalResult
from ips_impact.study import Study, load_study

__version__ = "0.1.0"

__all__ = [
    # data
    "Study", "load_study", "Design", "ColumnMap", "Ledger",
    # estimators
    "itt", "itt_by_period", "did", "late", "lee_bounds", "balance",
    "spillover", "household_total", "heterogeneity",
    "time_to_event", "spell_survival", "competing_risks", "discrete_time_hazard",
    # inference
    "COV_TYPES", "randomization_inference", "randomization_ci", "randomization_pretest",
    "adjust_pvalues", "p_adjust", "summary_index", "mde", "mde_from_design",
    # results
    "EffectResult", "CategoricalEffectResult", "DynamicEffectResult", "BoundsResult", "BalanceTable",
    "HeterogeneityResult", "SurvivalResult", "ComparisonTable", "compare",
    # plan
    "AnalysisPlan", "run_plan", "Analysis", "load_analysis",
    # modules
    "errors", "synthetic", "__version__",
    # briefs and disclosure control
    "brief", "disclosure", "units",
]
