r"""Recurrent events in discrete time: mean cumulative function and counting-process rows.

Input is a person x event-time matrix ``dn`` of event counts (0/1 per period; column
k is event time k, column 0 is never an event) and each person's follow-up ``c``
(last period observed). The person is at risk of an event in period k when
:math:`1 \le k \le c_i` (rate model: at risk throughout follow-up, whatever happened
before). With :math:`Y(k) = \#\{i: c_i \ge k\}` and :math:`d(k) = \sum_i dN_i(k)`,

.. math::

    \hat\mu(t) = \sum_{k \le t} d(k) / Y(k)

(Nelson–Aalen estimator of the mean cumulative number of events
:math:`\mu(t) = E[N(t)]`), with the robust variance of Lawless & Nadeau (1995),
valid whatever the dependence between a person's events:

.. math::

    \widehat{\mathrm{Var}}\,\hat\mu(t) = \sum_i \Big[\sum_{k \le t}
        \frac{1[c_i \ge k]}{Y(k)} \big(dN_i(k) - d(k)/Y(k)\big)\Big]^2 .

This is ``survfit(Surv(start, stop, event) ~ 1, id = id)$cumhaz`` and its robust
``std.chaz`` in R ``survival`` (tests/reference/r/careers.R).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["MeanCumulative", "mean_cumulative", "counting_process_rows", "mcf_by_assignment"]


@dataclass(frozen=True)
class MeanCumulative:
    """MCF of one group at k = 0..K-1 (``mcf[0] = 0``)."""

    mcf: np.ndarray
    std_error: np.ndarray
    at_risk: np.ndarray
    events: np.ndarray


def _risk(c: np.ndarray, K: int) -> np.ndarray:
    ks = np.arange(K)
    return (ks[None, :] >= 1) & (ks[None, :] <= np.asarray(c)[:, None])


def mean_cumulative(dn: np.ndarray, c: np.ndarray, *, variance: bool = True) -> MeanCumulative:
    """Nelson–Aalen mean cumulative function and its Lawless–Nadeau standard error."""
    dn = np.asarray(dn, dtype=float)
    n, K = dn.shape
    y_ik = _risk(c, K)
    dn = np.where(y_ik, dn, 0.0)
    y = y_ik.sum(axis=0).astype(float)
    d = dn.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        dmu = np.where(y > 0, d / np.where(y > 0, y, 1.0), 0.0)
        mu = np.cumsum(dmu)
        se = np.full(K, np.nan)
        if variance:
            resid = np.where(y_ik, (dn - dmu[None, :]) / np.where(y > 0, y, 1.0)[None, :], 0.0)
            se = np.sqrt((np.cumsum(resid, axis=1) ** 2).sum(axis=0))
    return MeanCumulative(mu, se, y.astype(np.int64), d.astype(np.int64))


def counting_process_rows(dn: np.ndarray, c: np.ndarray) -> dict[str, np.ndarray]:
    """Andersen–Gill rows (start, stop] per person: gaps between events, then to c.

    Returns ``person`` (row index of ``dn``), ``start``, ``stop``, ``event`` (0/1),
    sorted by person then time. A person with follow-up c = 0 has no row; the last
    row (from the last event to c) is dropped when it has length 0.
    """
    dn = np.asarray(dn)
    c = np.asarray(c, dtype=np.int64)
    n, K = dn.shape
    ev = _risk(c, K) & (dn > 0)
    pi, kk = np.nonzero(ev)
    has = c >= 1
    # one closing (censored) row per followed person, at c
    cp = np.flatnonzero(has)
    person = np.concatenate([pi, cp])
    stop = np.concatenate([kk, c[cp]])
    event = np.concatenate([np.ones(pi.size, dtype=np.int8), np.zeros(cp.size, dtype=np.int8)])
    order = np.lexsort((1 - event, stop, person))  # at equal stop, the event row first
    person, stop, event = person[order], stop[order], event[order]
    start = np.zeros_like(stop)
    start[1:] = np.where(person[1:] == person[:-1], stop[:-1], 0)
    keep = stop > start
    return {"person": person[keep], "start": start[keep], "stop": stop[keep], "event": event[keep]}


def mcf_by_assignment(
    dn: np.ndarray, c: np.ndarray, assignments: np.ndarray, tau: int
) -> np.ndarray:
    r""":math:`\hat\mu_1(\tau) - \hat\mu_0(\tau)` for many assignments at once (B,)."""
    z = np.atleast_2d(np.asarray(assignments, dtype=float))
    dn = np.asarray(dn, dtype=float)[:, : int(tau) + 1]
    y_ik = _risk(c, dn.shape[1]).astype(float)
    dn = dn * y_ik
    out = []
    for zz in (z, 1.0 - z):
        y = zz @ y_ik
        d = zz @ dn
        with np.errstate(invalid="ignore", divide="ignore"):
            out.append(np.where(y > 0, d / np.where(y > 0, y, 1.0), 0.0).sum(axis=1))
    return out[0] - out[1]
