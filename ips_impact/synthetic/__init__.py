"""Synthetic IPS trial with exact potential-outcome truth, calibrated to the Belgian pilot.

>>> from ips_impact.synthetic import generate
>>> trial = generate(n_persons=1200, seed=0)
>>> trial.truth.query("population == 'participants' and outcome == 'work_on_di' "
...                   "and k == 6 and group == 'all'")  # doctest: +SKIP

Both potential paths (control world and IPS world) are simulated for every
participant and household member with common random numbers; the revealed tables show
the world of each person's assigned arm. See :func:`generate`, :class:`SyntheticParams`,
:class:`SyntheticTrial` and :func:`population_truth`.

Coverage simulations
--------------------
Two designs, two truths:

* *Randomization (design-based) inference*: one sample, many assignments. Draw the
  sample once and call ``trial.rerandomize(r)`` in each replication (a few
  milliseconds for 1,200 persons); the target is the sample effect in
  ``trial.truth`` (it does not change with the assignment)::

      base = generate(n_persons=1200, seed=1, tables=("assignment", "panel"))
      target = base.truth.query("population == 'participants' and "
                                "outcome == 'work_on_di' and k == 6 and group == 'all'")
      for r in range(500):
          trial = base.rerandomize(r)   # same people, new arms, revealed outcomes

* *Sampling (model-based) inference*: a new sample in each replication, with the
  fast path (only assignment and panel; short panels via ``pre_quarters`` /
  ``post_quarters``); the target is the super-population effect from
  :func:`population_truth` (a Monte-Carlo approximation that reports its own
  standard error)::

      p = dataclasses.replace(SyntheticParams(), pre_quarters=4, post_quarters=12)
      target = population_truth(p, outcome="work_on_di", k=6)
      for r in range(500):
          trial = generate(n_persons=1200, seed=r, params=p, tables=("assignment", "panel"))
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
