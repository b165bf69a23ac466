"""The randomization design: arm, strata, assignment probabilities, re-draws.

The Belgian pilot randomized individuals completely within blocks (region ×
enrolment cohort): in stratum :math:`b` with :math:`n_b` persons, exactly
:math:`n_{1b}` were assigned to IPS, so every assignment with those counts was
equally likely and

.. math:: \\Pr(Z_i = 1) = p_b = n_{1b} / n_b \\quad (i \\in b).

Randomization inference re-draws assignments from exactly this distribution.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import comb

import numpy as np
import pandas as pd

__all__ = ["Design"]


@dataclass(frozen=True, eq=False)
class Design:
    """Frozen description of how the arm was assigned.

    Attributes
    ----------
    arm
        int8 array (n,), 1 = assigned to IPS; rows aligned with ``Study.persons``.
    stratum
        int64 codes (n,) into ``stratum_labels``.
    stratum_labels
        Names of the randomization blocks.
    household
        int64 codes (n,) of the baseline household (``-1`` when unknown), or None.
    """

    arm: np.ndarray
    stratum: np.ndarray
    stratum_labels: tuple[str, ...]
    household: np.ndarray | None = None
    counts: pd.DataFrame = field(init=False, repr=False)

    def __post_init__(self) -> None:
        arm = np.asarray(self.arm, dtype=np.int8).copy()
        stratum = np.asarray(self.stratum, dtype=np.int64).copy()
        arm.setflags(write=False)
        stratum.setflags(write=False)
        object.__setattr__(self, "arm", arm)
        object.__setattr__(self, "stratum", stratum)
        if self.household is not None:
            hh = np.asarray(self.household, dtype=np.int64).copy()
            hh.setflags(write=False)
            object.__setattr__(self, "household", hh)
        nb = np.bincount(stratum, minlength=len(self.stratum_labels))
        n1 = np.bincount(stratum, weights=arm, minlength=len(self.stratum_labels)).astype(np.int64)
        counts = pd.DataFrame({
            "stratum": list(self.stratum_labels),
            "n": nb.astype(np.int64),
            "n_treated": n1,
            "n_control": nb - n1,
            "p_treated": np.where(nb > 0, n1 / np.maximum(nb, 1), np.nan),
        })
        object.__setattr__(self, "counts", counts)

    @property
    def n(self) -> int:
        return int(self.arm.size)

    @property
    def n_treated(self) -> int:
        return int(self.arm.sum())

    @property
    def n_control(self) -> int:
        return self.n - self.n_treated

    @property
    def n_strata(self) -> int:
        return len(self.stratum_labels)

    @property
    def p_treated(self) -> np.ndarray:
        """Assignment probability of each person, :math:`p_{b(i)}`."""
        return self.counts["p_treated"].to_numpy()[self.stratum]

    @property
    def equal_probabilities(self) -> bool:
        r"""Whether one assignment probability p explains every stratum's count.

        True when some p gives :math:`|n_b p - n_{1b}| < 1` in every stratum b, i.e. the
        strata differ only by the rounding of :math:`n_b p` to whole persons (a stratum
        of 29 with 14 treated under p = 1/2). Probabilities such as 0.5 and 0.1 are
        unequal: stratum fixed effects then no longer estimate the ATE.
        """
        c = self.counts[self.counts["n"] > 0]
        nb = c["n"].to_numpy(dtype=float)
        n1 = c["n_treated"].to_numpy(dtype=float)
        if nb.size <= 1:
            return True
        return bool(np.max((n1 - 1) / nb) < np.min((n1 + 1) / nb))

    def n_assignments(self) -> int:
        """Number of distinct assignments the design could have drawn, :math:`\\prod_b \\binom{n_b}{n_{1b}}`."""
        out = 1
        for nb, n1 in zip(self.counts["n"], self.counts["n_treated"]):
            out *= comb(int(nb), int(n1))
        return out

    def permutations(self, n_permutations: int, seed: int = 0) -> np.ndarray:
        """Re-draw the assignment ``n_permutations`` times exactly as the design did.

        Returns an int8 array (n_permutations, n): complete randomization within
        strata with the observed number treated in each stratum.
        """
        from ips_impact.inference.permutation import draw_assignments

        return draw_assignments(self.arm, self.stratum, n_permutations, seed)

    def __repr__(self) -> str:
        return (f"Design(n={self.n}, treated={self.n_treated}, control={self.n_control}, "
                f"strata={self.n_strata}, complete randomization within strata)")
