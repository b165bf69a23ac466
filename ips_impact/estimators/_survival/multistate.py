r"""Aalen–Johansen state-occupation probabilities of a discrete-time multi-state process.

Input is a person x event-time matrix of state codes (``-1`` once follow-up has
ended): the state of each person at k = 0, 1, ..., K-1, observed without gaps up to
the person's censoring time. Transitions happen at integer times; between k-1 and k
every person still followed at k is at risk in the state it held at k-1. With
:math:`N_{jl}(k)` persons moving from j (at k-1) to l (at k) among the
:math:`n_j(k)` followed at k,

.. math::

    \hat p(0) = \text{empirical distribution at } k = 0, \qquad
    \hat p(k) = \hat p(k-1)\, \hat H(k), \quad \hat H_{jl}(k) = N_{jl}(k) / n_j(k),

the product-integral :math:`\prod (I + d\hat A)` of the Nelson–Aalen transition
hazards, which is what ``survival::survfit`` computes on the counting-process rows
``Surv(start, stop, state)`` (``tests/reference/r/careers.R``). Its variance is the
infinitesimal jackknife of ``survfit`` (influence of each person's weight):

.. math::

    U_i(0) = (e_{s_i(0)} - \hat p(0)) / n, \qquad
    U_i(k) = U_i(k-1) \hat H(k) + 1[i \text{ at risk}]\,
             \hat p_{j}(k-1)\,(e_{s_i(k)} - \hat H_{j\cdot}(k)) / n_j(k),

with j = s_i(k-1), and :math:`\widehat{\mathrm{Var}}\,\hat p(k) = \sum_i U_i(k)^2`.
R ``survfit`` treats the initial distribution as known (:math:`U_i(0) = 0`); with
``initial_variance=True`` (the default of :func:`~ips_impact.state_occupation`) its
sampling variance is included, as it must be when the persons are a sample (the
state at randomization varies between samples).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

__all__ = ["AalenJohansen", "aalen_johansen", "occupation_by_assignment", "transition_counts"]


@dataclass(frozen=True)
class AalenJohansen:
    """State-occupation probabilities of one group at k = 0..K-1.

    ``probability`` and ``std_error`` are (K, S); ``at_risk`` (K,) is the number of
    persons followed at k; ``transitions`` (K, S, S) the counts :math:`N_{jl}(k)`
    (row 0 is zero).
    """

    probability: np.ndarray
    std_error: np.ndarray
    at_risk: np.ndarray
    transitions: np.ndarray


def _step_matrix(counts: np.ndarray) -> np.ndarray:
    """Empirical transition matrix H (rows without anyone at risk: stay put)."""
    n_j = counts.sum(axis=-1, keepdims=True)
    eye = np.broadcast_to(np.eye(counts.shape[-1]), counts.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_j > 0, counts / np.where(n_j > 0, n_j, 1.0), eye)


def aalen_johansen(
    code: np.ndarray, n_states: int, *, variance: bool = True, initial_variance: bool = True
) -> AalenJohansen:
    """Aalen–Johansen estimate (and infinitesimal-jackknife SE) for the rows of ``code``.

    Parameters
    ----------
    code
        Integer array (n, K): state 0..S-1 at k = column, ``-1`` when not followed.
        Every row must be followed at column 0, and follow-up has no gaps.
    n_states
        S, the number of states.
    variance
        Compute the standard errors (O(n S^2) per period); else they are NaN.
    initial_variance
        Include the influence of the estimated initial distribution (``False``:
        survfit's standard errors, conditional on it).
    """
    code = np.asarray(code)
    n, K = code.shape
    S = int(n_states)
    p = np.zeros((K, S))
    se = np.full((K, S), np.nan)
    at_risk = (code >= 0).sum(axis=0).astype(np.int64)
    trans = np.zeros((K, S, S))
    if n == 0:
        return AalenJohansen(p, se, at_risk, trans)
    s0 = code[:, 0]
    p[0] = np.bincount(s0, minlength=S) / n
    if variance:
        u = -np.broadcast_to(p[0], (n, S)) / n
        u = u.copy()
        u[np.arange(n), s0] += 1.0 / n
        if not initial_variance:
            u[:] = 0.0
        se[0] = np.sqrt((u**2).sum(axis=0))
    for k in range(1, K):
        risk = np.flatnonzero(code[:, k] >= 0)
        j, l_ = code[risk, k - 1], code[risk, k]
        counts = np.bincount(j * S + l_, minlength=S * S).reshape(S, S).astype(float)
        trans[k] = counts
        h = _step_matrix(counts)
        if variance:
            n_j = counts.sum(axis=1)
            u = u @ h
            if risk.size:
                w = p[k - 1, j] / n_j[j]
                u[risk] -= w[:, None] * h[j]
                u[risk, l_] += w
            se[k] = np.sqrt((u**2).sum(axis=0))
        p[k] = p[k - 1] @ h
    return AalenJohansen(p, se, at_risk, trans)


def transition_counts(
    code: np.ndarray, n_states: int
) -> tuple[sparse.csr_matrix, sparse.csr_matrix]:
    """One-hot matrices for counts under many assignments.

    Returns ``start`` (n, S): the state at k = 0, and ``moves`` (n, K*S*S): person i
    has a 1 in column k*S*S + j*S + l when followed at k, in j at k-1 and in l at k.
    ``Z @ moves`` gives every assignment's transition counts at once.
    """
    code = np.asarray(code)
    n, K = code.shape
    S = int(n_states)
    start = sparse.csr_matrix((np.ones(n), (np.arange(n), code[:, 0])), shape=(n, S))
    pi, kk = np.nonzero(code[:, 1:] >= 0)
    kk = kk + 1
    col = kk * S * S + code[pi, kk - 1] * S + code[pi, kk]
    moves = sparse.csr_matrix((np.ones(pi.size), (pi, col)), shape=(n, K * S * S))
    return start, moves


def occupation_by_assignment(
    code: np.ndarray, n_states: int, assignments: np.ndarray, tau: int
) -> dict[str, np.ndarray]:
    r"""Aalen–Johansen :math:`\hat p_a(\tau)` of each arm for many assignments (no refit).

    Every transition count of an arm is a sum over its persons, so B assignments cost
    one sparse product ``Z @ moves`` and a batched product of B step matrices per
    period. Returns ``treated`` and ``control``, each (B, S).
    """
    z = np.atleast_2d(np.asarray(assignments, dtype=float))
    S = int(n_states)
    tau = int(tau)
    code = np.asarray(code)[:, : tau + 1]
    start, moves = transition_counts(code, S)
    out = {}
    zs = {"treated": z, "control": 1.0 - z}
    for name, zz in zs.items():
        c0 = np.asarray((start.T @ zz.T).T)
        with np.errstate(invalid="ignore", divide="ignore"):
            p = c0 / c0.sum(axis=1, keepdims=True)
        counts = np.asarray((moves.T @ zz.T).T).reshape(zz.shape[0], tau + 1, S, S)
        for k in range(1, tau + 1):
            p = np.einsum("bj,bjl->bl", p, _step_matrix(counts[:, k]))
        out[name] = p
    return out
