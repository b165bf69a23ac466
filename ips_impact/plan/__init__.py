"""Pre-registered analysis plans → reproducible analyses with provenance.

``AnalysisPlan`` (TOML schema, validation, stable estimand ids) → ``run_plan`` →
``Analysis`` (every result, randomization and adjusted p-values, deviations from the
plan, provenance) → ``Analysis.save`` / ``load_analysis`` (atomic, byte-stable) and
``diff_analyses`` (what changed between two saved analyses).
"""

from ips_impact.plan.analysis import Analysis, Entry
from ips_impact.plan.run import derive_seed, run_plan
from ips_impact.plan.schema import AnalysisPlan, EstimandSpec, FamilySpec

__all__ = [
    "AnalysisPlan",
    "EstimandSpec",
    "FamilySpec",
    "Analysis",
    "Entry",
    "run_plan",
    "derive_seed",
]
