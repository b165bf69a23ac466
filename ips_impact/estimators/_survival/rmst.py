r"""Contrasts of restricted mean survival time beyond the difference.

The RMST ratio (survRM2's delta method on the log scale) and the covariate-adjusted RMST
difference and ratio of Tian, Zhao & Wei (2014), as ``survRM2::rmst2(..., covariates = )``
computes them.

Checked against R in tests/test_survival_extra_reference.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ips_impact.estimators._survival.km import RMST

__all__ = ["RmstContrast", "rmst_log_ratio", "rmst_regression", "RMST_REG_TYPES"]

RMST_REG_TYPES = ("difference", "ratio")


@dataclass(frozen=True)
class RmstContrast:
    """A contrast between arms and its standard error (log scale for a ratio)."""

    estimate: float
    std_error: float
    scale: str  # "difference" or "log_ratio"


def rmst_log_ratio(treated: RMST, control: RMST) -> RmstContrast:
    r"""Log RMST ratio and its delta-method standard error (survRM2 ``rmst2``).

    .. math::

        \log\frac{\widehat{\mathrm{RMST}}_1(\tau)}{\widehat{\mathrm{RMST}}_0(\tau)}, \qquad
        \widehat{\mathrm{se}} = \sqrt{\frac{\widehat{\mathrm{Var}}_1}{\widehat{\mathrm{RMST}}_1^2}
          + \frac{\widehat{\mathrm{Var}}_0}{\widehat{\mathrm{RMST}}_0^2}}
    """
    est = float(np.log(treated.estimate) - np.log(control.estimate))
    se = float(np.hypot(treated.std_error / treated.estimate, control.std_error / control.estimate))
    return RmstContrast(est, se, "log_ratio")


def _censoring_km_at(y: np.ndarray, censored: np.ndarray) -> np.ndarray:
    """Censoring Kaplan–Meier curve G(y_i) (right-continuous: censorings at y_i count)."""
    ut, inv = np.unique(y, return_inverse=True)
    inv = inv.ravel()
    c = np.bincount(inv, weights=censored.astype(float), minlength=ut.size)
    tot = np.bincount(inv, minlength=ut.size).astype(float)
    n = np.cumsum(tot[::-1])[::-1]
    return np.cumprod(1.0 - c / n)[inv]


def _martingale_terms(y: np.ndarray, observed: np.ndarray, score: np.ndarray) -> np.ndarray:
    r"""Censoring-martingale part of each influence term, within one arm.

    :math:`\int q(t)/Y(t)\,dM^c_i(t)` with :math:`q(t) = \sum_{y_j \ge t} s_j` and
    :math:`Y(t) = \#\{y_j \ge t\}`, i.e. :math:`(1-\delta_i)\,q(y_i)/Y(y_i) -
    \sum_{t \le y_i} q(t)\, dN^c(t) / Y(t)^2`.
    """
    ut, inv = np.unique(y, return_inverse=True)
    inv = inv.ravel()
    p = score.shape[1]
    tot = np.bincount(inv, minlength=ut.size).astype(float)
    nc = np.bincount(inv, weights=(~observed).astype(float), minlength=ut.size)
    ys = np.cumsum(tot[::-1])[::-1]
    ssum = np.zeros((ut.size, p))
    np.add.at(ssum, inv, score)
    q = np.cumsum(ssum[::-1], axis=0)[::-1]
    comp = np.cumsum((nc / ys**2)[:, None] * q, axis=0)
    out = -comp[inv]
    cens = ~observed
    out[cens] += q[inv[cens]] / ys[inv[cens]][:, None]
    return out


def rmst_regression(
    time: np.ndarray,
    event: np.ndarray,
    arm: np.ndarray,
    x: np.ndarray,
    tau: float,
    *,
    type: str = "difference",
    max_iter: int = 100,
    tol: float = 1e-13,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Covariate-adjusted RMST regression (Tian, Zhao & Wei 2014; survRM2 ``rmst2reg``).

    With :math:`Y_i = \min(T_i, \tau)`, :math:`\Delta_i` = 1 when the event is seen or
    follow-up reaches tau, and :math:`\hat G_a` the censoring Kaplan–Meier curve of arm a,
    solves the inverse-probability-of-censoring-weighted estimating equations

    .. math::

        \sum_i \frac{\Delta_i}{\hat G_{a_i}(Y_i)}\, w_i^\top \{Y_i - g(w_i^\top\beta)\} = 0,
        \qquad w_i = (1, a_i, x_i^\top)^\top,

    with :math:`g` the identity (``"difference"``: :math:`\beta_a` is the adjusted RMST
    difference) or :math:`\exp` (``"ratio"``: :math:`\beta_a` is the adjusted log RMST
    ratio). The variance is the sandwich :math:`A^{-1}(\sum_i \kappa_i\kappa_i^\top)A^{-1}`,
    :math:`A = \sum_i g'(w_i^\top\hat\beta) w_i w_i^\top`, :math:`\kappa_i` the score plus
    the term for the estimated censoring curve.

    Returns
    -------
    (coef, vcov)
        For the columns (intercept, arm, x...).

    Raises
    ------
    numpy.linalg.LinAlgError
        When (1, arm, x) is not of full column rank.
    """
    time = np.asarray(time, dtype=float)
    event = np.asarray(event, dtype=float)
    arm = np.asarray(arm)
    x = np.asarray(x, dtype=float)
    if x.ndim == 1:
        x = x[:, None]
    n = time.size
    y = np.minimum(time, tau)
    observed = (event > 0) | (y == tau)
    w = np.zeros(n)
    for a in np.unique(arm):
        sel = arm == a
        w[sel] = observed[sel] / _censoring_km_at(y[sel], ~observed[sel])
    xm = np.column_stack([np.ones(n), arm.astype(float), x])
    if np.linalg.matrix_rank(xm) < xm.shape[1]:
        raise np.linalg.LinAlgError("the design (1, arm, covariates) is not of full column rank")
    if type == "difference":
        xw = xm * w[:, None]
        beta = np.linalg.solve(xw.T @ xm, xw.T @ y)
        mu = xm @ beta
        amat = xm.T @ xm
    elif type == "ratio":
        # weighted Poisson (quasi-likelihood) by Newton, from the log of the weighted mean
        beta = np.zeros(xm.shape[1])
        beta[0] = np.log(np.sum(w * y) / np.sum(w))
        for _ in range(max_iter):
            mu = np.exp(xm @ beta)
            step = np.linalg.solve((xm * (w * mu)[:, None]).T @ xm, xm.T @ (w * (y - mu)))
            beta = beta + step
            if np.max(np.abs(step)) < tol:
                break
        mu = np.exp(xm @ beta)
        amat = (xm * mu[:, None]).T @ xm
    else:
        raise ValueError(f"type must be one of {RMST_REG_TYPES}")
    score = xm * (w * (y - mu))[:, None]
    kappa = score.copy()
    for a in np.unique(arm):
        sel = arm == a
        kappa[sel] += _martingale_terms(y[sel], observed[sel], score[sel])
    ainv = np.linalg.inv(amat)
    return beta, ainv @ (kappa.T @ kappa) @ ainv
