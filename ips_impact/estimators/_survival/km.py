"""Kaplan–Meier curves, medians, survival at tau and restricted mean survival time.

Conventions follow R ``survival`` (``survfit``, ``quantile.survfit``) and ``survRM2``
so that the numbers can be checked against them (tests/reference/r/survival.R).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from ips_impact.estimators._survival._tables import risk_table

__all__ = [
    "KaplanMeier",
    "kaplan_meier",
    "km_median",
    "survival_at",
    "rmst",
    "RMST",
]


@dataclass(frozen=True)
class KaplanMeier:
    """Kaplan–Meier curve of one group, one row per distinct observed time.

    ``std_err`` is the Greenwood standard error of log S(t) (``survfit``'s
    ``std.err``); ``conf_low``/``conf_high`` are log-log intervals, NaN where
    S(t) is 0 or 1 (as in ``survfit``).
    """

    time: np.ndarray
    at_risk: np.ndarray
    events: np.ndarray
    censored: np.ndarray
    survival: np.ndarray
    std_err: np.ndarray
    conf_low: np.ndarray
    conf_high: np.ndarray
    level: float

    @property
    def n(self) -> int:
        return int(self.at_risk[0]) if self.at_risk.size else 0

    @property
    def max_time(self) -> float:
        return float(self.time[-1]) if self.time.size else float("nan")


def _loglog_ci(surv: np.ndarray, se_log: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """log-log interval of survfit(conf.type = "log-log")."""
    z = stats.norm.ppf(1 - (1 - level) / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        xx = np.where((surv == 0) | (surv == 1), np.nan, surv)
        se2 = z * se_log / np.log(xx)
        lower = np.exp(-np.exp(np.log(-np.log(xx)) - se2))
        upper = np.exp(-np.exp(np.log(-np.log(xx)) + se2))
    return lower, upper


def _km_from_counts(
    time: np.ndarray, at_risk: np.ndarray, events: np.ndarray, censored: np.ndarray, level: float
) -> KaplanMeier:
    with np.errstate(divide="ignore", invalid="ignore"):
        surv = np.cumprod(1.0 - events / at_risk)
        # Greenwood: var(log S) = sum d / (n (n - d)); infinite once S reaches 0
        inc = np.where(events > 0, events / (at_risk * (at_risk - events)), 0.0)
        se = np.sqrt(np.cumsum(inc))
    lo, hi = _loglog_ci(surv, se, level)
    return KaplanMeier(time, at_risk, events, censored, surv, se, lo, hi, level)


def kaplan_meier(
    time: np.ndarray, event: np.ndarray, group: np.ndarray, n_groups: int, *, level: float = 0.95,
    entry: np.ndarray | None = None,
) -> list[KaplanMeier]:
    r"""Kaplan–Meier estimate per group.

    .. math:: \hat S_g(t) = \prod_{t_j \le t} \left(1 - d_{gj} / n_{gj}\right)

    Parameters
    ----------
    time, event
        Follow-up time and event indicator (1 = event, 0 = censored).
    group
        Integer group codes 0..n_groups-1.
    entry
        Delayed-entry (left-truncation) times: a person is in the risk set
        :math:`n_{gj}` only when entry < t_j <= time (``survfit(Surv(entry, time, event))``);
        the curve is then :math:`P(T > t \mid T > \text{entry})` pieced together
        (product-limit under independent truncation).
    """
    tab = risk_table(time, event, group, n_groups, entry=entry)
    out = []
    for g in range(n_groups):
        # survfit lists only the times observed in the group itself
        keep = (tab.events[:, g] + tab.censored[:, g]) > 0
        out.append(
            _km_from_counts(
                tab.time[keep], tab.at_risk[keep, g], tab.events[keep, g], tab.censored[keep, g], level
            )
        )
    return out


def _findq(x: np.ndarray, y: np.ndarray, p: float, tol: float) -> float:
    """Port of survival:::findq for one probability p (y = 1 - S, x = times)."""
    ok = ~np.isnan(y)
    if not ok.any() or np.nanmax(y) < p:
        return float("nan")
    xmax = x[-1]
    # duplicated(y) keeps the first of each run of equal y (NaNs count as equal)
    seen: set = set()
    keep = np.zeros(len(y), dtype=bool)
    for i, v in enumerate(y):
        key = "nan" if np.isnan(v) else float(v)
        if key not in seen:
            seen.add(key)
            keep[i] = True
    x, y = x[keep], y[keep]
    n = len(y)
    pos = np.arange(1, n + 1)
    ok = ~np.isnan(y)
    xs, ps = y[ok], pos[ok]

    def approx_const_f1(shift: float) -> float:
        # approx(y + shift, 1:n, p, method = "constant", f = 1): the first knot >= p
        a = xs + shift
        if p > a.max() or p < a.min():
            return float("nan")
        j = int(np.searchsorted(a, p, side="left"))
        return float(ps[j])

    i1 = approx_const_f1(tol)
    i2 = approx_const_f1(-tol)

    def at(i: float) -> float:
        return float("nan") if np.isnan(i) else float(x[int(i) - 1])

    quant = (at(i1) + at(i2)) / 2
    if p == 0:
        quant = float(x[0])
    if not np.isnan(y[-1]) and abs(p - y[-1]) < tol:
        quant = (at(i1) + xmax) / 2
    return quant


def km_median(km: KaplanMeier, *, start: float = 0.0) -> tuple[float, float, float]:
    """Median survival and its interval, as ``quantile(survfit, 0.5)`` computes them.

    The median is the first time where S(t) <= 1/2 (midpoint of a flat stretch at
    exactly 1/2); its limits are the same functional of the log-log limits.
    NaN when the curve (or a limit) never reaches 1/2.
    """
    tol = float(np.sqrt(np.finfo(float).eps))
    x = np.concatenate([[start], km.time])
    med = _findq(x, np.concatenate([[0.0], 1 - km.survival]), 0.5, tol)
    low = _findq(x, np.concatenate([[0.0], 1 - km.conf_low]), 0.5, tol)
    high = _findq(x, np.concatenate([[0.0], 1 - km.conf_high]), 0.5, tol)
    return med, low, high


def survival_at(km: KaplanMeier, tau: float) -> tuple[float, float]:
    r"""S(tau) and its Greenwood standard error :math:`S(\tau)\sqrt{\sum_{t_j\le\tau} d_j/(n_j(n_j-d_j))}`.

    Beyond the last observed time the curve is carried forward (``summary(..., extend=TRUE)``).
    """
    j = int(np.searchsorted(km.time, tau, side="right")) - 1
    if j < 0:
        return 1.0, 0.0
    s = float(km.survival[j])
    return s, s * float(km.std_err[j]) if s > 0 else 0.0


@dataclass(frozen=True)
class RMST:
    """Restricted mean survival time of one group up to tau and its standard error."""

    tau: float
    estimate: float
    std_error: float


def rmst(km: KaplanMeier, tau: float, *, start: float = 0.0) -> RMST:
    r"""Restricted mean survival time and the variance of its estimator (survRM2).

    .. math::

        \widehat{\mathrm{RMST}}(\tau) = \int_0^\tau \hat S(t)\,dt, \qquad
        \widehat{\mathrm{Var}} = \sum_{t_j \le \tau}
            \Big[\int_{t_j}^{\tau} \hat S(u)\,du\Big]^2 \frac{d_j}{n_j (n_j - d_j)}

    This is the variance of the *estimator* (``survRM2::rmst2``), not the variance
    of the truncated variable min(T, tau).
    """
    keep = km.time <= tau
    t = km.time[keep]
    s = km.survival[keep]
    n = km.at_risk[keep]
    d = km.events[keep]
    wk_time = np.concatenate([t, [tau]])
    areas = np.diff(np.concatenate([[start], wk_time])) * np.concatenate([[1.0], s])
    est = float(areas.sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        h = np.where((n - d) == 0, 0.0, d / (n * (n - d)))
    # area after each time t_j up to tau
    after = np.cumsum(areas[1:][::-1])[::-1]
    var = float(np.sum(after**2 * h))
    return RMST(float(tau), est, float(np.sqrt(var)))
