r"""Randomization p-values and confidence intervals from a statistic's distribution.

The randomization p-value of :math:`T_{obs} = T(z_{obs})` is

* exact enumeration (when the design has at most ``n_permutations`` distinct
  assignments :math:`z_1..z_N`):
  :math:`p = \#\{b : |T(z_b)| \ge |T_{obs}|\} / N` (the observed assignment is one
  of the :math:`z_b`);
* Monte Carlo (B draws with replacement):
  :math:`p = (1 + \#\{b : |T(z_b)| \ge |T_{obs}|\}) / (1 + B)`.
  Counting the observed assignment as one of the draws makes the test exact at every
  level, :math:`P(p \le \alpha) \le \alpha` for any B (Phipson & Smyth 2010),
  at the price of a slight conservativeness of order 1/B. Its Monte Carlo standard
  error is :math:`\sqrt{\hat p (1 - \hat p) / B}`.

Comparisons use a tolerance of 1e-9 times the scale of the statistic (the largest
:math:`|T|`) so that draws reproducing the observed statistic up to floating-point
rounding count as ties (as they must); a draw whose statistic is undefined (singular
design) counts as at least as extreme (conservative).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["TIE_RTOL", "ri_pvalues", "ri_confidence_interval"]

#: Relative tolerance under which |T_b| and |T_obs| are treated as tied.
TIE_RTOL = 1e-9


def _n_extreme(t_obs: np.ndarray, t_draws: np.ndarray) -> np.ndarray:
    """#{b : |T_b| >= |T_obs|} per column, ties within TIE_RTOL, NaN draws counted."""
    thr = np.abs(t_obs) - _tie_tolerance(t_obs, t_draws)
    with np.errstate(invalid="ignore"):
        hit = (np.abs(t_draws) >= thr) | np.isnan(t_draws)
    return hit.sum(axis=0)


def _tie_tolerance(t_obs: np.ndarray, t_draws: np.ndarray) -> np.ndarray:
    """TIE_RTOL times the scale of each statistic (largest |T| seen).

    So that an observed statistic that is zero up to rounding ties with draws that are
    zero too.
    """
    with np.errstate(invalid="ignore"):
        finite = np.where(np.isfinite(t_draws), np.abs(t_draws), 0.0)
    scale = np.maximum(np.nan_to_num(np.abs(t_obs)), finite.max(axis=0) if finite.size else 0.0)
    return TIE_RTOL * scale


def ri_pvalues(
    t_obs: np.ndarray, t_draws: np.ndarray, *, exact: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided randomization p-values and their Monte Carlo standard errors.

    .. math::
        p = \\frac{\\#\\{b: |T_b| \\ge |T_{obs}|\\}}{N} \\text{ (exact)}, \\qquad
        p = \\frac{1 + \\#\\{b: |T_b| \\ge |T_{obs}|\\}}{1 + B} \\text{ (Monte Carlo)},
        \\qquad se = \\sqrt{p(1-p)/B} \\text{ (0 when exact)}.

    Parameters
    ----------
    t_obs : array (m,)
        Observed statistics.
    t_draws : array (B, m)
        Statistics under the re-drawn assignments.
    exact : bool
        ``t_draws`` covers every distinct assignment once (observed included).

    Returns
    -------
    (p, se) : arrays (m,)
    """
    t_obs = np.atleast_1d(np.asarray(t_obs, dtype=float))
    t_draws = np.asarray(t_draws, dtype=float).reshape(-1, t_obs.size)
    b = t_draws.shape[0]
    count = _n_extreme(t_obs, t_draws)
    if exact:
        p = count / b
        se = np.zeros_like(p)
    else:
        p = (1.0 + count) / (1.0 + b)
        se = np.sqrt(p * (1.0 - p) / b)
    p = np.where(np.isnan(t_obs), np.nan, p)
    return p, se


def ri_confidence_interval(
    estimate: float,
    a: np.ndarray,
    c: np.ndarray,
    *,
    exact: bool,
    level: float = 0.95,
    a_obs: float | None = None,
    c_obs: float = 1.0,
) -> tuple[float, float]:
    """Randomization confidence interval by test inversion, constant additive effect.

    Under :math:`H_\\tau: Y_i(1) = Y_i(0) + \\tau` the control outcomes are
    :math:`y - \\tau z_{obs}` and, the estimator being linear in y and reproducing
    :math:`\\tau` when y = :math:`\\tau z`, the statistic under draw b is
    :math:`\\hat\\beta(z_b; y - \\tau z_{obs}) = a_b - \\tau c_b` with
    :math:`a_b = \\hat\\beta(z_b; y)` and :math:`c_b = \\hat\\beta(z_b; z_{obs})`. The
    test of :math:`H_\\tau` compares :math:`|a_b - \\tau c_b|` with
    :math:`|\\hat\\beta - \\tau|`; the interval is the set of :math:`\\tau` with
    :math:`p(\\tau) > 1 - level`. :math:`p(\\tau)` is a step function whose steps are
    at the 2B roots of :math:`(a_b - \\tau c_b)^2 = (\\hat\\beta - \\tau)^2`, so the set
    is found exactly (sorted roots, O(B log B)); its ends are roots. When the accepted
    set has holes, its hull is returned (conservative); a set unbounded on one side
    gives an infinite end.

    With ``a_obs``/``c_obs`` the observed statistic is :math:`a_{obs} - \\tau c_{obs}`
    instead of :math:`\\hat\\beta - \\tau`: for the LATE, a and c are the reduced-form
    and first-stage coefficients of y and of take-up d, the null is
    :math:`Y_i(d) = Y_i(0) + \\tau d` and the test uses the reduced form of
    :math:`y - \\tau d` (Imbens & Rosenbaum 2005; an Anderson–Rubin-type interval,
    valid with a weak instrument, possibly unbounded).
    """
    a = np.asarray(a, dtype=float)
    c = np.asarray(c, dtype=float)
    # 1 - 0.9 is 0.09999999999999998 in binary: round so that p = 0.1 is rejected at 10%.
    alpha = round(1.0 - float(level), 12)
    ok = np.isfinite(a) & np.isfinite(c)
    if not np.isfinite(estimate):
        return math.nan, math.nan
    b = a.size
    a0 = float(estimate) if a_obs is None else float(a_obs)
    c0 = float(c_obs)

    # Draw b is at least as extreme as the observation where
    # q_b(tau) = (a_b - tau c_b)^2 - (a0 - tau c0)^2 >= 0. q_b factorises into two
    # linear factors, so its roots are real: r = (a_b - a0)/(c_b - c0) and
    # (a_b + a0)/(c_b + c0); p(tau) is a step function changing only at these 2B roots.
    # Counting, at every candidate tau (roots and midpoints), how many q_b >= 0 with
    # sorted roots gives the exact accepted set in O(B log B).
    aa, cc = a[ok], c[ok]
    n_bad = int((~ok).sum())  # undefined draws count as extreme for every tau
    lead = cc**2 - c0**2
    lin = -2.0 * (aa * cc - a0 * c0)
    const = aa**2 - a0**2
    tiny = 1e-12 * max(1.0, float(np.max(np.abs(cc), initial=0.0)) ** 2, c0**2)
    quad = np.abs(lead) > tiny
    with np.errstate(divide="ignore", invalid="ignore"):
        r_a = (aa - a0) / (cc - c0)
        r_b = (aa + a0) / (cc + c0)
    r1, r2 = np.minimum(r_a, r_b)[quad], np.maximum(r_a, r_b)[quad]
    up = lead[quad] > 0  # q >= 0 outside (r1, r2); down: inside [r1, r2]
    double = up & (r1 == r2)  # q = lead (tau - r)^2 >= 0 everywhere
    r1u, r2u = np.sort(r1[up & ~double]), np.sort(r2[up & ~double])
    r1d, r2d = np.sort(r1[~up]), np.sort(r2[~up])
    # Degenerate draws (c_b = +-c0): q is linear, L tau + K.
    L, K = lin[~quad], const[~quad]
    scale_lk = np.maximum(np.abs(L), 1.0)
    flat = np.abs(L) <= 1e-12 * scale_lk
    always = int(np.sum(flat & (K >= -1e-12 * np.maximum(np.abs(K), 1.0)))) + int(double.sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        x0 = -K / L
    x_ge, x_le = np.sort(x0[~flat & (L > 0)]), np.sort(x0[~flat & (L < 0)])

    def count(tau: np.ndarray) -> np.ndarray:
        inside_u = np.searchsorted(r1u, tau, "left") - np.searchsorted(r2u, tau, "right")
        inside_d = np.searchsorted(r1d, tau, "right") - np.searchsorted(r2d, tau, "left")
        n_up = r1u.size - inside_u  # outside the open interval (r1, r2)
        lin_ge = np.searchsorted(x_ge, tau, "right")  # tau >= x0
        lin_le = x_le.size - np.searchsorted(x_le, tau, "left")  # tau <= x0
        return n_up + inside_d + lin_ge + lin_le + always + n_bad

    roots = np.concatenate([r1, r2, x_ge, x_le])
    roots = np.unique(roots[np.isfinite(roots)])
    if roots.size == 0:
        roots = np.array([float(estimate)])
    # p is constant on the open intervals between consecutive roots (and beyond the
    # extreme roots); at a root itself it may be higher by one draw (a tie). The
    # interval is the closure of the accepted open intervals, so isolated tie points
    # do not count.
    span = max(1.0, float(np.ptp(roots)))
    edges = np.concatenate([[-math.inf], roots, [math.inf]])
    mids = np.concatenate([[roots[0] - span], 0.5 * (roots[1:] + roots[:-1]), [roots[-1] + span]])
    cnt = count(mids)
    p = cnt / b if exact else (1.0 + cnt) / (1.0 + b)
    acc = np.flatnonzero(p > alpha)
    if acc.size == 0:
        return math.nan, math.nan
    return float(edges[acc[0]]), float(edges[acc[-1] + 1])

