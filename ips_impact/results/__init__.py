"""Frozen result types, the tidy schema and multi-model tables.

``from ips_impact.results import EffectResult`` etc. Result families live in their own
modules (``effect.py``, ``survival.py``, ``heterogeneity.py``) on the common base of
``base.py``; see that module's docstring for how to build a new family.
"""

from __future__ import annotations

from ips_impact.results.base import (
    LEDGER_COLUMNS,
    OPTIONAL_TIDY_COLUMNS,
    TIDY_COLUMNS,
    ResultBase,
    critical_value,
    horizon_label,
    make_row,
    result_dataclass,
    wald_inference,
    with_adjusted_pvalues,
    with_ri,
)
from ips_impact.results.compare import ComparisonTable, compare
from ips_impact.results.effect import (
    BALANCE_COLUMNS,
    BalanceTable,
    BoundsResult,
    DynamicEffectResult,
    EffectResult,
    imbens_manski_interval,
)
from ips_impact.results.heterogeneity import HeterogeneityResult
from ips_impact.results.survival import SurvivalResult

__all__ = [
    "TIDY_COLUMNS",
    "OPTIONAL_TIDY_COLUMNS",
    "LEDGER_COLUMNS",
    "BALANCE_COLUMNS",
    "ResultBase",
    "result_dataclass",
    "make_row",
    "wald_inference",
    "critical_value",
    "horizon_label",
    "with_ri",
    "with_adjusted_pvalues",
    "EffectResult",
    "DynamicEffectResult",
    "BoundsResult",
    "BalanceTable",
    "SurvivalResult",
    "HeterogeneityResult",
    "imbens_manski_interval",
    "compare",
    "ComparisonTable",
]
