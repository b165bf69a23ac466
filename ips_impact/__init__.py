"""ips_impact: causal evaluation of a randomized IPS trial with administrative data.

Public API re-exports only; ``shared/DESIGN.md`` is the contract and
``docs/architecture.md`` the map of the modules.
"""

from __future__ import annotations

from ips_impact import errors
from ips_impact.design import Design
from ips_impact.io.mapping import ColumnMap
from ips_impact.ledger import Ledger
from ips_impact.results import (
    BalanceTable,
    BoundsResult,
    ComparisonTable,
    DynamicEffectResult,
    EffectResult,
    compare,
)
from ips_impact.study import Study, load_study

__version__ = "0.1.0"

__all__ = [
    "errors",
    "Design",
    "ColumnMap",
    "Ledger",
    "Study",
    "load_study",
    "EffectResult",
    "DynamicEffectResult",
    "BoundsResult",
    "BalanceTable",
    "ComparisonTable",
    "compare",
    "__version__",
]
