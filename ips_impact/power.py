r"""Minimum detectable effects (MDE).

The minimum detectable effect of a two-sided test at level :math:`\alpha` with power
:math:`1-\beta` is (Bloom 1995)

.. math:: \mathrm{MDE} = \left(t_{1-\alpha/2,\,\nu} + t_{1-\beta,\,\nu}\right)\,
          \mathrm{SE}(\hat\tau),

with :math:`\nu` the degrees of freedom of the reference t distribution (the normal
when :math:`\nu = \infty`; then the multiplier is :math:`1.960 + 0.842 = 2.802` for 5%
and 80%). :func:`mde` takes the standard error of a fitted effect (this is how
:func:`ips_impact.estimators.heterogeneity.heterogeneity` reports an MDE per subgroup);
:func:`mde_from_design` takes the design (numbers per arm, outcome SD, R² of the
covariates, design effect) for planning before data exist.

Simulation-based power (re-drawing synthetic trials) is not here yet.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats

from ips_impact.errors import EstimationError

__all__ = ["mde", "mde_multiplier", "mde_from_design"]


def _check_probability(name: str, value: float, *, upper: float = 1.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
        raise EstimationError(
            f"{name} must be a number strictly between 0 and {upper:g}; you passed {value!r}",
            fix=f"use e.g. {name}={'0.05' if name == 'alpha' else '0.8'}.",
        )
    v = float(value)
    if not (0.0 < v < upper):
        raise EstimationError(
            f"{name} must be strictly between 0 and {upper:g}; you passed {value!r}",
            fix=f"use e.g. {name}={'0.05' if name == 'alpha' else '0.8'}.",
        )
    return v


def mde_multiplier(
    *, alpha: float = 0.05, power: float = 0.8, df: float | None = None, two_sided: bool = True
) -> float:
    r"""The factor :math:`t_{1-\alpha/2,\nu} + t_{1-\beta,\nu}` that turns an SE into an MDE.

    Parameters
    ----------
    alpha
        Size of the test (0.05).
    power
        Power :math:`1-\beta` (0.8).
    df
        Degrees of freedom :math:`\nu`; ``None`` or ``inf`` for the normal.
    two_sided
        Two-sided test (``alpha/2`` in each tail) or one-sided.

    Returns
    -------
    float
        About 2.802 for the defaults with the normal reference.
    """
    a = _check_probability("alpha", alpha)
    p = _check_probability("power", power)
    tail = a / 2.0 if two_sided else a
    if df is None or not np.isfinite(df):
        return float(stats.norm.ppf(1.0 - tail) + stats.norm.ppf(p))
    if not df > 0:
        raise EstimationError(
            f"df must be positive; you passed {df!r}",
            fix="pass the degrees of freedom of the fitted effect, or None for the normal.",
        )
    return float(stats.t.ppf(1.0 - tail, df) + stats.t.ppf(p, df))


def mde(
    std_error: float | Sequence[float] | np.ndarray,
    *,
    df: float | Sequence[float] | np.ndarray | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    two_sided: bool = True,
) -> float | np.ndarray:
    r"""Minimum detectable effect from the standard error of an estimated effect.

    .. math:: \mathrm{MDE} = \left(t_{1-\alpha/2,\,\nu} + t_{1-\beta,\,\nu}\right)\,\mathrm{SE}

    Parameters
    ----------
    std_error
        One standard error or an array of them (one per subgroup).
    df
        Degrees of freedom per standard error (scalar or same shape); ``None`` / ``inf``
        for the normal reference.
    alpha, power, two_sided
        As in :func:`mde_multiplier`.

    Returns
    -------
    float or numpy.ndarray
        Same shape as ``std_error``; NaN where the standard error is NaN.
    """
    se = np.asarray(std_error, dtype=float)
    if np.any(se[np.isfinite(se)] < 0):
        raise EstimationError(
            "std_error must be non-negative",
            fix="pass standard errors, not estimates or statistics.",
        )
    a = _check_probability("alpha", alpha)
    p = _check_probability("power", power)
    tail = a / 2.0 if two_sided else a
    if df is None:
        mult = stats.norm.ppf(1.0 - tail) + stats.norm.ppf(p)
    else:
        d = np.broadcast_to(np.asarray(df, dtype=float), se.shape)
        if np.any(~(d > 0)):
            raise EstimationError(
                "df must be positive (inf for the normal reference)",
                fix="pass the degrees of freedom of each fitted effect, or df=None.",
            )
        # t.ppf handles df = inf as the normal, so one expression serves both.
        mult = stats.t.ppf(1.0 - tail, d) + stats.t.ppf(p, d)
    out = mult * se
    return float(out) if out.ndim == 0 else out


def mde_from_design(
    n_treated: int,
    n_control: int,
    *,
    sd: float = 1.0,
    r2: float = 0.0,
    design_effect: float = 1.0,
    alpha: float = 0.05,
    power: float = 0.8,
    two_sided: bool = True,
    df: float | None = None,
) -> float:
    r"""Minimum detectable effect of a difference in means planned from the design.

    .. math:: \mathrm{SE} = \sigma\,\sqrt{(1-R^2)\,\mathrm{deff}\,\left(\tfrac{1}{n_1}
              + \tfrac{1}{n_0}\right)}, \qquad \mathrm{MDE} = (t_{1-\alpha/2} +
              t_{1-\beta})\,\mathrm{SE}

    Parameters
    ----------
    n_treated, n_control
        Persons per arm (e.g. 60 and 60 in Brussels).
    sd
        Standard deviation :math:`\sigma` of the outcome (for a proportion
        :math:`\pi`: :math:`\sqrt{\pi(1-\pi)}`).
    r2
        Share of the outcome variance explained by the covariates (ANCOVA), in [0, 1).
    design_effect
        Variance inflation from clustering, :math:`1 + (m-1)\rho` (1 for persons).
    alpha, power, two_sided, df
        As in :func:`mde`; ``df=None`` uses the normal.

    Returns
    -------
    float
        The MDE in the units of the outcome (divide by ``sd`` for an effect size).

    Examples
    --------
    Working-on-DI at 18 months (control ≈ 29%), 60 persons per arm:

    >>> round(mde_from_design(60, 60, sd=(0.29 * 0.71) ** 0.5), 3)
    0.232
    """
    for name, n in (("n_treated", n_treated), ("n_control", n_control)):
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise EstimationError(
                f"{name} must be a positive whole number; you passed {n!r}",
                fix="give the number of persons in each arm.",
            )
    if not (isinstance(sd, (int, float, np.floating)) and sd > 0 and math.isfinite(sd)):
        raise EstimationError(f"sd must be a positive number; you passed {sd!r}",
                              fix="give the outcome's standard deviation.")
    if not (isinstance(r2, (int, float, np.floating)) and 0.0 <= r2 < 1.0):
        raise EstimationError(f"r2 must lie in [0, 1); you passed {r2!r}",
                              fix="give the share of variance explained by the covariates.")
    if not (isinstance(design_effect, (int, float, np.floating)) and design_effect >= 1.0):
        raise EstimationError(f"design_effect must be at least 1; you passed {design_effect!r}",
                              fix="use 1 + (m - 1) * icc for clusters of size m, 1 for persons.")
    se = sd * math.sqrt((1.0 - r2) * design_effect * (1.0 / n_treated + 1.0 / n_control))
    return float(mde(se, df=df, alpha=alpha, power=power, two_sided=two_sided))
