r"""Wald arithmetic: critical values, two-sided p-values and Wald intervals.

For an estimate :math:`\hat\theta` with standard error :math:`\widehat{se}` and
reference t(df) (the standard normal when df is None or infinite):
:math:`t = \hat\theta / \widehat{se}`, :math:`p = 2\,P(T_{df} > |t|)` and the interval
:math:`\hat\theta \pm t_{df,(1+level)/2}\,\widehat{se}`. The results build their
tidy rows with these (``results/base.py``), the estimators their tables.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import special

from ips_impact.errors import EstimationError

__all__ = ["critical_value", "wald_inference", "two_sided_p"]


def critical_value(level: float, df: float | None = None) -> float:
    """Two-sided critical value: quantile ``(1 + level) / 2`` of t(df) (normal: df None/inf)."""
    _check_level(level)
    q = 0.5 + level / 2.0
    # scipy.special rather than scipy.stats: the same functions without the per-call
    # overhead of the distribution objects (results are built by the thousand in RI)
    if df is None or not np.isfinite(df):
        return float(special.ndtri(q))
    return float(special.stdtrit(df, q))


def _check_level(level: float) -> None:
    if not isinstance(level, (float, int)) or not (0.0 < float(level) < 1.0):
        raise EstimationError(
            f"level must be a number strictly between 0 and 1; you passed {level!r}",
            fix="use e.g. level=0.95 for 95% confidence intervals.",
        )


def wald_inference(
    estimate: float, std_error: float, df: float | None = None, level: float = 0.95
) -> tuple[float, float, float, float]:
    r"""Statistic, two-sided p-value and confidence interval of one estimate.

    .. math:: t = \hat\theta / \widehat{se}, \quad p = 2\,P(T_{df} > |t|), \quad
              \hat\theta \pm t_{df, (1+level)/2}\,\widehat{se}

    with ``T_inf`` the standard normal. Returns ``(statistic, p_value, conf_low, conf_high)``;
    NaN where the standard error is missing or not positive.
    """
    est = float(estimate)
    se = float(std_error)
    crit = critical_value(level, df)
    if not (np.isfinite(se) and se > 0 and np.isfinite(est)):
        return (math.nan, math.nan, math.nan, math.nan)
    stat = est / se
    p = float(two_sided_p(stat, df))
    return (stat, p, est - crit * se, est + crit * se)


def two_sided_p(statistic: Any, df: float | None = None) -> Any:
    """Two-sided p-value :math:`2 P(T_{df} > |t|)` (normal when df is None/inf); vectorised."""
    a = -np.abs(np.asarray(statistic, dtype=float))
    if df is None or not np.isfinite(df):
        return 2.0 * special.ndtr(a)
    return 2.0 * special.stdtr(df, a)
