"""The (stratified) log-rank test and its Fleming–Harrington G(rho, gamma) weighted form.

As R ``survival::survdiff(rho = )`` computes it, for right-censored or left-truncated data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from ips_impact.estimators._survival._tables import risk_table

__all__ = ["LogRank", "logrank", "fh_weights"]


@dataclass(frozen=True)
class LogRank:
    """Observed and expected events per group, their covariance and the chi-square."""

    observed: np.ndarray
    expected: np.ndarray
    variance: np.ndarray
    statistic: float
    df: int
    p_value: float
    rho: float = 0.0
    gamma: float = 0.0


def logrank(
    time: np.ndarray,
    event: np.ndarray,
    group: np.ndarray,
    n_groups: int,
    strata: np.ndarray | None = None,
    *,
    rho: float = 0.0,
    gamma: float = 0.0,
    entry: np.ndarray | None = None,
) -> LogRank:
    r"""Weighted log-rank test of equal hazards across groups, summed over strata.

    .. math::

        U_g = \sum_s \sum_j w_{sj}\Big(d_{gsj} - d_{sj}\frac{n_{gsj}}{n_{sj}}\Big), \quad
        V_{gh} = \sum_s\sum_j w_{sj}^2\, d_{sj}\frac{n_{sj}-d_{sj}}{n_{sj}-1}
                 \frac{n_{gsj}}{n_{sj}}\Big(\delta_{gh} - \frac{n_{hsj}}{n_{sj}}\Big)

    and :math:`X^2 = U^\top V^- U` on G - 1 degrees of freedom. The Fleming–Harrington
    weight is :math:`w_{sj} = \hat S_s(t_j^-)^\rho\,(1 - \hat S_s(t_j^-))^\gamma`, with
    :math:`\hat S_s` the pooled Kaplan–Meier curve of stratum s; rho = gamma = 0 is the
    log-rank test, rho = 1, gamma = 0 the Peto–Prentice (Gehan-like) test that weights
    early differences, rho = 0, gamma = 1 weights late ones. ``survdiff(rho = )`` is
    gamma = 0. With ``entry`` the risk sets are those of left-truncated data
    (entry < t_j <= time).
    """
    tab = risk_table(time, event, group, n_groups, strata, entry=entry)
    n_all = tab.at_risk.sum(axis=1)
    d_all = tab.events.sum(axis=1)
    wt = fh_weights(n_all, d_all, tab.stratum_end, rho, gamma)
    keep = d_all > 0
    n, d, wt = n_all[keep], d_all[keep], wt[keep]
    nr = tab.at_risk[keep]
    frac = nr / n[:, None]
    expected = (wt[:, None] * d[:, None] * frac).sum(axis=0)
    observed = (wt[:, None] * tab.events[keep]).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = wt**2 * np.where(n > 1, d * (n - d) / (n - 1), 0.0)
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
    return LogRank(observed, expected, var, stat, df, p, float(rho), float(gamma))


def fh_weights(
    n: np.ndarray, d: np.ndarray, stratum_end: np.ndarray, rho: float, gamma: float
) -> np.ndarray:
    r"""Fleming–Harrington weights :math:`\hat S(t^-)^\rho (1-\hat S(t^-))^\gamma` per key.

    ``n`` and ``d`` are the pooled numbers at risk and events at each key of a risk
    table (sorted by stratum, then time; ``stratum_end`` as in the table); the
    Kaplan–Meier curve restarts at 1 in each stratum, as in ``survdiff``.
    ``n`` and ``d`` may also be (B, K) arrays (one row per assignment).
    """
    if rho == 0 and gamma == 0:
        return np.ones_like(np.asarray(n, dtype=float))
    n = np.asarray(n, dtype=float)
    d = np.asarray(d, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        step = np.where(n > 0, 1.0 - d / np.where(n > 0, n, 1.0), 1.0)
    s_minus = np.ones_like(step)
    ends = np.unique(stratum_end)
    starts = np.concatenate([[0], ends[:-1]]).astype(np.int64)
    for a, b in zip(starts, ends):
        # S(t_j-) = product of the steps before j within the stratum
        s_minus[..., a + 1 : b] = np.cumprod(step[..., a : b - 1], axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.power(s_minus, rho) * np.power(1.0 - s_minus, gamma)
