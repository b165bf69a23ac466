"""Randomization inference: re-draw the assignment, recompute every statistic at once.

Under the sharp null hypothesis of no effect for anyone, :math:`Y_i(1) = Y_i(0)`, the
observed outcomes do not depend on the assignment, so the distribution of any
statistic :math:`T(z)` over the assignments :math:`z` the design could have drawn is
known exactly. The randomization p-value of :math:`T_{obs} = T(z_{obs})` is

* exact enumeration (when the design has at most ``n_permutations`` distinct
  assignments :math:`z_1..z_N`):
  :math:`p = \\#\\{b : |T(z_b)| \\ge |T_{obs}|\\} / N` (the observed assignment is one
  of the :math:`z_b`);
* Monte Carlo (B draws with replacement):
  :math:`p = (1 + \\#\\{b : |T(z_b)| \\ge |T_{obs}|\\}) / (1 + B)`.
  Counting the observed assignment as one of the draws makes the test exact at every
  level, :math:`P(p \\le \\alpha) \\le \\alpha` for any B (Phipson & Smyth 2010),
  at the price of a slight conservativeness of order 1/B. Its Monte Carlo standard
  error is :math:`\\sqrt{\\hat p (1 - \\hat p) / B}`.

Comparisons use a relative tolerance of 1e-9 so that draws reproducing the observed
statistic up to floating-point rounding count as ties (as they must); a draw whose
statistic is undefined (singular design) counts as at least as extreme (conservative).

The engine
----------
Every statistic handled here is a coefficient of a linear regression whose regressors
of interest depend linearly on the assignment,

.. math:: y_r = \\sum_j \\beta_j \\, z_{p(r)} v_{rj} + w_r'\\gamma + e_r ,

where row :math:`r` (a person, a person-period of a stacked panel, or a household
member) follows the assignment :math:`z_{p(r)}` of randomized person :math:`p(r)`,
:math:`v_{r0} = 1` (difference in means, ANCOVA) and, for Lin (2013), :math:`v_{rj}`
are the centred covariates, and :math:`W` holds the nuisance regressors (intercept,
strata, covariates, period effects) that do not depend on :math:`z`. With
:math:`Z(z)` the matrix of the :math:`z_{p(r)} v_{rj}`, :math:`Q` an orthonormal
basis of :math:`W` and :math:`\\tilde y = M_W y = y - Q Q'y` (computed once),

.. math:: \\hat\\beta(z) = [Z'Z - (Q'Z)'(Q'Z)]^{-1} Z'\\tilde y .

Because :math:`z_i \\in \\{0, 1\\}`, every block is linear in :math:`z`:
:math:`(Z'Z)_{jk} = \\sum_i z_i \\sum_{r \\in i} v_{rj} v_{rk}`,
:math:`(Q'Z)_{\\cdot j} = \\sum_i z_i \\sum_{r \\in i} q_r v_{rj}` and
:math:`(Z'\\tilde y)_{jk} = \\sum_i z_i \\sum_{r \\in i} v_{rj} \\tilde y_{rk}`. The
per-person sums form one matrix :math:`A` (persons × columns), so that all draws and
all outcomes are obtained from ONE matrix product :math:`P A` (P: draws × persons),
followed, when there is more than one :math:`v`, by a batch of small solves
(``numpy.linalg.solve`` on stacked matrices). For ANCOVA this is
:math:`\\hat\\beta(z) = z'M_W y / z'M_W z`. Draws are processed in chunks so that
memory stays bounded.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from ips_impact.errors import DesignError, EstimationError
from ips_impact.inference.permutation import AssignmentMatrix, assignment_matrix

__all__ = [
    "LinearProblem",
    "RandomizationDistribution",
    "linear_statistics",
    "randomization_distribution",
    "ri_pvalues",
    "ri_confidence_interval",
    "randomization_inference",
    "randomization_ci",
]

#: Scratch memory allowed for one chunk of draws (bytes); the peak stays well below 2 GB.
DEFAULT_MEMORY = 256 * 2**20
#: Relative tolerance under which |T_b| and |T_obs| are treated as tied.
TIE_RTOL = 1e-9


# ------------------------------------------------------------------------- problem
@dataclass(frozen=True, eq=False)
class LinearProblem:
    """A family of regression coefficients that depend on the assignment.

    Parameters
    ----------
    y : array (n_rows, K)
        Outcomes (K columns share rows, nuisance regressors and design).
    row_person : int array (n_rows,)
        Position (in the design) of the randomized person whose assignment row
        ``r`` follows: the person itself, or the index person of a household member.
    nuisance : array (n_rows, p) or None
        Regressors not depending on the assignment (intercept, strata, covariates,
        period effects…). ``None``: intercept only.
    interact : array (n_rows, J) or None
        :math:`v_{rj}`: the regressors of interest are :math:`z_{p(r)} v_{rj}`.
        ``None``: a single column of ones (the arm itself).
    coef : sequence of int
        Which of the J coefficients are statistics (default: the first).
    """

    y: np.ndarray
    row_person: np.ndarray
    nuisance: np.ndarray | None = None
    interact: np.ndarray | None = None
    coef: tuple[int, ...] = (0,)

    def __post_init__(self) -> None:
        y = np.asarray(self.y, dtype=np.float64)
        if y.ndim == 1:
            y = y[:, None]
        n_rows = y.shape[0]
        rp = np.asarray(self.row_person)
        if rp.shape != (n_rows,) or not np.issubdtype(rp.dtype, np.integer):
            raise EstimationError(
                f"row_person must be an integer array with one entry per row ({n_rows})",
                fix="map every row to the position of its randomized person",
            )
        w = None if self.nuisance is None else np.asarray(self.nuisance, dtype=np.float64)
        if w is None:
            w = np.ones((n_rows, 1))
        if w.ndim == 1:
            w = w[:, None]
        v = None if self.interact is None else np.asarray(self.interact, dtype=np.float64)
        if v is None:
            v = np.ones((n_rows, 1))
        if v.ndim == 1:
            v = v[:, None]
        for name, arr in (("nuisance", w), ("interact", v)):
            if arr.shape[0] != n_rows:
                raise EstimationError(
                    f"{name} has {arr.shape[0]} rows and y has {n_rows}",
                    fix="pass the rows of the estimation sample, in the same order",
                )
        for name, arr in (("y", y), ("nuisance", w), ("interact", v)):
            if not np.all(np.isfinite(arr)):
                raise EstimationError(
                    f"{name} holds {int((~np.isfinite(arr)).sum())} missing or infinite values",
                    fix="drop incomplete rows (the estimation sample) before randomization inference",
                )
        coef = tuple(int(c) for c in np.atleast_1d(self.coef))
        if any(c < 0 or c >= v.shape[1] for c in coef):
            raise EstimationError(
                f"coef {coef} out of range for {v.shape[1]} interacted regressor(s)",
                fix="choose coef among 0..J-1",
            )
        object.__setattr__(self, "y", y)
        object.__setattr__(self, "row_person", rp.astype(np.int64))
        object.__setattr__(self, "nuisance", w)
        object.__setattr__(self, "interact", v)
        object.__setattr__(self, "coef", coef)

    @property
    def n_outcomes(self) -> int:
        return int(self.y.shape[1])

    @property
    def n_statistics(self) -> int:
        """Number of statistics: len(coef) x K, ordered coef-major."""
        return len(self.coef) * self.n_outcomes


def _orthonormal_basis(w: np.ndarray) -> np.ndarray:
    """Orthonormal basis of the column space of ``w`` (rank-revealing SVD), so that
    collinear nuisance columns (e.g. intercept + all stratum dummies) are harmless."""
    u, s, _ = np.linalg.svd(w, full_matrices=False)
    if s.size == 0 or s[0] == 0:
        return np.zeros((w.shape[0], 0))
    keep = s > s[0] * max(w.shape) * np.finfo(float).eps
    return u[:, keep]


@dataclass(frozen=True, eq=False)
class _Prepared:
    """Per-person sums A (n_persons x width) and the layout of its columns."""

    a: np.ndarray
    n_v: int  # J
    n_q: int  # r
    n_y: int  # K
    coef: tuple[int, ...]


def _prepare(problem: LinearProblem, n_persons: int) -> _Prepared:
    if problem.row_person.size and (
        problem.row_person.min() < 0 or problem.row_person.max() >= n_persons
    ):
        raise EstimationError(
            f"row_person refers to persons outside 0..{n_persons - 1}",
            fix="map rows to positions in study.persons",
        )
    q = _orthonormal_basis(problem.nuisance)
    y_res = problem.y - q @ (q.T @ problem.y)
    v = problem.interact
    n_rows, n_v = v.shape
    # Columns, in order: v_j * y_res (J*K), v_j * q (J*r), v_j * v_k for j <= k.
    parts = [v[:, j : j + 1] * y_res for j in range(n_v)]
    parts += [v[:, j : j + 1] * q for j in range(n_v)]
    ju, ku = np.triu_indices(n_v)
    parts.append(v[:, ju] * v[:, ku])
    rows = np.concatenate(parts, axis=1)
    # S' (persons x rows) incidence: per-person sums over the rows that follow them.
    s_t = sparse.csr_matrix(
        (np.ones(n_rows), (problem.row_person, np.arange(n_rows))), shape=(n_persons, n_rows)
    )
    a = np.asarray(s_t @ rows)
    return _Prepared(a=a, n_v=n_v, n_q=q.shape[1], n_y=problem.n_outcomes, coef=problem.coef)


def _evaluate(prep: _Prepared, x: np.ndarray) -> np.ndarray:
    """Statistics (c, len(coef) * K) from the products x = P_chunk @ A."""
    c = x.shape[0]
    j, r, k = prep.n_v, prep.n_q, prep.n_y
    zy = x[:, : j * k].reshape(c, j, k)
    qz = x[:, j * k : j * k + j * r].reshape(c, j, r)
    tri = x[:, j * k + j * r :]
    with np.errstate(divide="ignore", invalid="ignore"):
        if j == 1:
            gram = tri[:, 0] - np.einsum("cjr,cjr->c", qz, qz)
            # A draw without variation in the (residualised) arm has no estimate.
            gram = np.where(gram > 1e-12 * np.maximum(tri[:, 0], 1.0), gram, np.nan)
            beta = zy[:, 0, :] / gram[:, None]
            return beta
        zz = np.empty((c, j, j))
        ju, ku = np.triu_indices(j)
        zz[:, ju, ku] = tri
        zz[:, ku, ju] = tri
        gram = zz - np.einsum("cjr,ckr->cjk", qz, qz)
        beta = np.full((c, j, k), np.nan)
        # Singular draws (e.g. a subgroup with nobody treated) are left as NaN.
        cond = np.linalg.cond(gram)
        ok = np.isfinite(cond) & (cond < 1e12)
        if ok.any():
            beta[ok] = np.linalg.solve(gram[ok], zy[ok])
    return beta[:, list(prep.coef), :].reshape(c, -1)


def _chunk_size(n_persons: int, width: int, n_draws: int, memory: int) -> int:
    # float64 copy of the draws + products + solve scratch (~3x products).
    per_draw = 8 * (n_persons + 4 * width)
    return int(max(1, min(n_draws, memory // max(per_draw, 1))))


def linear_statistics(
    problems: LinearProblem | Sequence[LinearProblem],
    draws: np.ndarray,
    *,
    memory: int = DEFAULT_MEMORY,
) -> list[np.ndarray]:
    """Coefficients of every problem for every assignment in ``draws``.

    Parameters
    ----------
    problems : LinearProblem or sequence of them
        Statistics to compute (see :class:`LinearProblem`).
    draws : int array (B, n_persons)
        Assignments (rows of 0/1), shared by every problem.
    memory : int
        Bytes of scratch memory per chunk of draws.

    Returns
    -------
    list of numpy.ndarray, one per problem, each (B, len(coef) * K):
        :math:`\\hat\\beta_j(z_b)` for outcome k at column ``j_index * K + k``.
    """
    single = isinstance(problems, LinearProblem)
    plist = [problems] if single else list(problems)
    draws = np.asarray(draws)
    if draws.ndim != 2:
        raise DesignError("draws must be a 2-D array (draws x persons)", fix="stack assignments as rows")
    n_draws, n_persons = draws.shape
    preps = [_prepare(p, n_persons) for p in plist]
    # One product for every problem: concatenate their per-person sums.
    a_all = np.concatenate([p.a for p in preps], axis=1)
    bounds = np.cumsum([0] + [p.a.shape[1] for p in preps])
    out = [np.empty((n_draws, p.n_y * len(p.coef))) for p in preps]
    step = _chunk_size(n_persons, a_all.shape[1], n_draws, memory)
    for start in range(0, n_draws, step):
        stop = min(start + step, n_draws)
        x = draws[start:stop].astype(np.float64) @ a_all
        for i, prep in enumerate(preps):
            out[i][start:stop] = _evaluate(prep, x[:, bounds[i] : bounds[i + 1]])
    return out


# ----------------------------------------------------------------------- p-values
def _n_extreme(t_obs: np.ndarray, t_draws: np.ndarray) -> np.ndarray:
    """#{b : |T_b| >= |T_obs|} per column, ties within TIE_RTOL, NaN draws counted."""
    thr = np.abs(t_obs) * (1.0 - TIE_RTOL)
    with np.errstate(invalid="ignore"):
        hit = (np.abs(t_draws) >= thr) | np.isnan(t_draws)
    return hit.sum(axis=0)


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
) -> tuple[float, float]:
    """Randomization confidence interval by test inversion, constant additive effect.

    Under :math:`H_\\tau: Y_i(1) = Y_i(0) + \\tau` the control outcomes are
    :math:`y - \\tau z_{obs}` and, the estimator being linear in y and reproducing
    :math:`\\tau` when y = :math:`\\tau z`, the statistic under draw b is
    :math:`\\hat\\beta(z_b; y - \\tau z_{obs}) = a_b - \\tau c_b` with
    :math:`a_b = \\hat\\beta(z_b; y)` and :math:`c_b = \\hat\\beta(z_b; z_{obs})`. The
    test of :math:`H_\\tau` compares :math:`|a_b - \\tau c_b|` with
    :math:`|\\hat\\beta - \\tau|`; the interval is the set of :math:`\\tau` with
    :math:`p(\\tau) > 1 - level`, located on a grid of
    :math:`\\hat\\beta \\pm 12\\,sd(a)` and refined by bisection (60 steps). When the
    accepted set has holes, its hull is returned (conservative); an end at the
    grid's edge is reported as infinite.
    """
    a = np.asarray(a, dtype=float)
    c = np.asarray(c, dtype=float)
    alpha = 1.0 - float(level)
    ok = np.isfinite(a) & np.isfinite(c)
    if not np.isfinite(estimate):
        return math.nan, math.nan
    b = a.size

    def pval(tau: np.ndarray) -> np.ndarray:
        tau = np.atleast_1d(tau)[:, None]
        stat = np.abs(a[None, :] - tau * c[None, :])
        thr = np.abs(estimate - tau) * (1.0 - TIE_RTOL)
        count = ((stat >= thr) | ~ok[None, :]).sum(axis=1)
        return count / b if exact else (1.0 + count) / (1.0 + b)

    scale = float(np.nanstd(a[ok])) if ok.any() else 0.0
    if not scale > 0:
        scale = max(abs(estimate), 1.0)
    grid = estimate + scale * np.linspace(-12.0, 12.0, 481)
    accepted = np.concatenate([pval(g) for g in np.array_split(grid, 8)]) > alpha
    idx = np.flatnonzero(accepted)
    lo_i, hi_i = int(idx[0]), int(idx[-1])

    def bisect(rejected: float, accept: float) -> float:
        for _ in range(60):
            mid = 0.5 * (rejected + accept)
            if pval(np.array([mid]))[0] > alpha:
                accept = mid
            else:
                rejected = mid
        return accept

    low = -math.inf if lo_i == 0 else bisect(grid[lo_i - 1], grid[lo_i])
    high = math.inf if hi_i == grid.size - 1 else bisect(grid[hi_i + 1], grid[hi_i])
    return float(low), float(high)


# ---------------------------------------------------------- distribution object
@dataclass(frozen=True, eq=False)
class RandomizationDistribution:
    """Observed statistics, their randomization distribution and p-values.

    Attributes
    ----------
    observed : array (m,)
        :math:`T(z_{obs})` for the m statistics (problems concatenated).
    draws : array (B, m)
        :math:`T(z_b)`.
    exact : bool
        Whether the draws enumerate every assignment.
    p_value, se : arrays (m,)
        From :func:`ri_pvalues`.
    """

    observed: np.ndarray
    draws: np.ndarray
    exact: bool
    p_value: np.ndarray
    se: np.ndarray


def randomization_distribution(
    problems: LinearProblem | Sequence[LinearProblem],
    arm: np.ndarray,
    assignments: AssignmentMatrix,
    *,
    memory: int = DEFAULT_MEMORY,
) -> RandomizationDistribution:
    """Observed statistics, their distribution over ``assignments`` and p-values.

    The observed statistic is computed by the same code as the draws (so that a draw
    equal to the observed assignment ties exactly).
    """
    plist = [problems] if isinstance(problems, LinearProblem) else list(problems)
    arm = np.asarray(arm, dtype=np.int8)
    obs = np.concatenate(linear_statistics(plist, arm[None, :], memory=memory), axis=1)[0]
    dist = np.concatenate(linear_statistics(plist, assignments.draws, memory=memory), axis=1)
    p, se = ri_pvalues(obs, dist, exact=assignments.exact)
    return RandomizationDistribution(observed=obs, draws=dist, exact=assignments.exact, p_value=p, se=se)


# ------------------------------------------------------------ public entry point
def _result_adapters() -> dict[str, Any]:
    """Map estimand codes to functions ``(study, result) -> list[_RowStatistic]``."""
    return {}


def randomization_inference(
    study: Any,
    results: Any,
    *,
    n_permutations: int = 10_000,
    seed: int = 0,
) -> Any:
    """Randomization p-values for fitted results; returns NEW results.

    Placeholder wiring; see :func:`_randomization_inference`.
    """
    raise NotImplementedError
