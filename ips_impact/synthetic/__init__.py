"""Synthetic IPS trial with exact potential-outcome truth, calibrated to the Belgian pilot.

>>> from ips_impact.synthetic import generate
>>> trial = generate(n_persons=1200, seed=0)
>>> trial.truth.query("population == 'participants' and outcome == 'work_on_di' "
...                   "and k == 6 and group == 'all'")  # doctest: +SKIP

Both potential paths (control world and IPS world) are simulated for every
participant and household member with common random numbers; the revealed tables show
the world of each person's assigned arm. See :func:`generate`, :class:`SyntheticParams`,
:class:`SyntheticTrial` and :func:`population_truth`.
"""

from __future__ import annotations

from ips_impact.synthetic.params import REGIONS, SITES, SyntheticParams
from ips_impact.synthetic.trial import (
    TABLES,
    PopulationTruth,
    SyntheticTrial,
    generate,
    population_truth,
)
from ips_impact.synthetic.world import OUTCOMES

__all__ = [
    "generate",
    "SyntheticParams",
    "SyntheticTrial",
    "population_truth",
    "PopulationTruth",
    "TABLES",
    "OUTCOMES",
    "REGIONS",
    "SITES",
]
