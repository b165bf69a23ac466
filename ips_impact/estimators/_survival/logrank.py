"""The (stratified) log-rank test, as R ``survival::survdiff`` computes it (rho = 0)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from ips_impact.estimators._survival._tables import risk_table

__all__ = ["LogRank", "logrank"]


@dataclass(frozen=True)
class LogRank:
    """Observed and expected events per group, their covariance and the chi-square."""

    observed: np.ndarray
    expected: np.ndarray
    variance: np.ndarray
    statistic: float
    df: int
    p_value: float


def logrank(
    time: np.ndarray,
    event: np.ndarray,
    group: np.ndarray,
    n_groups: int,
    strata: np.ndarray | None = None,
) -> LogRank:
    r"""Log-rank test of equal hazards across groups, summed over strata.

    .. math::

        U_g = \sum_s \sum_j \Big(d_{gsj} - d_{sj}\frac{n_{gsj}}{n_{sj}}\Big), \quad
        V_{gh} = \sum_s\sum_j d_{sj}\frac{n_{sj}-d_{sj}}{n_{sj}-1}
                 \frac{n_{gsj}}{n_{sj}}\Big(\delta_{gh} - \frac{n_{hsj}}{n_{sj}}\Big)

    and :math:`X^2 = U^\top V^- U` on G - 1 degrees of freedom.
    """
    tab = risk_table(time, event, group, n_groups, strata)
    n = tab.at_risk.sum(axis=1)
    d = tab.events.sum(axis=1)
    keep = d > 0
    n, d = n[keep], d[keep]
    nr = tab.at_risk[keep]
    frac = nr / n[:, None]
    expected = (d[:, None] * frac).sum(axis=0)
    observed = tab.events[keep].sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(n > 1, d * (n - d) / (n - 1), 0.0)
    # V = sum_j w_j (diag(frac_j) - frac_j frac_j')
    var = np.diag((w[:, None] * frac).sum(axis=0)) - (frac * w[:, None]).T @ frac
    u = observed - expected
    # survdiff drops the last group and inverts the rest
    vsub = var[:-1, :-1]
    usub = u[:-1]
    df = int(np.linalg.matrix_rank(vsub)) if vsub.size else 0
    if df == 0:
        stat = float("nan")
    else:
        stat = float(usub @ np.linalg.pinv(vsub) @ usub)
    p = float(stats.chi2.sf(stat, df)) if df > 0 else float("nan")
    return LogRank(observed, expected, var, stat, df, p)
